"""Benchmark evaluation: TSV loading, LLaVA-1.5 prompts, answer parsing, metrics, and the runner."""

from allava.evaluation.answer_parsing import normalize_short_answer, parse_choice_letter, parse_yes_no
from allava.evaluation.benchmark_files import (
    BENCHMARK_KINDS,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    BenchmarkKind,
    SkippedItem,
    UndecodableImageError,
    check_tsv_header,
    decode_base64_image,
    infer_benchmark_kind,
    load_tsv_benchmark,
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
from allava.evaluation.runner import (
    Predictor,
    evaluate_benchmark,
    evaluate_benchmarks,
    resolve_benchmark_source,
)
from allava.evaluation.scoring import score_predictions

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
    "evaluate_benchmark",
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
    "resolve_benchmark_source",
    "score_predictions",
    "yes_no_metrics",
]
