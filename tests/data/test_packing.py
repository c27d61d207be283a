"""Packing keeps every sample whole and once, fills rows, and keeps epochs equal and resumable."""
from __future__ import annotations

import csv
import json
import random
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

from allava.data.packing import (collate_packed, first_fit_decreasing, pack_rows,
                                 padding_fraction_of_rows, samples_per_row)
from allava.data.samples import TrainingSample


def allava_like(count: int, seed: int = 0) -> list[list[int]]:
    """Token lists of ALLaVA-like lengths, cut at 2048: 576 image tokens, a question and a
    long-tailed answer for 82 %, text-only conversations for the rest."""
    rng = random.Random(seed)
    lengths = []
    for _ in range(count):
        if rng.random() < 0.82:
            length = 576 + 40 + int(rng.lognormvariate(5.5, 0.5))
        else:
            length = 30 + int(rng.lognormvariate(6.0, 0.8))
        lengths.append(min(2048, length))
    return [[i] * n for i, n in enumerate(lengths)]


def test_first_fit_decreasing_fills_bins_without_splitting():
    items = allava_like(300)
    bins = first_fit_decreasing(items, 2048, len)
    assert Counter(id(i) for b in bins for i in b) == Counter(id(i) for i in items)
    assert all(sum(map(len, b)) <= 2048 for b in bins)
    with pytest.raises(ValueError, match="does not fit"):
        first_fit_decreasing([[0] * 9], 8, len)


def test_pack_rows_keeps_every_sample_once_and_pads_under_one_percent():
    samples = allava_like(8000)
    rows = list(pack_rows(iter(samples), 4096, 1024, random.Random(0)))
    assert Counter(id(s) for r in rows for s in r) == Counter(id(s) for s in samples)
    assert all(sum(map(len, r)) <= 4096 for r in rows)
    assert padding_fraction_of_rows(rows, 4096) < 0.01
    # Rows of 2048 hold at most two image samples, and few samples fit the gap they leave.
    assert padding_fraction_of_rows(list(pack_rows(iter(samples), 2048, 1024, random.Random(0))),
                                    2048) > 0.05
    fills = [sum(map(len, r)) for r in rows]
    assert fills != sorted(fills, reverse=True)  # rows go out shuffled


def test_no_sample_waits_more_than_a_few_rounds_for_its_row():
    from allava.data.packing import MAX_HOLDS

    samples = allava_like(6000, seed=3)
    arrival = {id(s): i for i, s in enumerate(samples)}
    emitted = 0
    for row in pack_rows(iter(samples), 4096, 256, random.Random(0)):
        emitted += len(row)
        # A round packs the 256-sample buffer; a sample given back waits one round each time.
        assert all(emitted - arrival[id(s)] <= (MAX_HOLDS + 2) * 256 for s in row)


def test_samples_per_row_is_what_packing_gives():
    samples = allava_like(2000, seed=1)
    rows = list(pack_rows(iter(samples), 4096, 512, random.Random(0)))
    estimate = samples_per_row([len(s) for s in samples], 4096, 512)
    assert estimate == pytest.approx(len(samples) / len(rows), rel=0.02)


def test_collate_packed_restarts_positions_and_never_labels_across_samples():
    def sample(ids, labels, image=False):
        return TrainingSample(ids, labels, torch.full((3, 2, 2), float(ids[0])) if image else None)

    a = sample([5, 6, 7], [5, 6, 7], image=True)  # supervised from its first token
    b = sample([8, 9], [-100, 9])
    c = sample([10, 11, 12, 13], [-100, -100, 12, 13], image=True)
    batch = collate_packed([[a, b], [c]], pad_id=0, row_length=8)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0], [10, 11, 12, 13, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2], [0, 1, 2, 3, 0, 1, 2, 3]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, -100, -100],
                                        [-100, -100, 12, 13, -100, -100, -100, -100]]
    assert batch["documents"].tolist() == [[0, 0, 0, 1, 1, -1, -1, -1], [2, 2, 2, 2, -1, -1, -1, -1]]
    assert batch["attention_mask"] is None and batch["num_samples"] == 3
    assert batch["pixel_values"][:, 0, 0, 0].tolist() == [5.0, 10.0]  # row-major image order
    with pytest.raises(ValueError, match="row length"):
        collate_packed([[a, b, c]], pad_id=0, row_length=8)


def _packed_datamodule(cfg, workers: int, batch_size: int = 8):
    from allava.data.datamodule import StageDataModule
    from allava.models.build import build_vlm

    bundle = build_vlm(cfg.model)
    datamodule = StageDataModule(bundle, mixture=[{"path": f"{cfg.data.root}/caption"},
                                                  {"path": f"{cfg.data.root}/text"}],
                                 batch_size=batch_size, shuffle_buffer=8, num_workers=workers,
                                 packing=True, packing_buffer=16, packing_length=256)
    datamodule.setup()
    return datamodule


@pytest.mark.parametrize("workers", [0, 2])
def test_packed_loader_length_is_exact_and_rows_are_full_width(workers, tiny_train_config):
    cfg = tiny_train_config("model.max_length=96")
    datamodule = _packed_datamodule(cfg, workers)
    loader = datamodule.train_dataloader()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when a loader yields more than its len
        batches = list(loader)
    assert len(batches) == len(loader) > 0
    rows = datamodule.rows_per_batch
    assert all(b["input_ids"].shape == (rows, 256) for b in batches)
    samples = sum(b["num_samples"] for b in batches)
    assert datamodule.samples_per_row > 2  # the tiny world's samples are far below 256
    assert rows == round(8 / datamodule.samples_per_row)  # about batch_size samples a batch
    # An epoch holds about samples_per_epoch samples (here captions and text, once each).
    assert samples == pytest.approx(96 + 32, rel=0.2)


def test_packed_loader_resumes_with_the_batches_of_the_uninterrupted_epoch(tiny_train_config):
    cfg = tiny_train_config("model.max_length=96")
    datamodule = _packed_datamodule(cfg, workers=2)
    everything = [b["input_ids"] for b in datamodule.train_dataloader()]
    datamodule._train.resume_at(3)
    resumed = [b["input_ids"] for b in datamodule.train_dataloader()]
    assert len(resumed) == len(everything) - 3
    assert all(torch.equal(a, b) for a, b in zip(resumed, everything[3:]))


def test_every_rank_gets_the_same_number_of_packed_batches(tiny_train_config):
    cfg = tiny_train_config("model.max_length=96")
    datamodule = _packed_datamodule(cfg, workers=0)
    counts = []
    for rank in range(2):
        datamodule._train.set_distributed(rank, 2)
        counts.append(sum(1 for _ in datamodule.train_dataloader()))
    assert counts[0] == counts[1] == len(datamodule.train_dataloader())


@pytest.mark.parametrize("stage", ["tower", "finetune"])  # caption words, next token
def test_a_stage_trains_on_packed_rows(stage, tiny_train_config):
    from allava.training.run import train

    cfg = tiny_train_config(f"stages=[{stage}]", "data.packing=true", "model.max_length=96",
                            "data.packing_length=192", "eval.benchmarks=[]")
    outcome = train(cfg)
    metrics = list((Path(outcome["run_dir"]) / stage).rglob("metrics.csv"))
    rows = [r for r in csv.DictReader(metrics[0].open()) if r.get("train/loss")]
    assert len(rows) == 3 and all(float(r["train/loss"]) > 0 for r in rows)
    assert (Path(outcome["exports"][stage]) / "model.safetensors").is_file()


def test_packing_refuses_an_llm_that_would_mix_samples(tiny_train_config):
    from allava.data.datamodule import StageDataModule
    from allava.models.build import build_vlm

    bundle = build_vlm(tiny_train_config().model)
    bundle.model.llm.config._attn_implementation = "paged|sdpa"
    with pytest.raises(ValueError, match="data.packing=true: .*attn_implementation=sdpa"):
        StageDataModule(bundle, mixture=[], packing=True)
    bundle.model.llm.config._attn_implementation = "sdpa"
    with pytest.raises(ValueError, match="packing_length=64 is shorter"):
        StageDataModule(bundle, mixture=[], packing=True, packing_length=64)


def test_a_sample_cut_at_max_length_is_counted(tiny_train_config):
    from allava.data.samples import SampleProcessor, collate
    from allava.models.build import build_vlm

    bundle = build_vlm(tiny_train_config("model.max_length=40").model)
    answer = " ".join(["red square"] * 60)
    raws = [{"__key__": str(i), "json": json.dumps({"conversations": [
        {"from": "human", "value": "What is it?"},
        {"from": "gpt", "value": answer if i == 1 else "A square."}]}).encode()}
        for i in range(3)]
    samples = list(SampleProcessor(bundle.processor)(raws))
    assert [s.truncated for s in samples] == [False, True, False]
    assert len(samples[1].input_ids) == 40
    assert collate(samples, 0)["truncated"] == 1
    assert collate_packed([samples], 0, row_length=128)["truncated"] == 1


def test_packed_batches_decode_images_late_and_count_the_broken_ones(tiny_train_config):
    """The packing buffer holds encoded images; a batch's pixels are made when it is cut, and
    an image that does not decode drops its sample from the row, counted."""
    from allava.data.samples import SampleProcessor
    from allava.models.build import build_vlm

    bundle = build_vlm(tiny_train_config().model)
    deferred = SampleProcessor(bundle.processor, defer_images=True)
    raws = [{"__key__": str(i), "png": b"not an image" if i == 1 else _png(),
             "json": json.dumps({"conversations": [
                 {"from": "human", "value": "<image>\nWhat is it?"},
                 {"from": "gpt", "value": "A square."}]}).encode()} for i in range(3)]
    samples = list(deferred(raws))
    assert len(samples) == 3  # not decoded yet, so not yet known to be broken
    assert all(s.pixel_values is None and s.image_bytes for s in samples)
    kept = deferred.attach_pixels(samples)
    assert len(kept) == 2 and all(s.pixel_values is not None and s.image_bytes is None
                                  for s in kept)
    assert kept[1].rejected == Counter({"image_decode_error": 1})
    eager = list(SampleProcessor(bundle.processor)(raws))
    assert len(eager) == 2 and torch.equal(eager[0].pixel_values, kept[0].pixel_values)


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()
