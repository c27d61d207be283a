"""MMMU validation (mmmu_val): multiple-choice and open questions over 30 subjects; the official
MMMU parsing (seeded random fallback) and instance-weighted accuracy (`reference.mmmu`). Its
default files are in `define(...)` below.

VLMEvalKit's MMMU_DEV_VAL.tsv: index, image (one base64 image, or a list of them as a Python list
literal), image_path, question (with "<image 1>" tags), A-I (empty for open questions), answer (a
letter, an open answer, or a list literal of them), category (the subject, e.g. Art_Theory),
l2-category (the discipline), split ("dev" / "validation"), optionally id
("validation_Art_Theory_12") and question_type.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from allava.evaluation.formats.common import NOT_IN_SPLIT
from allava.evaluation.formats.tsv_rows import (
    BAD_ANSWER,
    BAD_CATEGORY,
    BAD_OPTIONS,
    BASE_COLUMNS,
    RowProblem,
    TsvLayout,
    answer_list,
    choice_letter,
    l2_category,
    non_empty_answer,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell, check_tsv_header
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.reference.mmmu import MULTIPLE_CHOICE, mmmu_accuracy, subject_from_id
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

TSV_LAYOUT = TsvLayout(
    "MMMU", "MMMU_DEV_VAL.tsv", BASE_COLUMNS,
    ("A", "B", "...", "category", "l2-category", "split", "id", "question_type", "image_path"),
)
SPLITS: tuple[str, ...] = ("validation", "dev", "test")
OPEN = "open"


def load_mmmu_tsv(path: str | Path, name: str = "MMMU", split: str | None = "validation") -> Benchmark:
    """MMMU (VLMEvalKit's dev+validation file), kept to `split` ("validation" or "dev"; None keeps
    every row). Rows of other splits are skipped as "not_in_split". Per item:
    `extras["question_type"]` "multiple-choice" (the row has options) or "open" (no options, as
    VLMEvalKit marks open questions; a `question_type` column wins where present),
    `extras["subject"]` (from `id` like "validation_Art_Theory_12", else the `category` column),
    `category` = the subject, `extras["l2_category"]` (discipline) where present, `extras["id"]`
    where present. `answer` as given; a list-literal answer cell gives `extras["answers"]` and its
    first element as `answer`. A multi-image row is read by its first image (`multi_image`)."""
    path = Path(path)
    header = check_tsv_header(path, required=())
    wanted = None if split is None else _split(split)
    if split is not None and wanted is None:
        raise ValueError(f"unknown MMMU split {split!r}; expected one of {', '.join(SPLITS)} or None")
    required = [*TSV_LAYOUT.required, *(["split"] if wanted is not None else [])]
    if "id" not in header:
        required.append("category")  # the subject comes from `id` or else `category`

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        if wanted is not None:
            raw_split = cell(columns, "split") or ""
            if _split(raw_split) != wanted:
                raise RowProblem(NOT_IN_SPLIT, f"row is in the {raw_split!r} split, not {wanted!r}")
        item_id = cell(columns, "id")
        subject = subject_from_id(item_id) if item_id and item_id.count("_") >= 2 else None
        subject = subject or "_".join((cell(columns, "category") or "").split())
        if not subject:
            raise RowProblem(BAD_CATEGORY, "no subject: the id and category cells are empty")
        question_type = _question_type(cell(columns, "question_type"), item)
        answers = answer_list(item.answer)
        if answers is not None:
            answers = [answer for answer in answers if answer]
            if not answers:
                raise RowProblem(BAD_ANSWER, f"the answer list {item.answer!r} is empty")
        options = item.options if question_type == MULTIPLE_CHOICE else {}
        if question_type == MULTIPLE_CHOICE:  # every gold letter must be an option
            letters = [choice_letter(item, letter) for letter in answers or [item.answer]]
            answers = letters if answers is not None else None
            answer = letters[0]
        else:
            answer = answers[0] if answers else non_empty_answer(item)
        extras = {**item.extras, **l2_category(columns), "question_type": question_type, "subject": subject}
        if item_id is not None:
            extras["id"] = item_id
        if answers is not None:
            extras["answers"] = answers
        return with_contract(item, answer=answer, options=options, category=subject, extras=extras)

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "short_answer", convert,
                              multi_image="first", required=required)


def _split(value: str) -> str | None:
    value = value.strip().lower()
    value = {"val": "validation"}.get(value, value)
    return value if value in SPLITS else None


def _question_type(declared: str | None, item: BenchmarkItem) -> str:
    if declared is None:
        return MULTIPLE_CHOICE if item.options else OPEN
    normalized = declared.strip().lower().replace("_", "-").replace(" ", "-")
    if normalized in ("multiple-choice", "multi-choice", "mcq"):
        return MULTIPLE_CHOICE
    if normalized in ("open", "open-ended", "short-answer"):
        return OPEN
    raise RowProblem(BAD_OPTIONS, f"question_type {declared!r} is neither multiple-choice nor open")


def score_mmmu(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """The official MMMU parsing and instance-weighted accuracy (seeded random fallback)."""
    records = []
    for item, prediction in zip(items, predictions, strict=True):
        record = {
            "question_type": item.extras.get("question_type", MULTIPLE_CHOICE if item.options else OPEN),
            "answer": item.extras.get("answers", item.answer),
            "response": prediction,
            "options": [item.options[letter] for letter in sorted(item.options)],
        }
        if "subject" in item.extras:
            record["subject"] = item.extras["subject"]
        else:
            record["id"] = str(item.extras.get("id", item.index))
        records.append(record)
    entry = mmmu_accuracy(records, random.Random(context.seed))
    return as_percent(entry, "accuracy", "accuracy (%)")


SCORER = register_scorer("mmmu", score_mmmu)

MMMU_VAL = define(
    "mmmu_val", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_mmmu_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MMMU_DEV_VAL.tsv"}},
    report=[{"column": "MMMU", "metric": "accuracy", "scale": 100}],
)
