"""The scorer contract and the scorers by name.

A scorer takes a benchmark's answered items, their raw predictions (in the same order) and a
`ScoringContext`, and returns the benchmark's results entry: the reference's metrics, plus
`score` (the headline number on the scale the reference publishes: percent for accuracies, MME's
0-2000 sums) and `metric` (what `score` is). Each benchmark family registers its scorer
(`register_scorer`) beside its readers in `allava.evaluation.benchmarks`; a benchmark's settings
name it (`scorer: mme`). A scorer that calls the LLM judge says so (`judged`), so that a run
checks the judge before it generates anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from allava.evaluation.items import BenchmarkItem, BenchmarkKind
from allava.evaluation.judge import JudgeSettings
from allava.evaluation.reference.mmbench import Matcher


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


ScoreFunction = Callable[[Sequence[BenchmarkItem], Sequence[str], ScoringContext], dict[str, Any]]


@dataclass(frozen=True)
class Scorer:
    """A named score function; `judged`: it grades through the LLM judge."""

    name: str
    score: ScoreFunction
    judged: bool = False

    def __call__(self, items: Sequence[BenchmarkItem], predictions: Sequence[str],
                 context: ScoringContext) -> dict[str, Any]:
        return self.score(items, predictions, context)


SCORERS: dict[str, Scorer] = {}


def register_scorer(name: str, score: ScoreFunction, *, judged: bool = False) -> Scorer:
    """Makes `score` known as `name` (a benchmark's `scorer:` setting); a name is taken once."""
    if name in SCORERS:
        raise ValueError(f"scorer {name!r} is registered twice")
    SCORERS[name] = Scorer(name, score, judged)
    return SCORERS[name]


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


def as_percent(entry: dict[str, Any], key: str, label: str) -> dict[str, Any]:
    """`entry` headed by `entry[key]` (a fraction) as `score` in percent, described by `label`."""
    return {"metric": label, "score": 100.0 * float(entry[key]), **entry}


def grade_with_judge(settings: JudgeSettings, grade: Callable[[Any], Any]) -> dict[str, Any]:
    """Runs one async grading call, `grade(client)`, with a judge client closed afterwards."""
    settings.require()

    async def run() -> dict[str, Any]:
        client = settings.make_client()
        try:
            return await grade(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


__all__ = ["SCORERS", "Matcher", "Scorer", "ScoringContext", "as_percent", "get_scorer", "grade_with_judge",
           "register_scorer", "score_benchmark"]
