"""The state of a `--batch` run, in OUT/batches.json: every local batch and how far it got.

A batch is recorded before anything is sent for it and after every step (input written,
uploaded, created, polled, applied), each time by replacing the whole file atomically, so that a
run killed at any instant is continued by a rerun: a batch with an id is polled again, never
created again; a batch created but not yet recorded is found by its metadata (allava.synth.batch).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "batches.json"
INPUT_DIR = "batches"  # the input files, under OUT
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class LocalBatch:
    name: str                 # unique within the job; also sent as metadata
    round: int                # 1: the items' requests; 2: repair turns
    attempt: int              # 2: the unfinished requests of an expired batch, sent again
    input_file: str           # relative to OUT
    custom_ids: list[str]     # the item ids, one request each
    # Round 2: custom_id -> the RepairNeeded fields (the first reply and what it lacks).
    repairs: dict[str, dict[str, str]] = field(default_factory=dict)
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "local"     # local, uploaded, then the API's statuses
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None  # why the batch failed, from the API
    done: int = 0             # requests finished (completed + failed), for the progress bar
    applied: bool = False     # its results were written (records, rejects, next round)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass
class BatchState:
    path: Path
    batches: list[LocalBatch] = field(default_factory=list)
    # Items whose first reply lacks one section, waiting for the next round's batch.
    pending_repairs: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, out: Path) -> "BatchState":
        path = out / STATE_FILE
        if not path.is_file():
            return cls(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(path, [LocalBatch(**entry) for entry in data.get("batches", [])],
                   dict(data.get("pending_repairs", {})))

    def save(self) -> None:
        data: dict[str, Any] = {"batches": [asdict(batch) for batch in self.batches],
                                "pending_repairs": self.pending_repairs}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        temporary.replace(self.path)

    def active(self) -> list[LocalBatch]:
        return [batch for batch in self.batches if not batch.applied]

    def busy_ids(self) -> set[str]:
        """Items already in a batch whose results are not applied, or waiting for a repair
        turn: a new first-round batch must leave them out."""
        busy = set(self.pending_repairs)
        for batch in self.active():
            busy.update(batch.custom_ids)
        return busy

    def input_path(self, name: str) -> Path:
        return self.path.parent / INPUT_DIR / f"{name}.jsonl"
