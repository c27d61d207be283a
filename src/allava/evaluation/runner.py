"""Run a predictor over benchmark files and write predictions and scores.

Output layout under `out_dir`:
    <benchmark>/predictions.jsonl   one {"index", "prediction"} line per answered item, flushed per batch
    <benchmark>/skipped.jsonl       rows that could not be evaluated, with the reason (only if any)
    results.json                    {benchmark: metrics}, rewritten after each benchmark
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from tqdm.auto import tqdm

from allava.evaluation.benchmark_files import (
    Benchmark,
    BenchmarkItem,
    SkippedItem,
    UndecodableImageError,
    check_tsv_header,
    load_tsv_benchmark,
)
from allava.evaluation.prompts import PromptStyle, build_prompt, default_prompt_style
from allava.evaluation.scoring import score_predictions


class Predictor(Protocol):
    def answer(
        self, questions: list[str], images: list[Image.Image | None], max_new_tokens: int = 32
    ) -> list[str]: ...


def evaluate_benchmarks(
    predictor: Predictor,
    benchmarks: Sequence[str],
    out_dir: str | Path,
    resolve: Callable[[str], Path] | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    limit: int | None = None,
    progress: bool = True,
    prompt_styles: Mapping[str, PromptStyle] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate `predictor` on each benchmark (a name for `resolve`, or a path to a TSV file).

    `limit` keeps the first `limit` rows of each file (for smoke tests). `prompt_styles` overrides
    the prompt style per benchmark name; others get `default_prompt_style(name)`.
    Returns (and writes to `out_dir/results.json`) `{name: metrics}`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # Resolve and check every file before the first (possibly hours-long) benchmark starts.
    sources = [resolve_benchmark_source(entry, resolve) for entry in benchmarks]
    _check_unique_names([name for name, _ in sources])
    for _, path in sources:
        check_tsv_header(path)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for name, path in sources:
        benchmark = load_tsv_benchmark(path)
        benchmark.name = name
        if limit is not None:
            benchmark = benchmark.head(limit)
        style = (prompt_styles or {}).get(name) or default_prompt_style(name)
        results[name] = evaluate_benchmark(
            predictor, benchmark, out_dir / name, style, batch_size, max_new_tokens, progress
        )
        write_json(out_dir / "results.json", results)
    return results


def evaluate_benchmark(
    predictor: Predictor,
    benchmark: Benchmark,
    benchmark_dir: Path,
    style: PromptStyle,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Answer every item of one benchmark, write its files, and return its scores."""
    benchmark_dir.mkdir(parents=True, exist_ok=True)
    answered: list[BenchmarkItem] = []
    predictions: list[str] = []
    skipped: list[SkippedItem] = list(benchmark.skipped)
    with (
        (benchmark_dir / "predictions.jsonl").open("w", encoding="utf-8") as predictions_file,
        tqdm(total=len(benchmark.items), desc=benchmark.name, unit="q", disable=not progress) as bar,
    ):
        for batch in _batches(benchmark.items, batch_size):
            items, images = _load_images(batch, skipped)
            if items:
                questions = [build_prompt(item, benchmark.kind, style) for item in items]
                outputs = predictor.answer(questions, images, max_new_tokens=max_new_tokens)
                if len(outputs) != len(items):
                    raise RuntimeError(
                        f"{benchmark.name}: the predictor returned {len(outputs)} answers for "
                        f"{len(items)} questions"
                    )
                for item, output in zip(items, outputs):
                    line = {"index": item.index, "prediction": output}
                    predictions_file.write(json.dumps(line, ensure_ascii=False) + "\n")
                predictions_file.flush()  # a crash loses at most the batch in flight
                answered.extend(items)
                predictions.extend(outputs)
            bar.update(len(batch))

    _write_skipped(benchmark_dir / "skipped.jsonl", skipped)
    scores = score_predictions(benchmark.kind, answered, predictions)
    return {"kind": benchmark.kind, **scores, "skipped": len(skipped)}


def resolve_benchmark_source(entry: str, resolve: Callable[[str], Path] | None) -> tuple[str, Path]:
    """(name, path) for a benchmark entry: a TSV path (named by its stem) or a name for `resolve`."""
    candidate = Path(entry).expanduser()
    if entry.endswith(".tsv") or candidate.is_file():
        if not candidate.is_file():
            raise FileNotFoundError(f"benchmark file not found: {candidate}")
        return candidate.stem, candidate
    if resolve is None:
        raise ValueError(
            f"benchmark {entry!r} is not a .tsv file and no resolver was given to map names to files"
        )
    path = Path(resolve(entry)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmark {entry!r} resolves to {path}, which does not exist; download the TSV "
            "there or point the benchmark's config at it"
        )
    return entry, path


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file so that a crash never leaves a half-written file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)


def _load_images(
    batch: list[BenchmarkItem], skipped: list[SkippedItem]
) -> tuple[list[BenchmarkItem], list[Image.Image | None]]:
    """The batch's items with decoded images; items whose image fails to decode go to `skipped`."""
    items: list[BenchmarkItem] = []
    images: list[Image.Image | None] = []
    for item in batch:
        try:
            image = item.load_image()
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
