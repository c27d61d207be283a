"""Append-only JSONL files that a killed process may have left with a torn last line: reading
what survived, and rewriting a file atomically. Shared by the synthesis engine's outputs and the
evaluator's predictions, both of which resume after a crash; and JSON files written whole."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def complete_lines(path: Path, *, unterminated_is_torn: bool = True) -> tuple[list[str], int]:
    """(the file's JSON lines, how many lines are not). With `unterminated_is_torn`, a last line
    without its newline counts as torn even when it parses: every writer here writes a record
    and its newline in one call, and appending after it would glue two records together. A
    missing file has no lines."""
    if not path.is_file():
        return [], 0
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    tail = lines.pop()  # "" when the file ends with a newline
    good, bad = [], 0
    if tail.strip():
        if unterminated_is_torn:
            bad += 1
        else:
            lines.append(tail)
    for line in lines:
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            bad += 1
            continue
        good.append(line)
    return good, bad


def write_json(path: Path, data: Any) -> None:
    """Writes JSON through a temporary file, so that a crash never leaves a half-written file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def rewrite_lines(path: Path, lines: list[str]) -> None:
    """Replaces the file with `lines`, through a temporary file (a crash leaves old or new)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(temporary, path)
