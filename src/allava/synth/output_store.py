"""The engine's output directory: append-only JSONL files, and the recovery that makes a rerun
continue where a crash, kill -9 or Ctrl-C left off, with no record duplicated or lost.

Records are appended and flushed one line at a time (an item's Caption line before its Instruct
line), so a process killed at any instant leaves at most one incomplete last line per file and
at most one item with a Caption but no Instruct record. `recover()` removes exactly those, and
the rejects that deserve another try (the teacher was unreachable), then says which items are
finished; `recover_records()` does the record files only (`allava synth reparse` handles the
rejects itself). Flushed lines survive a killed process; they are not fsynced, so a power cut
may cost the last moments of work, which the next run redoes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from allava.utils.jsonl_files import complete_lines, rewrite_lines

# Rejects with these reason prefixes are retried by the next run: nothing was wrong with the item.
RETRYABLE_PREFIXES = ("teacher_",)
JOB_FILE = "job.json"
REJECTS_FILE = "rejects.jsonl"
DETAIL_MAX_CHARS = 500  # a reject's detail is a hint for a person, not a log


def reject_entry(item_id: str, reason: str, detail: str = "",
                 raw_response: str | None = None, repair_response: str | None = None
                 ) -> dict[str, Any]:
    """One line of rejects.jsonl (`repair_response`: the reply to a repair turn, when one was
    sent)."""
    entry = {"id": item_id, "reason": reason, "detail": detail[:DETAIL_MAX_CHARS],
             "raw_response": raw_response}
    if repair_response is not None:
        entry["repair_response"] = repair_response
    return entry


def record_files(mode: str) -> tuple[str, ...]:
    """The record files of a mode, in the order an item's records are written."""
    return ("text.jsonl",) if mode == "text" else ("caption.jsonl", "instruct.jsonl")


class OutputStore:
    def __init__(self, out_dir: str | Path, mode: str, source: str):
        self.out = Path(out_dir)
        self.mode = mode
        self.source = source
        self.files = record_files(mode)
        self._prefixes = {"caption.jsonl": f"{source}_cap_", "instruct.jsonl": f"{source}_inst_",
                          "text.jsonl": f"{source}_text_"}
        self._handles: dict[str, Any] = {}

    # --- the job's identity ------------------------------------------------------------------
    def check_job(self, identity: dict[str, Any]) -> None:
        """Refuses to mix two different jobs in one directory (a resumed run must be the same
        job: input, mode, model, prompts); writes the identity on first use."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / JOB_FILE
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved != identity:
                changed = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
                raise FileExistsError(
                    f"{self.out} holds the output of another job (differs in {changed}); use "
                    "another --out, or the same arguments and prompt files to resume it")
            return
        path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")

    # --- recovery ----------------------------------------------------------------------------
    def recover(self) -> tuple[set[str], dict[str, int]]:
        """Cleans up after an interrupted run; returns (finished item ids, what was removed)."""
        complete, removed = self.recover_records()
        rejected, removed["retried_rejects"], cut = self._recover_rejects()
        removed["incomplete_lines"] += cut
        return complete | rejected, removed

    def recover_records(self) -> tuple[set[str], dict[str, int]]:
        """Drops torn lines and items missing a record from the record files; returns (the ids
        of items with all their records, what was removed). Leaves rejects.jsonl alone."""
        removed = {"incomplete_lines": 0, "partial_items": 0}
        per_file, torn = {}, {}
        for name in self.files:
            lines, torn[name] = complete_lines(self.out / name)
            removed["incomplete_lines"] += torn[name]
            per_file[name] = [(self._item_id(name, line), line) for line in lines]
        complete = set.intersection(*({item for item, _ in entries} for entries in per_file.values()))
        for name, entries in per_file.items():
            kept = [line for item, line in entries if item in complete]
            removed["partial_items"] += len(entries) - len(kept)
            if len(kept) != len(entries) or torn[name]:
                rewrite_lines(self.out / name, kept)
        return complete, removed

    def _recover_rejects(self) -> tuple[set[str], int, int]:
        """Drops the rejects to retry and a torn last line; returns (the ids still rejected,
        rejects dropped for a retry, torn lines dropped)."""
        reject_lines, cut = complete_lines(self.out / REJECTS_FILE)
        final, rejected = [], set()
        for line in reject_lines:
            entry = json.loads(line)
            if str(entry.get("reason", "")).startswith(RETRYABLE_PREFIXES):
                continue
            final.append(line)
            rejected.add(str(entry["id"]))
        if len(final) != len(reject_lines) or cut:
            rewrite_lines(self.out / REJECTS_FILE, final)
        return rejected, len(reject_lines) - len(final), cut

    def _item_id(self, name: str, line: str) -> str:
        return str(json.loads(line)["id"]).removeprefix(self._prefixes[name])

    # --- appending ---------------------------------------------------------------------------
    def write_records(self, records: list[dict[str, Any]]) -> None:
        """One item's records, one per record file, in file order."""
        for name, record in zip(self.files, records, strict=True):
            self._append(name, record)

    def write_reject(self, item_id: str, reason: str, detail: str = "",
                     raw_response: str | None = None, repair_response: str | None = None) -> None:
        self._append(REJECTS_FILE, reject_entry(item_id, reason, detail, raw_response,
                                                repair_response))

    def _append(self, name: str, entry: dict[str, Any]) -> None:
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = open(self.out / name, "a", encoding="utf-8")
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
