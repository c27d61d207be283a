"""VQA accuracy benchmarks: TextVQA val (textvqa_val) and VizWiz val (vizwiz_val), scored by VQA
accuracy over the 10 annotators' answers with the EvalAI normalisation (LLaVA's m4c evaluator,
`reference.vqa_accuracy`). TextVQA in the llava layout asks LLaVA's prompts with their reference
OCR tokens (the TSV has none); VizWiz asks with LLaVA-1.5's unanswerable instruction. Its default
files are in `define(...)` below.

VLMEvalKit's files: TextVQA_VAL.tsv: index, image, question, answer (the 10 annotators' answers as
a Python list literal). VizWiz.tsv: index, image, question, answers (the annotators' answers as a
list literal; VLMEvalKit's `VizWiz.evaluate` reads `answers`), or answer in that form.

LLaVA-1.5's layouts:
  TextVQA (`llava/eval/eval_textvqa.py`): `llava_textvqa_val_v051_ocr.jsonl` (`question_id`,
  `image`, `text`, `category`) where `text` is "<Question>\\nReference OCR token: <tokens>\\n<suffix>";
  answers in `TextVQA_0.5.1_val.json` = {"data": [{question_id, question, image_id,
  answers: [10 strings], ...}]}; images in `train_images/`. LLaVA matches a question to its
  annotation by (`image_id`, lowercased question), because the `question_id` of LLaVA's question
  file is the image id (e.g. "003a8ae2ef43b901"), shared by every question on that image. The
  same key is used here, falling back to the annotation's own `question_id` when the file holds
  numeric TextVQA question ids. The question is read out of the prompt as `prompt_processor` does.
  VizWiz (`scripts/convert_vizwiz_for_submission.py`): `llava_test.jsonl` (`question_id`, `image`,
  `text`); for a split with public answers, VizWiz's annotation file (e.g. `val.json`): a list of
  {image, question, answers: [{answer, answer_confidence}], answerable, answer_type}, matched by
  the `image` file name (VizWiz asks one question per image). LLaVA-1.5 itself only runs the test
  split, scored by the EvalAI server; pass `annotation_file=None` to load it without answers.

Items of every reader: `extras["answers"]` = the annotators' answers, for `vqa_score`; `answer` the
most frequent of them (ties: the earliest). TextVQA (llava): `extras["image_id"]`; VizWiz:
`category` = answer_type, `extras["answerable"]`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from allava.evaluation.formats.common import most_frequent, parse_index, require_dir, require_file
from allava.evaluation.formats.llava import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    ItemBuilder,
    category_or_default,
    load_json,
    require_inputs,
    string_list,
)
from allava.evaluation.formats.tsv_rows import (
    BASE_COLUMNS,
    TsvLayout,
    annotator_answers,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell, check_tsv_header
from allava.evaluation.items import DEFAULT_CATEGORY, Benchmark, BenchmarkFormatError, BenchmarkItem
from allava.evaluation.metrics import mean_of
from allava.evaluation.prompts import VIZWIZ_UNANSWERABLE
from allava.evaluation.reference.vqa_accuracy import vqa_score
from allava.evaluation.registry import define, llava_reader, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

TEXTVQA_TSV_LAYOUT = TsvLayout("TextVQA", "TextVQA_VAL.tsv", BASE_COLUMNS, ("category",))
VIZWIZ_TSV_LAYOUT = TsvLayout(
    "VizWiz", "VizWiz.tsv", ("index", "image", "question", "answers"), ("category", "answer_type")
)
TEXTVQA_LLAVA_LAYOUT = (
    "expected LLaVA's TextVQA layout: a question JSONL (llava_textvqa_val_v051_ocr.jsonl) with "
    "question_id, image, text per line, and TextVQA_0.5.1_val.json = {\"data\": [{question_id, "
    "question, image_id, answers: [...]}, ...]}"
)
VIZWIZ_LLAVA_LAYOUT = (
    "expected LLaVA's VizWiz layout: a question JSONL (llava_test.jsonl) with question_id, image, "
    "text per line, and (for a split with answers) VizWiz's annotation JSON, a list of "
    "{image, question, answers: [{answer, answer_confidence}], answerable, answer_type}"
)


# ------------------------------------------------------------------------------ VLMEvalKit's TSVs


def load_textvqa_tsv(path: str | Path, name: str = "TextVQA") -> Benchmark:
    """TextVQA val: `extras["answers"]` = the annotators' answers (the answer cell's list literal,
    or the plain cell as one answer), `answer` = the most frequent of them (ties: the earliest)."""
    return read_benchmark_tsv(path, name, TEXTVQA_TSV_LAYOUT, "short_answer", _vqa_item)


def load_vizwiz_tsv(path: str | Path, name: str = "VizWiz") -> Benchmark:
    """VizWiz val: as TextVQA, from the `answers` column (or `answer` if the file has no
    `answers`); `category` = answer_type where the file has it."""
    path = Path(path)
    header = check_tsv_header(path, required=())
    answer_column = "answers" if "answers" in header or "answer" not in header else "answer"
    required = ("index", "image", "question", answer_column)
    return read_benchmark_tsv(path, name, VIZWIZ_TSV_LAYOUT, "short_answer", _vqa_item,
                              answer_column=answer_column, required=required)


def _vqa_item(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
    answers = annotator_answers(item)
    category = cell(columns, "category", "answer_type") or DEFAULT_CATEGORY
    return with_contract(item, answer=most_frequent(answers), category=category,
                         extras={**item.extras, "answers": answers})


# ---------------------------------------------------------------------------- LLaVA-1.5's layouts


def load_textvqa(
    question_file: str | Path, annotation_file: str | Path, image_folder: str | Path, name: str = "TextVQA"
) -> Benchmark:
    """TextVQA val with the OCR-token prompts of LLaVA-1.5; `extras["answers"]` = the 10 answers."""
    question_file, annotation_file, image_folder = require_inputs(
        question_file, annotation_file, image_folder, TEXTVQA_LLAVA_LAYOUT)
    document = load_json(annotation_file, TEXTVQA_LLAVA_LAYOUT)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise BenchmarkFormatError(f"{annotation_file}: no top-level \"data\" list; {TEXTVQA_LLAVA_LAYOUT}")
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

    builder = ItemBuilder(name, "short_answer", question_file)
    for row, record, index in builder.questions(("question_id", "image", "text")):
        raw_id, text = record["question_id"], record["text"]
        annotation = by_image_and_question.get((str(raw_id), textvqa_question_of_prompt(text).lower()))
        if annotation is None:
            annotation = by_question_id.get(str(raw_id))
        if annotation is None:
            builder.skip(index, row, NO_ANNOTATION,
                         f"no entry of {annotation_file.name} for image id {raw_id!r} and this question")
            continue
        # LLaVA's question_id is the image id, shared by all questions on that image: index by the
        # annotation's own (unique) question id instead.
        if "question_id" in annotation:
            index = parse_index(annotation["question_id"], canonical=True)
        answers = string_list(annotation.get("answers"))
        if not answers:
            builder.skip(index, row, MALFORMED_ANNOTATION, f"annotation {index!r} has no answers list")
            continue
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=text, answer=most_frequent(answers),
            category=category_or_default(record.get("category")), image_path=image_path,
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
    question_file = require_file(question_file, VIZWIZ_LLAVA_LAYOUT)
    image_folder = require_dir(image_folder, "image folder", VIZWIZ_LLAVA_LAYOUT)
    by_image: dict[str, dict[str, Any]] | None = None
    if annotation_file is not None:
        annotation_file = require_file(annotation_file, VIZWIZ_LLAVA_LAYOUT)
        annotations = load_json(annotation_file, VIZWIZ_LLAVA_LAYOUT)
        if not isinstance(annotations, list):
            raise BenchmarkFormatError(f"{annotation_file}: the top level is not a list; {VIZWIZ_LLAVA_LAYOUT}")
        by_image = {
            entry["image"]: entry
            for entry in annotations
            if isinstance(entry, dict) and isinstance(entry.get("image"), str)
        }

    builder = ItemBuilder(name, "short_answer", question_file)
    for row, record, index in builder.questions(("question_id", "image", "text")):
        extras: dict[str, Any] = {"question_id": record["question_id"]}
        answer, category = "", category_or_default(record.get("category"))
        if by_image is not None:
            annotation = by_image.get(record["image"])
            if annotation is None:
                builder.skip(index, row, NO_ANNOTATION,
                             f"image {record['image']!r} is not in {annotation_file.name}")
                continue
            raw_answers = annotation.get("answers")
            answers = string_list(
                [entry.get("answer") for entry in raw_answers if isinstance(entry, dict)]
                if isinstance(raw_answers, list) else None
            )
            if not answers or len(answers) != len(raw_answers):
                builder.skip(index, row, MALFORMED_ANNOTATION,
                             f"annotation of {record['image']!r} has no list of {{answer, ...}} objects")
                continue
            answer, category = most_frequent(answers), category_or_default(annotation.get("answer_type"))
            extras.update(answers=answers, answerable=annotation.get("answerable"),
                          answer_type=annotation.get("answer_type"))
        else:
            extras["answers"] = []
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=record["text"], answer=answer, category=category,
            image_path=image_path, extras=extras,
        )
    return builder.build()


# ------------------------------------------------------------------------------ scoring, settings


def score_vqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """TextVQA / VizWiz: VQA accuracy over the annotators' answers (EvalAI normalisation)."""
    scores = [vqa_score(prediction, item.extras.get("answers") or [item.answer])
              for item, prediction in zip(items, predictions, strict=True)]
    entry: dict[str, Any] = {"accuracy": mean_of(scores), "num_items": len(scores)}
    by_category: dict[str, list[float]] = defaultdict(list)
    for item, score in zip(items, scores):
        by_category[item.category].append(score)
    if len(by_category) > 1:
        entry["per_category"] = {name: mean_of(by_category[name]) for name in sorted(by_category)}
    return as_percent(entry, "accuracy", "VQA accuracy (%)")


SCORER = register_scorer("vqa", score_vqa)

TEXTVQA_VAL = define(
    "textvqa_val", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_textvqa_tsv, TEXTVQA_TSV_LAYOUT.required),
             "llava": llava_reader(load_textvqa, "question_file", "annotation_file", "image_folder")},
    sources={"tsv": {"path": "${benchmark_data_dir}/TextVQA_VAL.tsv"},
             "llava": {"question_file": "${benchmark_data_dir}/textvqa/llava_textvqa_val_v051_ocr.jsonl",
                       "annotation_file": "${benchmark_data_dir}/textvqa/TextVQA_0.5.1_val.json",
                       "image_folder": "${benchmark_data_dir}/textvqa/train_images"}},
    report=[{"column": "TextVQA", "metric": "accuracy", "scale": 100}],
)
VIZWIZ_VAL = define(
    "vizwiz_val", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_vizwiz_tsv, VIZWIZ_TSV_LAYOUT.required),
             "llava": llava_reader(load_vizwiz, "question_file", "annotation_file", "image_folder")},
    sources={"tsv": {"path": "${benchmark_data_dir}/VizWiz.tsv"},
             "llava": {"question_file": "${benchmark_data_dir}/vizwiz/llava_val.jsonl",
                       "annotation_file": "${benchmark_data_dir}/vizwiz/val.json",
                       "image_folder": "${benchmark_data_dir}/vizwiz/val"}},
    prompt={"extra_instruction": VIZWIZ_UNANSWERABLE},
    report=[{"column": "VizWiz", "metric": "accuracy", "scale": 100}],
)
