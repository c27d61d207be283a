"""Streaming training mixtures from WebDataset shard directories.

Each source is a shard directory with a `manifest.json`. Training streams are resampled (shards
drawn at random with replacement, then a sample shuffle buffer), mixed in proportion to
`samples x repeat`, and each (rank, worker) yields exactly the same number of samples per epoch,
derived from the manifests, so that no rank runs out of batches first (the DDP hang). Within
an epoch the (rank, worker) slots read disjoint shards (`slot_samples`), so no two ranks train
on the same sample. Seeds differ per rank, worker and epoch and are all derived from the run
seed.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info

from allava.data import shard_access


@dataclass(frozen=True)
class ShardSource:
    """One shard directory of a mixture; `repeat` = times its samples are seen per epoch.

    `path` is where the shards are (`allava.data.shard_access` reads each kind):
    - a directory, local or a URL (`https://host/caption`, `s3://bucket/caption`), with its
      `manifest.json`;
    - a brace pattern, `.../shard-{000000..000511}.tar`: those shards of the manifest beside them;
    - `pipe:<command>` with `{shard}` where the shard's name goes, e.g.
      `pipe:aws s3 cp s3://bucket/caption/{shard} -`; then `manifest` must say where the
      manifest is (any location, `pipe:` included).
    `manifest` overrides where the manifest is read from.

    `select` keeps only records whose fields take one of the listed values, e.g.
    `{"category": ["pope-color"], "format": ["exact"]}` (a curriculum stage, an ablation on one
    subset). The mixing weight still counts the whole directory; scale it with `repeat`.
    """

    path: str
    repeat: float = 1.0
    name: str | None = None
    select: dict[str, list] | None = None
    manifest_path: str | None = None

    def selects(self, raw: dict) -> bool:
        """Whether a tar sample passes `select`. Samples whose JSON cannot be read pass, so
        that the sample processor counts them as bad records instead of losing them here."""
        if not self.select:
            return True
        try:
            record = json.loads(raw["json"])
        except (KeyError, ValueError, UnicodeDecodeError):
            return True
        if not isinstance(record, dict):
            return True
        return all(record.get(field) in values for field, values in self.select.items())

    @property
    def is_pattern(self) -> bool:
        return "{" in self.path and ".." in self.path

    @property
    def directory(self) -> str:
        """Where the shards and their manifest are (a pattern's folder)."""
        return shard_access.parent(self.path) if self.is_pattern else self.path

    @property
    def manifest_location(self) -> str:
        if self.manifest_path:
            return self.manifest_path
        if self.path.startswith("pipe:"):
            raise ValueError(f"the source {self.path!r} is a pipe: command; say where its "
                             "manifest is with `manifest: <path or URL>` in the mixture entry")
        return shard_access.join(self.directory, "manifest.json")

    @cached_property  # read once: sources are asked for urls and counts every epoch
    def manifest(self) -> dict[str, Any]:
        location = self.manifest_location
        try:
            return json.loads(shard_access.read_bytes(location))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no manifest.json at {location!r}: {self.path!r} is not a shard directory. "
                "Generate the toy data (`allava toy --out data/toy`) or convert a dataset to "
                "shards first") from None

    @cached_property
    def shards(self) -> list[dict[str, Any]]:
        """The manifest's entries of this source's shards (a pattern's only), with samples."""
        listed = self.manifest["shards"]
        if self.is_pattern:
            from braceexpand import braceexpand

            wanted = [location.rstrip("/").rsplit("/", 1)[-1] for location in braceexpand(self.path)]
            by_name = {s["name"]: s for s in listed}
            missing = [name for name in wanted if name not in by_name]
            if missing:
                raise ValueError(f"{self.path!r} names shards that {self.manifest_location} does "
                                 f"not list: {missing[:5]}")
            listed = [by_name[name] for name in wanted]
        return [s for s in listed if s.get("samples", 0) > 0]

    def shard_url(self, name: str) -> str:
        if self.path.startswith("pipe:"):
            return self.path.replace("{shard}", name)
        return shard_access.join(self.directory, name)

    def urls(self) -> list[str]:
        shards = [self.shard_url(s["name"]) for s in self.shards]
        if not shards:
            raise ValueError(f"the shard source {self.path!r} holds no samples")
        return shards

    def num_samples(self) -> int:
        return sum(int(s.get("samples", 0)) for s in self.shards)

    @cached_property
    def num_selected(self) -> int:
        """Samples that pass `select` (one read of the directory, only when there is one)."""
        if not self.select:
            return self.num_samples()
        return sum(self.selects(raw) for raw in iter_tar_samples(self.urls(), None, resampled=False))


def iter_tar_samples(urls: list[str], rng: random.Random, resampled: bool) -> Iterator[dict]:
    """Tar samples from `urls`: forever with random shards, or once in order. An unreadable
    shard gives one marker sample (see `allava.data.shard_access`) instead of an error."""
    while True:
        order = [rng.choice(urls)] if resampled else urls
        for url in order:
            yield from shard_access.shard_samples(url)
        if not resampled:
            return


def slot_samples(urls: list[str], rng: random.Random, slot: int, slots: int,
                 split_seed: str) -> Iterator[dict]:
    """The endless sample stream of one (rank, worker) slot of `slots`, disjoint from every
    other slot's within an epoch. With at least as many shards as slots, the shards are
    shuffled by `split_seed` (the same everywhere, new each epoch), dealt out round-robin, and
    each slot draws its own shards at random with replacement. With fewer shards, every slot
    reads all of them in order and keeps every `slots`-th sample. With one slot this is the
    plain resampled stream."""
    if slots == 1:
        yield from iter_tar_samples(urls, rng, resampled=True)
        return
    if len(urls) >= slots:
        order = list(urls)
        random.Random(split_seed).shuffle(order)
        yield from iter_tar_samples(order[slot::slots], rng, resampled=True)
        return
    while True:
        index = 0  # per pass, so that a slot keeps the same samples in every pass
        for index, sample in enumerate(iter_tar_samples(urls, None, resampled=False), 1):
            if (index - 1) % slots == slot:
                yield sample
        if index < slots:  # a pass that cannot reach every slot
            raise ValueError(f"{len(urls)} shard(s) with {index} sample(s) cannot feed "
                             f"{slots} ranks x workers; write more, smaller shards")


def selected(samples: Iterator[dict], source: ShardSource) -> Iterator[dict]:
    """The samples of `source` that its `select` keeps; a clear error instead of an endless
    search when none has matched in ten directories' worth of draws (at least 10,000)."""
    if not source.select:
        yield from samples
        return
    misses, limit = 0, max(10 * source.num_samples(), 10_000)
    for sample in samples:
        if source.selects(sample):
            misses = 0
            yield sample
            continue
        misses += 1
        if misses >= limit:
            raise ValueError(f"no record of {source.path!r} matches select={source.select} "
                             f"({misses} samples read); check the field names and values")


def _shuffled(samples: Iterator[dict], rng: random.Random, buffer: int) -> Iterator[dict]:
    pool: list[dict] = []
    for sample in samples:
        if len(pool) < buffer:
            pool.append(sample)
            continue
        index = rng.randrange(len(pool))
        yield pool[index]
        pool[index] = sample
    rng.shuffle(pool)
    yield from pool


def worker_slot() -> tuple[int, int]:
    info = get_worker_info()
    return (info.id, info.num_workers) if info else (0, 1)


class MixtureStream(IterableDataset):
    """Resampled, weighted, equal-length-per-worker training stream of processed samples."""

    def __init__(self, sources: list[ShardSource], processor: Callable, seed: int = 0,
                 shuffle_buffer: int = 1000, samples_per_epoch: int | None = None):
        if not sources:
            raise ValueError("a training mixture needs at least one source")
        self.sources = sources
        self.processor = processor
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.urls = [s.urls() for s in sources]
        self.weights = [s.num_samples() * s.repeat for s in sources]
        self.samples_per_epoch = samples_per_epoch or int(sum(self.weights))
        self.rank, self.world_size, self.epoch = 0, 1, 0
        # The DataLoader's num_workers and batch size, for __len__ and resume_at.
        self.loader_workers, self.loader_batch_size = 0, 1
        self.skip_batches = 0  # set by resume_at for the next iterator only

    def __len__(self) -> int:
        """This rank's samples per epoch, each worker's quota rounded up to whole batches (every
        worker ends with its own short batch), so that len(DataLoader) is exact in batches and
        `max_epochs` works: Lightning sizes the epoch and the LR schedule from it."""
        workers = max(self.loader_workers, 1)
        batch = self.loader_batch_size
        return workers * math.ceil(self.samples_per_worker(workers) / batch) * batch

    def set_distributed(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def samples_per_worker(self, num_workers: int) -> int:
        return math.ceil(self.samples_per_epoch / (self.world_size * max(num_workers, 1)))

    def resume_at(self, batches: int) -> None:
        """The next iterator starts after the first `batches` batches of this epoch (this
        rank's, as the DataLoader hands them out), replaying the stream deterministically."""
        self.skip_batches = int(batches)

    def __iter__(self) -> Iterator:
        # Not a generator itself: the skip is read when the iterator is made, so that the
        # DataLoader can clear it for the next epoch right after.
        role, num_workers = worker_role(self.skip_batches)
        skip = batches_already_taken(self.skip_batches, role, num_workers) * self.loader_batch_size
        return self.worker_samples(role, num_workers, skip)

    def worker_samples(self, worker: int, num_workers: int, skip: int = 0,
                       endless: bool = False) -> Iterator:
        """The processed samples of one worker's epoch quota (or, `endless`, all that come),
        after the first `skip`."""
        raw = self.raw_samples(worker, num_workers)
        # Skipped samples are still read and processed: which ones a processor rejects is
        # only known by processing them, and the replay must end where the first run was.
        stop = None if endless else self.samples_per_worker(num_workers)
        yield from islice(self.processor(raw), skip, stop)

    def raw_samples(self, worker: int, num_workers: int) -> Iterator[dict]:
        """The endless, mixed and shuffled tar samples of one worker."""
        rng = random.Random(f"{self.seed}:{self.epoch}:{self.rank}:{worker}")
        slots = self.world_size * num_workers
        slot = self.rank * num_workers + worker
        split_seed = f"{self.seed}:{self.epoch}:split"  # the same on every rank and worker
        streams = [selected(slot_samples(urls, random.Random(rng.random()), slot, slots,
                                         split_seed), source)
                   for urls, source in zip(self.urls, self.sources)]

        def mixed() -> Iterator[dict]:
            while True:
                (stream,) = rng.choices(streams, weights=self.weights)
                yield next(stream)

        return _shuffled(mixed(), rng, self.shuffle_buffer)


class OrderedStream(IterableDataset):
    """Every sample of the sources once, in order, split evenly over ranks and workers
    (validation: the same fixed subset every time)."""

    def __init__(self, sources: list[ShardSource], processor: Callable,
                 max_samples: int | None = None):
        self.sources = sources
        self.processor = processor
        self.max_samples = max_samples
        self.rank, self.world_size = 0, 1

    def set_distributed(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size

    def __iter__(self):
        worker, num_workers = worker_slot()
        slots, slot = self.world_size * num_workers, self.rank * num_workers + worker
        total = sum(s.num_selected for s in self.sources)
        if self.max_samples:
            total = min(total, self.max_samples)
        per_slot = total // slots  # equal counts everywhere; the remainder is left out

        def mine() -> Iterator[dict]:
            rng = random.Random(0)
            index = 0
            for source in self.sources:
                for sample in iter_tar_samples(source.urls(), rng, resampled=False):
                    if not source.selects(sample):
                        continue
                    if index >= per_slot * slots:
                        return
                    if index % slots == slot:
                        yield sample
                    index += 1

        yield from self.processor(mine())


class StreamOfBatches(IterableDataset):
    """A MixtureStream's samples cut into whole batches (length buckets, packed rows): the
    epoch, rank and resume point are the stream's; subclasses say how batches are cut."""

    def __init__(self, stream: MixtureStream):
        self.stream = stream
        self.skip_batches = 0

    def set_epoch(self, epoch: int) -> None:
        self.stream.set_epoch(epoch)

    def set_distributed(self, rank: int, world_size: int) -> None:
        self.stream.set_distributed(rank, world_size)

    @property
    def epoch(self) -> int:
        return self.stream.epoch

    def resume_at(self, batches: int) -> None:
        """The next iterator starts after the first `batches` batches (see MixtureStream)."""
        self.skip_batches = int(batches)


def batches_already_taken(batches: int, role: int, num_workers: int) -> int:
    """Of the first `batches` batches of an epoch, how many came from the worker in `role`:
    the DataLoader takes one batch from each worker in turn (all yield as many batches)."""
    workers = max(num_workers, 1)
    return max(0, math.ceil((batches - role) / workers))


def worker_role(resumed_at: int = 0) -> tuple[int, int]:
    """(role, number of workers) of this DataLoader worker: which worker of the uninterrupted
    epoch it stands in for. A resumed loader starts its turns at worker 0 again, while the next
    batch of the epoch was worker `resumed_at % workers`'s; so worker k plays that role, k
    places on, reading its stream and drawing from its random generators."""
    worker, workers = worker_slot()
    role = (worker + resumed_at) % workers
    if role != worker:
        seed_worker_role(role, worker)
    return role, workers


def seed_worker(worker: int) -> None:
    """Every RNG of a data worker (torch, Python, NumPy) from the seed the DataLoader gave it
    (its base seed + worker id): distinct per worker, the same when an epoch is replayed."""
    seed_worker_role(worker, worker)


def seed_worker_role(role: int, worker: int) -> None:
    import numpy as np

    seed = (torch.initial_seed() - worker + role) % 2**32
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
