"""TextVQA in LLaVA-1.5's evaluation layout.

TextVQA (`llava/eval/eval_textvqa.py`): `llava_textvqa_val_v051_ocr.jsonl` (`question_id`,
`image`, `text`, `category`) where `text` is "<Question>\\nReference OCR token: <tokens>\\n<suffix>";
answers in `TextVQA_0.5.1_val.json` = {"data": [{question_id, question, image_id,
answers: [10 strings], ...}]}; images in `train_images/`. LLaVA matches a question to its
annotation by (`image_id`, lowercased question), because the `question_id` of LLaVA's question
file is the image id (e.g. "003a8ae2ef43b901"), shared by every question on that image. The
same key is used here, falling back to the annotation's own `question_id` when the file holds
numeric TextVQA question ids. The question is read out of the prompt as `prompt_processor` does.

Items: `extras["answers"]` = the annotators' answers (10), for `vqa_score`; `answer` is the most
frequent of them (ties: the earliest); `extras["image_id"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.benchmark_files import Benchmark, BenchmarkFormatError
from allava.evaluation.llava_layout.common import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    _Builder,
    _category,
    _jsonl_records,
    _load_json,
    _most_frequent,
    _parse_index,
    _require_inputs,
    _string_list,
)

TEXTVQA_LAYOUT = (
    "expected LLaVA's TextVQA layout: a question JSONL (llava_textvqa_val_v051_ocr.jsonl) with "
    "question_id, image, text per line, and TextVQA_0.5.1_val.json = {\"data\": [{question_id, "
    "question, image_id, answers: [...]}, ...]}"
)


def load_textvqa(
    question_file: str | Path, annotation_file: str | Path, image_folder: str | Path, name: str = "TextVQA"
) -> Benchmark:
    """TextVQA val with the OCR-token prompts of LLaVA-1.5; `extras["answers"]` = the 10 answers."""
    question_file, annotation_file, image_folder = _require_inputs(
        question_file, annotation_file, image_folder, TEXTVQA_LAYOUT)
    document = _load_json(annotation_file, TEXTVQA_LAYOUT)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise BenchmarkFormatError(f"{annotation_file}: no top-level \"data\" list; {TEXTVQA_LAYOUT}")
    by_image_and_question: dict[tuple[str, str], dict[str, Any]] = {}
    by_question_id: dict[str, dict[str, Any]] = {}
    for annotation in document["data"]:
        if not isinstance(annotation, dict):
            continue
        if "image_id" in annotation and isinstance(annotation.get("question"), str):
            # Later entries win, as in LLaVA's dict comprehension.
            by_image_and_question[(str(annotation["image_id"]), annotation["question"].lower())] = annotation
        if "question_id" in annotation:
            by_question_id[str(annotation["question_id"])] = annotation

    builder = _Builder(name, "short_answer", question_file)
    for row, record, error in _jsonl_records(question_file):
        line = builder.question_line(row, record, error, ("question_id", "image", "text"))
        if line is None:
            continue
        raw_id, text = record["question_id"], record["text"]
        annotation = by_image_and_question.get((str(raw_id), textvqa_question_of_prompt(text).lower()))
        if annotation is None:
            annotation = by_question_id.get(str(raw_id))
        if annotation is None:
            builder.skip(line.index, row, NO_ANNOTATION,
                         f"no entry of {annotation_file.name} for image id {raw_id!r} and this question")
            continue
        # LLaVA's question_id is the image id, shared by all questions on that image: index by the
        # annotation's own (unique) question id instead.
        index = _parse_index(annotation["question_id"]) if "question_id" in annotation else line.index
        answers = _string_list(annotation.get("answers"))
        if not answers:
            builder.skip(index, row, MALFORMED_ANNOTATION, f"annotation {index!r} has no answers list")
            continue
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=text, answer=_most_frequent(answers),
            category=_category(record.get("category")), image_path=image_path,
            extras={"question_id": raw_id, "answers": answers, "image_id": annotation.get("image_id")},
        )
    return builder.build()


def textvqa_question_of_prompt(prompt: str) -> str:
    """The bare question inside a TextVQA prompt, read as `eval_textvqa.py`'s `prompt_processor` does.

    Where the reference would fail an assertion (an unexpected number of lines), the first line
    that is not the OCR-token line is taken.
    """
    lines = prompt.split("\n")
    if prompt.startswith("OCR tokens: "):
        start, end = prompt.find("Question: "), prompt.find(" Short answer:")
        if start != -1 and end > start:
            return prompt[start + len("Question: ") : end]
    if "Reference OCR token: " in prompt and len(lines) == 3:
        return lines[1] if prompt.startswith("Reference OCR token:") else lines[0]
    if len(lines) == 2:
        return lines[0]
    return next((line for line in lines if not line.startswith("Reference OCR token:")), lines[0])
