"""GQA testdev-balanced accuracy exactly as LLaVA-1.5 obtains it.

Reproduces two steps of haotian-liu/LLaVA `scripts/v1_5/eval/gqa.sh` (commit
c121f0432da27facab705978f83c4ada465e46fd, main):
  1. `scripts/convert_gqa_for_eval.py`: prediction -> `text.rstrip('.').lower()`; the text has
     already been stripped of surrounding whitespace by `llava/eval/model_vqa_loader.py`;
  2. GQA's official `eval.py` (read in the copy LLaVA users ship, e.g. SHI-Labs/VCoder
     `playground/data/eval/gqa/data/eval/eval.py` at commit 2f95684d): a question is right when
     `prediction == answer`, plain string equality; the gold answer is not normalised at all.
Per-category accuracy mirrors that script's accuracy per structural / semantic type: pass
whichever type you want as `categories`.

Quirks kept: every trailing period goes ("yes..." -> "yes"), but nothing else is cleaned, so
"yes!" or "a bus" (GQA's gold is "bus") are wrong, and "yes ." keeps its inner space.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from allava.evaluation.metrics import mean_of


def normalize_gqa_prediction(text: str) -> str:
    """Generation's strip, then LLaVA's conversion: all trailing periods removed, lowercased."""
    return text.strip().rstrip(".").lower()


def gqa_accuracy(
    predictions: Sequence[str], answers: Sequence[str], categories: Sequence[str] | None = None
) -> dict[str, Any]:
    """Exact-match accuracy as a fraction, with `per_category` (sorted) when categories are given.

    Gold answers are compared as given, as the official script does (GQA's are lowercase words).
    """
    if len(predictions) != len(answers):
        raise ValueError(f"got {len(predictions)} predictions for {len(answers)} answers")
    if categories is not None and len(categories) != len(answers):
        raise ValueError(f"got {len(categories)} categories for {len(answers)} answers")
    correct = [normalize_gqa_prediction(pred) == gold for pred, gold in zip(predictions, answers)]
    result: dict[str, Any] = {"accuracy": mean_of(correct), "num_items": len(correct)}
    if categories is not None:
        by_category: dict[str, list[bool]] = defaultdict(list)
        for is_correct, category in zip(correct, categories):
            by_category[category].append(is_correct)
        result["per_category"] = {name: mean_of(by_category[name]) for name in sorted(by_category)}
    return result
