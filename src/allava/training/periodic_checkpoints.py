"""Checkpoints a killed run can resume from: every N steps or M minutes, whichever comes
first, on the cluster's pre-emption signals, and at the end of the stage.

Files are `step=0000250.ckpt` (the last `keep_last` of them are kept) and `last.ckpt`, another
name of the newest. A pre-emption signal (SIGTERM, SIGUSR1) does not kill the process at once:
the current step finishes, a checkpoint is written, and `TrainingPreempted` ends the run, so
that `train.py ... resume=<run dir>` continues from that step.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from allava.training.checkpoint_files import atomic_link, atomic_rename, remove_checkpoint

LAST = "last.ckpt"


class TrainingPreempted(RuntimeError):
    """The run received a pre-emption signal and stopped after saving a checkpoint."""

    def __init__(self, signal_name: str, checkpoint: Path):
        super().__init__(f"received {signal_name}: saved {checkpoint} and stopped; continue with "
                         "the same command plus resume=<run dir> (or resume=auto)")
        self.signal_name = signal_name
        self.checkpoint = checkpoint


def step_checkpoints(directory: str | Path) -> list[Path]:
    """The `step=*.ckpt` files of `directory`, oldest step first."""
    return sorted(Path(directory).glob("step=*.ckpt"))


class PeriodicCheckpoint(L.Callback):
    def __init__(self, dirpath: str | Path, every_n_train_steps: int | None = 250,
                 every_n_minutes: float | None = 30.0, keep_last: int = 2,
                 signals: tuple[str, ...] | list[str] = ("SIGTERM", "SIGUSR1")):
        if keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps or None
        self.every_n_minutes = every_n_minutes or None
        self.keep_last = keep_last
        self.signals = tuple(signals)
        self._last_save_time = time.monotonic()
        self._received: str | None = None
        self._previous_handlers: dict[int, Any] = {}

    # --- signals ---------------------------------------------------------------------------
    def _on_signal(self, number: int, frame) -> None:
        self._received = signal.Signals(number).name

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_save_time = time.monotonic()
        for name in self.signals:
            number = getattr(signal, name, None)
            if number is None:  # e.g. SIGUSR1 on Windows
                continue
            try:
                self._previous_handlers[number] = signal.signal(number, self._on_signal)
            except ValueError:  # not the main thread: leave the signal to its owner
                continue

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers.clear()

    # --- saving ----------------------------------------------------------------------------
    def _due(self, step: int) -> bool:
        if self.every_n_train_steps and step % self.every_n_train_steps == 0:
            return True
        return bool(self.every_n_minutes
                    and time.monotonic() - self._last_save_time >= 60 * self.every_n_minutes)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if trainer.fit_loop.epoch_loop._should_accumulate():  # mid-accumulation: not a step boundary
            return
        # Ranks decide together, each one's clock and signals may differ: one collective per
        # step, a second one only when a checkpoint is written.
        received = self._received is not None
        if not trainer.strategy.reduce_boolean_decision(received or self._due(step), all=False):
            return
        preempted = trainer.strategy.reduce_boolean_decision(received, all=False)
        path = self.save(trainer, step)
        if preempted:
            raise TrainingPreempted(self._received or "a signal on another rank", path)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer, trainer.global_step)  # the stage-final checkpoint

    def save(self, trainer: L.Trainer, step: int) -> Path:
        path = self.dirpath / f"step={step:07d}.ckpt"
        # Written under another name, renamed once complete: a sharded strategy writes a
        # directory, one file per rank, and a kill half-way must not leave it looking whole.
        partial = self.dirpath / f".{path.name}.partial"
        if trainer.is_global_zero and partial.exists():  # left by a run killed while saving
            remove_checkpoint(partial)
        trainer.strategy.barrier("periodic_checkpoint_start")
        trainer.save_checkpoint(partial, weights_only=False)  # the whole training state
        self._last_save_time = time.monotonic()
        if trainer.is_global_zero:
            atomic_rename(partial, path)
            atomic_link(path, self.dirpath / LAST)
            for old in step_checkpoints(self.dirpath)[:-self.keep_last]:
                remove_checkpoint(old)
            rank_zero_info(f"checkpoint: {path}")
        trainer.strategy.barrier("periodic_checkpoint")
        return path
