"""The answer formats the benchmarks ask for (LLaVA-1.5 evaluation conventions), shared by the
toy teacher's image QA, its text-only tasks and the evaluation prompts, so that training data
and evaluation say them the same way."""

from __future__ import annotations

import random
from collections.abc import Sequence

# LLaVA-1.5's short-answer instruction: POPE's yes/no questions use it, and so do open
# questions answered by one word (VQAv2, GQA in LLaVA-1.5's training mix).
SHORT_ANSWER_SUFFIX = "Answer the question using a single word or phrase."
CHOICE_SUFFIX = "Answer with the option's letter from the given choices directly."
OPTION_LETTERS = "ABCD"


def yes_no_prompt(question: str, answer: bool) -> tuple[str, str]:
    """A POPE-style prompt and its one-word answer."""
    return f"{question}\n{SHORT_ANSWER_SUFFIX}", "Yes" if answer else "No"


def short_answer_prompt(question: str, answer: str) -> tuple[str, str]:
    """An open question with the short-answer instruction, and its answer as one word or
    phrase, lower case as in VQAv2 ("red", "top left", "3")."""
    return f"{question}\n{SHORT_ANSWER_SUFFIX}", answer


def options_with(correct: str, pool: Sequence[str], count: int,
                 rng: random.Random) -> tuple[list[str], int]:
    """`correct` plus `count - 1` distractors from `pool`, shuffled; returns (options, index)."""
    distractors = rng.sample([p for p in pool if p != correct], count - 1)
    options = [correct, *distractors]
    rng.shuffle(options)
    return options, options.index(correct)


def choice_prompt(question: str, options: Sequence[str], answer_index: int) -> tuple[str, str]:
    """An MMBench-style prompt (options as `A. ...` lines) and its bare-letter answer."""
    if not 2 <= len(options) <= len(OPTION_LETTERS) or not 0 <= answer_index < len(options):
        raise ValueError(f"bad options {options!r} / answer index {answer_index}")
    lines = "\n".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(options))
    return f"{question}\n{lines}\n{CHOICE_SUFFIX}", OPTION_LETTERS[answer_index]
