"""The NaN/inf guard: an optimizer step whose loss or gradient is not finite is skipped (the
weights and the optimizer's moments stay as they were), and a run whose steps stay non-finite
stops with a message instead of training on garbage for days."""
from __future__ import annotations

from dataclasses import dataclass


class NonFiniteTraining(RuntimeError):
    """Too many non-finite optimizer steps in a row."""


@dataclass
class NonFiniteGuard:
    max_bad_steps: int = 20
    skipped_total: int = 0
    bad_in_a_row: int = 0

    def __post_init__(self) -> None:
        if self.max_bad_steps < 1:
            raise ValueError(f"max_bad_steps must be at least 1, got {self.max_bad_steps}")

    def record(self, step: int, finite: bool, last_checkpoint: str | None = None) -> bool:
        """Counts a step; True when it may update the weights. Raises NonFiniteTraining on the
        `max_bad_steps`-th non-finite step in a row."""
        if finite:
            self.bad_in_a_row = 0
            return True
        self.skipped_total += 1
        self.bad_in_a_row += 1
        if self.bad_in_a_row >= self.max_bad_steps:
            where = (f"the last checkpoint, {last_checkpoint}, holds the weights from before "
                     "these steps" if last_checkpoint else "no checkpoint was written yet")
            raise NonFiniteTraining(
                f"stopped at step {step}: {self.bad_in_a_row} optimizer steps in a row had a "
                f"non-finite loss or gradient ({self.skipped_total} skipped in this stage); "
                f"{where}. Lower the learning rate, check the data, or use bf16 instead of fp16 "
                "(trainer_guard.max_bad_steps sets the limit)")
        return False
