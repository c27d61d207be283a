"""Sequence packing: whole samples laid end to end in rows of a fixed number of tokens.

ALLaVA's samples run from a few dozen tokens (a short text-only answer) to `max_length` (a
576-token image and a long answer), so padding every batch to its longest sample wastes a
large share of the compute. Packing fills rows instead:
- a buffer of samples is packed first-fit decreasing (the longest first, each into the first
  row with room); a sample is never split (one longer than `max_length` was already cut by the
  processor, and counted);
- the rows that are still loose after a round give their samples back to the buffer (a sample
  at most `MAX_HOLDS` times), to meet the next round's samples; the rows go out in random
  order;
- images are decoded when their batch is cut, not when their sample enters the buffer
  (`SampleProcessor(defer_images=True)`): thousands of buffered samples hold encoded images,
  not 1.35 MB of float pixels each;
- each row's position ids restart at 0 with every sample, and the row is given to the LLM
  without an attention mask: attention stays inside each sample
  (`allava.models.packed_attention`), and the first token of a sample carries no label, so no
  target is read across a boundary.

The row length is `max_length` or more: a sample with an image takes 600 to 2,048 tokens, at
most two of them fit a row of 2,048, and the gap they leave is one only short text-only
samples fill; rows of twice `max_length` leave far less unused (benchmarks/README.md,
"Packing"). A batch is `rows` rows, however many samples they hold. Every
(rank, worker) yields the same number of batches per epoch, from an estimate of how many
samples a row holds (`samples_per_row`), measured on the token lengths of the mixture's first
samples: an epoch then holds about `samples_per_epoch` samples.
"""
from __future__ import annotations

import math
import random
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import torch

from allava.data.samples import TrainingSample, data_counts
from allava.data.streaming import (MixtureStream, StreamOfBatches, batches_already_taken,
                                   worker_role)

T = TypeVar("T")
# A row whose free room is above this share of the row length gives its samples back to the
# buffer, each at most MAX_HOLDS times (so that none waits long for a partner).
LOOSE_ROOM = 0.01
MAX_HOLDS = 4


def first_fit_decreasing(items: Iterable[T], capacity: int, length: Callable[[T], int]
                         ) -> list[list[T]]:
    """Bins of total length <= `capacity`: each item, longest first, into the first bin with
    room for it."""
    bins: list[list[T]] = []
    room: list[int] = []
    for item in sorted(items, key=length, reverse=True):
        size = length(item)
        if size > capacity:
            raise ValueError(f"a sample of {size} tokens does not fit a row of {capacity}")
        for index, free in enumerate(room):
            if size <= free:
                bins[index].append(item)
                room[index] -= size
                break
        else:
            bins.append([item])
            room.append(capacity - size)
    return bins


def pack_rows(samples: Iterable[T], row_length: int, buffer_size: int, rng: random.Random,
              length: Callable[[T], int] = len) -> Iterator[list[T]]:
    """Rows (lists of samples, in packing order) of `samples`; every sample lands in exactly
    one row. `buffer_size` samples are packed at a time."""
    if buffer_size < 1:
        raise ValueError(f"the packing buffer must hold at least one sample, got {buffer_size}")
    pool: list[T] = []
    held: dict[int, int] = {}  # id of a sample given back -> how many times it was
    for sample in samples:
        pool.append(sample)
        if len(pool) >= buffer_size:
            rows, pool, held = _pack_round(pool, held, row_length, buffer_size, length)
            rng.shuffle(rows)
            yield from rows
    rows = first_fit_decreasing(pool, row_length, length)
    rng.shuffle(rows)
    yield from rows


def _pack_round(pool: list[T], held: dict[int, int], row_length: int, buffer_size: int,
                length: Callable[[T], int]) -> tuple[list[list[T]], list[T], dict[int, int]]:
    """(rows to emit, samples kept for the next round, how often each of those was kept)."""
    rows = first_fit_decreasing(pool, row_length, length)
    rows.sort(key=lambda row: sum(map(length, row)))  # loosest first
    keep: list[T] = []
    emit: list[list[T]] = []
    for row in rows:
        loose = row_length - sum(map(length, row)) > LOOSE_ROOM * row_length
        may_wait = all(held.get(id(sample), 0) < MAX_HOLDS for sample in row)
        if loose and may_wait and len(keep) + len(row) <= buffer_size // 2:
            keep.extend(row)
        else:
            emit.append(row)
    return emit, keep, {id(sample): held.get(id(sample), 0) + 1 for sample in keep}


def padding_fraction_of_rows(rows: Sequence[Sequence[Sequence]], row_length: int) -> float:
    """Pad tokens / all tokens when every row is `row_length` long."""
    if not rows:
        return 0.0
    return 1 - sum(len(sample) for row in rows for sample in row) / (len(rows) * row_length)


def samples_per_row(lengths: Sequence[int], row_length: int, buffer_size: int) -> float:
    """How many samples of these lengths a packed row holds on average."""
    items = [(index, length) for index, length in enumerate(lengths)]  # distinct objects
    rows = sum(1 for _ in pack_rows(items, row_length, buffer_size, random.Random(0),
                                    length=lambda item: item[1]))
    return len(lengths) / max(rows, 1)


def measured_samples_per_row(stream: MixtureStream, token_length: Callable[[dict], int | None],
                             row_length: int, buffer_size: int, count: int = 1000) -> float:
    """`samples_per_row` for the token lengths of the first `count` samples of the stream as
    one worker of one rank reads them: the same number on every rank."""
    raw = islice(stream.raw_samples(0, 1), count)
    lengths = [n for n in map(token_length, raw) if n is not None]
    if not lengths:
        raise ValueError(f"none of the first {count} samples of the mixture could be read")
    return samples_per_row(lengths, row_length, buffer_size)


def collate_packed(batch: list[list[TrainingSample]], pad_id: int, row_length: int
                   ) -> dict[str, Any]:
    """Rows of samples -> `[rows, row_length]` tensors. `position_ids` restart at every sample
    (and at the row's padding, which thereby forms a sample of its own), `documents` numbers
    the batch's samples (-1 on padding), images are stacked in row-major order (the splice
    fills placeholders in that order) and no attention mask is given."""
    shape = (len(batch), row_length)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, -100, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    documents = torch.full(shape, -1, dtype=torch.long)
    samples = [sample for row in batch for sample in row]
    document = 0
    for index, row in enumerate(batch):
        start = 0
        for sample in row:
            end = start + len(sample.input_ids)
            if end > row_length:
                raise ValueError(f"a packed row of {end} tokens > the row length {row_length}")
            input_ids[index, start:end] = torch.tensor(sample.input_ids)
            labels[index, start:end] = torch.tensor(sample.labels)
            labels[index, start] = -100  # would be predicted from the previous sample
            position_ids[index, start:end] = torch.arange(end - start)
            documents[index, start:end] = document
            document, start = document + 1, end
        position_ids[index, start:] = torch.arange(row_length - start)
    pixels = [s.pixel_values for s in samples if s.pixel_values is not None]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": None,
        "position_ids": position_ids,
        "documents": documents,
        "num_samples": len(samples),
        "pixel_values": torch.stack(pixels) if pixels else None,
        **data_counts(samples),
    }


class PackedBatches(StreamOfBatches):
    """A MixtureStream's samples packed into batches of `rows` rows (lists of rows of samples):
    use it with `DataLoader(batch_size=None, collate_fn=collate_packed...)`."""

    def __init__(self, stream: MixtureStream, rows: int, row_length: int,
                 samples_per_row: float, buffer_size: int = 2048):
        if rows < 1 or samples_per_row <= 0:
            raise ValueError(f"rows must be >= 1 and samples_per_row > 0, got {rows}, "
                             f"{samples_per_row}")
        super().__init__(stream)
        self.rows = rows
        self.row_length = row_length
        self.samples_per_row = samples_per_row
        self.buffer_size = buffer_size

    def batches_per_worker(self, workers: int) -> int:
        samples_per_batch = self.rows * self.samples_per_row
        return max(1, math.ceil(self.stream.samples_per_worker(workers) / samples_per_batch))

    def __len__(self) -> int:
        workers = max(self.stream.loader_workers, 1)
        return workers * self.batches_per_worker(workers)

    def _with_pixels(self, batch: list[list[TrainingSample]]) -> list[list[TrainingSample]]:
        """Pixels for the images the processor deferred (when it did): only the batch's, so
        that the packing buffer holds encoded images."""
        attach = getattr(self.stream.processor, "attach_pixels", None)
        return [attach(row) for row in batch] if attach else batch

    def __iter__(self) -> Iterator[list[list[TrainingSample]]]:
        role, num_workers = worker_role(self.skip_batches)
        stream = self.stream
        rng = random.Random(f"{stream.seed}:{stream.epoch}:{stream.rank}:{role}:rows")
        samples = stream.worker_samples(role, num_workers, endless=True)
        rows = pack_rows(samples, self.row_length, self.buffer_size, rng,
                         length=lambda sample: len(sample.input_ids))
        batches = map(self._with_pixels, iter(lambda: list(islice(rows, self.rows)), []))
        done = batches_already_taken(self.skip_batches, role, num_workers)
        return islice(batches, done, self.batches_per_worker(num_workers))
