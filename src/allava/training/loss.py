"""Next-token cross-entropy with a choice of how tokens are averaged.

`token` averages over every supervised token of the batch (Hugging Face's default, LLaVA's).
`sample` averages within each sample first, then over samples, so a one-word answer ("B", "Yes")
weighs as much as a paragraph: the decisions in short answers are not drowned by long ones.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("token", "sample")


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token"
                   ) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {REDUCTIONS}, got {reduction!r}")
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    per_token = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                shift_labels.reshape(-1), ignore_index=-100,
                                reduction="none").view_as(shift_labels)
    supervised = (shift_labels != -100).to(per_token.dtype)
    if reduction == "token":
        return (per_token * supervised).sum() / supervised.sum().clamp(min=1)
    per_sample = (per_token * supervised).sum(1) / supervised.sum(1).clamp(min=1)
    has_labels = supervised.sum(1) > 0
    return per_sample[has_labels].mean()
