"""Per-stage loggers. Every factory takes the stage name, the run group, the run dir and a run
name (W&B shows it; CSV files are laid out by stage)."""
from __future__ import annotations

import netrc
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, WandbLogger


def _wandb_api_key() -> str | None:
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        entry = netrc.netrc().authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return None
    return entry[2] if entry else None


def _reachable(url: str, timeout: float = 2.0) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_wandb_mode(mode: str = "auto") -> str:
    """`auto` -> `online` only with an API key and a reachable W&B host, else `offline`.
    An explicit WANDB_MODE in the environment wins, as W&B users expect."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if mode != "auto":
        return mode
    if _wandb_api_key() and _reachable(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")):
        return "online"
    return "offline"


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
