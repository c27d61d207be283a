"""Length-aware batching: samples of similar token length share a batch, so less is padding.

Within a buffer of `buffer_batches` batches' worth of samples, samples are sorted by length and
cut into batches, which are then shuffled (so no epoch runs from short to long). Only the last
batch of a stream can be short, so a stream of N samples always gives ceil(N / batch_size)
batches: the equal-batches-per-rank guarantee of MixtureStream holds.
"""
from __future__ import annotations

import math
import random
from itertools import islice
from typing import Iterator, Sequence, TypeVar

from allava.data.streaming import (MixtureStream, StreamOfBatches, batches_already_taken,
                                   worker_role)

T = TypeVar("T")


def length_bucketed(samples: Iterator[T], batch_size: int, buffer_batches: int,
                    rng: random.Random, length=len) -> Iterator[list[T]]:
    if batch_size < 1 or buffer_batches < 1:
        raise ValueError(f"batch_size and buffer_batches must be >= 1, got {batch_size}, "
                         f"{buffer_batches}")
    pool: list[T] = []

    def cut(items: list[T], keep_rest: bool) -> tuple[list[list[T]], list[T]]:
        items.sort(key=length)
        full = len(items) - len(items) % batch_size if keep_rest else len(items)
        batches = [items[i:i + batch_size] for i in range(0, full, batch_size)]
        rng.shuffle(batches)
        return batches, items[full:]

    for sample in samples:
        pool.append(sample)
        if len(pool) >= batch_size * buffer_batches:
            batches, pool = cut(pool, keep_rest=True)
            yield from batches
    if pool:
        batches, _ = cut(pool, keep_rest=False)
        yield from batches


def padding_fraction(batches: Sequence[Sequence[Sequence]]) -> float:
    """Pad tokens / all tokens when each batch is padded to its longest sample."""
    padded = sum(len(batch) * max(map(len, batch)) for batch in batches)
    real = sum(len(sample) for batch in batches for sample in batch)
    return 1 - real / padded if padded else 0.0


class LengthBucketedBatches(StreamOfBatches):
    """A MixtureStream's samples as length-bucketed batches (lists of samples): use it with
    `DataLoader(batch_size=None, collate_fn=...)`."""

    def __init__(self, stream: MixtureStream, batch_size: int, buffer_batches: int = 32):
        super().__init__(stream)
        self.batch_size = batch_size
        self.buffer_batches = buffer_batches

    def __len__(self) -> int:
        """Batches this rank yields per epoch: each worker cuts its own quota into batches."""
        workers = max(self.stream.loader_workers, 1)
        return workers * math.ceil(self.stream.samples_per_worker(workers) / self.batch_size)

    def __iter__(self) -> Iterator[list]:
        role, num_workers = worker_role(self.skip_batches)
        stream = self.stream
        rng = random.Random(f"{stream.seed}:{stream.epoch}:{stream.rank}:{role}:batches")
        samples = stream.worker_samples(role, num_workers)
        batches = length_bucketed(samples, self.batch_size, self.buffer_batches, rng,
                                  length=lambda sample: len(sample.input_ids))
        return islice(batches, batches_already_taken(self.skip_batches, role, num_workers), None)
