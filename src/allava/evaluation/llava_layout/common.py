"""What every loader of LLaVA-1.5's evaluation layout shares: the items it builds, its skip reasons,
the file checks and JSON readers, and reading an item's image.

What every item carries:
  `index`     the question file's `question_id` (`id` for ScienceQA), an int when it is written as
              a canonical integer; TextVQA uses the annotation's numeric `question_id` instead (see
              `textvqa`: the file's id is not unique). The raw value is kept in `extras["question_id"]`
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
                                 `image_b64` stays None: read the image with `load_item_image`.
  Each benchmark's own fields are listed in its module.

Problems with a whole file (missing file or folder, not JSON, wrong top-level shape, no
questions) raise `BenchmarkFormatError` naming the file and the expected layout. A problem with
one question becomes a `SkippedItem`, counted rather than dropped; its `reason` starts with one of
the codes below, then ": " and the details.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.benchmark_files import (
    DEFAULT_CATEGORY,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    SkippedItem,
    UndecodableImageError,
)

# Skip reason codes (a SkippedItem's reason is "<code>: <details>").
MISSING_IMAGE = "missing_image"
MALFORMED_LINE = "malformed_line"
NO_ANNOTATION = "no_annotation"
MALFORMED_ANNOTATION = "malformed_annotation"
DUPLICATE_QUESTION = "duplicate_question"
NOT_IN_SPLIT = "not_in_split"
NOT_IN_QUESTION_FILE = "not_in_question_file"


# ----------------------------------------------------------------------------------------- images


def load_item_image(item: BenchmarkItem) -> Image.Image | None:
    """The item's RGB image: read from `extras["image_path"]` when set, else `item.load_image()`.

    A file that has gone missing or does not decode raises `UndecodableImageError`, which the
    runner records as a skipped item.
    """
    image_path = item.extras.get("image_path")
    if image_path is None:
        return item.load_image()
    try:
        with Image.open(image_path) as image:
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError) as error:
        raise UndecodableImageError(
            f"image file {image_path} does not decode ({type(error).__name__}: {error})"
        ) from error


# ----------------------------------------------------------------------------------- building items


class _QuestionLine:
    __slots__ = ("index",)

    def __init__(self, index: int | str) -> None:
        self.index = index


class _Builder:
    """Collects items and skipped rows, guarding against duplicated indices."""

    def __init__(self, name: str, kind: str, path: Path) -> None:
        self.name, self.kind, self.path = name, kind, path
        self.items: list[BenchmarkItem] = []
        self.skipped: list[SkippedItem] = []
        self.rows_seen = 0
        self._indices: set[int | str] = set()

    def skip(self, index: int | str, row: int, code: str, details: str) -> None:
        self.skipped.append(SkippedItem(index=index, row=row, reason=f"{code}: {details}"))

    def question_line(
        self, row: int, record: Any, error: str | None, required: tuple[str, ...]
    ) -> _QuestionLine | None:
        """Check one JSONL question record; None (and a skipped row) when it is unusable."""
        self.rows_seen += 1
        raw_id = record.get("question_id") if isinstance(record, dict) else None
        id_ok = isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool) and str(raw_id).strip() != ""
        index = _parse_index(raw_id) if id_ok else f"line {row}"
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
        return _QuestionLine(index)

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


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
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


def _load_json(path: Path, layout: str) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {layout}"
        ) from error


def _require_inputs(question_file: str | Path, annotation_file: str | Path,
                    image_folder: str | Path, layout: str) -> tuple[Path, Path, Path]:
    """The three inputs most layouts have: two files and the image folder, each checked."""
    return (_require_file(question_file, layout), _require_file(annotation_file, layout),
            _require_dir(image_folder, "image folder", layout))


def _require_file(path: str | Path, layout: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkFormatError(f"benchmark file not found: {path}; {layout}")
    return path


def _require_dir(path: str | Path, what: str, layout: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise BenchmarkFormatError(f"{what} not found: {path}; {layout}")
    return path


# ------------------------------------------------------------------------------------------- fields


def _parse_index(raw: Any) -> int | str:
    """An int for integers and canonical integer strings ("12", not "012" or "+12"), else a string."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    if text.isdigit() and text.isascii() and (text == "0" or not text.startswith("0")):
        return int(text)
    return text


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        return []
    return list(value)


def _most_frequent(answers: list[str]) -> str:
    """The most common answer; `Counter.most_common` keeps first-seen order among ties."""
    return Counter(answers).most_common(1)[0][0]


def _category(value: Any) -> str:
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_CATEGORY
