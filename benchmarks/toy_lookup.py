"""Does a trained toy model find the object a question names? Short-answer and letter accuracy
per multiple-choice category, split by the number of objects in the scene.

    python benchmarks/toy_lookup.py logs/train/runs/<run>/finetune/export [--items 600]

The toy_mcq categories other than count name one object ("the circle", "the red object", "the
red circle") and ask about another of its attributes. In a one-object scene the answer needs no
look-up; with two or three objects the model must pick the named one. An accuracy near 1.0 on
one-object scenes and near 1/objects on the others means the model reads the attribute but not
which object holds it: a binding failure, not a reading one. Scenes come from the toy world's
generator with a seed that neither training nor the benchmarks use.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allava.evaluation.answer_formats import OPTION_LETTERS  # noqa: E402
from allava.evaluation.answer_parsing import normalize_short_answer, parse_choice_letter  # noqa: E402
from allava.models.predictor import load_model  # noqa: E402
from allava.toy.questions import choice_question  # noqa: E402
from allava.toy.teacher import format_choice_exact, format_choice_short  # noqa: E402
from allava.toy.world import render_scene, sample_scene  # noqa: E402

CATEGORIES = ("color", "shape", "position")  # the ones that name an object
SEED = 4242
BATCH = 64


def sample_items(count: int, image_size: int) -> list[tuple]:
    """(scene, question, image) with the categories in turn."""
    rng = random.Random(SEED)
    items: list[tuple] = []
    while len(items) < count:
        scene = sample_scene(rng)
        question = choice_question(scene, CATEGORIES[len(items) % len(CATEGORIES)], rng)
        if question is not None:
            items.append((scene, question, render_scene(scene, rng, image_size)))
    return items


def score(model, items: list[tuple]) -> dict[tuple[str, str, int], list[bool]]:
    """Right or wrong per (format, category, objects in the scene)."""
    outcomes: dict[tuple[str, str, int], list[bool]] = defaultdict(list)
    for fmt, render in (("short", format_choice_short), ("letter", format_choice_exact)):
        prompts = [render(question) for _, question, _ in items]
        for start in range(0, len(items), BATCH):
            chunk, chunk_prompts = items[start:start + BATCH], prompts[start:start + BATCH]
            answers = model.answer([p for p, _ in chunk_prompts], [im for _, _, im in chunk],
                                   max_new_tokens=6)
            for (scene, question, _), (_, gold), answer in zip(chunk, chunk_prompts, answers):
                if fmt == "letter":  # parsed as toy_mcq scores it
                    right = parse_choice_letter(answer, dict(zip(OPTION_LETTERS, question.options))) == gold
                else:
                    right = normalize_short_answer(answer) == normalize_short_answer(gold)
                outcomes[(fmt, question.category, len(scene.objects))].append(right)
    return outcomes


def table(outcomes: dict[tuple[str, str, int], list[bool]]) -> str:
    lines = ["| format | category | 1 object | 2 objects | 3 objects | all |",
             "|---|---|---|---|---|---|"]
    for fmt in ("short", "letter"):
        for category in CATEGORIES:
            cells, pooled = [], []
            for n in (1, 2, 3):
                got = outcomes.get((fmt, category, n), [])
                pooled += got
                cells.append(f"{sum(got) / len(got):.2f} ({len(got)})" if got else "—")
            lines.append(f"| {fmt} | {category} | {' | '.join(cells)} | "
                         f"{sum(pooled) / len(pooled):.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="an exported model (a stage's export/ folder)")
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=64, help="the toy world's (64)")
    args = parser.parse_args()
    model = load_model(args.model_dir)
    print(table(score(model, sample_items(args.items, args.image_size))))


if __name__ == "__main__":
    main()
