"""Read released conversation datasets (ALLaVA-4V, LLaVA, ShareGPT4V) record by record.

The releases come as one JSON list per file (ALLaVA-4V, LLaVA-Pretrain-558K, LLaVA-Instruct-665K,
ShareGPT4V) or as JSON Lines. Both are read here, in file order, and every record gets a string
`id`: ALLaVA's text-only Evol-Instruct file names it `idx`, LLaVA-665K has some numeric ids, and a
record with neither gets `<file stem>_<position>`, so that a rejects log can always point at it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


@dataclass(frozen=True)
class SourceRecord:
    position: int  # over all input files, in order: what a resumed conversion skips to
    input: str  # the file's name, for the rejects log
    id: str
    record: Any  # as parsed, with `id` set when it is a dict; None for an unparsable line


_UNPARSABLE = object()  # a JSON Lines line that does not parse


class InputFileError(ValueError):
    """An input file that cannot be read at all (the whole conversion stops: fix it first)."""


def _records_of(path: Path) -> Iterator[Any]:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip()
    if not head:
        return
    if head.startswith(b"["):  # a JSON list: the released files are read whole, as LLaVA does
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise InputFileError(f"{path}: not valid JSON ({error})") from error
        yield from data
        return
    with path.open(encoding="utf-8") as handle:  # JSON Lines: one bad line is one bad record
        for line in handle:
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    yield _UNPARSABLE



def record_id(record: Any, stem: str, index: int) -> str:
    if isinstance(record, dict):
        for key in ("id", "idx"):
            value = record.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value)
    return f"{stem}_{index}"


def iter_source_records(paths: list[str | Path]) -> Iterator[SourceRecord]:
    """Every record of every file, in order. Unparsable JSON Lines come through as records
    that are not dicts, for the caller to reject with the rest."""
    position = 0
    for path in map(Path, paths):
        if not path.is_file():
            raise InputFileError(f"input file not found: {path}")
        for index, record in enumerate(_records_of(path)):
            rid = record_id(record, path.stem, index)
            if isinstance(record, dict):
                record = {"id": rid, **{k: v for k, v in record.items() if k not in ("id", "idx")}}
            elif record is _UNPARSABLE:
                record = None
            yield SourceRecord(position, path.name, rid, record)
            position += 1
