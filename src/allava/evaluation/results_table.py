"""Render evaluation results as a Markdown table that also reads well as plain text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_HEADER = ("Benchmark", "Kind", "Accuracy (%)", "Items", "Skipped", "Details")
_PERCENT_DETAILS = ("precision", "recall", "f1", "yes_ratio")
_COUNT_DETAILS = ("unparsable",)


def format_results_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per benchmark, followed by one indented row per category when there are several."""
    rows: list[tuple[str, ...]] = []
    for name, entry in results.items():
        rows.append(
            (
                name,
                str(entry.get("kind", "")),
                _percent(entry.get("accuracy")),
                str(entry.get("num_items", "")),
                str(entry.get("skipped", "")),
                _details(entry),
            )
        )
        per_category = entry.get("per_category", {})
        if len(per_category) > 1:  # a single category repeats the benchmark row
            rows.extend(
                (f"  {category}", "", _percent(accuracy), "", "", "")
                for category, accuracy in per_category.items()
            )
    widths = [max(len(row[column]) for row in [_HEADER, *rows]) for column in range(len(_HEADER))]
    lines = [_table_line(_HEADER, widths), "|" + "|".join("-" * (width + 2) for width in widths) + "|"]
    lines.extend(_table_line(row, widths) for row in rows)
    return "\n".join(lines)


def _details(entry: Mapping[str, Any]) -> str:
    parts = [f"{key} {_percent(entry[key])}" for key in _PERCENT_DETAILS if key in entry]
    parts += [f"{key} {entry[key]}" for key in _COUNT_DETAILS if key in entry]
    return ", ".join(parts)


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else ""


def _table_line(cells: tuple[str, ...], widths: list[int]) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"
