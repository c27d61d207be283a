"""The training loader's place in the epoch, and its workers' random generators."""
from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import IterableDataset

from allava.data.datamodule import ResumableLoader
from allava.data.streaming import batches_already_taken, seed_worker, worker_role


class DrawsRandomNumbers(IterableDataset):
    """Each worker yields (worker, torch, python, numpy draws) four times."""

    def __init__(self):
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, batches: int) -> None:
        self.skip = batches

    def __iter__(self):
        role, workers = worker_role(self.skip)
        first = batches_already_taken(self.skip, role, workers)
        rows = [(role, torch.rand(()).item(), random.random(), float(np.random.rand()))
                for _ in range(4)]
        return iter(rows[first:])


def draws(loader) -> list[tuple]:
    return [tuple(float(x) for x in row) for batch in loader for row in zip(*batch)]


def test_worker_generators_repeat_per_epoch_differ_per_worker_and_skip_exactly():
    dataset = DrawsRandomNumbers()
    loader = ResumableLoader(dataset, consumed_batches=lambda: 3, seed=7, batch_size=1,
                             num_workers=2, worker_init_fn=seed_worker)
    torch.manual_seed(1)
    first = draws(loader)
    torch.manual_seed(2)  # the training's RNG does not reach the workers
    assert draws(loader) == first
    by_worker = {w: [row[1:] for row in first if row[0] == w] for w in (0, 1)}
    assert by_worker[0] != by_worker[1]
    assert len({value for row in first for value in row[1:]}) == 3 * len(first)  # no repeats
    dataset.set_epoch(1)
    assert draws(loader) != first  # a new epoch, new draws
    # Resume after 3 or 4 batches of epoch 0 (an odd count: the worker turns are shifted):
    # the rest is what the uninterrupted epoch gave.
    dataset.set_epoch(0)
    for done in (3, 4):
        loader.load_state_dict({"epoch": 0, "batches": done})
        assert draws(loader) == first[done:]
    assert loader.state_dict() == {"epoch": 0, "batches": 3}
    assert draws(loader) == first  # the skip applies to one iterator only
