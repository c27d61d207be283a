"""GQA testdev-balanced: LLaVA's conversion (trailing periods, lower case), then exact match as
the official script (`reference.gqa`). Its default files are in `define(...)` below.

VLMEvalKit's GQA_TestDev_Balanced.tsv: index, image, question, answer, optionally category (read
with the question-type columns structural / semantic / detailed where a file has them).

LLaVA-1.5's layout (`scripts/convert_gqa_for_eval.py`): `llava_gqa_testdev_balanced.jsonl`
(`question_id`, `image`, `text`) and `testdev_balanced_questions.json` = {question_id: {answer,
imageId, types: {structural, semantic, detailed}, ...}}; images in `data/images/`. Items:
`category` = structural type, `extras["semantic_type"]`, `extras["detailed_type"]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allava.evaluation.formats.llava import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    ItemBuilder,
    category_or_default,
    load_json,
    require_inputs,
)
from allava.evaluation.formats.tsv_rows import (
    BASE_COLUMNS,
    TsvLayout,
    non_empty_answer,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import DEFAULT_CATEGORY, Benchmark, BenchmarkFormatError, BenchmarkItem
from allava.evaluation.reference.gqa import gqa_accuracy
from allava.evaluation.registry import define, llava_reader, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

TSV_LAYOUT = TsvLayout(
    "GQA", "GQA_TestDev_Balanced.tsv", BASE_COLUMNS, ("category", "structural", "semantic", "detailed")
)
LLAVA_LAYOUT = (
    "expected LLaVA's GQA layout: a question JSONL (llava_gqa_testdev_balanced.jsonl) with "
    "question_id, image, text per line, and testdev_balanced_questions.json = "
    "{question_id: {answer, types, ...}, ...}"
)


def load_gqa_tsv(path: str | Path, name: str = "GQA") -> Benchmark:
    """GQA testdev-balanced: `answer` as given; `category` from `category` or else the structural
    type column (`structural` / `structural_type`); `extras["semantic_type"]` and
    `extras["detailed_type"]` where the file has them."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = dict(item.extras)
        for key, names in (("semantic_type", ("semantic", "semantic_type")),
                           ("detailed_type", ("detailed", "detailed_type"))):
            if (value := cell(columns, *names)) is not None:
                extras[key] = value
        category = cell(columns, "category", "structural", "structural_type") or DEFAULT_CATEGORY
        return with_contract(item, answer=non_empty_answer(item), category=category, extras=extras)

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "short_answer", convert)


def load_gqa(
    question_file: str | Path, annotation_file: str | Path, image_folder: str | Path, name: str = "GQA"
) -> Benchmark:
    """GQA testdev-balanced; `category` = the question's structural type (verify, query, ...)."""
    question_file, annotation_file, image_folder = require_inputs(
        question_file, annotation_file, image_folder, LLAVA_LAYOUT)
    annotations = load_json(annotation_file, LLAVA_LAYOUT)
    if not isinstance(annotations, dict):
        raise BenchmarkFormatError(
            f"{annotation_file}: the top level is not an object keyed by question id; {LLAVA_LAYOUT}"
        )

    builder = ItemBuilder(name, "short_answer", question_file)
    for row, record, index in builder.questions(("question_id", "image", "text")):
        raw_id = record["question_id"]
        annotation = annotations.get(str(raw_id))
        if annotation is None:
            builder.skip(index, row, NO_ANNOTATION,
                         f"question id {raw_id!r} is not in {annotation_file.name}")
            continue
        if not isinstance(annotation, dict) or not isinstance(annotation.get("answer"), str):
            builder.skip(index, row, MALFORMED_ANNOTATION,
                         f"entry {raw_id!r} of {annotation_file.name} has no answer string")
            continue
        types = annotation.get("types") if isinstance(annotation.get("types"), dict) else {}
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=record["text"], answer=annotation["answer"],
            category=category_or_default(types.get("structural")), image_path=image_path,
            extras={
                "question_id": raw_id,
                "image_id": annotation.get("imageId"),
                "structural_type": types.get("structural"),
                "semantic_type": types.get("semantic"),
                "detailed_type": types.get("detailed"),
            },
        )
    return builder.build()


def score_gqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """GQA testdev-balanced: LLaVA's conversion, then exact match as the official script."""
    entry = gqa_accuracy(list(predictions), [item.answer for item in items], [item.category for item in items])
    return as_percent(entry, "accuracy", "accuracy (%)")


SCORER = register_scorer("gqa", score_gqa)

GQA = define(
    "gqa", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_gqa_tsv, TSV_LAYOUT.required),
             "llava": llava_reader(load_gqa, "question_file", "annotation_file", "image_folder")},
    sources={"tsv": {"path": "${benchmark_data_dir}/GQA_TestDev_Balanced.tsv"},
             "llava": {"question_file": "${benchmark_data_dir}/gqa/llava_gqa_testdev_balanced.jsonl",
                       "annotation_file": "${benchmark_data_dir}/gqa/testdev_balanced_questions.json",
                       "image_folder": "${benchmark_data_dir}/gqa/images"}},
    report=[{"column": "GQA", "metric": "accuracy", "scale": 100}],
)
