"""Per-stage loggers. Every factory takes the stage name, the run group, the run dir and a run
name (W&B shows it; CSV files are laid out by stage)."""
from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from allava.utils.wandb_mode import resolve_wandb_mode


def wandb_logger(stage: str, group: str, save_dir: str | Path, name: str | None = None,
                 project: str = "allava", entity: str | None = None, mode: str = "auto", tags=(),
                 run_id: str | None = None, **kwargs) -> WandbLogger:
    """`run_id`: the stage's W&B run id, kept in the run dir, so that a resumed stage goes on
    logging to the same run."""
    import wandb

    resolved = resolve_wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project, entity=entity, name=name or f"{group}-{stage}", group=group, job_type=stage,
        save_dir=str(save_dir), mode=resolved, tags=list(tags),
        settings=wandb.Settings(init_timeout=60, console="off", x_disable_stats=True),
        **({"id": run_id, "resume": "allow"} if run_id else {}),
        **kwargs,
    )


def csv_logger(stage: str, group: str, save_dir: str | Path, name: str | None = None,
               run_id: str | None = None, **kwargs) -> CSVLogger:
    """A resumed stage appends to its metrics.csv (`run_id` is not needed)."""
    return CSVLogger(save_dir=str(save_dir), name="csv", version=stage, **kwargs)


def finish(logger) -> None:
    """Closes a stage's run so that the next stage starts a new one."""
    if isinstance(logger, WandbLogger) and logger._experiment is not None:
        logger.experiment.finish()
    elif hasattr(logger, "finalize"):
        logger.finalize("success")
