"""Read what an offline W&B run logged, without syncing it anywhere.

A run's `run-<id>.wandb` file is a LevelDB-style log (32 KiB blocks of checksummed chunks)
whose records are `wandb_internal_pb2.Record` protobufs. This reader is for checks and quick
looks on machines with no network (tests use it to prove that the loss was logged).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Iterator

_FILE_HEADER = struct.Struct("<4sHB")  # ident ":W&B", magic, version
_CHUNK_HEADER = struct.Struct("<IHB")  # crc32, length, type
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    ident, _, _ = _FILE_HEADER.unpack_from(data, 0)
    if ident != b":W&B":
        raise ValueError(f"{path} is not a W&B run log")
    offset, pending = _FILE_HEADER.size, b""
    while offset + _CHUNK_HEADER.size <= len(data):
        room = _BLOCK - offset % _BLOCK
        if room < _CHUNK_HEADER.size:  # block tail too short for a header: zero padding
            offset += room
            continue
        _, length, kind = _CHUNK_HEADER.unpack_from(data, offset)
        start = offset + _CHUNK_HEADER.size
        chunk = data[start:start + length]
        offset = start + length
        if kind == 0 and length == 0:
            offset += _BLOCK - offset % _BLOCK if offset % _BLOCK else 0
            continue
        if kind in (_FULL, _FIRST):
            pending = chunk
        elif kind in (_MIDDLE, _LAST):
            pending += chunk
        if kind in (_FULL, _LAST):
            yield pending
            pending = b""


def read_history(run_dir: str | Path) -> list[dict]:
    """The rows a run logged (`wandb.log` / Lightning metrics), oldest first."""
    from wandb.proto import wandb_internal_pb2

    run_dir = Path(run_dir)
    logs = sorted(run_dir.glob("run-*.wandb"))
    if not logs:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    rows = []
    for raw in _records(logs[0]):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") != "history":
            continue
        row = {}
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            row[key] = json.loads(item.value_json)
        rows.append(row)
    return rows


def read_run(run_dir: str | Path) -> tuple[dict, dict]:
    """(the run's identity: job_type, group, name, project, config; its merged summary)."""
    from wandb.proto import wandb_internal_pb2

    (log,) = Path(run_dir).glob("run-*.wandb")
    run, summary = {}, {}
    for raw in _records(log):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = {"job_type": record.run.job_type, "group": record.run.run_group,
                   "name": record.run.display_name, "project": record.run.project,
                   "config": {item.key: json.loads(item.value_json) for item in record.run.config.update}}
        elif kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return run, summary


def find_runs(wandb_dir: str | Path) -> list[Path]:
    """Offline run directories under a `wandb/` directory (or its parent)."""
    root = Path(wandb_dir)
    if (root / "wandb").is_dir():
        root = root / "wandb"
    return sorted(p for p in root.glob("offline-run-*") if p.is_dir())
