"""Metrics and scoring, against values computed by hand."""

import pytest

from allava.evaluation import (
    BenchmarkItem,
    exact_match_metrics,
    format_results_table,
    multiple_choice_metrics,
    per_category_accuracy,
    score_predictions,
    yes_no_metrics,
)
from allava.evaluation.metrics import yes_no_counts, yes_no_rates


def test_yes_no_metrics_on_a_confusion_matrix_with_every_cell() -> None:
    predictions = ["yes", "yes", "no", "no", "yes"]
    targets = ["yes", "no", "no", "yes", "yes"]  # TP=2, FP=1, TN=1, FN=1
    metrics = yes_no_metrics(predictions, targets)
    assert metrics == pytest.approx(
        {"accuracy": 3 / 5, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "yes_ratio": 3 / 5}
    )
    assert all(type(value) is float for value in metrics.values())


def test_yes_no_counts_are_named_as_eval_pope_prints_them() -> None:
    # LLaVA's eval_pope.py lines 39-51: "yes" is the positive class; printed as TP FP TN FN.
    counts = yes_no_counts(["yes", "yes", "no", "no", "yes"], ["yes", "no", "no", "yes", "yes"])
    assert counts == {"TP": 2, "FP": 1, "TN": 1, "FN": 1}
    assert all(type(value) is int for value in counts.values())
    assert yes_no_counts([], []) == {"TP": 0, "FP": 0, "TN": 0, "FN": 0}
    assert yes_no_rates(counts) == yes_no_metrics(["yes", "yes", "no", "no", "yes"],
                                                  ["yes", "no", "no", "yes", "yes"])


def test_yes_ratio_counts_predictions_not_targets() -> None:
    metrics = yes_no_metrics(["yes", "yes", "yes", "no"], ["no", "no", "no", "no"])
    assert metrics["yes_ratio"] == pytest.approx(3 / 4)
    assert metrics["accuracy"] == pytest.approx(1 / 4)
    assert metrics["precision"] == 0.0  # TP=0, FP=3
    assert metrics["recall"] == 0.0  # no positives at all: 0/0 scores 0


def test_precision_is_zero_when_nothing_is_predicted_yes() -> None:
    metrics = yes_no_metrics(["no", "no", "no"], ["no", "no", "yes"])
    assert metrics == pytest.approx(
        {"accuracy": 2 / 3, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0}
    )


def test_yes_no_metrics_on_perfect_and_empty_inputs() -> None:
    perfect = yes_no_metrics(["yes", "no"], ["yes", "no"])
    assert perfect == pytest.approx({"accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0, "yes_ratio": 0.5})
    assert yes_no_metrics([], []) == {"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0}


def test_multiple_choice_counts_unparsable_as_wrong() -> None:
    metrics = multiple_choice_metrics(["A", None, "C", "B"], ["A", "B", "C", "D"])
    assert metrics == {"accuracy": 0.5, "unparsable": 1}


def test_exact_match_accuracy() -> None:
    assert exact_match_metrics(["eiffel tower", "two"], ["eiffel tower", "three"]) == {"accuracy": 0.5}


def test_per_category_accuracy_is_sorted_by_category() -> None:
    result = per_category_accuracy([True, False, True, True], ["x", "x", "z", "y"])
    assert result == {"x": 0.5, "y": 1.0, "z": 1.0}
    assert list(result) == ["x", "y", "z"]


def test_metrics_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 targets"):
        exact_match_metrics(["a", "b"], ["a"])


def _item(index: int, answer: str, category: str, options: dict[str, str] | None = None) -> BenchmarkItem:
    return BenchmarkItem(index=index, question="q", answer=answer, category=category, options=options or {})


def test_score_yes_no_parses_raw_outputs() -> None:
    items = [_item(1, "Yes", "a"), _item(2, "no", "a"), _item(3, "yes", "b")]
    scores = score_predictions("yes_no", items, ["Yes, there is.", "There is no cat.", "No."])
    assert scores.pop("per_category") == {"a": 1.0, "b": 0.0}
    assert scores == pytest.approx(
        {"accuracy": 2 / 3, "precision": 1.0, "recall": 0.5, "f1": 2 / 3, "yes_ratio": 1 / 3, "num_items": 3}
    )


def test_score_multiple_choice_and_short_answer() -> None:
    options = {"A": "cat", "B": "dog"}
    items = [_item(1, "A", "pets", options), _item(2, "b", "pets", options), _item(3, "A", "wild", options)]
    scores = score_predictions("multiple_choice", items, ["A", "dog", "maybe"])
    assert scores == {
        "accuracy": 2 / 3,
        "unparsable": 1,
        "per_category": {"pets": 1.0, "wild": 0.0},
        "num_items": 3,
    }
    short = score_predictions("short_answer", [_item(1, "The Louvre", "art")], ["louvre."])
    assert short == {"accuracy": 1.0, "per_category": {"art": 1.0}, "num_items": 1}


def test_results_table_has_a_row_per_benchmark_and_per_category() -> None:
    results = {
        "toy_pope": {  # a generic yes/no entry (benchmarks.generic); POPE's own: the test below
            "kind": "yes_no", "accuracy": 0.859, "precision": 0.9, "recall": 0.8, "f1": 0.847, "yes_ratio": 0.45,
            "per_category": {"adversarial": 0.84, "random": 0.878}, "num_items": 9000, "skipped": 2,
        },
        "MMBench_DEV_EN": {
            "kind": "multiple_choice", "accuracy": 0.645, "unparsable": 3,
            "per_category": {"ocr": 0.645}, "num_items": 4329, "skipped": 0,
        },
    }
    lines = format_results_table(results).splitlines()
    assert lines[0].split("|")[1].strip() == "Benchmark"
    assert len({len(line) for line in lines}) == 1  # fixed width
    pope = next(line for line in lines if line.startswith("| toy_pope "))
    assert "85.90" in pope and "9000" in pope and "f1 84.70" in pope and "yes_ratio 45.00" in pope
    assert any("adversarial" in line and "84.00" in line for line in lines)
    mmbench = next(line for line in lines if "MMBench_DEV_EN" in line)
    assert "64.50" in mmbench and "unparsable 3" in mmbench
    assert not any("ocr" in line for line in lines)  # one category only: no repeat row


def test_results_table_shows_pope_headline_means_and_pooled_metrics() -> None:
    entry = {"kind": "yes_no", "metric": "mean F1 over splits (%)", "score": 84.0, "mean_f1_over_splits": 0.84,
             "mean_accuracy_over_splits": 0.85, "mean_yes_ratio_over_splits": 0.45, "pooled_accuracy": 0.86,
             "pooled_f1": 0.83, "pooled_yes_ratio": 0.44, "num_items": 8910, "skipped": 0,
             "per_category": {"adversarial": {"TP": 1, "f1": 0.8, "accuracy": 0.81},
                              "random": {"TP": 2, "f1": 0.88, "accuracy": 0.89}}}
    lines = format_results_table({"pope": entry}).splitlines()
    pope = next(line for line in lines if line.startswith("| pope "))
    assert "| 84.00 " in pope and "mean F1 over splits (%)" in pope
    assert "mean_accuracy_over_splits 85.00, mean_yes_ratio_over_splits 45.00" in pope
    assert "pooled_accuracy 86.00, pooled_f1 83.00, pooled_yes_ratio 44.00" in pope
    assert any(line.startswith("|   random ") and "| 88.00 " in line for line in lines)  # a split's F1
