"""Benchmark evaluation: the benchmarks (`benchmarks/`, one module per family, registered by name
in `registry`), the file layouts they come in (`formats/`), LLaVA-1.5 prompts, the faithful ports
of the official scorers (`reference/`), the LLM judge (`judge/`), the runner and the report.

Importing this package registers every benchmark."""

from allava.evaluation import benchmarks  # noqa: F401  (registers every benchmark)
from allava.evaluation.answer_parsing import normalize_short_answer, parse_choice_letter, parse_yes_no
from allava.evaluation.benchmarks.generic import score_predictions
from allava.evaluation.formats.vlmevalkit_tsv import check_tsv_header, infer_benchmark_kind, load_tsv_benchmark
from allava.evaluation.items import (
    BENCHMARK_KINDS,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    BenchmarkKind,
    SkippedItem,
    UndecodableImageError,
    decode_base64_image,
)
from allava.evaluation.metrics import (
    exact_match_metrics,
    multiple_choice_metrics,
    per_category_accuracy,
    yes_no_metrics,
)
from allava.evaluation.prompts import (
    LLAVA_1_5_STYLE,
    MMBENCH_CN_STYLE,
    OPEN_ENDED_STYLE,
    PromptStyle,
    build_prompt,
    default_prompt_style,
)
from allava.evaluation.results_table import format_results_table
from allava.evaluation.registry import BenchmarkSpec, benchmark_spec_resolver
from allava.evaluation.runner import Predictor, evaluate_benchmarks, resolve_benchmark
from allava.evaluation.scorers import SCORERS, ScoringContext, score_benchmark

__all__ = [
    "BENCHMARK_KINDS",
    "LLAVA_1_5_STYLE",
    "MMBENCH_CN_STYLE",
    "OPEN_ENDED_STYLE",
    "Benchmark",
    "BenchmarkFormatError",
    "BenchmarkItem",
    "BenchmarkKind",
    "Predictor",
    "PromptStyle",
    "SkippedItem",
    "UndecodableImageError",
    "build_prompt",
    "check_tsv_header",
    "decode_base64_image",
    "default_prompt_style",
    "evaluate_benchmarks",
    "exact_match_metrics",
    "format_results_table",
    "infer_benchmark_kind",
    "load_tsv_benchmark",
    "multiple_choice_metrics",
    "normalize_short_answer",
    "parse_choice_letter",
    "parse_yes_no",
    "per_category_accuracy",
    "resolve_benchmark",
    "BenchmarkSpec",
    "benchmark_spec_resolver",
    "SCORERS",
    "ScoringContext",
    "score_benchmark",
    "score_predictions",
    "yes_no_metrics",
]
