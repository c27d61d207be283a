"""The evaluation report: the comparison with the published rows, and a real offline W&B eval run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from allava.evaluation.report import (
    Published,
    PublishedRow,
    ReportColumn,
    comparison_table,
    load_published,
    log_eval_run,
)
from tests.helpers.wandb_offline import find_runs, read_run

SHARED_MARKDOWN = Path("/work/shared/allava_published_results.md")

RESULTS = {
    "MME": {"perception": 1311.66, "cognition": 257.94, "per_category": {"OCR": 140.0}},
    "POPE": {"kind": "yes_no", "mean_f1_over_splits": 0.85, "pooled_accuracy": 0.8, "num_items": 30, "skipped": 0,
             "per_category": {"random": {"f1": 0.9, "accuracy": 0.875}}},
    "MMVet": {"total": None},  # a metric present but None shows as missing
    "toy_mcq": {"kind": "multiple_choice", "accuracy": 2 / 3, "num_items": 12, "skipped": 1},
}
COLUMNS = {
    "toy_mcq": [ReportColumn("toy_mcq", "accuracy", 100, 0)],
    "POPE": [ReportColumn("POPE", "per_category.random.f1", 100, 2)],
    "MME": [ReportColumn("MME-P", "perception"), ReportColumn("MME-C", "cognition")],
    "MMVet": [ReportColumn("MM-Vet", "total")],
    "GQA": [ReportColumn("GQA", "accuracy", 100)],  # not in RESULTS
}


def small_published() -> Published:
    columns = {"GQA": "GQA", "MME-P": "MME perception", "MMVP": "MMVP", "MME-C": "MME cognition",
               "MM-Vet": "MM-Vet", "POPE": "POPE"}
    return Published(
        source="Some README, arXiv:0000.00000, Table 4", star_note="* = evaluated by others",
        columns=columns,
        rows=[PublishedRow("Small (1B)", {"GQA": 48.8, "MME-P": 1316.2, "MMVP": 36.0,
                                          "MME-C": 301.8, "MM-Vet": 32.2, "POPE": None}),
              PublishedRow("Big-7B", {"GQA": 62.0, "MME-P": 1504.4, "MMVP": 24.7, "MME-C": None,
                                      "MM-Vet": 31.1, "POPE": None}, frozenset({"MME-P"}))],
    )


def test_comparison_table_exact_markdown():
    # Columns in the published order (MMVP: filled by none of ours, left out), then toy_mcq,
    # which the published file lacks; GQA (not evaluated) and MM-Vet (None) are "–" for ours.
    expected = """\
| Model      | GQA  | MME-P   | MME-C | MM-Vet | POPE  | toy_mcq |
|------------|------|---------|-------|--------|-------|---------|
| ours       | –    | 1311.7  | 257.9 | –      | 90.00 | 67      |
| Small (1B) | 48.8 | 1316.2  | 301.8 | 32.2   | –     | –       |
| Big-7B     | 62.0 | 1504.4* | –     | 31.1   | –     | –       |

Published rows: Some README, arXiv:0000.00000, Table 4. * = evaluated by others. \
– = not reported or not evaluated."""
    assert comparison_table(RESULTS, COLUMNS, small_published(), model_label="ours") == expected


def test_comparison_table_first_benchmark_with_a_value_fills_a_shared_column():
    columns = {"GQA_a": [ReportColumn("GQA", "accuracy", 100)],
               "GQA_b": [ReportColumn("GQA", "accuracy", 100, 2)]}
    table = comparison_table({"GQA_b": {"accuracy": 0.5}}, columns, small_published())
    assert table.splitlines()[2].split("|")[2].strip() == "50.00"


def _shared_table() -> dict[str, dict[str, str]]:
    """model -> {label: cell as printed} from the shared markdown's table."""
    lines = [l for l in SHARED_MARKDOWN.read_text().splitlines() if l.startswith("|")]
    split = lambda line: [cell.strip() for cell in line.strip("|").split("|")]  # noqa: E731
    header = split(lines[0])[1:]
    return {cells[0]: dict(zip(header, cells[1:])) for cells in map(split, lines[2:])}


def test_load_published_real_file():
    published = load_published()
    assert [row.model for row in published.rows][:3] == [
        "ALLaVA-Phi2 (2.7B)", "ALLaVA-StableLM2 (1.6B)", "ALLaVA-Phi3 (3.8B)"]
    assert {"LLaVA-1.5-7B", "TinyLLaVA (3.1B)", "MobileVLM-v2 (3B)"} <= {
        row.model for row in published.rows}
    assert "arXiv:2402.11684" in published.source and "Table 4" in published.source
    assert "FreedomIntelligence/ALLaVA" in published.source
    rows = {row.model: row for row in published.rows}
    assert rows["ALLaVA-StableLM2 (1.6B)"].values["MME-P"] == 1311.7
    assert rows["ALLaVA-Phi2 (2.7B)"].values["MME-C"] == 301.8
    assert rows["LLaVA-1.5-7B"].starred >= {"MME-P", "MMVP"}
    assert "GQA" not in rows["LLaVA-1.5-7B"].starred
    for label in ("POPE", "MMStar", "VizWiz"):  # not in ALLaVA's table, present as null
        assert label in published.columns
        assert all(row.values[label] is None for row in published.rows)


@pytest.mark.skipif(not SHARED_MARKDOWN.is_file(), reason="the shared published-results note")
def test_load_published_matches_the_shared_markdown():
    """Every value and every star of every row, against the table it was copied from."""
    published, shared = load_published(), _shared_table()
    assert set(shared) == {row.model for row in published.rows}
    for row in published.rows:
        for label, cell in shared[row.model].items():
            expected = None if cell == "–" else float(cell.rstrip("*"))
            assert row.values[label] == expected, (row.model, label)
            assert (label in row.starred) == cell.endswith("*"), (row.model, label)


def test_comparison_table_on_the_real_file_keeps_stars_and_cites_the_source():
    table = comparison_table(RESULTS, COLUMNS, load_published())
    lines = table.splitlines()
    assert lines[0].split("|")[1:-1] == [" Model                   ", " GQA  ", " MME-P   ",
                                         " MME-C  ", " MM-Vet ", " POPE  ", " toy_mcq "]
    assert re.search(r"\| ALLaVA-StableLM2 \(1\.6B\) \| 49\.8 +\| 1311\.7 +\| 257\.9 ", table)
    assert re.search(r"\| LLaVA-1\.5-7B +\| 62\.0 +\| 1504\.4\* \| 324\.6\* \| 31\.1 ", table)
    assert lines[-1].startswith("Published rows: FreedomIntelligence/ALLaVA README")


def test_log_eval_run_writes_a_real_offline_run(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    markdown = comparison_table(RESULTS, COLUMNS, load_published())
    run_dir = log_eval_run(RESULTS, markdown, group="toy-group", name="toy-group-eval",
                           save_dir=tmp_path / "eval", config={"model_dir": "/some/export"},
                           columns_by_benchmark=COLUMNS)
    assert find_runs(tmp_path / "eval") == [run_dir]
    run, summary = read_run(run_dir)
    assert run["job_type"] == "eval" and run["group"] == "toy-group"
    assert run["name"] == "toy-group-eval" and run["project"] == "allava"
    assert run["config"]["model_dir"] == "/some/export"
    # Every numeric leaf, under eval/<benchmark>/<path>; None, strings and bools are not numbers.
    assert summary["eval/MME/perception"] == 1311.66
    assert summary["eval/MME/per_category/OCR"] == 140.0
    assert summary["eval/POPE/per_category/random/f1"] == 0.9
    assert summary["eval/POPE/num_items"] == 30
    assert summary["eval/toy_mcq/skipped"] == 1
    assert not any(key.startswith("eval/MMVet") for key in summary)
    assert "eval/POPE/kind" not in summary
    assert summary["eval/comparison_markdown"] == markdown
    assert summary["eval/results/_type"] == "table-file" and summary["eval/results/nrows"] == 4
    # The table's rows, as saved in the run's files: one per benchmark, on the published scale.
    table = json.loads((run_dir / "files" / summary["eval/results/path"]).read_text())
    assert table["columns"] == ["benchmark", "kind", "num_items", "skipped", "toy_mcq", "POPE",
                                "MME-P", "MME-C", "MM-Vet", "GQA"]
    rows = {row[0]: row for row in table["data"]}
    assert rows["POPE"][5] == pytest.approx(90.0) and rows["MME"][6] == 1311.66
    assert rows["toy_mcq"][1:5] == ["multiple_choice", 12, 1, pytest.approx(200 / 3)]
    assert rows["MMVet"][8] is None
    assert (run_dir / "files" / "comparison.md").read_text() == markdown + "\n"
