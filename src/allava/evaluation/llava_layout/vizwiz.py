"""VizWiz in LLaVA-1.5's evaluation layout.

VizWiz (`scripts/convert_vizwiz_for_submission.py`): `llava_test.jsonl` (`question_id`, `image`,
`text`); for a split with public answers, VizWiz's annotation file (e.g. `val.json`): a list of
{image, question, answers: [{answer, answer_confidence}], answerable, answer_type}, matched by
the `image` file name (VizWiz asks one question per image). LLaVA-1.5 itself only runs the test
split, scored by the EvalAI server; pass `annotation_file=None` to load it without answers.

Items: `category` = answer_type, `extras["answerable"]`; `extras["answers"]` = the annotators'
answers (10), for `vqa_score`, and `answer` the most frequent of them (ties: the earliest).
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
    _require_dir,
    _require_file,
    _string_list,
)

VIZWIZ_LAYOUT = (
    "expected LLaVA's VizWiz layout: a question JSONL (llava_test.jsonl) with question_id, image, "
    "text per line, and (for a split with answers) VizWiz's annotation JSON, a list of "
    "{image, question, answers: [{answer, answer_confidence}], answerable, answer_type}"
)


def load_vizwiz(
    question_file: str | Path,
    annotation_file: str | Path | None,
    image_folder: str | Path,
    name: str = "VizWiz",
) -> Benchmark:
    """VizWiz-VQA; `extras["answers"]` = the 10 answers, `category` = answer type.

    `annotation_file=None` loads a split without public answers (LLaVA-1.5's test split, scored
    by the EvalAI server): items then have `answer` "" and `extras["answers"]` [] and can only be
    used to produce predictions for submission.
    """
    question_file = _require_file(question_file, VIZWIZ_LAYOUT)
    image_folder = _require_dir(image_folder, "image folder", VIZWIZ_LAYOUT)
    by_image: dict[str, dict[str, Any]] | None = None
    if annotation_file is not None:
        annotation_file = _require_file(annotation_file, VIZWIZ_LAYOUT)
        annotations = _load_json(annotation_file, VIZWIZ_LAYOUT)
        if not isinstance(annotations, list):
            raise BenchmarkFormatError(f"{annotation_file}: the top level is not a list; {VIZWIZ_LAYOUT}")
        by_image = {
            entry["image"]: entry
            for entry in annotations
            if isinstance(entry, dict) and isinstance(entry.get("image"), str)
        }

    builder = _Builder(name, "short_answer", question_file)
    for row, record, error in _jsonl_records(question_file):
        line = builder.question_line(row, record, error, ("question_id", "image", "text"))
        if line is None:
            continue
        extras: dict[str, Any] = {"question_id": record["question_id"]}
        answer, category = "", _category(record.get("category"))
        if by_image is not None:
            annotation = by_image.get(record["image"])
            if annotation is None:
                builder.skip(line.index, row, NO_ANNOTATION,
                             f"image {record['image']!r} is not in {annotation_file.name}")
                continue
            raw_answers = annotation.get("answers")
            answers = _string_list(
                [entry.get("answer") for entry in raw_answers if isinstance(entry, dict)]
                if isinstance(raw_answers, list) else None
            )
            if not answers or len(answers) != len(raw_answers):
                builder.skip(line.index, row, MALFORMED_ANNOTATION,
                             f"annotation of {record['image']!r} has no list of {{answer, ...}} objects")
                continue
            answer, category = _most_frequent(answers), _category(annotation.get("answer_type"))
            extras.update(answers=answers, answerable=annotation.get("answerable"),
                          answer_type=annotation.get("answer_type"))
        else:
            extras["answers"] = []
        image_path = builder.image_path(line.index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=line.index, row=row, text=record["text"], answer=answer, category=category,
            image_path=image_path, extras=extras,
        )
    return builder.build()
