"""MM-Vet: open answers graded 0-1 by an OpenAI-compatible judge (eval.py: judge.base_url,
judge.model; `judge.mmvet`); no answer instruction, long generation. Its default files are in
`define(...)` below.

VLMEvalKit's MMVet.tsv: index, image, question, answer (ground truth, may hold <AND>/<OR>),
category (the capabilities, comma-joined: "rec,ocr").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.formats.tsv_rows import (
    BAD_CATEGORY,
    BASE_COLUMNS,
    RowProblem,
    TsvLayout,
    non_empty_answer,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.judge import MMVET_CAPABILITIES, JudgeSettings, grade_mmvet
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, grade_with_judge, register_scorer

TSV_LAYOUT = TsvLayout("MM-Vet", "MMVet.tsv", (*BASE_COLUMNS, "category"))


def load_mmvet_tsv(path: str | Path, name: str = "MM-Vet") -> Benchmark:
    """MM-Vet: `answer` = the ground truth, `extras["capabilities"]` = the capabilities of the
    category cell ("rec,ocr", "rec, ocr" or "rec ocr"), `category` = them comma-joined."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        capabilities = list(dict.fromkeys(raw.lower().replace(",", " ").split()))
        unknown = [name for name in capabilities if name not in MMVET_CAPABILITIES]
        if not capabilities or unknown:
            known = ", ".join(MMVET_CAPABILITIES)
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not a list of MM-Vet capabilities ({known})")
        return with_contract(item, answer=non_empty_answer(item), category=",".join(capabilities),
                             extras={**item.extras, "capabilities": capabilities})

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "open_ended", convert)


def score_mmvet(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """MM-Vet, graded by the configured OpenAI-compatible judge (JudgeNotConfigured otherwise)."""
    settings = context.judge or JudgeSettings()
    records = [{"id": str(item.index), "question": item.question, "answer": item.answer,
                "capabilities": item.extras.get("capabilities") or item.category} for item in items]
    entry = grade_with_judge(settings, lambda client: grade_mmvet(
        records, list(predictions), client, context.judge_concurrency, settings=settings))
    return {"metric": "GPT-graded total (0-100)", "score": entry["total"], **entry}


SCORER = register_scorer("mmvet", score_mmvet, judged=True)

MMVET = define(
    "mmvet", scorer=SCORER, max_new_tokens=1024,
    readers={"tsv": tsv_reader(load_mmvet_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MMVet.tsv"}},
    report=[{"column": "MM-Vet", "metric": "total", "scale": 1}],
)
