"""Turn benchmark items into user-turn prompts, following LLaVA-1.5's evaluation conventions.

The predictor adds the `<image>` tag and the chat template; these prompts are the bare question
text. What differs between benchmarks (MMBench-CN's Chinese instruction, ScienceQA's "Context:"
line, VizWiz's unanswerable instruction, no instruction for MM-Vet) is a `PromptStyle`, set per
benchmark by the `prompt` settings of its definition (`allava.evaluation.benchmarks`), not code.

Layout of a prompt: [hint line] question [extra instruction] [option lines] [suffix], where the
suffix is the one for the item's form: options -> `multiple_choice_suffix`, an open-ended
benchmark -> `open_ended_suffix` (none), anything else -> `short_answer_suffix`. An item read from
LLaVA-1.5's own question files carries the exact prompt LLaVA used (`extras["prompt"]`); that text
is used as shipped, with the suffix added only where LLaVA adds it at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.items import BenchmarkItem, BenchmarkKind

VIZWIZ_UNANSWERABLE = "When the provided information is insufficient, respond with 'Unanswerable'."


@dataclass(frozen=True)
class PromptStyle:
    """The instructions around a question."""

    # The same wording as the toy teacher's training prompts.
    short_answer_suffix: str = f"\n{SHORT_ANSWER_SUFFIX}"
    multiple_choice_suffix: str = f"\n{CHOICE_SUFFIX}"
    open_ended_suffix: str = ""  # MM-Vet, LLaVA-Bench: free answers, graded by a judge
    use_hint: bool = True  # LLaVA-1.5 puts MMBench's/ScienceQA's hint (context) before the question
    hint_format: str = "{hint}\n"  # ScienceQA in LLaVA-1.5: "Context: {hint}\n"
    extra_instruction: str = ""  # after the question, e.g. VizWiz's unanswerable line

    @classmethod
    def from_config(cls, overrides: Mapping[str, Any] | None, base: "PromptStyle | None" = None) -> "PromptStyle":
        """`base` (default: LLaVA-1.5's style) with the fields of a `prompt:` config node replaced."""
        base = base or LLAVA_1_5_STYLE
        values = dict(overrides or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown prompt setting(s) {unknown}; known: {sorted(known)}")
        return replace(base, **values)


LLAVA_1_5_STYLE = PromptStyle()
MMBENCH_CN_STYLE = PromptStyle(multiple_choice_suffix="\n请直接回答选项字母。")
OPEN_ENDED_STYLE = PromptStyle(short_answer_suffix="", multiple_choice_suffix="")


def default_prompt_style(benchmark_name: str) -> PromptStyle:
    """The style for a benchmark given by file path, guessed from its (VLMEvalKit) name."""
    name = benchmark_name.lower().replace("-", "_")
    if "mmvet" in name or "mm_vet" in name:
        return OPEN_ENDED_STYLE  # MM-Vet answers are free-form, graded by a judge model
    if "mmbench" in name and "cn" in name.split("_"):
        return MMBENCH_CN_STYLE
    return LLAVA_1_5_STYLE


def build_prompt(item: BenchmarkItem, kind: BenchmarkKind, style: PromptStyle = LLAVA_1_5_STYLE) -> str:
    """The user-turn text for one item (without the `<image>` tag)."""
    suffix = _suffix(item, kind, style)
    shipped = item.extras.get("prompt")
    if shipped is not None:  # LLaVA-1.5's own question file: its text, as LLaVA sends it
        return shipped if item.extras.get("prompt_had_suffix") else shipped + suffix
    prompt = style.hint_format.format(hint=item.hint) + item.question if style.use_hint and item.hint else item.question
    if style.extra_instruction:
        prompt += f"\n{style.extra_instruction}"
    if item.options:
        prompt += "".join(f"\n{letter}. {text}" for letter, text in sorted(item.options.items()))
    return prompt + suffix


def _suffix(item: BenchmarkItem, kind: BenchmarkKind, style: PromptStyle) -> str:
    if item.options:
        return style.multiple_choice_suffix
    if kind == "open_ended":
        return style.open_ended_suffix
    # Yes/no questions get the short-answer instruction too, as in LLaVA-1.5's POPE and MME runs.
    return style.short_answer_suffix
