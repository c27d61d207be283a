"""The evaluation report: our scores beside the published ALLaVA rows, and a W&B eval run.

`results` is what `evaluate_benchmarks` writes to results.json ({benchmark: metrics entry});
`ReportColumn`s say which published column each benchmark's metric fills. The published rows ship
with the package: `allava/evaluation/resources/published_allava.yaml` (PUBLISHED_FILE).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from allava.utils.package_data import ResourcePath, read_yaml, resource
from allava.utils.wandb_mode import resolve_wandb_mode

PUBLISHED_FILE = resource("allava.evaluation", "resources", "published_allava.yaml")
MISSING = "–"


@dataclass(frozen=True)
class ReportColumn:
    """`metric` is a dotted path into a benchmark's results entry ("relative.overall");
    `scale` brings it to the published scale (100 for fractions)."""

    column: str
    metric: str
    scale: float = 1.0
    digits: int = 1


@dataclass(frozen=True)
class PublishedRow:
    model: str
    values: dict[str, float | None]  # None = not reported
    starred: frozenset[str] = frozenset()  # columns whose value was evaluated by ALLaVA's authors


@dataclass(frozen=True)
class Published:
    source: str
    star_note: str
    columns: dict[str, str]  # label -> what it measures, in the published order
    rows: list[PublishedRow] = field(default_factory=list)
    digits: int = 1


def load_published(path: ResourcePath | None = None) -> Published:
    """The published rows from `path` (default: PUBLISHED_FILE, inside the package)."""
    path, data = read_yaml(path, PUBLISHED_FILE, "published results file")
    columns = dict(data["columns"])
    rows = []
    for row in data["rows"]:
        values, starred = dict(row["values"]), frozenset(row.get("starred") or ())
        # A typo in a label would silently drop a value from the table: refuse it here.
        unknown = (set(values) | starred) - set(columns)
        if unknown:
            raise ValueError(f"{path}: {row['model']}: "
                             f"unknown columns {sorted(unknown)}")
        rows.append(PublishedRow(row["model"], {c: values.get(c) for c in columns}, starred))
    return Published(source=" ".join(data["source"].split()), star_note=data.get("star_note", ""),
                     columns=columns, rows=rows, digits=int(data.get("digits", 1)))


def metric_value(entry: Mapping[str, Any] | None, path: str) -> float | None:
    """The number at a dotted path, or None when any step is missing or it is not a number."""
    value: Any = entry
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _our_cells(results: Mapping[str, Mapping[str, Any]],
               columns_by_benchmark: Mapping[str, Sequence[ReportColumn]]) -> dict[str, str]:
    """column label -> our formatted value; when two benchmarks fill a column, the first with a
    value wins."""
    cells: dict[str, str] = {}
    for benchmark, columns in columns_by_benchmark.items():
        for col in columns:
            value = metric_value(results.get(benchmark), col.metric)
            if cells.get(col.column, MISSING) == MISSING:
                cells[col.column] = _fmt(None if value is None else value * col.scale, col.digits)
    return cells


def comparison_table(results: Mapping[str, Mapping[str, Any]],
                     columns_by_benchmark: Mapping[str, Sequence[ReportColumn]],
                     published: Published, model_label: str = "this model") -> str:
    """Markdown: our row, then the published rows, over the columns our benchmarks fill."""
    ours = _our_cells(results, columns_by_benchmark)
    labels = [c for c in published.columns if c in ours]
    labels += [c for c in ours if c not in published.columns]  # benchmarks ALLaVA did not report
    header = ("Model", *labels)
    rows = [(model_label, *(ours[c] for c in labels))]
    for row in published.rows:
        rows.append((row.model, *(_fmt(row.values.get(c), published.digits, c in row.starred)
                                  for c in labels)))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [_line(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [_line(r, widths) for r in rows]
    lines += ["", f"Published rows: {published.source}. {published.star_note}. "
                  f"{MISSING} = not reported or not evaluated."]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int, star: bool = False) -> str:
    if value is None:
        return MISSING
    return f"{value:.{digits}f}" + ("*" if star else "")


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"


def numeric_leaves(entry: Any, prefix: str) -> dict[str, float]:
    """Every number under `entry` as {"prefix/a/b": value}; bools, strings and lists are left
    out."""
    if isinstance(entry, Mapping):
        out: dict[str, float] = {}
        for key, value in entry.items():
            out.update(numeric_leaves(value, f"{prefix}/{key}"))
        return out
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return {prefix: entry}
    return {}


def log_eval_run(results: Mapping[str, Mapping[str, Any]], comparison_markdown: str, *,
                 group: str | None, name: str, project: str = "allava", entity: str | None = None,
                 mode: str = "auto", save_dir: str | Path, config: Mapping[str, Any] | None = None,
                 columns_by_benchmark: Mapping[str, Sequence[ReportColumn]] | None = None) -> Path:
    """One W&B run (job_type "eval", in the training run's group) holding the results; returns
    the run's local directory (`<save_dir>/wandb/offline-run-*` offline)."""
    import wandb

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project, entity=entity, group=group, name=name, job_type="eval",
        dir=str(save_dir), mode=resolve_wandb_mode(mode), config=dict(config or {}),
        settings=wandb.Settings(init_timeout=60, console="off", x_disable_stats=True),
    )
    try:
        summary: dict[str, Any] = {}
        for benchmark, entry in results.items():
            summary.update(numeric_leaves(entry, f"eval/{benchmark}"))
        summary["eval/comparison_markdown"] = comparison_markdown
        run.summary.update(summary)
        run.log({"eval/results": _results_table(results, columns_by_benchmark)})
        # Also as a file, so the Markdown is one click away in the run's Files tab.
        (Path(run.dir) / "comparison.md").write_text(comparison_markdown + "\n")
        run_dir = Path(run.dir).parent  # run.dir is the run's files/ folder
    finally:
        run.finish()
    return run_dir


def _results_table(results: Mapping[str, Mapping[str, Any]],
                   columns_by_benchmark: Mapping[str, Sequence[ReportColumn]] | None):
    """One row per benchmark: kind, item counts, and its headline columns (on the published scale;
    accuracy in % when no columns are given)."""
    import wandb

    if columns_by_benchmark is None:
        columns_by_benchmark = {name: [ReportColumn("accuracy", "accuracy", 100)]
                                for name in results}
    labels = list(dict.fromkeys(c.column for cols in columns_by_benchmark.values() for c in cols))
    table = wandb.Table(columns=["benchmark", "kind", "num_items", "skipped", *labels])
    for benchmark, entry in results.items():
        cells: dict[str, float | None] = dict.fromkeys(labels)
        for col in columns_by_benchmark.get(benchmark, ()):
            value = metric_value(entry, col.metric)
            cells[col.column] = None if value is None else value * col.scale
        table.add_data(benchmark, entry.get("kind"), entry.get("num_items"), entry.get("skipped"),
                       *cells.values())
    return table
