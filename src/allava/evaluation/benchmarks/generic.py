"""Any VLMEvalKit TSV given by path (eval.py `benchmarks=[/dir/my_set.tsv]`): read by the generic
reader and scored by its kind, yes/no, letters or exact match (`score_predictions`).

Yes/no answers are read by `parse_yes_no`, the rule of haotian-liu/LLaVA at commit
c121f0432da27facab705978f83c4ada465e46fd, `llava/eval/eval_pope.py` (toy_pope too, so that it reads
answers as POPE does; "No\\n..." is "yes" there); letters and short answers by our own lenient
parsers, which follow no reference script.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allava.evaluation.answer_parsing import normalize_short_answer, parse_choice_letter, parse_yes_no
from allava.evaluation.formats.vlmevalkit_tsv import load_tsv_benchmark
from allava.evaluation.items import BenchmarkItem, BenchmarkKind
from allava.evaluation.metrics import (
    exact_match_metrics,
    multiple_choice_metrics,
    per_category_accuracy,
    yes_no_metrics,
)
from allava.evaluation.prompts import default_prompt_style
from allava.evaluation.registry import BenchmarkSpec
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer


def score_predictions(
    kind: BenchmarkKind, items: Sequence[BenchmarkItem], predictions: Sequence[str]
) -> dict[str, Any]:
    """The result entry for a benchmark: accuracy, kind-specific metrics, per_category, num_items."""
    if len(items) != len(predictions):
        raise ValueError(f"got {len(predictions)} predictions for {len(items)} items")
    if kind == "yes_no":
        parsed: list[str | None] = [parse_yes_no(prediction) for prediction in predictions]
        targets = [item.answer.strip().lower() for item in items]
        metrics: dict[str, Any] = yes_no_metrics(parsed, targets)  # type: ignore[arg-type]
    elif kind == "multiple_choice":
        parsed = [
            parse_choice_letter(prediction, item.options) for item, prediction in zip(items, predictions)
        ]
        targets = [item.answer.strip().upper() for item in items]
        metrics = multiple_choice_metrics(parsed, targets)
    elif kind == "short_answer":
        parsed = [normalize_short_answer(prediction) for prediction in predictions]
        targets = [normalize_short_answer(item.answer) for item in items]
        metrics = exact_match_metrics(parsed, targets)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown benchmark kind {kind!r}")
    correct = [answer is not None and answer == target for answer, target in zip(parsed, targets)]
    return {
        **metrics,
        "per_category": per_category_accuracy(correct, [item.category for item in items]),
        "num_items": len(items),
    }


def score_generic(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """Any VLMEvalKit-style TSV given by path: scored by its kind (yes/no, letters, exact match)."""
    entry = score_predictions(context.kind, items, predictions)
    return as_percent(entry, "accuracy", "accuracy (%)")


SCORER = register_scorer("generic", score_generic)


def tsv_spec(path: Path) -> BenchmarkSpec:
    """A VLMEvalKit TSV given by path: named by its stem, scored by its kind."""
    name = path.stem
    return BenchmarkSpec(name=name, load=lambda: load_tsv_benchmark(path), scorer=SCORER.name,
                         prompt=default_prompt_style(name), files={"path": path})
