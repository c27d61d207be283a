"""Which device a command runs its model on: the one asked for, else a GPU when there is one."""
from __future__ import annotations

import torch


def pick_device(requested: str | None) -> str:
    """`requested` (cpu, cuda, cuda:1, ...), or cuda when a GPU is there, else cpu."""
    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


def device_problem(requested: str | None) -> str | None:
    """Why `requested` cannot be used here (for a command's argument check), or None."""
    if str(requested).startswith("cuda") and not torch.cuda.is_available():
        return f"--device {requested}: no CUDA device here (use --device cpu)"
    return None
