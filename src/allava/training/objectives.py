"""What a stage optimises (`stage.objective`).

- `next_token`: the VLM's next-token loss on supervised tokens (every ALLaVA stage).
- `caption_words`: trains the vision tower alone to say which tokens an image's caption
  contains (multi-label, from pooled features), the caption-word classification CatLIP uses to
  pretrain towers. The toy default runs it first: a tower from random weights learns shapes this
  way in hundreds of steps, while through the LLM's loss it did not learn them at all
  (measured on the toy world). Real presets start from a pretrained tower and skip it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from allava.models.loss import sample_index

OBJECTIVES = ("next_token", "caption_words")


def check_objective(name: str) -> str:
    if name not in OBJECTIVES:
        raise ValueError(f"stage.objective must be one of {OBJECTIVES}, got {name!r}")
    return name


class CaptionWordsHead(nn.Module):
    """Mean- and max-pooled patch features -> one logit per vocabulary token."""

    def __init__(self, feature_dim: int, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.proj = nn.Linear(2 * feature_dim, vocab_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(torch.cat([features.mean(1), features.amax(1)], dim=-1))


def caption_word_targets(labels: torch.Tensor, vocab_size: int,
                         documents: torch.Tensor | None = None) -> torch.Tensor:
    """`[B, T]` labels (-100 where unsupervised) -> `[S, V]` multi-hot of each sample's
    supervised tokens; a sample is a row, or a packed batch's document (`documents`)."""
    samples, num_samples = sample_index(labels, documents)
    targets = torch.zeros(num_samples, vocab_size, device=labels.device)
    supervised = labels != -100
    targets[samples[supervised], labels[supervised]] = 1.0
    return targets


def caption_words_loss(vision: nn.Module, head: CaptionWordsHead, batch: dict,
                       image_token_id: int, tokens_per_image: int) -> torch.Tensor | None:
    """Binary cross-entropy of `head(vision(image))` against the words of each image's answer.

    Samples without an image are skipped (None when the batch has none); a sample with more
    than one image is an error, since its words could not be told apart by image. Packed
    batches (`documents` in the batch) are read sample by sample, like unpacked ones."""
    pixel_values = batch.get("pixel_values")
    if pixel_values is None or pixel_values.shape[0] == 0:
        return None
    input_ids, documents = batch["input_ids"], batch.get("documents")
    samples, num_samples = sample_index(input_ids, documents)
    image_samples = samples[input_ids == image_token_id]
    per_sample = torch.zeros(num_samples, dtype=torch.long, device=input_ids.device
                             ).index_add(0, image_samples, torch.ones_like(image_samples))
    if bool((per_sample > tokens_per_image).any()):
        raise ValueError("the caption_words objective needs at most one image per sample; "
                         "give this stage single-image records (e.g. Caption records)")
    targets = caption_word_targets(batch["labels"], head.vocab_size, documents)
    logits = head(vision(pixel_values))
    return F.binary_cross_entropy_with_logits(logits, targets[per_sample > 0])
