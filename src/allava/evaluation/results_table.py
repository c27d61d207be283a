"""Render evaluation results as a Markdown table that also reads well as plain text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_HEADER = ("Benchmark", "Metric", "Score", "Items", "Skipped", "Details")
_PERCENT_DETAILS = ("accuracy", "precision", "recall", "f1", "yes_ratio", "img_accuracy",
                    # POPE: the means over its splits beside the headline, then the pooled rates
                    "mean_accuracy_over_splits", "mean_yes_ratio_over_splits",
                    "pooled_accuracy", "pooled_f1", "pooled_yes_ratio")
_COUNT_DETAILS = ("unparsable", "unparsed", "missing_predictions", "unpaired", "errors")
# Category entries that are themselves metric dicts: the number shown for them.
_CATEGORY_HEADLINES = (("score", 1.0), ("f1", 100.0), ("accuracy", 100.0), ("acc", 1.0))


def format_results_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per benchmark (its headline `score` on the published scale, e.g. percent), then
    one indented row per category when there are several."""
    rows: list[tuple[str, ...]] = []
    for name, entry in results.items():
        score = entry.get("score")
        if score is None and isinstance(entry.get("accuracy"), (int, float)):
            score = 100 * entry["accuracy"]
        rows.append((name, str(entry.get("metric", "")), _number(score), str(entry.get("num_items", "")),
                     str(entry.get("skipped", "")), _details(entry)))
        per_category = entry.get("per_category") or {}
        if len(per_category) > 1:  # a single category repeats the benchmark row
            rows.extend((f"  {category}", "", _category_score(value), "", "",
                         _details(value) if isinstance(value, Mapping) else "")
                        for category, value in per_category.items())
    widths = [max(len(row[column]) for row in [_HEADER, *rows]) for column in range(len(_HEADER))]
    lines = [_table_line(_HEADER, widths), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines.extend(_table_line(row, widths) for row in rows)
    return "\n".join(lines)


def _category_score(value: Any) -> str:
    if isinstance(value, Mapping):
        for key, scale in _CATEGORY_HEADLINES:
            if isinstance(value.get(key), (int, float)):
                return _number(scale * value[key])
        return ""
    return _number(100 * value) if isinstance(value, (int, float)) else ""


def _details(entry: Mapping[str, Any]) -> str:
    headline = entry.get("metric", "")
    parts = [f"{key} {_number(100 * entry[key])}" for key in _PERCENT_DETAILS
             if isinstance(entry.get(key), (int, float)) and not headline.lower().startswith(key.replace("_", " "))]
    parts += [f"{key} {entry[key]}" for key in _COUNT_DETAILS if entry.get(key)]
    return ", ".join(parts)


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, (int, float)) else ""


def _table_line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"
