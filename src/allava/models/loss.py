"""Next-token cross-entropy with a choice of how tokens are averaged.

`token` averages over every supervised token of the batch (Hugging Face's default, LLaVA's).
`sample` averages within each sample first, then over samples, so a one-word answer ("B", "Yes")
weighs as much as a paragraph: the decisions in short answers are not drowned by long ones.
A sample is a row, or in a packed batch a document: `documents` `[B, T]` says which sample
each token belongs to.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

REDUCTIONS = ("token", "sample")


def sample_index(tokens: torch.Tensor, documents: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, int]:
    """Each token's sample (`[B, T]`) and the number of samples: a token's row, or, in a
    packed batch, its document (`documents`, -1 on padding, which goes to sample 0)."""
    if documents is None:
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        return rows[:, None].expand(tokens.shape[0], tokens.shape[1]), tokens.shape[0]
    return documents.clamp(min=0), int(documents.max()) + 1


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "token",
                   documents: torch.Tensor | None = None) -> torch.Tensor:
    """Loss from full `[B, T, V]` logits; `labels` `[B, T]` with -100 where unsupervised."""
    return next_token_loss(logits, labels, reduction, documents=documents)


def next_token_loss(outputs: torch.Tensor, labels: torch.Tensor, reduction: str = "token",
                    to_logits: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    documents: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token cross-entropy over the positions whose following label is set.

    `outputs` `[B, T, ...]` are logits, or hidden states that `to_logits` (an LM head) turns
    into logits: the head then runs on the supervised positions only. `documents` (packed
    batches): each token's sample index, 0 to samples - 1 (anything for padding); the first
    token of every sample must carry no label, so that no target is read across a boundary."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {REDUCTIONS}, got {reduction!r}")
    targets = labels[:, 1:]
    supervised = targets != -100
    picked = outputs[:, :-1][supervised]
    logits = picked if to_logits is None else to_logits(picked)
    per_token = F.cross_entropy(logits.float(), targets[supervised], reduction="none")
    if reduction == "token":
        return per_token.sum() / supervised.sum().clamp(min=1)
    index, num_samples = sample_index(labels, documents)
    samples = index[:, 1:][supervised]
    sums = per_token.new_zeros(num_samples).index_add(0, samples, per_token)
    counts = per_token.new_zeros(num_samples).index_add(0, samples, torch.ones_like(per_token))
    return (sums / counts.clamp(min=1))[counts > 0].mean()
