"""A callback that makes chosen training steps non-finite (NaN token embeddings, so the loss
and every gradient are NaN), and records what the weights did meanwhile."""
from __future__ import annotations

import lightning as L
import torch


class InjectNaN(L.Callback):
    """NaN in steps `first` .. `last` (inclusive; `last` null: every step from `first`)."""

    observed: list[dict] = []  # one entry per injected step, for the test to read

    def __init__(self, first: int, last: int | None = None):
        self.first, self.last = first, last
        self._hook = None
        self._before: dict[str, torch.Tensor] | None = None

    def _injects(self, step: int) -> bool:
        return step >= self.first and (self.last is None or step <= self.last)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._injects(trainer.global_step):
            return
        self._before = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        embeddings = pl_module.model.llm.get_input_embeddings()
        self._hook = embeddings.register_forward_hook(lambda m, i, out: out * float("nan"))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._hook is None:
            return
        self._hook.remove()
        self._hook = None
        after = pl_module.model.state_dict()
        InjectNaN.observed.append({
            "step": trainer.global_step,
            "unchanged": all(torch.equal(self._before[k], after[k]) for k in after),
            "changed": [k for k in after if not torch.equal(self._before[k], after[k])][:5],
            "finite": all(bool(torch.isfinite(v).all()) for v in after.values()
                          if v.is_floating_point()),
        })
