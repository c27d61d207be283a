"""Length-aware batching keeps every sample, the batch count, and cuts padding."""
from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from allava.data.length_batching import length_bucketed, padding_fraction


def _samples(count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)  # lengths spread like captions: many short, a long tail
    return [[i] * max(1, int(rng.lognormvariate(4.5, 0.6))) for i in range(count)]


@pytest.mark.parametrize("count", [1, 15, 16, 17, 1000])
def test_every_sample_once_and_ceil_batches(count):
    samples = _samples(count)
    batches = list(length_bucketed(iter(samples), 16, 8, random.Random(1)))
    assert len(batches) == -(-count // 16)
    assert all(len(b) == 16 for b in batches[:-1]) or count <= 16 or count % 16
    seen = Counter(tuple(s) for b in batches for s in b)
    assert seen == Counter(tuple(s) for s in samples)
    full = [b for b in batches if len(b) == 16]
    assert len(full) == count // 16  # only one batch is ever short


def test_padding_falls_below_ten_percent_against_random_batches():
    samples = _samples(5000)
    random_batches = [samples[i:i + 16] for i in range(0, len(samples), 16)]
    bucketed = list(length_bucketed(iter(samples), 16, 32, random.Random(0)))
    assert padding_fraction(random_batches) > 0.3
    assert padding_fraction(bucketed) < 0.10


def test_batches_are_shuffled_not_sorted():
    batches = list(length_bucketed(iter(_samples(2000)), 16, 32, random.Random(0)))
    longest = [max(map(len, b)) for b in batches]
    assert longest != sorted(longest)


def test_train_stage_runs_with_length_buckets(tiny_train_config):
    from allava.training.run import train

    cfg = tiny_train_config("stages=[finetune]", "data.length_bucket_batches=2",
                            "eval.benchmarks=[]")
    outcome = train(cfg)
    metrics = list((Path(outcome["run_dir"]) / "finetune").rglob("metrics.csv"))
    assert len(metrics) == 1
    rows = [r for r in csv.DictReader(metrics[0].open()) if r.get("train/loss")]
    assert len(rows) == 3 and all(float(r["train/loss"]) > 0 for r in rows)
    assert (Path(outcome["exports"]["finetune"]) / "model.safetensors").is_file()
