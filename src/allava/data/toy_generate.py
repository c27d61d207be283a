"""Generate the toy world dataset: training shards, validation shards and held-out benchmarks.

Layout under `out_dir`:
    caption/     one Caption record per training image (pretraining data)
    instruct/    one Instruct record per training image, same image bytes (finetuning data)
    text/        text-only instructions (mixed into both stages)
    val/         caption + instruct records for separate validation images
    benchmarks/  toy_pope.tsv, toy_mcq.tsv (VLMEvalKit layout)
    toy_world.json   parameters, counts, format version; written last, so it marks completion
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import os
import random
import shutil
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator

from tqdm.auto import tqdm

from allava.data.shard_writer import ShardWriter, shard_paths
from allava.data.toy_benchmarks import write_toy_mcq, write_toy_pope
from allava.data.toy_teacher import caption_record, instruct_record, text_record
from allava.data.toy_world import encode_png, render_scene, sample_scene

FORMAT_VERSION = 5  # 4: captions describe objects in random order; 5: short answers
INFO_NAME = "toy_world.json"
TRAIN_SPLITS = ("caption", "instruct", "text")
OUTPUT_NAMES = ("caption", "instruct", "text", "val", "benchmarks", INFO_NAME)

# Each split draws from its own seed, so no two splits ever render the same image.
SPLIT_SEED_OFFSETS = {"train": 1, "val": 2, "text": 3, "toy_pope": 4, "toy_mcq": 5}


def split_seed(seed: int, split: str) -> int:
    return seed * 1000 + SPLIT_SEED_OFFSETS[split]


def _item_rng(seed: int, index: int) -> random.Random:
    # One generator per item: item i stays the same whatever the total count.
    return random.Random(seed * 100_003 + index)


def _render_item(seed: int, image_size: int, id_prefix: str, i: int) -> tuple[bytes, dict, dict]:
    """Item `i` of a split: its PNG, its Caption record and its Instruct record."""
    rng = _item_rng(seed, i)
    scene = sample_scene(rng)
    png = encode_png(render_scene(scene, rng, image_size))
    image_id = f"{id_prefix}{i:06d}"
    cap = caption_record(scene, rng, f"{id_prefix}cap_{i:06d}", image_id=image_id)
    ins = instruct_record(scene, rng, f"{id_prefix}ins_{i:06d}", image_id=image_id)
    return png, cap, ins


# Rendering dominates generation; below this many images a process pool costs more than it saves.
PARALLEL_MIN_IMAGES = 2000
RENDER_CHUNK = 250


def _write_image_split(
    seed: int, num_images: int, image_size: int, id_prefix: str,
    writers: dict[str, ShardWriter], progress: bool, desc: str, workers: int,
) -> None:
    """Render `num_images` scenes; each image gets a caption and an instruct record. Items are
    rendered by `workers` processes but written in index order, so the shards are the same
    whatever the number of workers."""
    render = partial(_render_item, seed, image_size, id_prefix)
    parallel = workers > 1 and num_images >= PARALLEL_MIN_IMAGES
    # fork: the workers run PIL and numpy code only, and start without re-importing the caller.
    with (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
          if parallel else nullcontext()) as pool:
        items = (pool.map(render, range(num_images), chunksize=RENDER_CHUNK) if parallel
                 else map(render, range(num_images)))
        for png, cap, ins in tqdm(items, total=num_images, desc=desc, disable=not progress,
                                  unit="img"):
            writers["caption"].write(cap, png, "png")
            writers["instruct"].write(ins, png, "png")


def _load_info(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / INFO_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None  # a damaged info file means "regenerate"


def _clean(out_dir: Path) -> None:
    """Remove only what this generator writes, never other files the user keeps there."""
    for name in OUTPUT_NAMES:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def generate_toy_world(
    out_dir: str | Path,
    num_images: int = 20000,
    num_text: int = 3000,
    num_val_images: int = 256,
    num_benchmark_items: int = 600,
    image_size: int = 64,
    seed: int = 0,
    samples_per_shard: int = 2000,
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the toy world dataset to `out_dir` (skipped when already there with the same
    parameters) and return its info (the content of toy_world.json plus "out_dir", "skipped").
    `workers` processes render the images (default: one per CPU core, at most 8); the output
    does not depend on it."""
    workers = workers or min(8, os.cpu_count() or 1)
    out = Path(out_dir)
    params = dict(
        num_images=num_images, num_text=num_text, num_val_images=num_val_images,
        num_benchmark_items=num_benchmark_items, image_size=image_size, seed=seed,
        samples_per_shard=samples_per_shard,
    )
    existing = _load_info(out)
    if existing and existing.get("format_version") == FORMAT_VERSION and existing.get("params") == params:
        return {**existing, "out_dir": str(out), "skipped": True}

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)

    meta = {"generator": "allava.data.toy_generate", "seed": seed, "image_size": image_size}
    with ShardWriter(out / "caption", samples_per_shard=samples_per_shard, metadata=meta) as cap, \
            ShardWriter(out / "instruct", samples_per_shard=samples_per_shard, metadata=meta) as ins:
        _write_image_split(split_seed(seed, "train"), num_images, image_size, "toy_",
                           {"caption": cap, "instruct": ins}, progress, "toy train images", workers)

    with ShardWriter(out / "val", samples_per_shard=samples_per_shard, metadata=meta) as val:
        # Both records of a val image go to one directory.
        _write_image_split(split_seed(seed, "val"), num_val_images, image_size, "toy_val_",
                           {"caption": val, "instruct": val}, progress, "toy val images", workers)

    with ShardWriter(out / "text", samples_per_shard=samples_per_shard, metadata=meta) as text:
        rng = random.Random(split_seed(seed, "text"))
        for i in tqdm(range(num_text), desc="toy text", disable=not progress, unit="rec"):
            text.write(text_record(rng, f"toy_text_{i:06d}"))

    bench = out / "benchmarks"
    write_toy_pope(bench / "toy_pope.tsv", num_benchmark_items, split_seed(seed, "toy_pope"), image_size)
    write_toy_mcq(bench / "toy_mcq.tsv", num_benchmark_items, split_seed(seed, "toy_mcq"), image_size)

    info = {
        "format_version": FORMAT_VERSION,
        "params": params,
        "counts": {
            "caption": num_images, "instruct": num_images, "text": num_text,
            "val": 2 * num_val_images, "toy_pope": num_benchmark_items, "toy_mcq": num_benchmark_items,
        },
        "paths": {
            "caption": "caption", "instruct": "instruct", "text": "text", "val": "val",
            "toy_pope": "benchmarks/toy_pope.tsv", "toy_mcq": "benchmarks/toy_mcq.tsv",
        },
        "seconds": round(time.perf_counter() - start, 2),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    tmp = out / f"{INFO_NAME}.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / INFO_NAME)
    return {**info, "out_dir": str(out), "skipped": False}


def iter_shard_records(directory: str | Path) -> Iterator[dict[str, Any]]:
    """The json records of a shard directory, in manifest order (images are not decoded)."""
    for path in shard_paths(directory):
        with tarfile.open(path, "r") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".json"):
                    f = tar.extractfile(member)
                    assert f is not None
                    yield json.loads(f.read().decode("utf-8"))


def iter_corpus_texts(out_dir: str | Path, splits: Iterable[str] = TRAIN_SPLITS) -> Iterator[str]:
    """Every conversation of the training splits laid out as the chat template renders it
    (`[INST] question [/INST] answer`), for tokenizer training: merges then match the text the
    model actually sees, e.g. " Yes" after "[/INST]" becomes one token rather than two."""
    for split in splits:
        for record in iter_shard_records(Path(out_dir) / split):
            parts = []
            for turn in record["conversations"]:
                if turn["from"] == "human":
                    parts.append(f"[INST] {turn['value']} [/INST]")
                else:
                    parts.append(f" {turn['value']}")
            yield "".join(parts)
