"""Run a predictor over benchmarks, or re-score existing predictions, and write the results.

Output layout under `out_dir`:
    <benchmark>/predictions.jsonl   one {"index", "prediction"} line per answered item, appended and
                                    flushed per batch: a rerun into the same directory resumes
    <benchmark>/run.json            what the predictions were made with (a resume must match)
    <benchmark>/skipped.jsonl       items that could not be evaluated, with the reason (only if any)
    results.json                    {benchmark: results entry}, rewritten after each benchmark
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from tqdm.auto import tqdm

from allava.evaluation.benchmarks.generic import tsv_spec
from allava.evaluation.formats.common import NOT_IN_SPLIT
from allava.evaluation.items import (
    Benchmark,
    BenchmarkItem,
    SkippedItem,
    UndecodableImageError,
    load_item_image,
)
from allava.evaluation.judge import JudgeSettings
from allava.evaluation.predictions_file import PredictionsFile, read_predictions
from allava.evaluation.prompts import PromptStyle, build_prompt
from allava.evaluation.references import reference_of
from allava.evaluation.registry import BenchmarkSpec
from allava.evaluation.scorers import Matcher, ScoringContext, score_benchmark
from allava.utils.jsonl_files import write_json

log = logging.getLogger(__name__)
# The `reference` of a results entry scored by this project's own rules (no reference script).
OWN_SCORER = "allava (no reference script)"
DEFAULT_MAX_NEW_TOKENS = 16


class Predictor(Protocol):
    def answer(
        self, questions: list[str], images: list[Image.Image | None], max_new_tokens: int = 32
    ) -> list[str]: ...


Resolver = Callable[[str], "BenchmarkSpec | Path"]


def evaluate_benchmarks(
    predictor: Predictor | None,
    benchmarks: Sequence[str | BenchmarkSpec],
    out_dir: str | Path,
    resolve: Resolver | None = None,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    prompt_styles: Mapping[str, PromptStyle] | None = None,
    predictions_dir: str | Path | None = None,
    judge: Any = None,
    run_identity: Mapping[str, Any] | None = None,
    seed: int = 42,
    matcher: Matcher | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluates `predictor` on each benchmark (a name for `resolve`, a TSV path, or a spec).

    With `predictor=None`, re-scores the `predictions.jsonl` files under `predictions_dir`
    instead of generating (score-only mode). `limit` keeps the first `limit` items of each
    benchmark; `prompt_styles` overrides prompt styles by benchmark name; `max_new_tokens` is the
    default for benchmarks whose settings give none; `judge` (JudgeSettings) grades MM-Vet and
    LLaVA-Bench; `matcher` reads the multiple-choice answers the rules cannot. Returns (and writes to `out_dir/results.json`) `{name: results entry}`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if predictor is None and predictions_dir is None:
        raise ValueError("give a predictor, or predictions_dir to score existing predictions")
    # Resolve and check every file (and the judge) before the first, possibly hours-long, run.
    specs = [resolve_benchmark(entry, resolve) for entry in benchmarks]
    _check_unique_names([spec.name for spec in specs])
    for spec in specs:
        spec.check_files()
        if spec.judged:
            _require_judge(judge)
        if prompt_styles and spec.name in prompt_styles:
            spec.prompt = prompt_styles[spec.name]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for spec in specs:
        benchmark = spec.load()
        if limit is not None:
            benchmark = benchmark.head(limit)
        tokens = spec.max_new_tokens or max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        if predictor is None:
            answered, predictions, extra = _read_existing(benchmark, Path(predictions_dir) / spec.name)
            skipped = list(benchmark.skipped)
        else:
            identity = {"benchmark": spec.name, "layout": spec.layout, "prompt": asdict(spec.prompt),
                        "max_new_tokens": tokens, **(run_identity or {})}
            answered, predictions, skipped = generate(
                predictor, benchmark, out_dir / spec.name, spec.prompt, batch_size, tokens, progress, identity)
            extra = {}
        context = ScoringContext(kind=benchmark.kind, judge=judge, seed=seed, matcher=matcher)
        entry = score_benchmark(spec.scorer, answered, predictions, context)
        excluded = [skip for skip in skipped if is_excluded_by_split(skip)]
        results[spec.name] = {"kind": benchmark.kind, **entry, **extra,
                              "skipped": len(skipped) - len(excluded)}
        if excluded:  # rows of another split (MMMU's dev rows): expected, not broken
            results[spec.name]["excluded_by_split"] = len(excluded)
        reference = reference_of(spec.scorer)
        results[spec.name]["reference"] = (reference.as_dict() if reference is not None
                                           else OWN_SCORER)
        if context.notes:
            results[spec.name]["notes"] = context.notes
            for note in context.notes:
                log.warning(note)
        write_json(out_dir / "results.json", results)
    return results


def generate(
    predictor: Predictor,
    benchmark: Benchmark,
    benchmark_dir: Path,
    style: PromptStyle,
    batch_size: int,
    max_new_tokens: int,
    progress: bool,
    identity: Mapping[str, Any],
) -> tuple[list[BenchmarkItem], list[str], list[SkippedItem]]:
    """Answers every item not yet in `predictions.jsonl`; returns (answered items, their
    predictions, skipped items), in benchmark order, resumed answers included."""
    benchmark_dir.mkdir(parents=True, exist_ok=True)
    store = PredictionsFile(benchmark_dir, identity)
    done = store.load()
    todo = [item for item in benchmark.items if str(item.index) not in done]
    skipped: list[SkippedItem] = list(benchmark.skipped)
    with store, tqdm(total=len(benchmark.items), initial=len(benchmark.items) - len(todo),
                     desc=benchmark.name, unit="q", disable=not progress) as bar:
        for batch in _batches(todo, batch_size):
            items, images = _load_images(batch, skipped)
            if items:
                questions = [build_prompt(item, benchmark.kind, style) for item in items]
                outputs = predictor.answer(questions, images, max_new_tokens=max_new_tokens)
                if len(outputs) != len(items):
                    raise RuntimeError(
                        f"{benchmark.name}: the predictor returned {len(outputs)} answers for "
                        f"{len(items)} questions"
                    )
                store.append([(item.index, output) for item, output in zip(items, outputs)])
                done.update((str(item.index), output) for item, output in zip(items, outputs))
            bar.update(len(batch))
    _write_skipped(benchmark_dir / "skipped.jsonl",
                   [skip for skip in skipped if not is_excluded_by_split(skip)])
    answered = [item for item in benchmark.items if str(item.index) in done]
    return answered, [done[str(item.index)] for item in answered], skipped


def resolve_benchmark(entry: str | BenchmarkSpec, resolve: Resolver | None) -> BenchmarkSpec:
    """The spec of a benchmark entry: a spec, a TSV path (named by its stem), or a name for `resolve`."""
    if isinstance(entry, BenchmarkSpec):
        return entry
    candidate = Path(entry).expanduser()
    if entry.endswith(".tsv") or candidate.is_file():
        if not candidate.is_file():
            raise FileNotFoundError(f"benchmark file not found: {candidate}")
        return tsv_spec(candidate)
    if resolve is None:
        raise ValueError(
            f"benchmark {entry!r} is not a .tsv file and no resolver was given to map names to files"
        )
    resolved = resolve(entry)
    if isinstance(resolved, BenchmarkSpec):
        return resolved
    path = Path(resolved).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark {entry!r} resolves to {path}, which does not exist; download the TSV "
            "there or point the resolver at it"
        )
    spec = tsv_spec(path)
    spec.name = entry
    return spec


def _read_existing(benchmark: Benchmark, benchmark_dir: Path) -> tuple[list[BenchmarkItem], list[str], dict]:
    """Score-only: the items that have a prediction in `benchmark_dir/predictions.jsonl`."""
    predictions = read_predictions(benchmark_dir / "predictions.jsonl")
    # Unknown: a prediction for no row of the file. One for a row of another split (another tool
    # predicted every row) or for a row that could not be read is for a known row.
    known = {str(item.index) for item in benchmark.items} | {
        str(skip.index) for skip in benchmark.skipped}
    answered = [item for item in benchmark.items if str(item.index) in predictions]
    extra = {"missing_predictions": len(benchmark.items) - len(answered),
             "unknown_predictions": sum(1 for index in predictions if index not in known)}
    if extra["missing_predictions"]:
        log.warning("%s: %d of %d items have no prediction in %s; they are left out of the scores",
                    benchmark.name, extra["missing_predictions"], len(benchmark.items), benchmark_dir)
    return answered, [predictions[str(item.index)] for item in answered], extra


def is_excluded_by_split(skip: SkippedItem) -> bool:
    """A row outside the split being scored, as opposed to a row that could not be read."""
    return skip.reason.startswith(NOT_IN_SPLIT)


def _require_judge(judge: Any) -> None:
    (judge or JudgeSettings()).require()


def _load_images(
    batch: list[BenchmarkItem], skipped: list[SkippedItem]
) -> tuple[list[BenchmarkItem], list[Image.Image | None]]:
    """The batch's items with decoded images; items whose image fails to decode go to `skipped`."""
    items: list[BenchmarkItem] = []
    images: list[Image.Image | None] = []
    for item in batch:
        try:
            image = load_item_image(item)
        except UndecodableImageError as error:
            skipped.append(SkippedItem(index=item.index, row=item.row, reason=str(error)))
            continue
        items.append(item)
        images.append(image)
    return items, images


def _write_skipped(path: Path, skipped: list[SkippedItem]) -> None:
    path.unlink(missing_ok=True)  # no stale list from an earlier run
    if not skipped:
        return
    with path.open("w", encoding="utf-8") as handle:
        for skip in sorted(skipped, key=lambda skip: skip.row):
            handle.write(json.dumps({"index": skip.index, "row": skip.row, "reason": skip.reason}) + "\n")


def _batches(items: list[BenchmarkItem], batch_size: int) -> Iterator[list[BenchmarkItem]]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _check_unique_names(names: list[str]) -> None:
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"benchmarks given more than once (or files with the same stem): {duplicated}")
