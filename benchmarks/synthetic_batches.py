"""Training samples of ALLaVA-4V's modelled lengths with random token ids, and the same
samples batched the ways training batches them: random, length-aware, or packed rows.
Shared by benchmarks/packing.py and benchmarks/real_size_step.py."""
from __future__ import annotations

import random

import torch
from allava_lengths import IMAGE_TOKENS, sample_shapes

from allava.data.length_batching import length_bucketed
from allava.data.packing import collate_packed, pack_rows
from allava.data.samples import TrainingSample, collate

BATCHINGS = ("random", "length-aware", "packed")
PACK_BUFFER = 2048  # data.packing_buffer's default


def synthetic_samples(stage: str, count: int, image_token_id: int, image_tokens: int,
                      image_side: int, vocab_size: int, max_length: int, seed: int = 0
                      ) -> list[TrainingSample]:
    """Samples of the modelled lengths: a prompt holding the image, then a supervised answer.
    The images share one random tensor (collation copies it): thousands of 336 px images
    would take gigabytes."""
    rng = random.Random(seed)
    pixels = torch.randn(3, image_side, image_side, generator=torch.Generator().manual_seed(seed))
    samples = []
    for shape in sample_shapes(stage, count, seed):
        image = image_tokens if shape.image else 0
        # The modelled text, cut to fit max_length next to this model's image tokens.
        text = min(shape.tokens - (IMAGE_TOKENS if shape.image else 0), max_length - image)
        answer = max(1, min(shape.answer_tokens, text - 1))
        prompt = [rng.randrange(1, vocab_size - 1) for _ in range(text - answer)]
        prompt[1:1] = [image_token_id] * image
        ids = prompt + [rng.randrange(1, vocab_size - 1) for _ in range(answer)]
        labels = [-100] * len(prompt) + ids[len(prompt):]
        samples.append(TrainingSample(ids, labels, pixels if shape.image else None))
    return samples


def batched(samples: list[TrainingSample], batching: str, batch_size: int, row_length: int,
            rng: random.Random, pad_id: int = 0, limit: int | None = None) -> list[dict]:
    """The first `limit` (default all) collated batches of `samples`, `batch_size` samples
    each, or as many packed rows of `row_length` tokens as hold about that many."""
    length = lambda s: len(s.input_ids)  # noqa: E731
    if batching == "packed":
        rows = list(pack_rows(iter(samples), row_length, PACK_BUFFER, rng, length=length))
        per_batch = max(1, round(batch_size * len(rows) / len(samples)))
        groups = [rows[i:i + per_batch] for i in range(0, len(rows), per_batch)]
        return [collate_packed(group, pad_id, row_length) for group in groups[:limit]]
    if batching == "length-aware":
        groups = list(length_bucketed(iter(samples), batch_size, 32, rng, length=length))
    elif batching == "random":
        groups = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
    else:
        raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")
    return [collate(group, pad_id) for group in groups[:limit]]
