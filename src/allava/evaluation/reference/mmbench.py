"""MMBench-style circular evaluation, and plain per-item scoring, as VLMEvalKit computes them.

Reproduces `mcq_circular_eval`, `prefetch_circular_group`, `eval_circular_group`,
`mcq_vanilla_eval`/`eval_vanilla` and the accuracy part of `report_acc` from VLMEvalKit's
`vlmeval/dataset/utils/multiple_choice.py` (open-compass/VLMEvalKit, read at commit 895762d3 and
checked unchanged at e8e78f05), with answers read by `choice_extraction.infer_choice` (VLMEvalKit's
`can_infer`) from `choice_extraction.prediction_as_loaded(prediction)`: VLMEvalKit matches (and
shows its judge) the prediction as pandas reloads it, so "None", "NA", "" and pandas' other NA
strings are matched as "nan".

Circular grouping, as VLMEvalKit does it:

- Each item's group id is ``index % 1_000_000`` (or an explicit ``g_index``). The unrotated
  question has ``index == group id``; its rotations add multiples of 1e6 to the index.
- Only groups whose unrotated item is present are scored, one result per such group, and the
  group's category is that item's category. Rotations without their unrotated item are ignored.
- A group is scored with whatever rotations are present: VLMEvalKit does not check that a group
  is complete, so a group with only its unrotated item is scored like a plain question.
- A group is correct only if every present rotation's answer equals its own ground truth. A
  rotation the rules read wrongly (including "Z") fails the group at once, without any judge
  call; if the rules read every rotation correctly the group passes; otherwise the rotations the
  rules could not read go, in index order, to the judge (`matcher`) and the first wrong one fails
  the group. Without a matcher (VLMEvalKit's ``exact_matching``) such a group is wrong.

Where VLMEvalKit's judge gives up after three tries it picks a random option; we count a matcher
returning None as wrong instead, so that scores are reproducible.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from allava.evaluation.metrics import mean_of, per_category_accuracy
from allava.evaluation.reference.choice_extraction import infer_choice, prediction_as_loaded

CIRCULAR_INDEX_STRIDE = 1_000_000

Matcher = Callable[[str, Mapping[str, str]], str | None]
"""A fallback reader (e.g. an LLM judge): (prediction, options) -> option letter, "Z" or None."""


def circular_group_id(index: int) -> int:
    """The group a (possibly rotated) MMBench item belongs to: its unrotated item's index."""
    return index % CIRCULAR_INDEX_STRIDE


def circular_accuracy(
    indices: Sequence[int],
    predictions: Sequence[str],
    answers: Sequence[str],
    options: Sequence[Mapping[str, str]],
    categories: Sequence[str] | None = None,
    matcher: Matcher | None = None,
    *,
    group_ids: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Circular accuracy over groups of rotations (see the module docstring for the rules).

    Returns `accuracy` (fraction of groups correct), `num_groups`, `per_category` (by the
    unrotated item's category, over groups), `unparsed` (items in scored groups the rules could
    not read), `ignored_items` (rotations whose unrotated item is missing) and `group_hits`.
    """
    count = len(indices)
    _check_lengths(count, predictions=predictions, answers=answers, options=options)
    if categories is not None:
        _check_lengths(count, categories=categories)
    if group_ids is not None:
        _check_lengths(count, group_ids=group_ids)
    if len(set(indices)) != count:
        raise ValueError("item indices must be unique")
    predictions = [prediction_as_loaded(prediction) for prediction in predictions]

    gids = list(group_ids) if group_ids is not None else [circular_group_id(i) for i in indices]
    # VLMEvalKit sorts predictions by index before grouping; members keep that order.
    order = sorted(range(count), key=lambda position: indices[position])
    members: dict[int, list[int]] = defaultdict(list)
    for position in order:
        members[gids[position]].append(position)
    heads = [position for position in order if indices[position] == gids[position]]

    group_hits: dict[int, bool] = {}
    unparsed = 0
    for head in heads:
        group = members[indices[head]]
        letters = [infer_choice(predictions[p], options[p]) for p in group]
        unparsed += sum(letter is None for letter in letters)
        group_hits[indices[head]] = _group_is_correct(group, letters, predictions, answers, options, matcher)

    scored = {position for head in heads for position in members[indices[head]]}
    hits = [group_hits[indices[head]] for head in heads]
    per_category: dict[str, float] = {}
    if categories is not None:
        per_category = per_category_accuracy(hits, [categories[head] for head in heads])
    return {
        "accuracy": mean_of(hits),
        "num_groups": len(heads),
        "per_category": per_category,
        "unparsed": unparsed,
        "ignored_items": count - len(scored),
        "group_hits": group_hits,
    }


def vanilla_accuracy(
    predictions: Sequence[str],
    answers: Sequence[str],
    options: Sequence[Mapping[str, str]],
    categories: Sequence[str] | None = None,
    matcher: Matcher | None = None,
) -> dict[str, Any]:
    """Each item scored alone (VLMEvalKit's `eval_vanilla`): right iff its answer equals the truth.

    The rules' answer (a letter or "Z") is final; only when they fail is `matcher` asked; an item
    nobody could read is wrong. Returns `accuracy`, `num_items`, `per_category`, `unparsed`, `hits`.
    """
    count = len(predictions)
    _check_lengths(count, answers=answers, options=options)
    if categories is not None:
        _check_lengths(count, categories=categories)
    hits: list[bool] = []
    unparsed = 0
    for raw_prediction, answer, item_options in zip(predictions, answers, options):
        prediction = prediction_as_loaded(raw_prediction)
        letter = infer_choice(prediction, item_options)
        if letter is None:
            unparsed += 1
            letter = matcher(prediction, item_options) if matcher is not None else None
        hits.append(letter is not None and letter == answer)
    return {
        "accuracy": mean_of(hits),
        "num_items": count,
        "per_category": per_category_accuracy(hits, list(categories)) if categories is not None else {},
        "unparsed": unparsed,
        "hits": hits,
    }


def _group_is_correct(
    group: Sequence[int],
    letters: Sequence[str | None],
    predictions: Sequence[str],
    answers: Sequence[str],
    options: Sequence[Mapping[str, str]],
    matcher: Matcher | None,
) -> bool:
    """One group's verdict: rule answers first, then the matcher for the unread rotations only."""
    if any(letter is not None and letter != answers[p] for p, letter in zip(group, letters)):
        return False
    if all(letter is not None for letter in letters):
        return True
    if matcher is None:
        return False
    for position, letter in zip(group, letters):
        if letter is None and matcher(predictions[position], options[position]) != answers[position]:
            return False
    return True


def _check_lengths(expected: int, **columns: Sequence[Any]) -> None:
    for name, column in columns.items():
        if len(column) != expected:
            raise ValueError(f"got {len(column)} {name} for {expected} items")
