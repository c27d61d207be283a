"""Per-stage loggers. Every factory takes the stage name, the run group, the run dir and a run
name (W&B shows it; CSV files are laid out by stage)."""
from __future__ import annotations

from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger

from allava.utils.wandb_mode import resolve_wandb_mode


def wandb_logger(stage: str, group: str, save_dir: str | Path, name: str | None = None,
                 project: str = "allava", entity: str | None = None, mode: str = "auto", tags=(),
                 **kwargs) -> WandbLogger:
    import wandb

    resolved = resolve_wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project, entity=entity, name=name or f"{group}-{stage}", group=group, job_type=stage,
        save_dir=str(save_dir), mode=resolved, tags=list(tags),
        settings=wandb.Settings(init_timeout=60, console="off", x_disable_stats=True),
        **kwargs,
    )


def csv_logger(stage: str, group: str, save_dir: str | Path, name: str | None = None,
               **kwargs) -> CSVLogger:
    return CSVLogger(save_dir=str(save_dir), name="csv", version=stage, **kwargs)


def finish(logger) -> None:
    """Closes a stage's run so that the next stage starts a new one."""
    if isinstance(logger, WandbLogger) and logger._experiment is not None:
        logger.experiment.finish()
    elif hasattr(logger, "finalize"):
        logger.finalize("success")
