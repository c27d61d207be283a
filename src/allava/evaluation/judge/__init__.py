"""LLM-judged scoring of MM-Vet and LLaVA-Bench (in-the-wild), through any OpenAI-compatible endpoint.

The judge is reached through the synth network client (`allava.utils.chat_client.ChatClient`:
retries with backoff on 429 / 5xx / timeouts, usage accounting). One module per part:
  `settings`     `JudgeSettings`: where the judge is and how it is asked (`JudgeNotConfigured`).
  `prompts`      the grading prompts of `resources/prompts.yaml` (`load_judge_prompts`).
  `mmvet`        `grade_mmvet`, as yuweihao/MM-Vet and VLMEvalKit grade MM-Vet.
  `llava_bench`  `grade_llava_bench`, as haotian-liu/LLaVA grades LLaVA-Bench.
  `common`       what both graders share: judge failures, items and predictions.
"""
from allava.evaluation.judge.llava_bench import (
    LLAVA_BENCH_CATEGORIES,
    UNPARSED_PAIR,
    LLaVABenchItem,
    grade_llava_bench,
    llava_bench_messages,
    parse_pair_scores,
)
from allava.evaluation.judge.mmvet import (
    MMVET_CAPABILITIES,
    MMVetItem,
    grade_mmvet,
    mmvet_messages,
    parse_mmvet_score,
)
from allava.evaluation.judge.prompts import (
    DEFAULT_PROMPTS_PATH,
    JudgePrompts,
    LLaVABenchPrompt,
    MMVetPrompt,
    load_judge_prompts,
)
from allava.evaluation.judge.settings import MAX_TEMPERATURE, JudgeNotConfigured, JudgeSettings

__all__ = [
    "DEFAULT_PROMPTS_PATH",
    "LLAVA_BENCH_CATEGORIES",
    "MAX_TEMPERATURE",
    "MMVET_CAPABILITIES",
    "UNPARSED_PAIR",
    "JudgeNotConfigured",
    "JudgePrompts",
    "JudgeSettings",
    "LLaVABenchItem",
    "LLaVABenchPrompt",
    "MMVetItem",
    "MMVetPrompt",
    "grade_llava_bench",
    "grade_mmvet",
    "llava_bench_messages",
    "load_judge_prompts",
    "mmvet_messages",
    "parse_mmvet_score",
    "parse_pair_scores",
]
