"""Convert conversation datasets (JSON / JSONL + an image folder) into WebDataset shards.

Every input record ends up either in a shard or in rejects.jsonl with a reason, and
manifest.json counts both. Images are read and verified by a process pool; results are written
in input order, so the shards do not depend on the number of workers. After each finished shard
the converter saves its progress (`progress.json`); a rerun with the same inputs and options
resumes from there, dropping whatever was written after it, so an interrupted conversion ends
with exactly the shards and rejects of an uninterrupted one.
"""
from __future__ import annotations

import json
import multiprocessing
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from allava.data.image_files import DEFAULT_MIN_SIDE, ImagePayload, read_image
from allava.data.record_checks import check_record
from allava.data.image_decode import BadSample
from allava.data.shard_writer import MANIFEST_NAME, ShardWriter, read_manifest
from allava.data.source_records import InputFileError, SourceRecord, iter_source_records
from allava.utils.jsonl_files import write_json

PROGRESS_NAME = "progress.json"


@dataclass(frozen=True)
class ConvertOptions:
    image_root: str = "."
    source: str | None = None  # the records' `source` field; default: the input file's stem
    samples_per_shard: int = 1000
    max_shard_bytes: int | None = None
    max_image_side: int | None = None  # re-encode larger images (JPEG); None keeps the bytes
    min_image_side: int = DEFAULT_MIN_SIDE
    workers: int = 1


@dataclass(frozen=True)
class Prepared:
    """A worker's verdict on one record: `record` (+ image) to write, or a rejection."""
    item: SourceRecord
    record: dict[str, Any] | None = None
    image: ImagePayload | None = None
    reason: str | None = None
    detail: str | None = None


def prepare(task: tuple[SourceRecord, bool, ConvertOptions]) -> Prepared:
    item, duplicate, options = task
    if duplicate:
        return Prepared(item, reason="duplicate_id", detail="an earlier record has this id")
    try:
        image_path = check_record(item.record)
        image = None
        if image_path is not None:
            image = read_image(options.image_root, image_path, options.max_image_side,
                               options.min_image_side)
    except BadSample as error:
        return Prepared(item, reason=error.reason, detail=error.detail)
    record = dict(item.record)
    record.setdefault("source", options.source or Path(item.input).stem)
    return Prepared(item, record=record, image=image)


def _fingerprint(inputs: list[str | Path], options: ConvertOptions) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one (workers may differ)."""
    files = [{"name": str(Path(p).resolve()), "bytes": Path(p).stat().st_size} for p in inputs]
    settings = {k: v for k, v in asdict(options).items() if k != "workers"}
    settings["image_root"] = str(Path(options.image_root).resolve())
    return {"inputs": files, "options": settings}


def _tasks(inputs: list[str | Path], options: ConvertOptions, start: int
           ) -> Iterator[tuple[SourceRecord, bool, ConvertOptions]]:
    """Records from position `start` on, each flagged when an earlier record had its id (the
    first occurrence keeps it, whatever becomes of it)."""
    seen: set[str] = set()
    for item in iter_source_records(inputs):
        duplicate = item.id in seen
        seen.add(item.id)
        if item.position >= start:
            yield item, duplicate, options


def _bounded_imap(pool, tasks: Iterator, workers: int) -> Iterator[Prepared]:
    """`pool.imap` with at most 256 records per worker in flight: its feeder would otherwise
    queue every record of a file of hundreds of thousands at once, and finished images could
    pile up in memory while the writer catches up."""
    in_flight = threading.Semaphore(256 * workers)

    def gated() -> Iterator:
        for task in tasks:
            in_flight.acquire()  # runs in the pool's feeder thread
            yield task

    for result in pool.imap(prepare, gated(), chunksize=16):
        in_flight.release()
        yield result


def convert(inputs: list[str | Path], out_dir: str | Path, options: ConvertOptions,
            overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Converts `inputs` into shards under `out_dir`; returns the manifest."""
    out = Path(out_dir)
    for path in map(Path, inputs):
        if not path.is_file():
            raise InputFileError(f"input file not found: {path}")
    if not Path(options.image_root).is_dir():
        raise InputFileError(f"image root is not a folder: {options.image_root}")
    fingerprint = _fingerprint(inputs, options)
    journal = out / PROGRESS_NAME
    resume = None
    if not overwrite and (out / MANIFEST_NAME).is_file():
        manifest = read_manifest(out)
        if manifest.get("metadata", {}).get("conversion") == fingerprint:
            return manifest  # already converted, with these inputs and options
    if not overwrite and journal.is_file():
        saved = json.loads(journal.read_text(encoding="utf-8"))
        if saved["fingerprint"] != fingerprint:
            raise FileExistsError(f"{out} holds an unfinished conversion of other inputs or "
                                  "options; rerun those, or pass overwrite to start over")
        resume = saved
    elif overwrite:
        journal.unlink(missing_ok=True)
    start = resume["next_position"] if resume else 0
    position = start

    def save_progress(state: dict[str, Any]) -> None:
        write_json(journal, {"fingerprint": fingerprint, "next_position": position,
                              "writer": state})

    writer = ShardWriter(out, samples_per_shard=options.samples_per_shard,
                         max_shard_bytes=options.max_shard_bytes, overwrite=overwrite,
                         metadata={"conversion": fingerprint},
                         resume=resume["writer"] if resume else None, on_shard_closed=save_progress)
    tasks = _tasks(inputs, options, start)
    pool = multiprocessing.Pool(options.workers) if options.workers > 1 else None
    results = _bounded_imap(pool, tasks, options.workers) if pool else map(prepare, tasks)
    bar = tqdm(results, desc=f"convert -> {out.name}", unit="record", disable=not progress,
               initial=start)
    try:
        with writer:
            for result in bar:
                # Seen by save_progress: the records before `position` are all accounted for.
                position = result.item.position
                if result.reason is not None:
                    writer.reject(result.item.id, result.reason, input=result.item.input,
                                  detail=result.detail)
                elif result.image is None:
                    writer.write(result.record)
                else:
                    writer.write(result.record, result.image.data, result.image.ext)
                position += 1
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    journal.unlink(missing_ok=True)
    assert writer.manifest is not None
    return writer.manifest
