"""LLaVA-Bench (in-the-wild) graded by an LLM judge (what a judge failure does: see `common`).

LLaVA-Bench reproduces haotian-liu/LLaVA `llava/eval/eval_gpt_review_bench.py`,
`llava/eval/table/rule.json` (the `llava_bench_*` rules) and `llava/eval/summarize_gpt_review.py`
(read at commit 181a2f8):
  * A system message, then one user message: [Context] (the caption lines joined by newlines),
    [Question], [Assistant 1] = the reference answer (GPT-4's), [Assistant 2] = the evaluated
    model's answer, [System] = the category's rule. Reference settings: temperature 0.2,
    max_tokens 1024.
  * Parsing (`parse_pair_scores`), as `parse_score`: the reply's first line, commas turned into
    spaces, split on single spaces; exactly two fields that both convert with float(), else the
    review is unparseable. Quirks kept: "8, 9" and "8 9 " (three fields) are unparseable, and so
    is "Assistant 1: 8". We also reject NaN and infinities (the reference keeps them).
  * An unparseable review is recorded as (-1, -1) and, as in the reference, enters the means as
    such; `unparsed` counts them. No re-ask.
  * Per category and over all items ("overall"): the mean of each assistant's scores; the
    relative score is round(round(mean2, 3) / round(mean1, 3) × 100, 1), exactly as printed by
    `summarize_gpt_review` (None where the rounded reference mean is 0, where it would divide
    by zero). `mean_reference` / `mean_model` are the unrounded means.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from allava.evaluation.judge.common import _field, _Gate, _predictions_for, log
from allava.evaluation.judge.prompts import JudgePrompts, LLaVABenchPrompt, load_judge_prompts
from allava.evaluation.judge.settings import JudgeSettings
from allava.utils.chat_client import ChatClient, ChatRequestError

LLAVA_BENCH_CATEGORIES: tuple[str, ...] = ("conv", "detail", "complex")
UNPARSED_PAIR: tuple[float, float] = (-1.0, -1.0)  # what LLaVA records for an unreadable review


@dataclass(frozen=True)
class LLaVABenchItem:
    """One LLaVA-Bench (in-the-wild) question.

    id: unique key (the `question_id`). question: the question text. reference: the reference
    answer ("Assistant 1"; GPT-4's in answers_gpt4.jsonl). category: conv, detail or complex.
    caption: the image's context description (context.jsonl's `caption`; a list of lines is
    joined with newlines, as the reference does).
    """

    id: str
    question: str
    reference: str
    category: str
    caption: str


def _as_llava_item(raw: Any, position: int) -> LLaVABenchItem:
    if isinstance(raw, LLaVABenchItem):
        item = raw
    elif isinstance(raw, Mapping):
        item = LLaVABenchItem(id=str(_field(raw, ("id",), position)),
                              question=str(_field(raw, ("question",), position)),
                              reference=str(_field(raw, ("reference",), position)),
                              category=str(_field(raw, ("category",), position)),
                              caption=_field(raw, ("caption",), position))
    else:
        raise TypeError(f"item {position}: expected a LLaVABenchItem or a mapping, got {type(raw).__name__}")
    caption = item.caption
    if not isinstance(caption, str):
        caption = "\n".join(str(line) for line in caption)
    return LLaVABenchItem(id=str(item.id), question=item.question, reference=item.reference,
                          category=item.category, caption=caption)


def parse_pair_scores(text: str | None) -> tuple[float, float] | None:
    """(score of assistant 1, score of assistant 2) from the reply's first line, or None.

    LLaVA's `parse_score`: commas become spaces, the line is split on single spaces, and exactly
    two fields must convert with float() (so "8, 9" and "8 9 " do not parse). Non-finite
    numbers are rejected.
    """
    if not isinstance(text, str):
        return None
    fields_ = text.split("\n")[0].replace(",", " ").split(" ")
    if len(fields_) != 2:
        return None
    try:
        pair = (float(fields_[0]), float(fields_[1]))
    except ValueError:
        return None
    if not all(math.isfinite(x) for x in pair):
        return None
    return pair


def llava_bench_messages(prompt: LLaVABenchPrompt, item: LLaVABenchItem,
                         prediction: str) -> list[dict[str, str]]:
    """The judge request for one LLaVA-Bench item (the reference's layout)."""
    rule = prompt.rules.get(item.category)
    if rule is None:
        raise ValueError(f"no judge rule for LLaVA-Bench category {item.category!r}; "
                         f"known: {', '.join(prompt.rules)}")
    role = prompt.role
    content = (f"[Context]\n{item.caption}\n\n"
               f"[Question]\n{item.question}\n\n"
               f"[{role} 1]\n{item.reference}\n\n[End of {role} 1]\n\n"
               f"[{role} 2]\n{prediction}\n\n[End of {role} 2]\n\n"
               f"[System]\n{rule}\n\n")
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


def _relative(pairs: list[tuple[float, float]]) -> tuple[float, float, float | None]:
    """(mean1, mean2, relative score) as summarize_gpt_review computes and prints them."""
    means = np.asarray(pairs, dtype=float).mean(0).tolist()
    rounded = [round(x, 3) for x in means]
    relative = None if rounded[0] == 0 else round(rounded[1] / rounded[0] * 100, 1)
    return means[0], means[1], relative


async def grade_llava_bench(items: Sequence[LLaVABenchItem | Mapping[str, Any]],
                            predictions: Mapping[Any, Any] | Sequence[Any],
                            judge: ChatClient, concurrency: int = 8, *,
                            settings: JudgeSettings | None = None,
                            prompts: JudgePrompts | None = None) -> dict[str, Any]:
    """Grades LLaVA-Bench (in-the-wild) answers against the reference answers; see the module docstring.

    Returns: `relative` (per category and "overall": mean model score / mean reference score
    × 100, as LLaVA prints it), `mean_reference` and `mean_model` (unrounded means, unparsed
    reviews included as -1), `count` (items per category), `num_items`, `num_graded`,
    `unparsed`, `errors`, `complete`, and `items` (per item: id, category, scores — (-1, -1)
    when unparseable —, parsed, review, error).
    """
    settings = settings or JudgeSettings()
    prompt = (prompts or load_judge_prompts()).llava_bench
    parsed_items = [_as_llava_item(raw, i) for i, raw in enumerate(items)]
    unknown = sorted({it.category for it in parsed_items} - set(prompt.rules))
    if unknown:  # before any request, as the reference asserts on its first such item
        raise ValueError(f"no judge rule for LLaVA-Bench categor{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(map(repr, unknown))}; known: {', '.join(prompt.rules)}")
    answers = _predictions_for([it.id for it in parsed_items], predictions)
    gate = _Gate(concurrency)
    temperature = prompt.temperature if settings.temperature is None else float(settings.temperature)
    max_tokens = prompt.max_tokens if settings.max_tokens is None else int(settings.max_tokens)

    async def one(item: LLaVABenchItem, prediction: str) -> dict[str, Any]:
        row: dict[str, Any] = {"id": item.id, "category": item.category, "scores": None,
                               "parsed": False, "review": None, "error": None}
        try:
            text = await gate.ask(judge, llava_bench_messages(prompt, item, prediction),
                                  max_tokens=max_tokens, temperature=temperature)
        except ChatRequestError as exc:
            log.warning("LLaVA-Bench judge failed on item %s: %s", item.id, exc)
            row["error"] = exc.reason
            return row
        pair = parse_pair_scores(text)
        row.update(review=text, parsed=pair is not None,
                   scores=list(pair if pair is not None else UNPARSED_PAIR))
        return row

    per_item = list(await asyncio.gather(*(one(it, p) for it, p in zip(parsed_items, answers))))
    graded = [row for row in per_item if row["error"] is None]
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in graded:
        groups.setdefault(row["category"], []).append(tuple(row["scores"]))
    order = [c for c in LLAVA_BENCH_CATEGORIES if c in groups] + \
            sorted(c for c in groups if c not in LLAVA_BENCH_CATEGORIES)
    if graded:
        groups_all = {c: groups[c] for c in order}
        groups_all["overall"] = [tuple(row["scores"]) for row in graded]
    else:
        groups_all = {}
    stats = {name: _relative(pairs) for name, pairs in groups_all.items()}
    return {
        "benchmark": "llava_bench",
        "relative": {name: s[2] for name, s in stats.items()},
        "mean_reference": {name: s[0] for name, s in stats.items()},
        "mean_model": {name: s[1] for name, s in stats.items()},
        "count": {name: len(pairs) for name, pairs in groups_all.items()},
        "num_items": len(per_item),
        "num_graded": len(graded),
        "unparsed": sum(1 for row in graded if not row["parsed"]),
        "errors": len(per_item) - len(graded),
        "complete": len(graded) == len(per_item),
        "items": per_item,
    }
