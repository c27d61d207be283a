"""Benchmark metrics over already-parsed answers: plain Python numbers, rates as fractions in [0, 1].

An empty input scores 0.0 rather than NaN, so that results.json stays strict JSON; `num_items`
next to the metrics tells the two cases apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch
from torchmetrics.functional.classification import binary_stat_scores


def yes_no_metrics(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """POPE-style metrics with "yes" as the positive class.

    `yes_ratio` is the share of *predictions* that are "yes" (a calibration check: POPE is
    balanced, so a model far from 0.5 is biased). Precision is 0 when nothing is predicted "yes".
    """
    return yes_no_rates(yes_no_counts(predictions, targets))


def yes_no_counts(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, int]:
    """The confusion counts TP, FP, TN, FN ("yes" positive), named as LLaVA's eval_pope.py prints them."""
    _check_same_length(predictions, targets)
    if not predictions:
        return {"TP": 0, "FP": 0, "TN": 0, "FN": 0}
    predicted = torch.tensor([answer == "yes" for answer in predictions], dtype=torch.long)
    target = torch.tensor([answer == "yes" for answer in targets], dtype=torch.long)
    tp, fp, tn, fn, _ = (int(count) for count in binary_stat_scores(predicted, target))
    return {"TP": tp, "FP": fp, "TN": tn, "FN": fn}


def yes_no_rates(counts: Mapping[str, int]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and yes ratio from confusion counts; an undefined ratio
    (0/0, e.g. precision when nothing is predicted "yes") is 0.0."""
    tp, fp, tn, fn = (counts[key] for key in ("TP", "FP", "TN", "FN"))
    total = tp + fp + tn + fn
    # Ratios in Python floats from integer counts: torchmetrics' own ratios are float32
    # (0.6 would be written as 0.6000000238418579).
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, total),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "yes_ratio": _ratio(tp + fp, total),
    }


def multiple_choice_metrics(
    predicted_letters: Sequence[str | None], target_letters: Sequence[str]
) -> dict[str, float]:
    """Accuracy over letters; an unparsable prediction (None) counts as wrong and is counted."""
    _check_same_length(predicted_letters, target_letters)
    correct = [pred is not None and pred == target for pred, target in zip(predicted_letters, target_letters)]
    return {
        "accuracy": mean_of(correct),
        "unparsable": sum(pred is None for pred in predicted_letters),
    }


def exact_match_metrics(predictions: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
    """Accuracy of normalised predictions equal to normalised targets."""
    _check_same_length(predictions, targets)
    return {"accuracy": mean_of([pred == target for pred, target in zip(predictions, targets)])}


def per_category_accuracy(correct: Sequence[bool], categories: Sequence[str]) -> dict[str, float]:
    """Accuracy within each category, categories in sorted order."""
    _check_same_length(correct, categories)
    by_category: dict[str, list[bool]] = defaultdict(list)
    for is_correct, category in zip(correct, categories):
        by_category[category].append(is_correct)
    return {category: mean_of(by_category[category]) for category in sorted(by_category)}


def mean_of(flags: Sequence[float]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with 0/0 scored as 0 (e.g. precision when nothing is predicted yes)."""
    return numerator / denominator if denominator else 0.0


def _check_same_length(first: Sequence, second: Sequence) -> None:
    if len(first) != len(second):
        raise ValueError(f"got {len(first)} predictions for {len(second)} targets")
