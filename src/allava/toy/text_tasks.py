"""Small text-only tasks with computed answers: the toy stand-in for ALLaVA's Evol-Instruct data.

They keep the language model exercising language without an image (arithmetic, spelling,
comparisons), which is the job text-only data does in the ALLaVA recipe. Half of the tasks are
asked in the benchmarks' answer formats (a bare "Yes"/"No", or an option letter): a pretrained
LLM arrives knowing how to look an answer up among lettered options or check a claim, but the toy
LLM starts from random weights, and measured on this machine it learns those two skills far
faster from text (where the facts are plain tokens) than from images alone; the image QA then
reuses them.
"""

from __future__ import annotations

import random
from typing import Callable

from allava.evaluation.answer_formats import choice_prompt, options_with, yes_no_prompt

WORDS: tuple[str, ...] = (
    "apple", "river", "garden", "window", "planet", "silver", "candle", "forest", "pencil",
    "rocket", "orange", "bridge", "castle", "dragon", "flower", "guitar", "island", "jungle",
    "kettle", "lemon", "market", "needle", "ocean", "pepper", "rabbit", "summer", "tiger",
    "violin", "winter", "yellow", "cloud", "stone", "music", "paper", "chair", "table",
    "horse", "bread", "light", "sound", "train", "water", "mountain", "pillow", "basket",
    "circle", "square", "triangle", "purple", "green", "blue", "red", "sun", "moon", "star",
)

# Each task returns (question, answer); the sampler adds the task's name.
Task = Callable[[random.Random], tuple[str, str]]


def _addition(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 20), rng.randint(0, 20)
    q = rng.choice((f"What is {a} plus {b}?", f"Add {a} and {b}.", f"Compute {a} + {b}."))
    return q, f"{a} plus {b} is {a + b}."


def _subtraction(rng: random.Random) -> tuple[str, str]:
    a = rng.randint(0, 20)
    b = rng.randint(0, a)  # non-negative results keep the toy arithmetic simple
    q = rng.choice((f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"Compute {a} - {b}."))
    return q, f"{a} minus {b} is {a - b}."


def _multiplication(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    q = rng.choice((f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"Compute {a} x {b}."))
    return q, f"{a} times {b} is {a * b}."


def _larger_number(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(0, 100), 2)
    q = rng.choice((
        f"Which is larger, {a} or {b}?",
        f"Which number is bigger: {a} or {b}?",
        f"Pick the larger of {a} and {b}.",
    ))
    big, small = max(a, b), min(a, b)
    return q, f"{big} is larger than {small}."


def _reverse_word(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    q = rng.choice((
        f'Spell the word "{w}" backwards.',
        f'Write "{w}" in reverse order.',
        f'What is "{w}" spelled backwards?',
    ))
    return q, f'The word "{w}" spelled backwards is "{w[::-1]}".'


def _count_letters(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    q = rng.choice((
        f'How many letters are in the word "{w}"?',
        f'Count the letters in "{w}".',
        f'How long is the word "{w}" in letters?',
    ))
    return q, f'The word "{w}" has {len(w)} letters.'


def _capitalize_word(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    q = rng.choice((
        f'Write the word "{w}" in capital letters.',
        f'Convert "{w}" to uppercase.',
        f'How is "{w}" written in all caps?',
    ))
    return q, f'In capital letters, "{w}" is "{w.upper()}".'


def _first_letter(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    q = rng.choice((
        f'What is the first letter of the word "{w}"?',
        f'Which letter does "{w}" start with?',
        f'Name the first letter of "{w}".',
    ))
    return q, f'The first letter of "{w}" is "{w[0]}".'


# --- the same kinds of facts, asked in the benchmark answer formats ----------------------------


def _word_list(rng: random.Random, n: int) -> list[str]:
    return rng.sample(WORDS, n)


def _options(correct: str, pool: list[str], rng: random.Random) -> tuple[list[str], int]:
    """3 or 4 options, like the toy benchmarks (3 for shape questions, 4 otherwise)."""
    return options_with(correct, pool, rng.choice((3, 4)), rng)


def _sum_check(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    shown = a + b if rng.random() < 0.5 else a + b + rng.choice((-2, -1, 1, 2))
    return yes_no_prompt(f"Is {a} plus {b} equal to {shown}?", shown == a + b)


def _word_in_list(rng: random.Random) -> tuple[str, str]:
    listed = _word_list(rng, rng.randint(1, 3))
    asked = rng.choice(listed) if rng.random() < 0.5 else rng.choice(
        [w for w in WORDS if w not in listed])
    return yes_no_prompt(f'Is the word "{asked}" in the list: {", ".join(listed)}?',
                         asked in listed)


def _starts_with(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    letter = w[0] if rng.random() < 0.5 else rng.choice([c for c in "abcdefghilmoprstw" if c != w[0]])
    return yes_no_prompt(f'Does the word "{w}" start with the letter "{letter}"?', w[0] == letter)


def _larger_check(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(range(0, 100), 2)
    return yes_no_prompt(f"Is {a} larger than {b}?", a > b)


def _sum_choice(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(0, 5), rng.randint(0, 4)
    options, index = _options(str(a + b), [str(n) for n in range(10)], rng)
    return choice_prompt(f"What is {a} plus {b}?", options, index)


def _letter_count_choice(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(WORDS)
    options, index = _options(str(len(w)), [str(n) for n in range(2, 10)], rng)
    return choice_prompt(f'How many letters are in the word "{w}"?', options, index)


def _list_length_choice(rng: random.Random) -> tuple[str, str]:
    listed = _word_list(rng, rng.randint(1, 4))
    options, index = _options(str(len(listed)), ["1", "2", "3", "4"], rng)
    return choice_prompt(f"How many words are in the list: {', '.join(listed)}?", options, index)


def _list_member_choice(rng: random.Random) -> tuple[str, str]:
    listed = _word_list(rng, rng.randint(1, 3))
    ordinal = rng.randrange(len(listed))
    options, index = _options(listed[ordinal], WORDS, rng)
    place = ("first", "second", "third")[ordinal]
    return choice_prompt(f"Which is the {place} word in the list: {', '.join(listed)}?",
                         options, index)


TEXT_TASKS: dict[str, Task] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "larger_number": _larger_number,
    "reverse_word": _reverse_word,
    "count_letters": _count_letters,
    "capitalize_word": _capitalize_word,
    "first_letter": _first_letter,
    "sum_check": _sum_check,
    "word_in_list": _word_in_list,
    "starts_with": _starts_with,
    "larger_check": _larger_check,
    "sum_choice": _sum_choice,
    "letter_count_choice": _letter_count_choice,
    "list_length_choice": _list_length_choice,
    "list_member_choice": _list_member_choice,
}


def sample_text_task(rng: random.Random) -> tuple[str, str, str]:
    """A random task instance: (question, answer, task name)."""
    name = rng.choice(list(TEXT_TASKS))
    question, answer = TEXT_TASKS[name](rng)
    return question, answer, name
