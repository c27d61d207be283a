"""Held-out toy benchmarks in VLMEvalKit's TSV layout: `toy_pope` (yes/no) and `toy_mcq` (A-D).

One fresh scene per item, from a seed that the training data never uses. Besides the VLMEvalKit
columns (index, image as base64 PNG, question, answer, category, A-D) each row keeps the scene as
JSON in a `scene` column, so any answer can be re-derived and audited.
"""

from __future__ import annotations

import base64
import csv
import json
import random
from pathlib import Path

from allava.evaluation.answer_formats import OPTION_LETTERS
from allava.toy.questions import (
    CHOICE_CATEGORIES,
    YES_NO_CATEGORIES,
    choice_question,
    yes_no_question,
)
from allava.toy.world import Scene, encode_png, render_scene, sample_scene, scene_to_json

POPE_COLUMNS = ("index", "image", "question", "answer", "category", "scene")
MCQ_COLUMNS = ("index", "image", "question", "A", "B", "C", "D", "answer", "category", "scene")


def _image_b64(scene: Scene, rng: random.Random, image_size: int) -> str:
    return base64.b64encode(encode_png(render_scene(scene, rng, image_size))).decode("ascii")


def _write_tsv(path: str | Path, columns: tuple[str, ...], rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # a half-written benchmark never carries the final name
    return path


def _balanced_plan(categories: tuple[str, ...], num_items: int, rng: random.Random) -> list[str]:
    """Categories in equal shares (remainder spread over the first ones), in shuffled order."""
    plan = [categories[i % len(categories)] for i in range(num_items)]
    rng.shuffle(plan)
    return plan


def toy_pope_rows(num_items: int, seed: int, image_size: int = 64) -> list[dict]:
    """POPE-style rows; answers alternate yes/no within each category, so exactly half are
    "yes" (for even `num_items`) and each category is balanced too."""
    rng = random.Random(seed)
    # Items come in (yes, no) pairs of one category; pairs cycle through the categories.
    plan = [(YES_NO_CATEGORIES[(i // 2) % len(YES_NO_CATEGORIES)], i % 2 == 0) for i in range(num_items)]
    rng.shuffle(plan)
    rows = []
    for index, (category, answer) in enumerate(plan):
        while True:  # resample until this scene can give the planned answer
            scene = sample_scene(rng)
            q = yes_no_question(scene, category, answer, rng)
            if q is not None:
                break
        rows.append({
            "index": index,
            "image": _image_b64(scene, rng, image_size),
            "question": q.question,
            "answer": "yes" if q.answer else "no",
            "category": category,
            "scene": json.dumps(scene_to_json(scene), separators=(",", ":")),
        })
    return rows


def toy_mcq_rows(num_items: int, seed: int, image_size: int = 64) -> list[dict]:
    """MMBench-style rows with 4 options (3 for shape); the answer column holds the letter."""
    rng = random.Random(seed)
    rows = []
    for index, category in enumerate(_balanced_plan(CHOICE_CATEGORIES, num_items, rng)):
        while True:  # resample until the uniqueness rule of this category holds
            scene = sample_scene(rng)
            q = choice_question(scene, category, rng)
            if q is not None:
                break
        options = {letter: "" for letter in OPTION_LETTERS}
        options.update(zip(OPTION_LETTERS, q.options))
        rows.append({
            "index": index,
            "image": _image_b64(scene, rng, image_size),
            "question": q.question,
            **options,
            "answer": q.answer_letter,
            "category": category,
            "scene": json.dumps(scene_to_json(scene), separators=(",", ":")),
        })
    return rows


def write_toy_pope(path: str | Path, num_items: int, seed: int, image_size: int = 64) -> Path:
    """Write the yes/no benchmark TSV; deterministic from `seed`."""
    return _write_tsv(path, POPE_COLUMNS, toy_pope_rows(num_items, seed, image_size))


def write_toy_mcq(path: str | Path, num_items: int, seed: int, image_size: int = 64) -> Path:
    """Write the multiple-choice benchmark TSV; deterministic from `seed`."""
    return _write_tsv(path, MCQ_COLUMNS, toy_mcq_rows(num_items, seed, image_size))
