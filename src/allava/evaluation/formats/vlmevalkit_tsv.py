"""The generic reader of benchmarks stored as VLMEvalKit-style TSV files.

Layout: a header row, then one question per row with the columns ``index``, ``image``
(base64-encoded), ``question``, ``answer``, optionally ``category`` and ``hint``, and one column
per option letter (``A``, ``B``, ...) for multiple-choice benchmarks.

Hooks for the per-benchmark readers (`tsv_rows`, `benchmarks/`): `answer_column` reads the answer
from another column (VizWiz's ``answers``, LLaVA-Bench's ``gpt4_ans``), `keep_columns` keeps each
row's cells (all but the image) in ``extras["columns"]``, and ``multi_image="first"`` reads a
multi-image row (an image cell holding a list of base64 images, as in MMMU) by its first image
instead of skipping it.

Empty cells follow pandas, with which VLMEvalKit reads these files (`pandas.read_csv` defaults):
a cell holding one of pandas' NA strings ("", "None", "NA", "N/A", "null", "nan", ...; see
`common.PANDAS_NA_STRINGS`) is missing, so an option written "None" is no option. Each file whose
option cells lose text that way gets one warning with the count.
"""

from __future__ import annotations

import ast
import csv
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from allava.evaluation.formats.common import is_blank_cell, is_pandas_na, parse_index, require_file
from allava.evaluation.items import (
    BENCHMARK_KINDS,
    DEFAULT_CATEGORY,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    BenchmarkKind,
    SkippedItem,
    UndecodableImageError,
    check_base64_image,
)

log = logging.getLogger(__name__)

MultiImageMode = Literal["skip", "first"]

REQUIRED_COLUMNS: tuple[str, ...] = ("index", "image", "question", "answer")
# VLMEvalKit stores an image shared by several questions once; the other rows hold the index of
# that row instead of the base64 text, and such a reference is at most 64 characters long.
_MAX_IMAGE_REFERENCE_LENGTH = 64
# Base64 images are far larger than csv's default 128 KiB field limit. 2**31 - 1 fits a C long on
# every platform, unlike sys.maxsize.
_CSV_FIELD_SIZE_LIMIT = 2**31 - 1


def check_tsv_header(path: str | Path, required: Sequence[str] = REQUIRED_COLUMNS) -> list[str]:
    """Read only the header of a benchmark file and fail early if a `required` column is missing."""
    path = require_file(path)
    csv.field_size_limit(_CSV_FIELD_SIZE_LIMIT)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle, delimiter="\t"), None)
    return _validated_header(path, header, required)


def load_tsv_benchmark(
    path: str | Path,
    kind: BenchmarkKind | None = None,
    *,
    answer_column: str = "answer",
    keep_columns: bool = False,
    multi_image: MultiImageMode = "skip",
) -> Benchmark:
    """Load a benchmark TSV; `kind` is inferred from the file unless given.

    A file-level problem (missing column, a row with the wrong number of fields) raises
    `BenchmarkFormatError`; a row whose image cannot be decoded is recorded in `skipped`.
    `answer_column` names the column read as `answer` (required in place of ``answer``). With
    `keep_columns`, each item's ``extras["columns"]`` holds the row's raw cells except the image.
    With ``multi_image="first"`` a row whose image cell is a list of images is read by its first
    image and gets ``extras["num_images"]`` (and ``extras["multi_image"] = True`` when the list
    holds more than one); by default such a row is skipped.
    """
    path = require_file(path)
    if kind is not None and kind not in BENCHMARK_KINDS:
        raise ValueError(f"unknown benchmark kind {kind!r}; expected one of {BENCHMARK_KINDS}")
    if multi_image not in ("skip", "first"):
        raise ValueError(f"unknown multi_image mode {multi_image!r}; expected 'skip' or 'first'")
    required = ("index", "image", "question", answer_column)
    csv.field_size_limit(_CSV_FIELD_SIZE_LIMIT)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = _validated_header(path, next(reader, None), required)
        rows = _read_rows(path, reader, header)

    option_letters = sorted(column for column in header if _is_option_letter(column))
    _warn_about_na_options(path, rows, option_letters)
    raw_images = {row["index"].strip(): row["image"] for _, row in rows}
    items: list[BenchmarkItem] = []
    skipped: list[SkippedItem] = []
    for row_number, row in rows:
        index = parse_index(row["index"])
        try:
            image_b64, num_images = _resolve_image_cell(row["image"], raw_images, multi_image)
        except UndecodableImageError as error:
            skipped.append(SkippedItem(index=index, row=row_number, reason=str(error)))
            continue
        extras: dict[str, Any] = {}
        if num_images is not None:
            extras["num_images"] = num_images
            if num_images > 1:
                extras["multi_image"] = True
        if keep_columns:
            extras["columns"] = {column: value for column, value in row.items() if column != "image"}
        items.append(
            BenchmarkItem(
                index=index,
                question=row["question"],
                answer=row[answer_column].strip(),
                category=cell(row, "category") or DEFAULT_CATEGORY,
                options={letter: text for letter in option_letters if (text := cell(row, letter))},
                hint=cell(row, "hint"),
                image_b64=image_b64,
                row=row_number,
                extras=extras,
            )
        )

    if kind is None:
        kind = infer_benchmark_kind(
            option_counts=[sum(1 for letter in option_letters if cell(row, letter)) for _, row in rows],
            answers=[row[answer_column] for _, row in rows],
        )
    return Benchmark(name=path.stem, kind=kind, items=items, skipped=skipped, path=path)


def infer_benchmark_kind(option_counts: list[int], answers: list[str]) -> BenchmarkKind:
    """Multiple choice if most rows offer >= 2 options, yes/no if every answer is yes or no."""
    rows_with_choices = sum(1 for count in option_counts if count >= 2)
    if option_counts and rows_with_choices > len(option_counts) / 2:
        return "multiple_choice"
    if answers and all(answer.strip().lower() in {"yes", "no"} for answer in answers):
        return "yes_no"
    return "short_answer"


def cell(row: dict[str, str], *columns: str) -> str | None:
    """The first non-empty (stripped) cell among `columns`, or None when each is absent or empty
    (`common.is_blank_cell`: a pandas NA string such as "None", or only blanks)."""
    for column in columns:
        value = row.get(column)
        if value is not None and not is_blank_cell(value):
            return value.strip()
    return None


def _warn_about_na_options(path: Path, rows: list[tuple[int, dict[str, str]]], letters: list[str]) -> None:
    """One warning per file counting option cells whose text pandas (so VLMEvalKit) reads as missing."""
    blanked = Counter(
        row[letter] for _, row in rows for letter in letters if row[letter] and is_pandas_na(row[letter])
    )
    if blanked:
        listed = ", ".join(f"{text!r} x{count}" for text, count in sorted(blanked.items()))
        log.warning(
            "%s: %d option cell(s) hold text that pandas reads as a missing value (%s); like "
            "VLMEvalKit, those options are left out", path, sum(blanked.values()), listed,
        )


def _validated_header(
    path: Path, header: list[str] | None, required: Sequence[str] = REQUIRED_COLUMNS
) -> list[str]:
    if not header:
        raise BenchmarkFormatError(
            f"{path}: the file is empty; expected a tab-separated header row with the columns "
            f"{', '.join(required or REQUIRED_COLUMNS)}"
        )
    header = [column.strip() for column in header]
    missing = [column for column in required if column not in header]
    if missing:
        raise BenchmarkFormatError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header has "
            f"{', '.join(header)} (is the file tab-separated?)"
        )
    duplicated = sorted({column for column in header if header.count(column) > 1})
    if duplicated:
        raise BenchmarkFormatError(f"{path}: duplicated column(s) {', '.join(duplicated)} in the header")
    return header


def _read_rows(path: Path, reader, header: list[str]) -> list[tuple[int, dict[str, str]]]:
    rows: list[tuple[int, dict[str, str]]] = []
    for fields in reader:
        if not fields:  # blank line
            continue
        row_number = len(rows) + 1
        if len(fields) != len(header):
            raise BenchmarkFormatError(
                f"{path}: data row {row_number} (ending on line {reader.line_num}) has "
                f"{len(fields)} fields but the header has {len(header)}; a tab or an unbalanced "
                "quote inside a cell is the usual cause"
            )
        rows.append((row_number, dict(zip(header, fields))))
    return rows


def _resolve_image_cell(
    image_cell: str, raw_images: dict[str, str], multi_image: MultiImageMode = "skip"
) -> tuple[str | None, int | None]:
    """(base64 text of a row's image, number of images when the cell is a list, else None),
    following VLMEvalKit's by-index references."""
    if is_blank_cell(image_cell):
        return None, None  # text-only question
    image_cell = image_cell.strip()
    if len(image_cell) <= _MAX_IMAGE_REFERENCE_LENGTH:
        target = raw_images.get(image_cell, "").strip()
        if len(target) <= _MAX_IMAGE_REFERENCE_LENGTH:
            raise UndecodableImageError(
                f"image cell {image_cell!r} is neither base64 nor the index of a row with an image"
            )
        image_cell = target
    num_images = None
    if image_cell.startswith("[") and image_cell.endswith("]"):
        if multi_image != "first":
            raise UndecodableImageError("multi-image questions are not supported (the image cell is a list)")
        images = _image_list(image_cell)
        image_cell, num_images = images[0].strip(), len(images)
    check_base64_image(image_cell)
    return image_cell, num_images


def _image_list(image_cell: str) -> list[str]:
    """The images of a list-valued image cell (a Python or JSON list literal of base64 strings)."""
    try:
        images = ast.literal_eval(image_cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
        raise UndecodableImageError(
            f"the image cell looks like a list but does not parse ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(images, list) or not images or not all(isinstance(image, str) for image in images):
        raise UndecodableImageError("the image cell is not a non-empty list of base64 strings")
    return images


def _is_option_letter(column: str) -> bool:
    return len(column) == 1 and "A" <= column <= "Z"
