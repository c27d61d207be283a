"""A callback that kills its own training process with SIGKILL at a chosen point: a crash that
leaves no chance to clean up, as an out-of-memory kill or a lost node does."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class KillProcess(L.Callback):
    """SIGKILL in stage `stage` after optimizer step `step` (0: when the stage starts).
    `whole_job`: the process group (every DDP rank), as when a node is lost; start the job in
    its own session (`subprocess.Popen(start_new_session=True)`) so the test survives it."""

    def __init__(self, stage: str, step: int, whole_job: bool = False):
        self.stage = stage
        self.step = step
        self.whole_job = whole_job

    def _here(self, trainer: L.Trainer) -> bool:
        return Path(trainer.default_root_dir).name == self.stage and trainer.is_global_zero

    def _kill(self) -> None:
        if self.whole_job:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    def on_train_start(self, trainer, pl_module) -> None:
        if self.step == 0 and self._here(trainer):
            self._kill()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._here(trainer) and trainer.global_step == self.step:
            self._kill()
