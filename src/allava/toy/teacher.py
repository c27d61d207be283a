"""The programmatic teacher: writes ALLaVA-format records about toy scenes.

It plays GPT-4V's part in ALLaVA's "captioning then QA": a fine-grained caption per image, then a
question about the image with a detailed (or benchmark-formatted) answer, plus text-only
instructions in the role of the Evol-Instruct data. Answers are computed from the scene, so they are
always right; the wording varies only as much as it takes to not overfit one template.
"""

from __future__ import annotations

import random

from allava.evaluation.answer_formats import choice_prompt, short_answer_prompt, yes_no_prompt
from allava.models.chat_format import IMAGE_TAG
from allava.toy.questions import (
    YES_NO_CATEGORIES,
    ChoiceQuestion,
    YesNoQuestion,
    applicable_choice_categories,
    choice_question,
    either_yes_no_question,
)
from allava.toy.text_tasks import sample_text_task
from allava.toy.world import Scene, ToyObject, article, describe_object

# Most QA uses the benchmark prompt format: its one-token answers carry the decision being
# learnt, and would otherwise be drowned by the tokens of the free-form answers.
EXACT_FORMAT_PROBABILITY = 0.75
# Multiple-choice categories also come as LLaVA-1.5's short-answer format: the question without
# options, answered by one word ("red"). That makes the model name the attribute as its first
# answer token, which the letter answers then only have to look up among the options; the toy
# MCQ categories left chance far sooner with it (measured). Yes/no questions need
# no such variant: their exact format is one already.
CHOICE_FORMAT_WEIGHTS = {"exact": EXACT_FORMAT_PROBABILITY, "short": 0.15, "free": 0.10}

CAPTION_INSTRUCTIONS: tuple[str, ...] = (
    "Describe this image in detail.",
    "What do you see in this picture? Give a detailed description.",
    "Write a thorough description of the image.",
    "Please describe everything shown in this image.",
    "Give a fine-grained caption of this picture.",
    "Explain in words what this image contains.",
    "Provide a detailed account of the objects in this image.",
    "Tell me about this image, mentioning every object and where it is.",
    "Describe the contents of the picture, including the position of each object.",
)

# Prepositional phrase for each cell, so sentences read naturally ("on the left", "in the center").
CELL_PHRASES: dict[str, str] = {
    "top left": "at the top left",
    "top": "at the top",
    "top right": "at the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "at the bottom left",
    "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}

_YES_NO_PARAPHRASES = (
    "Is there {subject} in the image?",
    "Can you see {subject} in this picture?",
    "Does this image contain {subject}?",
    "Is {subject} visible anywhere in the picture?",
)
_COLOR_PARAPHRASES = (
    "What color is the {shape}?",
    "Which color does the {shape} have?",
    "Tell me the color of the {shape} in this image.",
    "What is the color of the {shape}?",
)
_SHAPE_PARAPHRASES = (
    "What shape is the {color} object?",
    "Which shape does the {color} object have?",
    "Identify the shape of the {color} object.",
    "What kind of shape is the {color} object?",
)
_COUNT_PARAPHRASES = (
    "How many objects are in the image?",
    "Count the objects in this picture.",
    "How many shapes can you see here?",
    "What is the number of objects shown in the image?",
)
_POSITION_PARAPHRASES = (
    "Where is the {color} {shape}?",
    "In which part of the image is the {color} {shape}?",
    "Where can the {color} {shape} be found in this picture?",
    "Tell me where the {color} {shape} is located.",
)


def _capitalize(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def count_phrase(n: int) -> str:
    """"1 object", "3 objects"."""
    return f"{n} object" if n == 1 else f"{n} objects"


def located_object(obj: ToyObject) -> str:
    """"a small red circle at the top left"."""
    desc = describe_object(obj)
    return f"{article(desc)} {desc} {CELL_PHRASES[obj.cell]}"


def _caption_intro(n: int, rng: random.Random) -> str:
    verb = "is" if n == 1 else "are"
    return rng.choice((
        f"The image shows {count_phrase(n)} on a light background.",
        f"There {verb} {count_phrase(n)} in this image, set against a light background.",
        f"This picture contains {count_phrase(n)} on a plain light background.",
    ))


def _object_sentence(obj: ToyObject, rng: random.Random) -> str:
    """One object in one of several word orders. Each order makes a different attribute the
    first one said, so the rest can only be told by finding that object in the image from the
    words so far (by size, colour, shape or position): the lookups the QA later asks for."""
    size, color, shape, where = obj.size, obj.color, obj.shape, CELL_PHRASES[obj.cell]
    desc = describe_object(obj)
    a = article(desc)
    return rng.choice((
        f"There is {a} {desc} {where}.",
        f"{_capitalize(where)} there is {a} {desc}.",
        f"{_capitalize(a)} {desc} is {where}.",
        f"The {shape} {where} is {size} and {color}.",
        f"The {color} object {where} is {article(size)} {size} {shape}.",
        f"{_capitalize(article(color))} {color} {shape} is {where}; it is {size}.",
    ))


def caption_text(scene: Scene, rng: random.Random) -> str:
    """Object count, then every object (size, colour, shape, position) in a random order.

    Not in reading order on purpose: when the next object cannot be predicted from the image
    alone, every object sentence trains the model to look objects up by what the text has
    already said about them, the skill behind "Is there a red circle?" (measured: the
    yes/no pairs learnt sooner with shuffled captions). GPT-4V's captions follow no fixed order either."""
    objects = list(scene.objects)
    rng.shuffle(objects)
    sentences = [_caption_intro(len(objects), rng)]
    sentences += [_object_sentence(obj, rng) for obj in objects]
    return " ".join(sentences)


def _record(
    record_id: str, image_id: str | None, question: str, answer: str, source: str, **extra: str
) -> dict:
    record: dict = {"id": record_id}
    if image_id is not None:
        record["image"] = f"images/{image_id}.png"
    record["conversations"] = [
        {"from": "human", "value": question},
        {"from": "gpt", "value": answer},
    ]
    record["source"] = source
    record.update(extra)
    return record


def caption_record(
    scene: Scene, rng: random.Random, record_id: str, image_id: str | None = None
) -> dict:
    """A Caption record (source "toy_caption"). `image_id` names the shared image file
    (`images/<image_id>.png`); it defaults to `record_id`."""
    question = f"{IMAGE_TAG}\n{rng.choice(CAPTION_INSTRUCTIONS)}"
    return _record(record_id, image_id or record_id, question, caption_text(scene, rng), "toy_caption")


# --- instruction QA ---------------------------------------------------------------------------


def format_yes_no_exact(q: YesNoQuestion) -> tuple[str, str]:
    """The benchmark prompt (POPE as LLaVA evaluates it) and its one-word answer."""
    return yes_no_prompt(q.question, q.answer)


def format_choice_exact(q: ChoiceQuestion) -> tuple[str, str]:
    """The benchmark prompt (MMBench as LLaVA evaluates it) and its bare-letter answer."""
    return choice_prompt(q.question, q.options, q.answer_index)


def format_choice_short(q: ChoiceQuestion) -> tuple[str, str]:
    """The question without its options, answered by the option's text as one word or phrase."""
    return short_answer_prompt(q.question, q.answer_text)


def _yes_no_free(q: YesNoQuestion, rng: random.Random) -> tuple[str, str]:
    question = rng.choice(_YES_NO_PARAPHRASES).format(subject=q.subject_phrase)
    if not q.answer:
        absent = q.subject_phrase.split(" ", 1)[1]  # drop the article: "no orange object"
        return question, f"No, there is no {absent} in the image."
    found = [located_object(o) for o in q.matches]
    if len(found) == 1:
        return question, f"Yes, there is {found[0]}."
    listing = ", ".join(found[:-1]) + f" and {found[-1]}"
    return question, f"Yes, there are {len(found)} of them: {listing}."


def _choice_free(q: ChoiceQuestion, rng: random.Random) -> tuple[str, str]:
    t = q.target
    if q.category == "color":
        assert t is not None
        return rng.choice(_COLOR_PARAPHRASES).format(shape=t.shape), f"The {t.shape} is {t.color}."
    if q.category == "shape":
        assert t is not None
        question = rng.choice(_SHAPE_PARAPHRASES).format(color=t.color)
        return question, f"The {t.color} object is {article(t.shape)} {t.shape}."
    if q.category == "count":
        n = int(q.answer_text)
        verb = "is" if n == 1 else "are"
        return rng.choice(_COUNT_PARAPHRASES), f"There {verb} {count_phrase(n)} in the image."
    assert t is not None and q.category == "position"
    question = rng.choice(_POSITION_PARAPHRASES).format(color=t.color, shape=t.shape)
    return question, f"The {t.color} {t.shape} is {CELL_PHRASES[t.cell]}."


def instruct_categories(scene: Scene) -> list[str]:
    """The instruction categories that apply to this scene ("pope-*" always, "mcq-*" by rule)."""
    return [f"pope-{c}" for c in YES_NO_CATEGORIES] + [
        f"mcq-{c}" for c in applicable_choice_categories(scene)
    ]


def instruct_record(
    scene: Scene, rng: random.Random, record_id: str, image_id: str | None = None
) -> dict:
    """An Instruct record (source "toy_instruct"): one benchmark-category question about the
    image, mostly in the exact benchmark prompt format, otherwise free-form or (multiple-choice
    categories only) as a short-answer question. `format` in the record says which."""
    category = rng.choice(instruct_categories(scene))
    kind, sub = category.split("-", 1)
    if kind == "pope":
        fmt = "exact" if rng.random() < EXACT_FORMAT_PROBABILITY else "free"
        q = either_yes_no_question(scene, sub, rng)
        question, reply = format_yes_no_exact(q) if fmt == "exact" else _yes_no_free(q, rng)
    else:
        (fmt,) = rng.choices(list(CHOICE_FORMAT_WEIGHTS), list(CHOICE_FORMAT_WEIGHTS.values()))
        cq = choice_question(scene, sub, rng)
        assert cq is not None, f"{category} chosen for a scene where it does not apply"
        if fmt == "exact":
            question, reply = format_choice_exact(cq)
        elif fmt == "short":
            question, reply = format_choice_short(cq)
        else:
            question, reply = _choice_free(cq, rng)
    return _record(
        record_id, image_id or record_id, f"{IMAGE_TAG}\n{question}", reply, "toy_instruct",
        category=category, format=fmt,
    )


def text_record(rng: random.Random, record_id: str) -> dict:
    """A text-only instruction record (source "toy_text"): no image key, no image tag."""
    question, answer, kind = sample_text_task(rng)
    return _record(record_id, None, question, answer, "toy_text", category=kind)
