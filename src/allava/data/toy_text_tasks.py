"""Small text-only tasks with computed answers: the toy stand-in for ALLaVA's Evol-Instruct data.

They keep the language model exercising language without an image (arithmetic, spelling,
comparisons), which is the job text-only data does in the ALLaVA recipe.
"""

from __future__ import annotations

import random
from typing import Callable

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


TEXT_TASKS: dict[str, Task] = {
    "addition": _addition,
    "subtraction": _subtraction,
    "multiplication": _multiplication,
    "larger_number": _larger_number,
    "reverse_word": _reverse_word,
    "count_letters": _count_letters,
    "capitalize_word": _capitalize_word,
    "first_letter": _first_letter,
}


def sample_text_task(rng: random.Random) -> tuple[str, str, str]:
    """A random task instance: (question, answer, task name)."""
    name = rng.choice(list(TEXT_TASKS))
    question, answer = TEXT_TASKS[name](rng)
    return question, answer, name
