"""`allava synth reparse OUT`: the current parser over the replies a synth job rejected, so that
paid answers an older parser refused become records, with no new request to the teacher.

A reply that now parses becomes the item's records, exactly as the engine writes them
(`records.item_records`, same caption instruction for the job's seed); one that still fails
keeps its reject line, with the new reason. Replies cut at max_tokens (`truncated_response`)
stay rejected: they are incomplete whatever the parser says. Rejects without a reply (the
teacher was unreachable, a bad input) are left alone; a normal rerun retries `teacher_*` ones.

Exactly once, even if killed at any instant:
1. the record files are recovered as a resumed run does (a torn last line, an item with a
   Caption but no Instruct record);
2. a reject line whose item has all its records goes: an earlier reparse wrote them and was
   killed before step 4;
3. each reply that now parses has its records appended and flushed;
4. rejects.jsonl is rewritten atomically, without the re-parsed items.
A kill inside 3 leaves at most one partial item, which 1 removes while its reject line stays
(so it is parsed again); a kill before 4 leaves records and reject both, which 2 settles for
the records. Do not run it while `allava synth` is writing into the same folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from allava.synth.inputs import MODES, InputError, WorkItem, read_items
from allava.synth.output_store import JOB_FILE, REJECTS_FILE, OutputStore, reject_entry
from allava.synth.parsing import REASONS, InvalidResponse, parse_response
from allava.synth.prompts import load_caption_instructions
from allava.synth.records import item_records
from allava.utils.jsonl_files import complete_lines, rewrite_lines

JOB_KEYS = ("mode", "source", "input", "seed")  # what reparse needs from job.json


class ReparseError(ValueError):
    """OUT is not a synth job folder that can be re-parsed (or its input cannot be read)."""


@dataclass
class ReparseCounts:
    """What one reparse did with each line of rejects.jsonl."""
    rejects: int = 0  # reject lines read
    reparsed: int = 0  # now records, reject line removed
    already_written: int = 0  # the item had its records (a killed earlier reparse): line removed
    still_rejected: dict[str, int] = field(default_factory=dict)  # by the current parser's reason
    missing_item: int = 0  # the job's input no longer holds a usable item with that id
    not_retried: dict[str, int] = field(default_factory=dict)  # by reason: no reply, or truncated


def read_job(out: Path) -> dict[str, Any]:
    """OUT/job.json, checked for what reparse needs."""
    path = out / JOB_FILE
    if not path.is_file():
        raise ReparseError(f"{path} not found: {out} is not the output folder of an "
                           "`allava synth` run")
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ReparseError(f"{path} is not valid JSON: {error}") from None
    missing = [key for key in JOB_KEYS if key not in job] if isinstance(job, dict) else list(JOB_KEYS)
    if missing:
        raise ReparseError(f"{path} lacks {', '.join(missing)}: it was not written by `allava synth`")
    if job["mode"] not in MODES:
        raise ReparseError(f"{path} names an unknown mode {job['mode']!r}; expected one of {list(MODES)}")
    return job


def is_parse_failure(entry: dict[str, Any]) -> bool:
    """A reject worth parsing again: a complete reply that the parser refused."""
    raw = entry.get("raw_response")
    return entry.get("reason") in REASONS and isinstance(raw, str) and bool(raw.strip())


def reparse_rejects(out_dir: str | Path, image_root: str | Path | None = None,
                    progress: bool = True) -> dict[str, Any]:
    """Re-parses OUT/rejects.jsonl with the current parser (see the module docstring); returns
    the counts of ReparseCounts. `image_root` as given to the original run, for JSON lists."""
    out = Path(out_dir)
    job = read_job(out)
    store = OutputStore(out, job["mode"], job["source"])
    complete, _ = store.recover_records()
    lines, torn = complete_lines(out / REJECTS_FILE)
    reparser = _Reparser(job, image_root, store, complete)
    kept = []
    try:
        for line in tqdm(lines, desc="reparse", unit="reject", disable=not progress,
                         dynamic_ncols=True):
            kept_line = reparser.reparse(line)
            if kept_line is not None:
                kept.append(kept_line)
    finally:
        store.close()  # records are flushed line by line: nothing is pending here
    if kept != lines or torn:
        rewrite_lines(out / REJECTS_FILE, kept)
    return asdict(reparser.counts)


class _Reparser:
    """Decides the fate of one reject line at a time, writing the records of those that parse."""

    def __init__(self, job: dict[str, Any], image_root: str | Path | None, store: OutputStore,
                 complete: set[str]):
        self.job = job
        self.image_root = image_root
        self.store = store
        self.written = complete  # ids with all their records; grows as replies parse
        self.counts = ReparseCounts()
        self._items: dict[str, WorkItem] | None = None
        self._instructions: list[str] | None = None

    def reparse(self, line: str) -> str | None:
        """The line to keep in rejects.jsonl (updated if the reason changed), None to drop it."""
        self.counts.rejects += 1
        entry = json.loads(line)
        if not isinstance(entry, dict) or "id" not in entry:
            _bump(self.counts.not_retried, "unreadable_line")
            return line
        item_id = str(entry["id"])
        if item_id in self.written:
            self.counts.already_written += 1
            return None
        if not is_parse_failure(entry):
            _bump(self.counts.not_retried, str(entry.get("reason")))
            return line
        item = self.items().get(item_id)
        if item is None or item.problem:
            self.counts.missing_item += 1
            return line
        try:
            parsed = parse_response(self.job["mode"], entry["raw_response"],
                                    repair=entry.get("repair_response"))
        except InvalidResponse as error:
            _bump(self.counts.still_rejected, error.reason)
            return _with_new_verdict(line, entry, error)
        self.store.write_records(item_records(self.job["mode"], self.job["source"], item, parsed,
                                              self.instructions(), self.job["seed"]))
        self.written.add(item_id)
        self.counts.reparsed += 1
        return None

    def items(self) -> dict[str, WorkItem]:
        """The job's input by id, read on first need (a folder with nothing to re-parse works
        even if the input has moved)."""
        if self._items is None:
            try:
                items = read_items(self.job["input"], self.job["mode"], self.image_root)
            except InputError as error:
                raise ReparseError(f"cannot re-read the job's input, which gives each item its "
                                   f"image and question: {error}") from None
            self._items = {item.item_id: item for item in items}
        return self._items

    def instructions(self) -> list[str]:
        if self._instructions is None:
            self._instructions = [] if self.job["mode"] == "text" else load_caption_instructions()
        return self._instructions


def _with_new_verdict(line: str, entry: dict[str, Any], error: InvalidResponse) -> str:
    """The reject line with the current parser's reason and detail; unchanged text if same."""
    updated = {**entry, **reject_entry(entry["id"], error.reason, error.detail,
                                       entry["raw_response"])}
    return line if updated == entry else json.dumps(updated, ensure_ascii=False)


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


# --- the command ---------------------------------------------------------------------------------

def build_parser(prog: str = "allava-synth reparse") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Re-parse the rejected teacher replies of a synth output folder "
        "with the current parser: replies it now accepts become records, no request is sent.")
    parser.add_argument("out", metavar="OUT", help="the --out folder of an `allava synth` run")
    parser.add_argument("--image-root", metavar="DIR", help="the --image-root of that run, if it had one")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None, prog: str = "allava-synth reparse") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        counts = reparse_rejects(args.out, args.image_root, progress=not args.no_progress)
    except ReparseError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue (nothing is lost or repeated)",
              file=sys.stderr)
        return 130
    print(json.dumps(counts, indent=2))
    return 0
