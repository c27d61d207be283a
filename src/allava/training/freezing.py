"""Which modules of the VLM train in a stage, and their parameter counts."""
from __future__ import annotations

from torch import nn

MODULES = ("vision", "connector", "llm")


def apply_trainable(model: nn.Module, trainable: list[str]) -> None:
    unknown = set(trainable) - set(MODULES)
    if unknown:
        raise ValueError(f"stage.train names unknown modules {sorted(unknown)}; "
                         f"choose among {list(MODULES)}")
    if not trainable:
        raise ValueError("stage.train is empty: nothing would train in this stage")
    for name in MODULES:
        getattr(model, name).requires_grad_(name in trainable)


def parameter_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    counts = {}
    for name in MODULES:
        params = list(getattr(model, name).parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        counts[name] = {"trainable": trainable, "frozen": sum(p.numel() for p in params) - trainable}
    return counts
