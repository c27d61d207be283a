"""The DataModule of one training stage: its mixture for training, a fixed validation set."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from allava.data.length_batching import LengthBucketedBatches
from allava.data.packing import PackedBatches, collate_packed, measured_samples_per_row
from allava.data.samples import SampleProcessor, collate, decode_sample
from allava.data.streaming import (MixtureStream, OrderedStream, ShardSource, StreamOfBatches,
                                   iter_tar_samples, seed_worker)
from allava.models.build import VLMBundle
from allava.models.packed_attention import packing_problem


def as_sources(entries: list[dict[str, Any]]) -> list[ShardSource]:
    return [ShardSource(path=str(e["path"]), repeat=float(e.get("repeat", 1.0)),
                        name=e.get("name"), select=_as_select(e.get("select")),
                        manifest_path=str(e["manifest"]) if e.get("manifest") else None)
            for e in entries]


def _as_select(select: dict | None) -> dict[str, list] | None:
    """`{field: value or [values]}` from a mixture entry, as lists."""
    if not select:
        return None
    if not isinstance(select, dict):
        raise ValueError(f"a mixture entry's select must map field names to values, got {select!r}")
    return {str(k): list(v) if isinstance(v, (list, tuple)) else [v] for k, v in select.items()}


class ResumableLoader(DataLoader):
    """The training DataLoader, with its place in the epoch saved in Lightning's checkpoints.

    `consumed_batches` says how many batches of the current epoch training has taken (Lightning
    prefetches, so the loader's own count would run ahead). After `load_state_dict`, the next
    iterator skips those batches: the stream is replayed from the epoch's seed, so the batches
    that follow are the ones the uninterrupted run saw."""

    def __init__(self, dataset, consumed_batches: Callable[[], int], seed: int = 0, **kwargs):
        super().__init__(dataset, **kwargs)
        self.consumed_batches = consumed_batches
        self.seed = seed

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.dataset.epoch), "batches": int(self.consumed_batches())}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.dataset.set_epoch(int(state["epoch"]))
        self.dataset.resume_at(int(state["batches"]))

    def __iter__(self):
        # The workers' seeds come from (run seed, epoch), not from the global torch RNG: the
        # same in a replayed epoch, and making the iterator draws nothing from the training's.
        self.generator = torch.Generator().manual_seed(self.seed * 100_003 + int(self.dataset.epoch))
        iterator = super().__iter__()  # workers hold their copy of the dataset from here on
        self.dataset.resume_at(0)  # so the next epoch starts at its beginning
        return iterator


class StageDataModule(L.LightningDataModule):
    def __init__(self, bundle: VLMBundle, mixture: list[dict], val: list[dict] | None = None,
                 batch_size: int = 32, num_workers: int = 0, seed: int = 0,
                 shuffle_buffer: int = 1000, val_max_samples: int | None = 512,
                 samples_per_epoch: int | None = None, length_bucket_batches: int = 0,
                 packing: bool = False, packing_buffer: int = 2048,
                 packing_length: int | None = None):
        """`length_bucket_batches` > 0: training batches group samples of similar length,
        sorted within buffers of that many batches (allava.data.length_batching).
        `packing`: training batches are rows of `packing_length` tokens (default: twice the
        processor's max_length, which caps a sample), each holding several whole samples,
        packed `packing_buffer` samples at a time (allava.data.packing); as many rows as hold
        about `batch_size` samples. It replaces length buckets. Validation is not packed."""
        super().__init__()
        self.bundle = bundle
        self.mixture = as_sources(mixture)
        self.val = as_sources(val or [])
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.val_max_samples = val_max_samples
        self.samples_per_epoch = samples_per_epoch
        self.length_bucket_batches = length_bucket_batches
        self.packing = packing
        self.packing_buffer = packing_buffer
        self.packing_length = packing_length or 2 * bundle.processor.max_length
        if packing and self.packing_length < bundle.processor.max_length:
            raise ValueError(f"data.packing_length={packing_length} is shorter than a sample may "
                             f"be (model.max_length={bundle.processor.max_length}); make it at "
                             "least that, or null")
        self.samples_per_row: float | None = None  # measured at setup when packing
        self.rows_per_batch: int | None = None
        if packing:
            problem = packing_problem(bundle.model.llm)
            if problem:
                raise ValueError(f"data.packing=true: {problem}")
        self._train: MixtureStream | LengthBucketedBatches | PackedBatches | None = None
        self._val: OrderedStream | None = None

    def setup(self, stage: str | None = None) -> None:
        samples = SampleProcessor(self.bundle.processor)
        # Packed rows are cut from a buffer of thousands of samples: their pixels wait.
        train_samples = SampleProcessor(self.bundle.processor, defer_images=self.packing)
        rank = self.trainer.global_rank if self.trainer else 0
        world = self.trainer.world_size if self.trainer else 1
        self._train = MixtureStream(self.mixture, train_samples, seed=self.seed,
                                    shuffle_buffer=self.shuffle_buffer,
                                    samples_per_epoch=self.samples_per_epoch)
        self._train.loader_workers, self._train.loader_batch_size = self.num_workers, self.batch_size
        if self.packing:
            length = self.packing_length
            self.samples_per_row = measured_samples_per_row(
                self._train, samples.token_length, length, self.packing_buffer)
            self.rows_per_batch = max(1, round(self.batch_size / self.samples_per_row))
            self._train = PackedBatches(self._train, self.rows_per_batch, length,
                                        self.samples_per_row, self.packing_buffer)
            rank_zero_info(f"packing: a row of {length} tokens holds {self.samples_per_row:.2f} "
                           f"samples on average, so a batch of {self.rows_per_batch} rows about "
                           f"{self.rows_per_batch * self.samples_per_row:.1f} (batch_size "
                           f"{self.batch_size})")
        elif self.length_bucket_batches > 0:
            self._train = LengthBucketedBatches(self._train, self.batch_size,
                                                self.length_bucket_batches)
        self._train.set_distributed(rank, world)
        if self.val:
            self._val = OrderedStream(self.val, samples, max_samples=self.val_max_samples)
            self._val.set_distributed(rank, world)

    def set_epoch(self, epoch: int) -> None:
        if self._train is not None:
            self._train.set_epoch(epoch)

    def _loader(self, dataset, loader_class=DataLoader, **extra) -> DataLoader:
        batched = isinstance(dataset, StreamOfBatches)  # whole batches (of samples or rows)
        pad_id = self.bundle.tokenizer.pad_token_id
        collate_fn = (partial(collate_packed, pad_id=pad_id, row_length=dataset.row_length)
                      if isinstance(dataset, PackedBatches) else partial(collate, pad_id=pad_id))
        return loader_class(dataset, batch_size=None if batched else self.batch_size,
                            num_workers=self.num_workers, collate_fn=collate_fn,
                            persistent_workers=False, worker_init_fn=seed_worker,
                            pin_memory=False, **extra)

    def _batches_trained_this_epoch(self) -> int:
        trainer = self.trainer
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, ResumableLoader, seed=self.seed,
                            consumed_batches=self._batches_trained_this_epoch)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self._val) if self._val is not None else []

    def preview_examples(self, count: int = 8) -> list[dict]:
        """The first `count` single-turn image records of the validation sources, for the
        table of sample predictions logged at each validation."""
        examples = []
        for source in self.val:
            for raw in iter_tar_samples(source.urls(), None, resampled=False):
                try:
                    record, image = decode_sample(raw)
                except ValueError:
                    continue
                turns = record.get("conversations", [])
                if image is None or len(turns) != 2:
                    continue
                question = turns[0]["value"].replace("<image>", "").strip()
                examples.append({"image": image, "question": question,
                                 "reference": turns[1]["value"], "id": record.get("id")})
                if len(examples) >= count:
                    return examples
        return examples
