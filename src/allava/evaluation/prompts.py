"""Turn benchmark items into user-turn prompts, following LLaVA-1.5's evaluation conventions.

The predictor adds the `<image>` tag and the chat template; these prompts are the bare question
text. Suffixes live in `PromptStyle` so that a benchmark with other conventions (MMBench-CN's
Chinese instruction, MM-Vet's open answers) is a different style, not different code.
"""

from __future__ import annotations

from dataclasses import dataclass

from allava.data.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.benchmark_files import BenchmarkItem, BenchmarkKind


@dataclass(frozen=True)
class PromptStyle:
    """The instructions appended to a question, per benchmark kind."""

    # The same wording as the toy teacher's training prompts.
    short_answer_suffix: str = f"\n{SHORT_ANSWER_SUFFIX}"
    multiple_choice_suffix: str = f"\n{CHOICE_SUFFIX}"
    use_hint: bool = True  # LLaVA-1.5 puts MMBench's/ScienceQA's hint (context) before the question


LLAVA_1_5_STYLE = PromptStyle()
MMBENCH_CN_STYLE = PromptStyle(multiple_choice_suffix="\n请直接回答选项字母。")
OPEN_ENDED_STYLE = PromptStyle(short_answer_suffix="", multiple_choice_suffix="")


def default_prompt_style(benchmark_name: str) -> PromptStyle:
    """The style LLaVA-1.5 uses for a benchmark, guessed from its (VLMEvalKit) name."""
    name = benchmark_name.lower().replace("-", "_")
    if "mmvet" in name or "mm_vet" in name:
        return OPEN_ENDED_STYLE  # MM-Vet answers are free-form, graded by a judge model
    if "mmbench" in name and "cn" in name.split("_"):
        return MMBENCH_CN_STYLE
    return LLAVA_1_5_STYLE


def build_prompt(item: BenchmarkItem, kind: BenchmarkKind, style: PromptStyle = LLAVA_1_5_STYLE) -> str:
    """The user-turn text for one item (without the `<image>` tag)."""
    prompt = f"{item.hint}\n{item.question}" if style.use_hint and item.hint else item.question
    if kind == "multiple_choice":
        option_lines = "".join(f"\n{letter}. {text}" for letter, text in sorted(item.options.items()))
        return prompt + option_lines + style.multiple_choice_suffix
    # Yes/no questions get the short-answer instruction too, as in LLaVA-1.5's POPE and MME runs.
    return prompt + style.short_answer_suffix
