"""MMBench dev, English (mmbench_en) and Chinese (mmbench_cn): multiple choice with hints, scored by
VLMEvalKit's circular evaluation (`reference.mmbench`: a question counts only if every rotation
is right) with rule-based answer extraction (an LLM matcher only with eval.py's
`choice_matcher=true`). MMBench-CN asks with LLaVA-1.5's Chinese answer instruction. Its default
files are in `define(...)` below.

VLMEvalKit's MMBench_DEV_EN.tsv / MMBench_DEV_CN.tsv (also the _V11 files): index (rotated copies
of a question add multiples of 1,000,000), image, question, hint, A-D, answer (a letter),
category, l2-category, split, optionally g_index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.formats.tsv_rows import (
    BAD_INDEX,
    BASE_COLUMNS,
    RowProblem,
    TsvLayout,
    choice_letter,
    integer_index,
    l2_category,
    parse_integer,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.prompts import MMBENCH_CN_STYLE
from allava.evaluation.reference.mmbench import circular_accuracy
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

TSV_LAYOUT = TsvLayout(
    "MMBench", "MMBench_DEV_EN.tsv / MMBench_DEV_CN.tsv", (*BASE_COLUMNS, "category", "A", "B"),
    ("hint", "C", "D", "l2-category", "split", "g_index"),
)


def load_mmbench_tsv(path: str | Path, name: str = "MMBench") -> Benchmark:
    """MMBench (EN or CN dev): `options`, `answer` a letter, `category`, `hint`; the integer
    `index` (rotated copies >= 1,000,000); `extras["l2_category"]`, `extras["split"]` and the
    integer `extras["g_index"]` where the file has those columns."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = {**item.extras, **l2_category(columns)}
        if (split := cell(columns, "split")) is not None:
            extras["split"] = split
        if "g_index" in columns:
            g_index = cell(columns, "g_index")
            if g_index is None:
                raise RowProblem(BAD_INDEX, "the g_index cell is empty")
            extras["g_index"] = parse_integer(g_index, "g_index")
        return with_contract(item, index=integer_index(item), answer=choice_letter(item), extras=extras)

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "multiple_choice", convert)


def score_mmbench(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """VLMEvalKit's circular evaluation (a question counts only if every rotation is right)."""
    group_ids = None
    if any("g_index" in item.extras for item in items):
        group_ids = [int(item.extras.get("g_index", item.index)) for item in items]
    entry = circular_accuracy(
        [int(item.index) for item in items], list(predictions), [item.answer for item in items],
        [item.options for item in items], [item.category for item in items], context.matcher,
        group_ids=group_ids,
    )
    entry.pop("group_hits")
    entry["num_items"] = len(items)
    return as_percent(entry, "accuracy", "circular accuracy (%)")


SCORER = register_scorer("mmbench", score_mmbench)

MMBENCH_EN = define(
    "mmbench_en", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_mmbench_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MMBench_DEV_EN.tsv"}},
    report=[{"column": "MMB-en", "metric": "accuracy", "scale": 100}],
)
MMBENCH_CN = define(
    "mmbench_cn", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_mmbench_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MMBench_DEV_CN.tsv"}},
    prompt={"multiple_choice_suffix": MMBENCH_CN_STYLE.multiple_choice_suffix},
    report=[{"column": "MMB-cn", "metric": "accuracy", "scale": 100}],
)
