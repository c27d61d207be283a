"""SEED-Bench (image) and MMStar accuracy as VLMEvalKit reports them under exact matching.

VLMEvalKit scores both with `mcq_vanilla_eval` (no circular rotations: only MMBench and CCBench
are circular, see `ImageMCQDataset.evaluate` in `vlmeval/dataset/image_mcq.py`) and reports them
with `report_acc` (`vlmeval/dataset/utils/multiple_choice.py`, open-compass/VLMEvalKit, read at
commits 9ede1af0 and 895762d3): "Overall" is the mean hit over all items, and each value of the
`category` column (and of `l2-category` where the file has one) gets the mean hit over its
items. For SEED-Bench the categories are its question types (Scene Understanding, Instance
Identity, ...); for MMStar its core capabilities (coarse perception, math, ...), with the finer
`l2-category` optional here.

Answers are read by VLMEvalKit's rules (`choice_extraction`, ported from commit e8e78f05, with
its prediction pre-processing); an item they cannot read is wrong, as under VLMEvalKit's
``exact_matching`` judge setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from allava.evaluation.metrics import per_category_accuracy
from allava.evaluation.reference.mmbench import Matcher, vanilla_accuracy


def choice_accuracy(
    predictions: Sequence[str],
    answers: Sequence[str],
    options: Sequence[Mapping[str, str]],
    categories: Sequence[str],
    *,
    l2_categories: Sequence[str] | None = None,
    matcher: Matcher | None = None,
) -> dict[str, Any]:
    """`accuracy`, `per_category` (and `per_l2_category` if given), `num_items`, `unparsed`."""
    result = vanilla_accuracy(predictions, answers, options, categories, matcher)
    hits = result.pop("hits")
    if l2_categories is not None:
        if len(l2_categories) != len(hits):
            raise ValueError(f"got {len(l2_categories)} l2_categories for {len(hits)} items")
        result["per_l2_category"] = per_category_accuracy(hits, list(l2_categories))
    return result
