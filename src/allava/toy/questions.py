"""Benchmark-style questions about a toy scene, with their ground-truth answers.

Shared by the programmatic teacher (training QA) and the held-out benchmarks, so that both ask
exactly the same questions under exactly the same applicability rules. The question texts here are
the canonical benchmark wordings; the teacher adds paraphrases on top.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from allava.evaluation.answer_formats import OPTION_LETTERS, options_with
from allava.toy.world import CELL_NAMES, COLORS, SHAPES, Scene, ToyObject, article

YES_NO_CATEGORIES: tuple[str, ...] = ("shape", "color", "pair")
CHOICE_CATEGORIES: tuple[str, ...] = ("color", "shape", "count", "position")
COUNT_OPTIONS: tuple[str, ...] = ("1", "2", "3", "4")


@dataclass(frozen=True)
class YesNoQuestion:
    """"Is there ...?" about a shape, a colour, or a colour-shape pair (POPE style)."""

    category: str  # one of YES_NO_CATEGORIES
    shape: str | None  # None for the colour category
    color: str | None  # None for the shape category
    answer: bool
    matches: tuple[ToyObject, ...]  # the objects that make the answer "yes" (empty for "no")

    @property
    def question(self) -> str:
        return f"Is there {self.subject_phrase} in the image?"

    @property
    def subject_phrase(self) -> str:
        """"a circle", "an orange object", "a red triangle"."""
        if self.category == "shape":
            return f"{article(self.shape)} {self.shape}"
        if self.category == "color":
            return f"{article(self.color)} {self.color} object"
        return f"{article(self.color)} {self.color} {self.shape}"


@dataclass(frozen=True)
class ChoiceQuestion:
    """A multiple-choice question with 3-4 options, one of them right (MMBench style)."""

    category: str  # one of CHOICE_CATEGORIES
    question: str
    options: tuple[str, ...]
    answer_index: int
    target: ToyObject | None  # the object asked about (None for count)

    @property
    def answer_letter(self) -> str:
        return OPTION_LETTERS[self.answer_index]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer_index]


def _unique(values: list[str]) -> list[str]:
    counts = Counter(values)
    return [v for v in dict.fromkeys(values) if counts[v] == 1]


def unique_shapes(scene: Scene) -> list[str]:
    """Shapes held by exactly one object (so "the circle" is unambiguous)."""
    return _unique([o.shape for o in scene.objects])


def unique_colors(scene: Scene) -> list[str]:
    """Colours held by exactly one object (so "the red object" is unambiguous)."""
    return _unique([o.color for o in scene.objects])


def unique_pairs(scene: Scene) -> list[tuple[str, str]]:
    """(colour, shape) pairs held by exactly one object (so "the red circle" is unambiguous)."""
    keys = [f"{o.color}|{o.shape}" for o in scene.objects]
    return [tuple(k.split("|")) for k in _unique(keys)]  # type: ignore[misc]


def applicable_choice_categories(scene: Scene) -> list[str]:
    """Multiple-choice categories whose uniqueness rule this scene satisfies."""
    rules = {
        "color": bool(unique_shapes(scene)),
        "shape": bool(unique_colors(scene)),
        "count": True,
        "position": bool(unique_pairs(scene)),
    }
    return [c for c in CHOICE_CATEGORIES if rules[c]]


def yes_no_question(
    scene: Scene, category: str, answer: bool, rng: random.Random
) -> YesNoQuestion | None:
    """A question of `category` whose true answer is `answer`; None when the scene cannot give
    that answer (e.g. "no" to a shape question when all three shapes are present)."""
    present_shapes = sorted({o.shape for o in scene.objects}, key=SHAPES.index)
    present_colors = sorted({o.color for o in scene.objects}, key=list(COLORS).index)
    present_pairs = list(dict.fromkeys((o.color, o.shape) for o in scene.objects))
    shape: str | None = None
    color: str | None = None
    if category == "shape":
        pool = present_shapes if answer else [s for s in SHAPES if s not in present_shapes]
        if not pool:
            return None
        shape = rng.choice(pool)
    elif category == "color":
        pool = present_colors if answer else [c for c in COLORS if c not in present_colors]
        if not pool:
            return None
        color = rng.choice(pool)
    elif category == "pair":
        if answer:
            color, shape = rng.choice(present_pairs)
        else:
            absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present_pairs]
            # Prefer absent pairs that reuse a present colour or shape: they test binding.
            binding = [(c, s) for c, s in absent if c in present_colors or s in present_shapes]
            color, shape = rng.choice(binding or absent)
    else:
        raise ValueError(f"unknown yes/no category {category!r}; expected one of {YES_NO_CATEGORIES}")
    matches = tuple(
        o for o in scene.objects
        if (shape is None or o.shape == shape) and (color is None or o.color == color)
    )
    assert bool(matches) == answer
    return YesNoQuestion(category=category, shape=shape, color=color, answer=answer, matches=matches)


def either_yes_no_question(scene: Scene, category: str, rng: random.Random) -> YesNoQuestion:
    """A question of `category` whose answer is a coin flip, or the other answer when the flip's
    is impossible (no "No" for a shape question when all three shapes are present)."""
    answer = rng.random() < 0.5
    q = yes_no_question(scene, category, answer, rng) or yes_no_question(scene, category, not answer, rng)
    assert q is not None
    return q


def choice_question(scene: Scene, category: str, rng: random.Random) -> ChoiceQuestion | None:
    """A multiple-choice question of `category`; None when the uniqueness rule is not met."""
    target: ToyObject | None = None
    if category == "color":
        shapes = unique_shapes(scene)
        if not shapes:
            return None
        shape = rng.choice(shapes)
        target = next(o for o in scene.objects if o.shape == shape)
        question = f"What color is the {shape}?"
        options, index = options_with(target.color, list(COLORS), 4, rng)
    elif category == "shape":
        colors = unique_colors(scene)
        if not colors:
            return None
        color = rng.choice(colors)
        target = next(o for o in scene.objects if o.color == color)
        question = f"What shape is the {color} object?"
        options, index = options_with(target.shape, list(SHAPES), 3, rng)
    elif category == "count":
        question = "How many objects are in the image?"
        options, index = options_with(str(len(scene.objects)), list(COUNT_OPTIONS), 4, rng)
    elif category == "position":
        pairs = unique_pairs(scene)
        if not pairs:
            return None
        color, shape = rng.choice(pairs)
        target = next(o for o in scene.objects if (o.color, o.shape) == (color, shape))
        question = f"Where is the {color} {shape}?"
        options, index = options_with(target.cell, list(CELL_NAMES), 4, rng)
    else:
        raise ValueError(f"unknown choice category {category!r}; expected one of {CHOICE_CATEGORIES}")
    return ChoiceQuestion(
        category=category, question=question, options=tuple(options), answer_index=index, target=target
    )
