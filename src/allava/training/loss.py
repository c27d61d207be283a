"""Next-token cross-entropy with a choice of how tokens are averaged.

`token` averages over every supervised token of the batch (Hugging Face's default, LLaVA's).
`sample` averages within each sample first, then over samples, so a one-word answer ("B", "Yes")
weighs as much as a paragraph: the decisions in short answers are not drowned by long ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("token", "sample")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {REDUCTIONS}, got {reduction!r}")


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token"
                   ) -> torch.Tensor:
    """Loss from full `[B, T, V]` logits; `labels` `[B, T]` with -100 where unsupervised."""
    check_reduction(reduction)
    targets = labels[:, 1:]
    supervised = targets != -100
    per_token = F.cross_entropy(logits[:, :-1][supervised].float(), targets[supervised],
                                reduction="none")
    return reduce_token_losses(per_token, supervised, reduction)


def reduce_token_losses(per_token: torch.Tensor, supervised: torch.Tensor, reduction: str
                        ) -> torch.Tensor:
    """`per_token`: the losses of the supervised tokens, in row-major order of the boolean
    `[B, T]` mask `supervised`; averaged per `reduction`."""
    check_reduction(reduction)
    counts = supervised.sum(1)
    if reduction == "token":
        return per_token.sum() / counts.sum().clamp(min=1)
    rows = supervised.nonzero()[:, 0]
    sums = per_token.new_zeros(supervised.shape[0]).index_add(0, rows, per_token)
    return (sums / counts.clamp(min=1))[counts > 0].mean()
