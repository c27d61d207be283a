"""GQA in LLaVA-1.5's evaluation layout.

GQA (`scripts/convert_gqa_for_eval.py`): `llava_gqa_testdev_balanced.jsonl` (`question_id`,
`image`, `text`) and `testdev_balanced_questions.json` = {question_id: {answer, imageId,
types: {structural, semantic, detailed}, ...}}; images in `data/images/`.

Items: `category` = structural type, `extras["semantic_type"]`, `extras["detailed_type"]`.
"""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmark_files import Benchmark, BenchmarkFormatError
from allava.evaluation.llava_layout.common import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    _Builder,
    _category,
    _jsonl_records,
    _load_json,
    _require_inputs,
)

GQA_LAYOUT = (
    "expected LLaVA's GQA layout: a question JSONL (llava_gqa_testdev_balanced.jsonl) with "
    "question_id, image, text per line, and testdev_balanced_questions.json = "
    "{question_id: {answer, types, ...}, ...}"
)


def load_gqa(
    question_file: str | Path, annotation_file: str | Path, image_folder: str | Path, name: str = "GQA"
) -> Benchmark:
    """GQA testdev-balanced; `category` = the question's structural type (verify, query, ...)."""
    question_file, annotation_file, image_folder = _require_inputs(
        question_file, annotation_file, image_folder, GQA_LAYOUT)
    annotations = _load_json(annotation_file, GQA_LAYOUT)
    if not isinstance(annotations, dict):
        raise BenchmarkFormatError(
            f"{annotation_file}: the top level is not an object keyed by question id; {GQA_LAYOUT}"
        )

    builder = _Builder(name, "short_answer", question_file)
    for row, record, error in _jsonl_records(question_file):
        line = builder.question_line(row, record, error, ("question_id", "image", "text"))
        if line is None:
            continue
        raw_id = record["question_id"]
        annotation = annotations.get(str(raw_id))
        if annotation is None:
            builder.skip(line.index, row, NO_ANNOTATION,
                         f"question id {raw_id!r} is not in {annotation_file.name}")
            continue
        if not isinstance(annotation, dict) or not isinstance(annotation.get("answer"), str):
            builder.skip(line.index, row, MALFORMED_ANNOTATION,
                         f"entry {raw_id!r} of {annotation_file.name} has no answer string")
            continue
        types = annotation.get("types") if isinstance(annotation.get("types"), dict) else {}
        image_path = builder.image_path(line.index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=line.index, row=row, text=record["text"], answer=annotation["answer"],
            category=_category(types.get("structural")), image_path=image_path,
            extras={
                "question_id": raw_id,
                "image_id": annotation.get("imageId"),
                "structural_type": types.get("structural"),
                "semantic_type": types.get("semantic"),
                "detailed_type": types.get("detailed"),
            },
        )
    return builder.build()
