"""Per-benchmark scoring: each benchmark's config names one scorer here (`scorer: mme`), which
feeds the answered items to the reference implementation under `scorers/` (or the judge).

Every scorer takes the answered items, their raw predictions (in the same order) and a
`ScoringContext`, and returns the benchmark's results entry: the reference's metrics, plus
`score` (the headline number on the scale the reference publishes: percent for accuracies, MME's
0-2000 sums) and `metric` (what `score` is). The fields each scorer reads from the items are the
readers' contract (see tsv_readers.py and llava_layout).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from allava.evaluation.answer_parsing import parse_yes_no
from allava.evaluation.benchmark_files import BenchmarkItem, BenchmarkKind
from allava.evaluation.judge import JudgeSettings, grade_llava_bench, grade_mmvet
from allava.evaluation.metrics import mean_of, yes_no_metrics
from allava.evaluation.scoring import score_predictions
from allava.evaluation.scorers.gqa import gqa_accuracy
from allava.evaluation.scorers.mmbench import Matcher, circular_accuracy
from allava.evaluation.scorers.mme import mme_scores
from allava.evaluation.scorers.mmmu import MULTIPLE_CHOICE, mmmu_accuracy
from allava.evaluation.scorers.scienceqa import scienceqa_accuracy
from allava.evaluation.scorers.seed_mmstar import choice_accuracy
from allava.evaluation.scorers.vqa_accuracy import vqa_score


@dataclass
class ScoringContext:
    """What some scorers need besides the items: the benchmark's kind, the judge for MM-Vet and
    LLaVA-Bench, an optional MMBench answer matcher, a seed for MMMU's random fallback."""

    kind: BenchmarkKind = "short_answer"
    judge: Any = None  # allava.evaluation.judge.JudgeSettings, or None
    judge_concurrency: int = 8
    matcher: Matcher | None = None
    seed: int = 42
    notes: list[str] = field(default_factory=list)  # warnings to show beside the results


Scorer = Callable[[Sequence[BenchmarkItem], Sequence[str], ScoringContext], dict[str, Any]]


def _percent(entry: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    return {"metric": label, "score": 100.0 * float(entry[key]), **entry}


def score_generic(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """Any VLMEvalKit-style TSV given by path: scored by its kind (yes/no, letters, exact match)."""
    entry = score_predictions(context.kind, items, predictions)
    return _percent(entry, "accuracy", "accuracy (%)")


def score_pope(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """LLaVA-1.5's eval_pope.py, per split (the item's category); headline: F1 averaged over splits."""
    by_split: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for item, prediction in zip(items, predictions, strict=True):
        # A VLMEvalKit row may belong to several splits ("adversarial,popular"): it counts in each.
        for split in item.extras.get("splits") or [item.category]:
            parsed, targets = by_split[split]
            parsed.append(parse_yes_no(prediction))
            targets.append(item.answer.strip().lower())
    per_split = {split: yes_no_metrics(*by_split[split]) for split in sorted(by_split)}
    entry = {
        "f1": mean_of([m["f1"] for m in per_split.values()]) if per_split else 0.0,
        "accuracy": mean_of([m["accuracy"] for m in per_split.values()]) if per_split else 0.0,
        "yes_ratio": mean_of([m["yes_ratio"] for m in per_split.values()]) if per_split else 0.0,
        "per_category": per_split,
        "num_items": len(items),
    }
    return _percent(entry, "f1", "F1 (%), mean over splits")


def score_mme(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """The official MME calculation. An image needs both of its questions answered; one left with
    a single answered question (cut by `limit`, or its partner skipped) is left out and counted."""
    by_image: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_image[(item.category, str(item.extras.get("image_id", item.index)))].append(position)
    keep = sorted(p for group in by_image.values() if len(group) == 2 for p in group)
    unpaired = len(items) - len(keep)
    if unpaired:
        context.notes.append(f"MME: {unpaired} question(s) without their image's second question "
                             "were left out (acc+ needs both)")
    entry = mme_scores(
        [predictions[p] for p in keep], [items[p].answer for p in keep],
        [items[p].category for p in keep], [str(items[p].extras.get("image_id", items[p].index)) for p in keep],
    )
    entry["unpaired"] = unpaired
    return {"metric": "perception + cognition", "score": entry["total"], **entry}


def score_mmbench(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """VLMEvalKit's circular evaluation (a question counts only if every rotation is right)."""
    group_ids = None
    if any("g_index" in item.extras for item in items):
        group_ids = [int(item.extras.get("g_index", item.index)) for item in items]
    entry = circular_accuracy(
        [int(item.index) for item in items], list(predictions), [item.answer for item in items],
        [item.options for item in items], [item.category for item in items], context.matcher,
        group_ids=group_ids,
    )
    entry.pop("group_hits")
    entry["num_items"] = len(items)
    return _percent(entry, "accuracy", "circular accuracy (%)")


def score_scienceqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """LLaVA-1.5's eval_science_qa.py; headline: IMG accuracy (questions with an image)."""

    def accuracy(positions: list[int]) -> dict[str, Any]:
        return scienceqa_accuracy(
            [predictions[p] for p in positions], [items[p].answer for p in positions],
            [int(items[p].extras.get("num_options", len(items[p].options))) for p in positions],
            [bool(items[p].extras.get("has_image", True)) for p in positions],
        )

    entry = accuracy(list(range(len(items))))
    by_category: dict[str, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_category[item.category].append(position)
    if len(by_category) > 1:
        entry["per_category"] = {name: accuracy(by_category[name])["accuracy"] for name in sorted(by_category)}
    return _percent(entry, "img_accuracy", "IMG accuracy (%)")


def score_mmmu(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """The official MMMU parsing and instance-weighted accuracy (seeded random fallback)."""
    records = []
    for item, prediction in zip(items, predictions, strict=True):
        record = {
            "question_type": item.extras.get("question_type", MULTIPLE_CHOICE if item.options else "open"),
            "answer": item.extras.get("answers", item.answer),
            "response": prediction,
            "options": [item.options[letter] for letter in sorted(item.options)],
        }
        if "subject" in item.extras:
            record["subject"] = item.extras["subject"]
        else:
            record["id"] = str(item.extras.get("id", item.index))
        records.append(record)
    entry = mmmu_accuracy(records, random.Random(context.seed))
    return _percent(entry, "accuracy", "accuracy (%)")


def score_vqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """TextVQA / VizWiz: VQA accuracy over the annotators' answers (EvalAI normalisation)."""
    scores = [vqa_score(prediction, item.extras.get("answers") or [item.answer])
              for item, prediction in zip(items, predictions, strict=True)]
    entry: dict[str, Any] = {"accuracy": mean_of(scores), "num_items": len(scores)}
    by_category: dict[str, list[float]] = defaultdict(list)
    for item, score in zip(items, scores):
        by_category[item.category].append(score)
    if len(by_category) > 1:
        entry["per_category"] = {name: mean_of(by_category[name]) for name in sorted(by_category)}
    return _percent(entry, "accuracy", "VQA accuracy (%)")


def score_gqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """GQA testdev-balanced: LLaVA's conversion, then exact match as the official script."""
    entry = gqa_accuracy(list(predictions), [item.answer for item in items], [item.category for item in items])
    return _percent(entry, "accuracy", "accuracy (%)")


def score_choice(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """SEED-Bench (image) and MMStar: VLMEvalKit's rule-based choice extraction, per category."""
    l2 = [item.extras.get("l2_category") for item in items]
    entry = choice_accuracy(
        list(predictions), [item.answer for item in items], [item.options for item in items],
        [item.category for item in items],
        l2_categories=[str(value) for value in l2] if all(value is not None for value in l2) and l2 else None,
        matcher=context.matcher,
    )
    return _percent(entry, "accuracy", "accuracy (%)")


def score_mmvet(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """MM-Vet, graded by the configured OpenAI-compatible judge (JudgeNotConfigured otherwise)."""
    settings = context.judge or JudgeSettings()
    records = [{"id": str(item.index), "question": item.question, "answer": item.answer,
                "capabilities": item.extras.get("capabilities") or item.category} for item in items]
    entry = _with_judge(settings, lambda client: grade_mmvet(
        records, list(predictions), client, context.judge_concurrency, settings=settings))
    return {"metric": "GPT-graded total (0-100)", "score": entry["total"], **entry}


def score_llava_bench(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """LLaVA-Bench (in-the-wild): the judge's relative score against GPT-4's reference answers."""
    settings = context.judge or JudgeSettings()
    records = [{"id": str(item.index), "question": item.question, "category": item.category,
                "reference": item.extras["reference"], "caption": item.extras.get("caption", "")}
               for item in items]
    entry = _with_judge(settings, lambda client: grade_llava_bench(
        records, list(predictions), client, context.judge_concurrency, settings=settings))
    return {"metric": "relative score (%)", "score": (entry["relative"] or {}).get("overall"), **entry}


def _with_judge(settings, grade: Callable[[Any], Any]) -> dict[str, Any]:
    """Runs one async grading call with a judge client that is closed afterwards."""
    settings.require()

    async def run() -> dict[str, Any]:
        client = settings.make_client()
        try:
            return await grade(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


SCORERS: dict[str, Scorer] = {
    "generic": score_generic,
    "pope": score_pope,
    "mme": score_mme,
    "mmbench": score_mmbench,
    "scienceqa": score_scienceqa,
    "mmmu": score_mmmu,
    "vqa": score_vqa,
    "gqa": score_gqa,
    "choice": score_choice,
    "mmvet": score_mmvet,
    "llava_bench": score_llava_bench,
}


def get_scorer(name: str) -> Scorer:
    try:
        return SCORERS[name]
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; known: {sorted(SCORERS)}") from None


def score_benchmark(scorer: str, items: Sequence[BenchmarkItem], predictions: Sequence[str],
                    context: ScoringContext) -> dict[str, Any]:
    """The results entry of one benchmark (see the module docstring)."""
    if len(items) != len(predictions):
        raise ValueError(f"got {len(predictions)} predictions for {len(items)} items")
    return get_scorer(scorer)(items, predictions, context)


def judged(scorer: str) -> bool:
    """Whether a scorer calls the LLM judge (so score-only runs can say so up front)."""
    return scorer in ("mmvet", "llava_bench")


__all__ = ["SCORERS", "Matcher", "ScoringContext", "get_scorer", "judged", "score_benchmark"]
