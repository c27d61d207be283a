"""Callbacks: throughput in tokens/s and a one-off report of what trains."""
from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from allava.data.samples import tokens_in


class TokenThroughput(L.Callback):
    """Logs `train/tokens_per_s`: non-padding tokens (image placeholders included) per second
    of wall time between consecutive batch starts, so data loading counts too."""

    def __init__(self):
        self._last: float | None = None
        self._tokens = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self._last is not None and self._tokens:
            pl_module.log("train/tokens_per_s", self._tokens / max(now - self._last, 1e-9),
                          batch_size=1)
        self._last = now
        self._tokens = tokens_in(batch) * trainer.world_size


class ParameterReport(L.Callback):
    """Logs trainable/frozen parameter counts per module once, at the start of the stage."""

    def on_fit_start(self, trainer, pl_module):
        counts = pl_module.parameter_counts()
        flat = {f"params/{module}/{kind}": n for module, c in counts.items()
                for kind, n in c.items()}
        for logger in trainer.loggers:
            logger.log_hyperparams(flat)
        lines = [f"  {m:<10} trainable {c['trainable']:>13,}  frozen {c['frozen']:>13,}"
                 for m, c in counts.items()]
        rank_zero_info(f"[{pl_module.stage['name']}] parameters:\n" + "\n".join(lines))
