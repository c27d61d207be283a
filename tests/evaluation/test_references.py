"""Every scorer names the reference code it follows, in the results, the printout and README.md."""
from __future__ import annotations

import re
from pathlib import Path

import allava.evaluation.benchmarks  # noqa: F401  (registers the benchmarks and their scorers)
from allava.evaluation.pipeline import references_text
from allava.evaluation.references import REFERENCES, reference_of
from allava.evaluation.registry import get_definition, known_benchmarks
from allava.evaluation.scorers import SCORERS

README = Path(__file__).resolve().parents[2] / "README.md"
OWN_SCORERS = {"generic"}  # this project's own rules (toy benchmarks, any TSV given by path)


def test_every_scorer_but_our_own_has_a_reference_and_no_reference_is_orphaned():
    assert set(REFERENCES) == set(SCORERS) - OWN_SCORERS
    assert reference_of("generic") is None


def test_the_readme_table_names_the_commit_and_a_file_of_every_benchmark():
    evaluate = README.read_text(encoding="utf-8").split("## Evaluate")[1].split("\n## ")[0]
    rows = [line for line in evaluate.splitlines() if line.startswith("| `") and " @ " in line]
    for name in known_benchmarks():
        scorer = get_definition(name).settings["scorer"]
        reference = reference_of(scorer)
        if reference is None:
            continue
        [row] = [row for row in rows if f"`{name}`" in row.split("|")[1]]
        assert reference.commit[:8] in row, (name, reference)
        assert any(Path(f).name in row for f in reference.files), (name, reference)


def test_the_printout_names_each_benchmark_reference():
    results = {"pope": {"reference": REFERENCES["pope"].as_dict()},
               "toy_pope": {"reference": "allava (no reference script)"}}
    text = references_text(results)
    assert "pope: haotian-liu/LLaVA@c121f043 llava/eval/eval_pope.py" in text
    assert "toy_pope: allava (no reference script)" in text
    assert re.search(r"scored as:", text)
