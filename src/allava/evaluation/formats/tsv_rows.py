"""How a benchmark's own TSV reader turns VLMEvalKit rows into items of the readers' contract.

`read_benchmark_tsv` checks a file's header against the benchmark's `TsvLayout` (raising
`BenchmarkFormatError` that names the file, the missing columns and the benchmark), loads it with
the generic reader (`vlmevalkit_tsv.load_tsv_benchmark`), then hands each item to the benchmark's
converter. A converter returns the item in the contract below or raises `RowProblem`, which turns
the row into a `SkippedItem` whose reason is "<code>: <details>" (codes below), so that no row is
dropped silently. The helpers after it are the checks converters share.

The contract every benchmark reader keeps (the scorers rely on it):
  `index`     the file's index, an int when it is one.
  `question`  the bare question: stripped, without one trailing instruction
              (SHORT_ANSWER_SUFFIX, CHOICE_SUFFIX, or MME's "Please answer yes or no."), which
              `prompts.build_prompt` appends itself.
  `answer`, `category`, `options` ({"A": text, ...}, multiple choice only), `hint`.
  `extras`    per benchmark, as each reader's docstring says; `num_images` / `multi_image` for
              a row whose image cell is a list (MMMU only).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.formats.vlmevalkit_tsv import MultiImageMode, cell, check_tsv_header, load_tsv_benchmark
from allava.evaluation.items import Benchmark, BenchmarkFormatError, BenchmarkItem, BenchmarkKind, SkippedItem

# Skip reason codes (a SkippedItem's reason is "<code>: <details>"); `common.NOT_IN_SPLIT` is one too.
BAD_ANSWER = "bad_answer"
BAD_CATEGORY = "bad_category"
BAD_INDEX = "bad_index"
BAD_OPTIONS = "bad_options"
DUPLICATE_INDEX = "duplicate_index"
EMPTY_QUESTION = "empty_question"

# Instructions some files append to the question; `prompts.build_prompt` adds its own.
# MME's official questions end with "Please answer yes or no.", which LLaVA-1.5's llava_mme.jsonl
# replaces by the short-answer instruction (the one `build_prompt` appends to yes/no questions).
YES_NO_SUFFIX = "Please answer yes or no."
_QUESTION_SUFFIXES = (SHORT_ANSWER_SUFFIX, CHOICE_SUFFIX, YES_NO_SUFFIX)
# The columns every benchmark's file has.
BASE_COLUMNS: tuple[str, ...] = ("index", "image", "question", "answer")


class RowProblem(Exception):
    """A row the reader cannot turn into an item; it becomes a SkippedItem "<code>: <details>"."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.reason = f"{code}: {details}"


@dataclass(frozen=True)
class TsvLayout:
    """What a benchmark's VLMEvalKit file looks like, for checks and error messages."""

    benchmark: str  # e.g. "MME"
    file_names: str  # e.g. "MME.tsv"
    required: tuple[str, ...]  # columns the reader cannot do without
    optional: tuple[str, ...] = ()  # columns read when present

    def describe(self) -> str:
        text = f"VLMEvalKit's {self.file_names} has the columns {', '.join(self.required)}"
        return text + (f" (optionally {', '.join(self.optional)})" if self.optional else "")


Converter = Callable[[BenchmarkItem, dict[str, str]], BenchmarkItem]


def read_benchmark_tsv(
    path: str | Path,
    name: str,
    layout: TsvLayout,
    kind: BenchmarkKind,
    convert: Converter,
    *,
    answer_column: str = "answer",
    multi_image: MultiImageMode = "skip",
    required: Sequence[str] | None = None,
) -> Benchmark:
    """Load `path` as `layout`'s benchmark: each item goes through `convert(item, columns)`, where
    `columns` are the row's raw cells (all but the image). `required` overrides `layout.required`
    (for readers whose columns depend on the header)."""
    path = Path(path)
    header = check_tsv_header(path, required=())
    require_columns(path, header, layout, layout.required if required is None else required)
    loaded = load_tsv_benchmark(
        path, kind, answer_column=answer_column, keep_columns=True, multi_image=multi_image
    )
    items: list[BenchmarkItem] = []
    skipped: list[SkippedItem] = list(loaded.skipped)
    seen: set[int | str] = set()
    for item in loaded.items:
        extras = dict(item.extras)
        columns = extras.pop("columns")
        try:
            if item.index in seen:
                raise RowProblem(DUPLICATE_INDEX, f"index {item.index!r} is already used by an earlier row")
            converted = convert(replace(item, extras=extras), columns)
        except RowProblem as problem:
            skipped.append(SkippedItem(index=item.index, row=item.row, reason=problem.reason))
            continue
        seen.add(item.index)
        items.append(converted)
    skipped.sort(key=lambda skip: skip.row)
    return Benchmark(name=name, kind=kind, items=items, skipped=skipped, path=path)


def require_columns(path: Path, header: Sequence[str], layout: TsvLayout, required: Sequence[str]) -> None:
    missing = [column for column in required if column not in header]
    if missing:
        raise BenchmarkFormatError(
            f"{path}: not a {layout.benchmark} file in VLMEvalKit's layout: missing column(s) "
            f"{', '.join(missing)}; {layout.describe()}, this file has {', '.join(header)}"
        )


# ------------------------------------------------------------------------- what converters share


def bare_question(item: BenchmarkItem) -> str:
    """The question without surrounding blanks and without one trailing instruction of
    `_QUESTION_SUFFIXES` (e.g. MME's "Please answer yes or no."); an empty one is a RowProblem."""
    text = item.question.strip()
    for suffix in _QUESTION_SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip()
            break
    if not text:
        raise RowProblem(EMPTY_QUESTION, "the question cell is empty")
    return text


def yes_no_answer(item: BenchmarkItem) -> str:
    answer = item.answer.strip().lower()
    if answer not in ("yes", "no"):
        raise RowProblem(BAD_ANSWER, f"answer {item.answer!r} is neither yes nor no")
    return answer


def non_empty_answer(item: BenchmarkItem) -> str:
    if not item.answer.strip():
        raise RowProblem(BAD_ANSWER, "the answer cell is empty")
    return item.answer.strip()


def choice_letter(item: BenchmarkItem, answer: str | None = None) -> str:
    """The answer as an option letter of the item; fewer than two options or a letter that is not
    among them is a RowProblem."""
    if len(item.options) < 2:
        raise RowProblem(BAD_OPTIONS, f"{len(item.options)} option(s); a choice question needs at least 2")
    letter = (item.answer if answer is None else answer).strip().upper()
    if letter not in item.options:
        raise RowProblem(
            BAD_ANSWER, f"answer {letter!r} is not one of the options {', '.join(sorted(item.options))}"
        )
    return letter


def integer_index(item: BenchmarkItem) -> int:
    if not isinstance(item.index, int):
        raise RowProblem(BAD_INDEX, f"index {item.index!r} is not an integer")
    return item.index


def parse_integer(value: str, column: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise RowProblem(BAD_INDEX, f"{column} {value!r} is not an integer") from None
    if not number.is_integer():
        raise RowProblem(BAD_INDEX, f"{column} {value!r} is not an integer")
    return int(number)


def answer_list(text: str) -> list[str] | None:
    """The answers of a cell written as a Python/JSON list literal ("['a', 'b']"), or None when the
    cell is not such a literal (a plain answer). Only literals are evaluated (`ast.literal_eval`)."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None  # e.g. "[sic]": a plain answer that happens to be bracketed
    if not isinstance(value, list):
        return None
    return [str(entry).strip() for entry in value]


def annotator_answers(item: BenchmarkItem) -> list[str]:
    """VQA-style answers: the list literal of the answer cell, or the plain cell as one answer."""
    answers = answer_list(item.answer)
    if answers is None:
        answers = [item.answer.strip()]
    answers = [answer for answer in answers if answer]
    if not answers:
        raise RowProblem(BAD_ANSWER, f"no answer in {item.answer!r}")
    return answers


def l2_category(columns: dict[str, str]) -> dict[str, str]:
    """{"l2_category": ...} from an `l2-category` (or `l2_category`) cell, else {}."""
    value = cell(columns, "l2-category", "l2_category")
    return {} if value is None else {"l2_category": value}


def image_hash(image_b64: str) -> str:
    return "sha1:" + hashlib.sha1(image_b64.encode("ascii", "replace")).hexdigest()[:16]


def with_contract(item: BenchmarkItem, **changes: Any) -> BenchmarkItem:
    """The item with the bare question and the given field changes."""
    changes.setdefault("question", bare_question(item))
    return replace(item, **changes)

