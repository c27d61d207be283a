"""One table for a Hydra multirun: each job's label, image tokens, connector parameters and
evaluation scores, read from the `summary.json` that train.py leaves in each job's directory."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def collect_summaries(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job's summary, in job order (`<sweep_dir>/<job number>/summary.json`)."""
    found = []
    for path in Path(sweep_dir).glob("*/summary.json"):
        if path.parent.name.isdigit():
            found.append((int(path.parent.name), json.loads(path.read_text())))
    return [summary for _, summary in sorted(found, key=lambda item: item[0])]


def _columns(summaries: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(benchmark, category or None) in first-seen order."""
    columns: list[tuple[str, str | None]] = []
    for summary in summaries:
        for benchmark, entry in (summary.get("results") or {}).items():
            for column in [(benchmark, None)] + [(benchmark, c) for c in entry.get("per_category", {})]:
                if column not in columns:
                    columns.append(column)
    return columns


def distinct_labels(labels: list[str]) -> list[str]:
    """Each label (comma-joined overrides) without the overrides that every job shares."""
    parts = [label.split(",") if label else [] for label in labels]
    shared = set.intersection(*(set(p) for p in parts)) if len(parts) > 1 else set()
    return [",".join(p for p in job if p not in shared) or "(defaults)" for job in parts]


def format_sweep_table(summaries: list[dict[str, Any]]) -> str:
    """Markdown: a row per job; accuracy in %, `benchmark` then its `benchmark/category` columns."""
    columns = _columns(summaries)
    labels = distinct_labels([s.get("label") or Path(s["run_dir"]).name for s in summaries])
    header = ["run", "image tokens", "connector params"] + [
        benchmark if category is None else f"{benchmark}/{category}" for benchmark, category in columns]
    rows = []
    for summary, label in zip(summaries, labels):
        results = summary.get("results") or {}
        connector = (summary.get("parameters") or {}).get("connector", {})
        row = [label,
               str(summary.get("image_tokens", "")),
               f"{sum(connector.values()):,}" if connector else ""]
        for benchmark, category in columns:
            entry = results.get(benchmark, {})
            value = entry.get("accuracy") if category is None else entry.get("per_category", {}).get(category)
            row.append(f"{100 * value:.1f}" if isinstance(value, (int, float)) else "")
        rows.append(row)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class SweepResultsTable(Callback):
    """Writes `<sweep dir>/results.md` (and prints it) when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summaries = collect_summaries(sweep_dir)
        if not summaries:
            return
        table = format_sweep_table(summaries)
        (sweep_dir / "results.md").write_text(table + "\n")
        print(f"\n{table}\nsweep results: {sweep_dir / 'results.md'}")
