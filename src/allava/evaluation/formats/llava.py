"""The machinery of LLaVA-1.5's evaluation layout (haotian-liu/LLaVA `docs/Evaluation.md`,
`scripts/v1_5/eval/*.sh`): a question file, an image folder and the answer or annotation file
each benchmark ships. The readers themselves live with their benchmarks (`benchmarks/pope.py`,
`gqa.py`, `scienceqa.py`, `vqa.py`: TextVQA and VizWiz); this module holds what they share: the
items they build, their skip reasons, the file checks and the JSON readers.

What every item carries:
  `index`     the question file's `question_id` (`id` for ScienceQA), an int when it is written as
              a canonical integer; TextVQA uses the annotation's numeric `question_id` instead (its
              question file's id is not unique). The raw value is kept in `extras["question_id"]`
              for writing answers back in LLaVA's format.
  `question`  the prompt text of the question file WITHOUT a trailing LLaVA-1.5 short-answer
              instruction ("\\nAnswer the question using a single word or phrase."), removed once
              when the text ends with it. `prompts.build_prompt` appends that instruction itself,
              so the prompt the model sees is LLaVA's prompt with the instruction exactly once.
              Anything else in the text stays: TextVQA's "Reference OCR token: ..." line, VizWiz's
              "When the provided information is insufficient, respond with 'Unanswerable'." line.
              ScienceQA: the bare question of problems.json, with `hint` and `options` separate,
              because `build_prompt` lays out hint, question and options itself.
  `extras["prompt"]`             the text exactly as in the question file (ScienceQA: the first
                                 human turn with "<image>" removed and stripped, as
                                 `model_vqa_science.py` uses it, before `--single-pred-prompt`).
  `extras["prompt_had_suffix"]`  whether that text already ended with the instruction
                                 `build_prompt` appends for the kind (the short-answer one;
                                 ScienceQA: the option-letter one, which LLaVA adds at run time).
  `extras["image_path"]`         the image file (absent for ScienceQA's text-only questions);
                                 `image_b64` stays None: `items.load_item_image` reads the file.
  Each benchmark's own fields are listed with its reader.

Problems with a whole file (missing file or folder, not JSON, wrong top-level shape, no
questions) raise `BenchmarkFormatError` naming the file and the expected layout. A problem with
one question becomes a `SkippedItem`, counted rather than dropped; its `reason` starts with one of
the codes below (or `common.NOT_IN_SPLIT`), then ": " and the details.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.formats.common import parse_index, require_dir, require_file
from allava.evaluation.items import (
    DEFAULT_CATEGORY,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    SkippedItem,
)

# Skip reason codes (a SkippedItem's reason is "<code>: <details>").
MISSING_IMAGE = "missing_image"
MALFORMED_LINE = "malformed_line"
NO_ANNOTATION = "no_annotation"
MALFORMED_ANNOTATION = "malformed_annotation"
DUPLICATE_QUESTION = "duplicate_question"
NOT_IN_QUESTION_FILE = "not_in_question_file"


class ItemBuilder:
    """Collects items and skipped rows, guarding against duplicated indices."""

    def __init__(self, name: str, kind: str, path: Path) -> None:
        self.name, self.kind, self.path = name, kind, path
        self.items: list[BenchmarkItem] = []
        self.skipped: list[SkippedItem] = []
        self.rows_seen = 0
        self._indices: set[int | str] = set()

    def skip(self, index: int | str, row: int, code: str, details: str) -> None:
        self.skipped.append(SkippedItem(index=index, row=row, reason=f"{code}: {details}"))

    def questions(self, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any], int | str]]:
        """(row, record, index) of each usable line of the question file (JSONL, `self.path`) that
        has the `required` fields; every other line becomes a skipped row."""
        for row, record, error in jsonl_records(self.path):
            index = self._checked_index(row, record, error, required)
            if index is not None:
                yield row, record, index

    def _checked_index(
        self, row: int, record: Any, error: str | None, required: tuple[str, ...]
    ) -> int | str | None:
        """The index of one JSONL question record; None (and a skipped row) when it is unusable."""
        self.rows_seen += 1
        raw_id = record.get("question_id") if isinstance(record, dict) else None
        id_ok = isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool) and str(raw_id).strip() != ""
        index = parse_index(raw_id, canonical=True) if id_ok else f"line {row}"
        if error is not None:
            self.skip(index, row, MALFORMED_LINE, error)
            return None
        missing = [key for key in required if key not in record]
        if missing:
            self.skip(index, row, MALFORMED_LINE, f"missing field(s) {', '.join(missing)}")
            return None
        wrong = [key for key in required if key != "question_id" and not isinstance(record[key], str)]
        if not id_ok:
            wrong.insert(0, "question_id")
        if wrong:
            self.skip(index, row, MALFORMED_LINE, f"field(s) {', '.join(wrong)} of the wrong type")
            return None
        if not strip_short_answer_suffix(record["text"]).strip():
            self.skip(index, row, MALFORMED_LINE, "empty question text")
            return None
        return index

    def image_path(self, index: int | str, row: int, image_folder: Path, image_name: str) -> Path | None:
        path = image_folder / image_name
        if not path.is_file():
            self.skip(index, row, MISSING_IMAGE, f"{path} not found")
            return None
        return path

    def add(
        self,
        *,
        index: int | str,
        row: int,
        text: str,
        answer: str,
        category: str,
        image_path: Path | None,
        extras: dict[str, Any],
        options: dict[str, str] | None = None,
        hint: str | None = None,
        prompt: str | None = None,
    ) -> None:
        if index in self._indices:
            self.skip(index, row, DUPLICATE_QUESTION, f"index {index!r} is already used by an earlier item")
            return
        self._indices.add(index)
        prompt = text if prompt is None else prompt
        question = text if options else strip_short_answer_suffix(text)
        # The instruction `build_prompt` appends for this kind: did LLaVA's prompt already end with it?
        suffix = CHOICE_SUFFIX if self.kind == "multiple_choice" else SHORT_ANSWER_SUFFIX
        all_extras = {"prompt": prompt, "prompt_had_suffix": prompt.rstrip().endswith(suffix), **extras}
        if image_path is not None:
            all_extras["image_path"] = str(image_path)
        self.items.append(
            BenchmarkItem(
                index=index, question=question, answer=answer, category=category,
                options=options or {}, hint=hint, image_b64=None, row=row, extras=all_extras,
            )
        )

    def build(self) -> Benchmark:
        if self.kind != "multiple_choice" and self.rows_seen == 0:
            raise BenchmarkFormatError(f"{self.path}: the file holds no questions")
        return Benchmark(
            name=self.name, kind=self.kind, items=self.items, skipped=self.skipped, path=self.path
        )


def strip_short_answer_suffix(text: str) -> str:
    """`text` without one trailing LLaVA-1.5 short-answer instruction (and the blank before it)."""
    stripped = text.rstrip()
    if stripped.endswith(SHORT_ANSWER_SUFFIX):
        return stripped[: -len(SHORT_ANSWER_SUFFIX)].rstrip()
    return text


# ----------------------------------------------------------------------------------- files and JSON


def jsonl_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(row, record, error) per non-blank line; row counts non-blank lines from 1."""
    row = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.strip():
                continue
            row += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield row, None, f"not valid JSON ({error.msg} at column {error.colno})"
                continue
            if not isinstance(record, dict):
                yield row, None, f"a JSON {type(record).__name__}, not an object"
                continue
            yield row, record, None


def load_json(path: Path, layout: str) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {layout}"
        ) from error


def require_inputs(question_file: str | Path, annotation_file: str | Path,
                   image_folder: str | Path, layout: str) -> tuple[Path, Path, Path]:
    """The three inputs most layouts have: two files and the image folder, each checked."""
    return (require_file(question_file, layout), require_file(annotation_file, layout),
            require_dir(image_folder, "image folder", layout))


# ------------------------------------------------------------------------------------------- fields


def string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        return []
    return list(value)


def category_or_default(value: Any) -> str:
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_CATEGORY
