"""MM-Vet graded by an LLM judge (what a judge failure does: see `common`).

MM-Vet reproduces yuweihao/MM-Vet `mm-vet_evaluator.py` (`runs` and `export_result`, read at
commit 7d717c2) and VLMEvalKit's `vlmeval/dataset/utils/mmvet.py` (`MMVet_auxeval`, `MMVet_acc`):
  * One user message: the few-shot instructions, then the row "question | ground truth |
    prediction | " (spaces put around each <AND>/<OR> of the ground truth) for the judge to
    complete with a correctness score in [0, 1]. Reference settings: max_tokens 3, temperature 0.
  * A reply whose first token is not a number in [0, 1] is asked again, with a nudge appended to
    the message; asks 1 and 2 use the base temperature, each later ask adds 0.5 (the official
    script's schedule). After `attempts` (5) unparseable replies the run scores 0.0, as both
    references do. The official script sends a sixth request whose reply it never reads; we do not.
  * `runs` independent judge runs (the official default is 1; the paper used 5). An item's score
    is the mean of its runs. Per capability (rec, ocr, know, gen, spat, math), an item counts
    once toward every capability it lists; a capability's score is the mean of its items' scores
    × 100, the total the mean over all items × 100 (equal to the official per-run figures
    averaged over runs). `total_runs` and `total_std` (population std over runs) are the official
    `runs` and `std` columns; `per_integration` is its capability-integration table (items
    grouped by their exact set of capabilities).
  * Parsing (`parse_mmvet_score`): the official script reads `reply.split(" ")[0]` and VLMEvalKit
    the whole reply; we strip the reply and read its first whitespace-separated token, so
    " 0.5", "0.5\\n..." and "0.5 because..." all read 0.5. NaN and infinities are rejected (the
    official range check lets NaN through).
  Values are returned unrounded; the official tables print them rounded to one decimal.
"""
from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from allava.evaluation.judge.common import _field, _Gate, _predictions_for, log
from allava.evaluation.judge.prompts import JudgePrompts, MMVetPrompt, load_judge_prompts
from allava.evaluation.judge.settings import MAX_TEMPERATURE, JudgeSettings
from allava.utils.chat_client import ChatClient, ChatRequestError

MMVET_CAPABILITIES: tuple[str, ...] = ("rec", "ocr", "know", "gen", "spat", "math")


@dataclass(frozen=True)
class MMVetItem:
    """One MM-Vet question.

    id: unique key (MM-Vet's "v1_0", ...). question: the question text. answer: the ground truth,
    possibly with <AND> / <OR> between elements. capabilities: the capabilities it tests (rec,
    ocr, know, gen, spat, math; a mapping may give them as `capability` or `capabilities`, a
    list or a comma-separated string as in VLMEvalKit's TSV `category`).
    """

    id: str
    question: str
    answer: str
    capabilities: tuple[str, ...]


def _as_mmvet_item(raw: Any, position: int) -> MMVetItem:
    if isinstance(raw, MMVetItem):
        item = raw
    elif isinstance(raw, Mapping):
        caps = _field(raw, ("capabilities", "capability"), position)
        item = MMVetItem(id=str(_field(raw, ("id",), position)),
                         question=str(_field(raw, ("question",), position)),
                         answer=str(_field(raw, ("answer",), position)),
                         capabilities=caps)
    else:
        raise TypeError(f"item {position}: expected an MMVetItem or a mapping, got {type(raw).__name__}")
    caps = item.capabilities
    if isinstance(caps, str):
        caps = caps.split(",")
    caps = tuple(dict.fromkeys(str(c).strip() for c in caps if str(c).strip()))
    if not caps:
        raise ValueError(f"item {position} ({item.id}): no capability listed")
    return MMVetItem(id=str(item.id), question=item.question, answer=item.answer, capabilities=caps)


def parse_mmvet_score(text: str | None) -> float | None:
    """The correctness score in [0, 1] that starts the judge's reply, or None."""
    if not isinstance(text, str):
        return None
    tokens = text.strip().split()
    if not tokens:
        return None
    try:
        score = float(tokens[0])
    except ValueError:
        return None
    if not math.isfinite(score) or score < 0.0 or score > 1.0:
        return None
    return score


def mmvet_messages(prompt: MMVetPrompt, question: str, answer: str, prediction: str, *,
                   reask: bool = False) -> list[dict[str, str]]:
    """The judge request for one MM-Vet item (the official layout; `reask` adds the nudge)."""
    truth = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    content = prompt.instructions + "\n" + " | ".join([question, truth, prediction, ""])
    if reask:
        content += "\n" + prompt.reask
    return [{"role": "user", "content": content}]


@dataclass
class _RunResult:
    score: float | None = None
    parsed: bool = False
    replies: list[str | None] = field(default_factory=list)
    error: str | None = None


def _ordered_capabilities(caps) -> list[str]:
    known = [c for c in MMVET_CAPABILITIES if c in caps]
    return known + [c for c in caps if c not in MMVET_CAPABILITIES]


async def grade_mmvet(items: Sequence[MMVetItem | Mapping[str, Any]],
                      predictions: Mapping[Any, Any] | Sequence[Any],
                      judge: ChatClient, concurrency: int = 8, *,
                      settings: JudgeSettings | None = None,
                      prompts: JudgePrompts | None = None) -> dict[str, Any]:
    """Grades MM-Vet answers with the judge; see the module docstring for the rules.

    Returns: `total` (mean item score × 100), `per_capability` and `per_capability_count`,
    `per_integration` (by exact capability set, keys joined with "_"), `total_runs`,
    `total_std`, `runs`, `num_items`, `num_graded`, `unparsed` (runs whose `attempts` replies
    all failed to parse, scored 0.0), `reasks` (extra asks after unparseable replies), `errors`,
    `complete`, and `items` (per item: id, capabilities, score, run_scores, unparsed_runs,
    replies per run, error). Aggregates are None when no item was graded.
    """
    settings = settings or JudgeSettings()
    prompt = (prompts or load_judge_prompts()).mmvet
    parsed_items = [_as_mmvet_item(raw, i) for i, raw in enumerate(items)]
    answers = _predictions_for([it.id for it in parsed_items], predictions)
    gate = _Gate(concurrency)
    base_t = prompt.temperature if settings.temperature is None else float(settings.temperature)
    max_tokens = prompt.max_tokens if settings.max_tokens is None else int(settings.max_tokens)
    runs, attempts = int(settings.runs), int(settings.attempts)

    async def one_run(item: MMVetItem, prediction: str) -> _RunResult:
        result = _RunResult()
        try:
            for attempt in range(attempts):
                temperature = min(MAX_TEMPERATURE, base_t + prompt.temperature_step * max(0, attempt - 1))
                messages = mmvet_messages(prompt, item.question, item.answer, prediction,
                                          reask=attempt > 0)
                text = await gate.ask(judge, messages, max_tokens=max_tokens, temperature=temperature)
                result.replies.append(text)
                score = parse_mmvet_score(text)
                if score is not None:
                    result.score, result.parsed = score, True
                    return result
            result.score = 0.0  # every ask failed to parse: the references' fallback
        except ChatRequestError as exc:
            log.warning("MM-Vet judge failed on item %s: %s", item.id, exc)
            result.error = exc.reason
        return result

    tasks = [one_run(item, pred) for item, pred in zip(parsed_items, answers) for _ in range(runs)]
    flat = await asyncio.gather(*tasks)

    per_item: list[dict[str, Any]] = []
    for index, item in enumerate(parsed_items):
        results = flat[index * runs:(index + 1) * runs]
        error = next((r.error for r in results if r.error is not None), None)
        run_scores = None if error else [r.score for r in results]
        per_item.append({
            "id": item.id,
            "capabilities": _ordered_capabilities(item.capabilities),
            "score": None if error else float(np.mean(run_scores)),
            "run_scores": run_scores,
            "unparsed_runs": sum(1 for r in results if r.error is None and not r.parsed),
            "replies": [r.replies for r in results],
            "error": error,
        })
    graded = [row for row in per_item if row["error"] is None]

    cap_sum: dict[str, float] = {}
    cap_count: dict[str, int] = {}
    int_sum: dict[str, float] = {}
    int_count: dict[str, int] = {}
    run_totals = np.zeros(runs)
    for row in graded:
        for cap in row["capabilities"]:
            cap_sum[cap] = cap_sum.get(cap, 0.0) + row["score"]
            cap_count[cap] = cap_count.get(cap, 0) + 1
        key = "_".join(row["capabilities"])
        int_sum[key] = int_sum.get(key, 0.0) + row["score"]
        int_count[key] = int_count.get(key, 0) + 1
        run_totals += np.asarray(row["run_scores"], dtype=float)
    order = _ordered_capabilities(list(cap_count))
    n = len(graded)
    total_runs = (run_totals / n * 100).tolist() if n else None
    return {
        "benchmark": "mmvet",
        "total": sum(row["score"] for row in graded) / n * 100 if n else None,
        "per_capability": {c: cap_sum[c] / cap_count[c] * 100 for c in order},
        "per_capability_count": {c: cap_count[c] for c in order},
        "per_integration": {k: int_sum[k] / int_count[k] * 100
                            for k in sorted(int_count, key=lambda k: (-int_count[k], k))},
        "total_runs": total_runs,
        "total_std": float(np.std(total_runs)) if n else None,
        "runs": runs,
        "attempts": attempts,
        "num_items": len(per_item),
        "num_graded": n,
        "unparsed": sum(row["unparsed_runs"] for row in per_item),
        "reasks": sum(max(0, len(r.replies) - 1) for r in flat),
        "errors": len(per_item) - n,
        "complete": n == len(per_item),
        "items": per_item,
    }
