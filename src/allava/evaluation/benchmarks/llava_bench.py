"""LLaVA-Bench (in the wild): the judge compares each answer with GPT-4's reference answer
(`judge.llava_bench`); headline: the relative score. Its default files are in `define(...)` below.

VLMEvalKit's LLaVABench.tsv: index, image, question, caption, gpt4_ans (GPT-4's reference answer),
category (conv / detail / complex).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.formats.tsv_rows import (
    BAD_CATEGORY,
    RowProblem,
    TsvLayout,
    non_empty_answer,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.judge import LLAVA_BENCH_CATEGORIES, JudgeSettings, grade_llava_bench
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, grade_with_judge, register_scorer

TSV_LAYOUT = TsvLayout(
    "LLaVA-Bench", "LLaVABench.tsv", ("index", "image", "question", "caption", "gpt4_ans", "category")
)


def load_llava_bench_tsv(path: str | Path, name: str = "LLaVA-Bench") -> Benchmark:
    """LLaVA-Bench (in-the-wild): `answer` = `extras["reference"]` = GPT-4's answer (`gpt4_ans`),
    `extras["caption"]` = the `caption` cell, `category` one of conv / detail / complex (also read
    from "conversation", "detail description", "complex reasoning", "llava_bench_conv", ...)."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        key = raw.lower().removeprefix("llava_bench_")
        category = next((name for name in LLAVA_BENCH_CATEGORIES if key.startswith(name)), None)
        if category is None:
            known = ", ".join(LLAVA_BENCH_CATEGORIES)
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not one of {known}")
        reference = non_empty_answer(item)
        extras = {**item.extras, "reference": reference, "caption": cell(columns, "caption") or ""}
        return with_contract(item, answer=reference, category=category, extras=extras)

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "open_ended", convert, answer_column="gpt4_ans")


def score_llava_bench(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """LLaVA-Bench (in-the-wild): the judge's relative score against GPT-4's reference answers."""
    settings = context.judge or JudgeSettings()
    records = [{"id": str(item.index), "question": item.question, "category": item.category,
                "reference": item.extras["reference"], "caption": item.extras.get("caption", "")}
               for item in items]
    entry = grade_with_judge(settings, lambda client: grade_llava_bench(
        records, list(predictions), client, context.judge_concurrency, settings=settings))
    return {"metric": "relative score (%)", "score": (entry["relative"] or {}).get("overall"), **entry}


SCORER = register_scorer("llava_bench", score_llava_bench, judged=True)

LLAVA_BENCH = define(
    "llava_bench", scorer=SCORER, max_new_tokens=1024,
    readers={"tsv": tsv_reader(load_llava_bench_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/LLaVABench.tsv"}},
    report=[{"column": "LLaVA-W", "metric": "relative.overall", "scale": 1}],
)
