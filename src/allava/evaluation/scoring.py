"""Score raw predictions for one benchmark: parse each by the benchmark's kind, then compute metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from allava.evaluation.answer_parsing import normalize_short_answer, parse_choice_letter, parse_yes_no
from allava.evaluation.benchmark_files import BenchmarkItem, BenchmarkKind
from allava.evaluation.metrics import (
    exact_match_metrics,
    multiple_choice_metrics,
    per_category_accuracy,
    yes_no_metrics,
)


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
