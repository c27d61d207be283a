"""SEED-Bench, image questions (seed_img), and MMStar (mmstar): multiple choice read by VLMEvalKit's
rule-based choice extraction and scored per category (`reference.seed_mmstar`): SEED-Bench's
question types, MMStar's core capabilities. Its default files are in `define(...)` below.

VLMEvalKit's files: SEEDBench_IMG.tsv: index, image, question, A-D, answer (a letter), category
(the question type). MMStar.tsv: index, image, question, A-D, answer (a letter), category,
l2-category (or l2_category as in the Hugging Face release).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.formats.tsv_rows import (
    BASE_COLUMNS,
    TsvLayout,
    choice_letter,
    l2_category,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.reference.seed_mmstar import choice_accuracy
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

SEED_TSV_LAYOUT = TsvLayout(
    "SEED-Bench", "SEEDBench_IMG.tsv", (*BASE_COLUMNS, "category", "A", "B"), ("C", "D")
)
MMSTAR_TSV_LAYOUT = TsvLayout(
    "MMStar", "MMStar.tsv", (*BASE_COLUMNS, "category", "A", "B"), ("C", "D", "l2-category")
)


def load_seed_tsv(path: str | Path, name: str = "SEED-Bench") -> Benchmark:
    """SEED-Bench (image): `options`, `answer` a letter, `category` (question type),
    `extras["l2_category"]` where present."""
    return read_benchmark_tsv(path, name, SEED_TSV_LAYOUT, "multiple_choice", _plain_choice)


def load_mmstar_tsv(path: str | Path, name: str = "MMStar") -> Benchmark:
    """MMStar: `options`, `answer` a letter, `category` (core capability), `extras["l2_category"]`
    from `l2-category` or `l2_category`."""
    return read_benchmark_tsv(path, name, MMSTAR_TSV_LAYOUT, "multiple_choice", _plain_choice)


def _plain_choice(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
    return with_contract(item, answer=choice_letter(item), extras={**item.extras, **l2_category(columns)})


def score_choice(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """SEED-Bench (image) and MMStar: VLMEvalKit's rule-based choice extraction, per category."""
    l2 = [item.extras.get("l2_category") for item in items]
    entry = choice_accuracy(
        list(predictions), [item.answer for item in items], [item.options for item in items],
        [item.category for item in items],
        l2_categories=[str(value) for value in l2] if all(value is not None for value in l2) and l2 else None,
        matcher=context.matcher,
    )
    return as_percent(entry, "accuracy", "accuracy (%)")


SCORER = register_scorer("choice", score_choice)

SEED_IMG = define(
    "seed_img", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_seed_tsv, SEED_TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/SEEDBench_IMG.tsv"}},
    report=[{"column": "SEED", "metric": "accuracy", "scale": 100}],
)
MMSTAR = define(
    "mmstar", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_mmstar_tsv, MMSTAR_TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MMStar.tsv"}},
    report=[{"column": "MMStar", "metric": "accuracy", "scale": 100}],
)
