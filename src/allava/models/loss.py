"""Next-token cross-entropy with a choice of how tokens are averaged.

`token` averages over every supervised token of the batch (Hugging Face's default, LLaVA's).
`sample` averages within each sample first, then over samples, so a one-word answer ("B", "Yes")
weighs as much as a paragraph: the decisions in short answers are not drowned by long ones.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

REDUCTIONS = ("token", "sample")


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token"
                   ) -> torch.Tensor:
    """Loss from full `[B, T, V]` logits; `labels` `[B, T]` with -100 where unsupervised."""
    return next_token_loss(logits, labels, reduction)


def next_token_loss(outputs: torch.Tensor, labels: torch.Tensor, reduction: str = "token",
                    to_logits: Callable[[torch.Tensor], torch.Tensor] | None = None
                    ) -> torch.Tensor:
    """Next-token cross-entropy over the positions whose following label is set.

    `outputs` `[B, T, ...]` are logits, or hidden states that `to_logits` (an LM head) turns
    into logits: the head then runs on the supervised positions only."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {REDUCTIONS}, got {reduction!r}")
    targets = labels[:, 1:]
    supervised = targets != -100
    picked = outputs[:, :-1][supervised]
    logits = picked if to_logits is None else to_logits(picked)
    per_token = F.cross_entropy(logits.float(), targets[supervised], reduction="none")
    counts = supervised.sum(1)
    if reduction == "token":
        return per_token.sum() / counts.sum().clamp(min=1)
    rows = supervised.nonzero()[:, 0]
    sums = per_token.new_zeros(supervised.shape[0]).index_add(0, rows, per_token)
    return (sums / counts.clamp(min=1))[counts > 0].mean()
