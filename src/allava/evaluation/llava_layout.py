"""Load benchmarks stored in LLaVA-1.5's evaluation layout: a question file, an image folder and the
answer/annotation file each benchmark ships.

Layouts read (haotian-liu/LLaVA `docs/Evaluation.md`, `scripts/v1_5/eval/{pope,textvqa,gqa,vizwiz,sqa}.sh`):

* POPE (`llava/eval/model_vqa_loader.py`, `llava/eval/eval_pope.py`): `llava_pope_test.jsonl`, one
  JSON object per line with `question_id`, `image`, `text`, `category` (adversarial / popular /
  random); labels in `<annotation_dir>/coco_pope_<category>.json`, one JSON object per line with
  `question_id`, `image`, `text`, `label` ("yes"/"no"); images in `val2014/`.
  `eval_pope.py` pairs the k-th answer of a category with the k-th label line of that category's
  file. Here a question is paired with the label line of its category that has the same `image`
  and the same question text (suffix removed, case and surrounding blanks ignored), taken in file
  order when several match: the same pairs as LLaVA's when the files are aligned, and a question
  without a matching label is skipped instead of being scored against a neighbour's label.
* TextVQA (`llava/eval/eval_textvqa.py`): `llava_textvqa_val_v051_ocr.jsonl` (`question_id`,
  `image`, `text`, `category`) where `text` is "<Question>\\nReference OCR token: <tokens>\\n<suffix>";
  answers in `TextVQA_0.5.1_val.json` = {"data": [{question_id, question, image_id,
  answers: [10 strings], ...}]}; images in `train_images/`. LLaVA matches a question to its
  annotation by (`image_id`, lowercased question), because the `question_id` of LLaVA's question
  file is the image id (e.g. "003a8ae2ef43b901"), shared by every question on that image. The
  same key is used here, falling back to the annotation's own `question_id` when the file holds
  numeric TextVQA question ids. The question is read out of the prompt as `prompt_processor` does.
* GQA (`scripts/convert_gqa_for_eval.py`): `llava_gqa_testdev_balanced.jsonl` (`question_id`,
  `image`, `text`) and `testdev_balanced_questions.json` = {question_id: {answer, imageId,
  types: {structural, semantic, detailed}, ...}}; images in `data/images/`.
* VizWiz (`scripts/convert_vizwiz_for_submission.py`): `llava_test.jsonl` (`question_id`, `image`,
  `text`); for a split with public answers, VizWiz's annotation file (e.g. `val.json`): a list of
  {image, question, answers: [{answer, answer_confidence}], answerable, answer_type}, matched by
  the `image` file name (VizWiz asks one question per image). LLaVA-1.5 itself only runs the test
  split, scored by the EvalAI server; pass `annotation_file=None` to load it without answers.
* ScienceQA (`llava/eval/model_vqa_science.py`, `llava/eval/eval_science_qa.py`):
  `llava_test_CQM-A.json`, a JSON list of {id, image? ("<id>/image.png"), conversations:
  [{from: "human", value: <prompt with "<image>">}, ...]}; `problems.json` = {id: {question,
  choices, answer (0-based index), hint, image, subject, grade, ...}}; `pid_splits.json` =
  {split: [id, ...]}; images in `images/test/`.

What every item carries:
  `index`     the question file's `question_id` (`id` for ScienceQA), an int when it is written as
              a canonical integer; TextVQA uses the annotation's numeric `question_id` instead (see
              above: the file's id is not unique). The raw value is kept in `extras["question_id"]`
              for writing answers back in LLaVA's format.
  `question`  the prompt text of the question file WITHOUT a trailing LLaVA-1.5 short-answer
              instruction ("\\nAnswer the question using a single word or phrase."), removed once
              when the text ends with it. `prompts.build_prompt` appends that instruction itself,
              so the prompt the model sees is LLaVA's prompt with the instruction exactly once.
              Anything else in the text stays: TextVQA's "Reference OCR token: ..." line, VizWiz's
              "When the provided information is insufficient, respond with 'Unanswerable'." line.
              ScienceQA: the bare question of problems.json, with `hint` and `options` separate,
              because `build_prompt` lays out hint, question and options itself.
  `extras["prompt"]`             the text exactly as in the question file (ScienceQA: the first
                                 human turn with "<image>" removed and stripped, as
                                 `model_vqa_science.py` uses it, before `--single-pred-prompt`).
  `extras["prompt_had_suffix"]`  whether that text already ended with the instruction
                                 `build_prompt` appends for the kind (the short-answer one;
                                 ScienceQA: the option-letter one, which LLaVA adds at run time).
  `extras["image_path"]`         the image file (absent for ScienceQA's text-only questions);
                                 `image_b64` stays None: read the image with `load_item_image`.
  `extras["answers"]`            TextVQA/VizWiz: the annotators' answers (10), for `vqa_score`;
                                 `answer` is then the most frequent of them (ties: the earliest).
  POPE:      `category` = split, `answer` "yes"/"no", `extras["split"]`, `extras["label"]`.
  GQA:       `category` = structural type, `extras["semantic_type"]`, `extras["detailed_type"]`.
  VizWiz:    `category` = answer_type, `extras["answerable"]`.
  ScienceQA: `options` {"A": choice, ...}, `answer` letter, `hint`, `category` = subject,
             `extras["has_image"]`, `extras["num_options"]`.

Problems with a whole file (missing file or folder, not JSON, wrong top-level shape, no
questions) raise `BenchmarkFormatError` naming the file and the expected layout. A problem with
one question becomes a `SkippedItem`, counted rather than dropped; its `reason` starts with one of
the codes below, then ": " and the details.
"""

from __future__ import annotations

import json
import string
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from allava.data.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.evaluation.benchmark_files import (
    DEFAULT_CATEGORY,
    Benchmark,
    BenchmarkFormatError,
    BenchmarkItem,
    SkippedItem,
    UndecodableImageError,
)

# Skip reason codes (a SkippedItem's reason is "<code>: <details>").
MISSING_IMAGE = "missing_image"
MALFORMED_LINE = "malformed_line"
NO_ANNOTATION = "no_annotation"
MALFORMED_ANNOTATION = "malformed_annotation"
DUPLICATE_QUESTION = "duplicate_question"
NOT_IN_SPLIT = "not_in_split"
NOT_IN_QUESTION_FILE = "not_in_question_file"

POPE_LAYOUT = (
    "expected LLaVA's POPE layout: a question JSONL (llava_pope_test.jsonl) with question_id, image, "
    "text, category per line, and an annotation folder (coco/) holding coco_pope_<category>.json "
    "files of JSON lines with question_id, image, text, label"
)
TEXTVQA_LAYOUT = (
    "expected LLaVA's TextVQA layout: a question JSONL (llava_textvqa_val_v051_ocr.jsonl) with "
    "question_id, image, text per line, and TextVQA_0.5.1_val.json = {\"data\": [{question_id, "
    "question, image_id, answers: [...]}, ...]}"
)
GQA_LAYOUT = (
    "expected LLaVA's GQA layout: a question JSONL (llava_gqa_testdev_balanced.jsonl) with "
    "question_id, image, text per line, and testdev_balanced_questions.json = "
    "{question_id: {answer, types, ...}, ...}"
)
VIZWIZ_LAYOUT = (
    "expected LLaVA's VizWiz layout: a question JSONL (llava_test.jsonl) with question_id, image, "
    "text per line, and (for a split with answers) VizWiz's annotation JSON, a list of "
    "{image, question, answers: [{answer, answer_confidence}], answerable, answer_type}"
)
SCIENCEQA_LAYOUT = (
    "expected LLaVA's ScienceQA layout: a question JSON list (llava_test_CQM-A.json) of "
    "{id, image?, conversations: [{from, value}, ...]}, problems.json = {id: {question, choices, "
    "answer, hint, ...}} and optionally pid_splits.json = {split: [id, ...]}"
)

_OPTION_LETTERS = string.ascii_uppercase


# ----------------------------------------------------------------------------------------- images


def load_item_image(item: BenchmarkItem) -> Image.Image | None:
    """The item's RGB image: read from `extras["image_path"]` when set, else `item.load_image()`.

    A file that has gone missing or does not decode raises `UndecodableImageError`, which the
    runner records as a skipped item.
    """
    image_path = item.extras.get("image_path")
    if image_path is None:
        return item.load_image()
    try:
        with Image.open(image_path) as image:
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError) as error:
        raise UndecodableImageError(
            f"image file {image_path} does not decode ({type(error).__name__}: {error})"
        ) from error


# ------------------------------------------------------------------------------------------- POPE


def load_pope(
    question_file: str | Path, annotation_dir: str | Path, image_folder: str | Path, name: str = "POPE"
) -> Benchmark:
    """POPE as LLaVA-1.5 evaluates it; yes/no items, `category` = split (adversarial, ...)."""
    question_file = _require_file(question_file, POPE_LAYOUT)
    annotation_dir = _require_dir(annotation_dir, "annotation folder", POPE_LAYOUT)
    image_folder = _require_dir(image_folder, "image folder", POPE_LAYOUT)
    label_files = sorted(annotation_dir.glob("coco_pope_*.json"))
    if not label_files:
        raise BenchmarkFormatError(f"{annotation_dir}: no coco_pope_<category>.json file; {POPE_LAYOUT}")

    # split -> (image, question text) -> queue of (line number, label or problem)
    labels: dict[str, dict[tuple[str, str], deque[tuple[int, str | None, str]]]] = {}
    for label_file in label_files:
        split = label_file.name[len("coco_pope_") : -len(".json")]
        by_key: dict[tuple[str, str], deque[tuple[int, str | None, str]]] = defaultdict(deque)
        for line_number, record, error in _jsonl_records(label_file):
            if error is not None or not all(isinstance(record.get(key), str) for key in ("image", "text")):
                continue  # a label line that names no question cannot be matched to one
            label = record.get("label")
            label_text = label.strip().lower() if isinstance(label, str) else None
            problem = "" if label_text in ("yes", "no") else f"label {label!r} is neither yes nor no"
            key = (record["image"], _comparable(record["text"]))
            by_key[key].append((line_number, label_text if not problem else None, problem))
        labels[split] = by_key

    builder = _Builder(name, "yes_no", question_file)
    for row, record, error in _jsonl_records(question_file):
        line = builder.question_line(row, record, error, ("question_id", "image", "text", "category"))
        if line is None:
            continue
        index, raw_id, text, category = line.index, record["question_id"], record["text"], record["category"]
        split_labels = labels.get(category)
        if split_labels is None:
            builder.skip(index, row, NO_ANNOTATION, f"no coco_pope_{category}.json in {annotation_dir}")
            continue
        candidates = split_labels.get((record["image"], _comparable(text)))
        if not candidates:
            builder.skip(index, row, NO_ANNOTATION,
                         f"no line of coco_pope_{category}.json has this image and question")
            continue
        label_line, label, problem = candidates.popleft()
        if label is None:
            builder.skip(index, row, MALFORMED_ANNOTATION,
                         f"coco_pope_{category}.json line {label_line}: {problem}")
            continue
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=text, answer=label, category=category, image_path=image_path,
            extras={"question_id": raw_id, "split": category, "label": label},
        )
    return builder.build()


# ---------------------------------------------------------------------------------------- TextVQA


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


# -------------------------------------------------------------------------------------------- GQA


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


# ----------------------------------------------------------------------------------------- VizWiz


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


# -------------------------------------------------------------------------------------- ScienceQA


def load_scienceqa(
    question_file: str | Path,
    problems_file: str | Path,
    image_folder: str | Path,
    split: str = "test",
    pid_splits_file: str | Path | None = None,
    name: str = "ScienceQA",
) -> Benchmark:
    """ScienceQA (IMG and text-only questions) as LLaVA-1.5's `sqa.sh` runs it.

    The split's problem ids come from `pid_splits_file`, by default `pid_splits.json` next to
    `problems_file` when it exists (else each problem's own `split` field). Questions of another
    split are skipped (`not_in_split`); problems of the split that the question file lacks are
    skipped too (`not_in_question_file`; LLaVA's `eval_science_qa.py` counts them as wrong).
    """
    question_file, problems_file, image_folder = _require_inputs(
        question_file, problems_file, image_folder, SCIENCEQA_LAYOUT)
    questions = _load_json(question_file, SCIENCEQA_LAYOUT)
    if not isinstance(questions, list):
        raise BenchmarkFormatError(f"{question_file}: the top level is not a list; {SCIENCEQA_LAYOUT}")
    if not questions:
        raise BenchmarkFormatError(f"{question_file}: the file holds no questions; {SCIENCEQA_LAYOUT}")
    problems = _load_json(problems_file, SCIENCEQA_LAYOUT)
    if not isinstance(problems, dict):
        raise BenchmarkFormatError(
            f"{problems_file}: the top level is not an object keyed by problem id; {SCIENCEQA_LAYOUT}"
        )
    split_ids = _scienceqa_split_ids(problems_file, pid_splits_file, split)

    builder = _Builder(name, "multiple_choice", question_file)
    seen_ids: set[str] = set()
    for row, record in enumerate(questions, start=1):
        problem_id = record.get("id") if isinstance(record, dict) else None
        conversations = record.get("conversations") if isinstance(record, dict) else None
        first_turn = conversations[0] if isinstance(conversations, list) and conversations else None
        if not isinstance(problem_id, (int, str)) or isinstance(problem_id, bool) \
                or not isinstance(first_turn, dict) or not isinstance(first_turn.get("value"), str):
            index = _parse_index(problem_id) if isinstance(problem_id, (int, str)) else f"row {row}"
            builder.skip(index, row, MALFORMED_LINE, "expected an object with id and conversations[0].value")
            continue
        index, key = _parse_index(problem_id), str(problem_id)
        seen_ids.add(key)
        problem = problems.get(key)
        if not isinstance(problem, dict):
            builder.skip(index, row, NO_ANNOTATION, f"problem id {key!r} is not in {problems_file.name}")
            continue
        in_split = key in split_ids if split_ids is not None else problem.get("split", split) == split
        if not in_split:
            builder.skip(index, row, NOT_IN_SPLIT, f"problem {key!r} is not in the {split!r} split")
            continue
        choices, answer_index = problem.get("choices"), problem.get("answer")
        if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices) \
                or len(choices) > len(_OPTION_LETTERS) or not isinstance(answer_index, int) \
                or isinstance(answer_index, bool) or not 0 <= answer_index < len(choices) \
                or not isinstance(problem.get("question"), str):
            builder.skip(index, row, MALFORMED_ANNOTATION,
                         f"problem {key!r} lacks a question, a choices list or a valid answer index")
            continue
        has_image = "image" in record and record["image"] is not None
        if has_image and not isinstance(record["image"], str):
            builder.skip(index, row, MALFORMED_LINE, "image is not a file name")
            continue
        image_path = None
        if has_image:
            image_path = builder.image_path(index, row, image_folder, record["image"])
            if image_path is None:
                continue
        hint = problem.get("hint")
        builder.add(
            index=index, row=row, text=problem["question"], answer=_OPTION_LETTERS[answer_index],
            category=_category(problem.get("subject")), image_path=image_path,
            options={_OPTION_LETTERS[i]: choice for i, choice in enumerate(choices)},
            hint=hint.strip() if isinstance(hint, str) and hint.strip() else None,
            prompt=conversations[0]["value"].replace("<image>", "").strip(),
            extras={"question_id": problem_id, "has_image": has_image, "num_options": len(choices),
                    "grade": problem.get("grade")},
        )
    if split_ids is not None:
        missing = [problem_id for problem_id in split_ids if problem_id not in seen_ids]
        for offset, problem_id in enumerate(missing, start=1):
            details = f"problem {problem_id!r} of the {split!r} split has no question in {question_file.name}"
            builder.skip(_parse_index(problem_id), len(questions) + offset, NOT_IN_QUESTION_FILE, details)
    return builder.build()


def _scienceqa_split_ids(
    problems_file: Path, pid_splits_file: str | Path | None, split: str
) -> list[str] | None:
    if pid_splits_file is None:
        sibling = problems_file.with_name("pid_splits.json")
        if not sibling.is_file():
            return None
        pid_splits_file = sibling
    pid_splits_file = _require_file(pid_splits_file, SCIENCEQA_LAYOUT)
    splits = _load_json(pid_splits_file, SCIENCEQA_LAYOUT)
    if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
        available = ", ".join(sorted(splits)) if isinstance(splits, dict) else "none"
        raise BenchmarkFormatError(
            f"{pid_splits_file}: no {split!r} list of problem ids (splits: {available}); {SCIENCEQA_LAYOUT}"
        )
    return [str(problem_id) for problem_id in splits[split]]


# ---------------------------------------------------------------------------------------- helpers


class _QuestionLine:
    __slots__ = ("index",)

    def __init__(self, index: int | str) -> None:
        self.index = index


class _Builder:
    """Collects items and skipped rows, guarding against duplicated indices."""

    def __init__(self, name: str, kind: str, path: Path) -> None:
        self.name, self.kind, self.path = name, kind, path
        self.items: list[BenchmarkItem] = []
        self.skipped: list[SkippedItem] = []
        self.rows_seen = 0
        self._indices: set[int | str] = set()

    def skip(self, index: int | str, row: int, code: str, details: str) -> None:
        self.skipped.append(SkippedItem(index=index, row=row, reason=f"{code}: {details}"))

    def question_line(
        self, row: int, record: Any, error: str | None, required: tuple[str, ...]
    ) -> _QuestionLine | None:
        """Check one JSONL question record; None (and a skipped row) when it is unusable."""
        self.rows_seen += 1
        raw_id = record.get("question_id") if isinstance(record, dict) else None
        id_ok = isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool) and str(raw_id).strip() != ""
        index = _parse_index(raw_id) if id_ok else f"line {row}"
        if error is not None:
            self.skip(index, row, MALFORMED_LINE, error)
            return None
        missing = [key for key in required if key not in record]
        if missing:
            self.skip(index, row, MALFORMED_LINE, f"missing field(s) {', '.join(missing)}")
            return None
        wrong = [key for key in required if key != "question_id" and not isinstance(record[key], str)]
        if not id_ok:
            wrong.insert(0, "question_id")
        if wrong:
            self.skip(index, row, MALFORMED_LINE, f"field(s) {', '.join(wrong)} of the wrong type")
            return None
        if not strip_short_answer_suffix(record["text"]).strip():
            self.skip(index, row, MALFORMED_LINE, "empty question text")
            return None
        return _QuestionLine(index)

    def image_path(self, index: int | str, row: int, image_folder: Path, image_name: str) -> Path | None:
        path = image_folder / image_name
        if not path.is_file():
            self.skip(index, row, MISSING_IMAGE, f"{path} not found")
            return None
        return path

    def add(
        self,
        *,
        index: int | str,
        row: int,
        text: str,
        answer: str,
        category: str,
        image_path: Path | None,
        extras: dict[str, Any],
        options: dict[str, str] | None = None,
        hint: str | None = None,
        prompt: str | None = None,
    ) -> None:
        if index in self._indices:
            self.skip(index, row, DUPLICATE_QUESTION, f"index {index!r} is already used by an earlier item")
            return
        self._indices.add(index)
        prompt = text if prompt is None else prompt
        question = text if options else strip_short_answer_suffix(text)
        # The instruction `build_prompt` appends for this kind: did LLaVA's prompt already end with it?
        suffix = CHOICE_SUFFIX if self.kind == "multiple_choice" else SHORT_ANSWER_SUFFIX
        all_extras = {"prompt": prompt, "prompt_had_suffix": prompt.rstrip().endswith(suffix), **extras}
        if image_path is not None:
            all_extras["image_path"] = str(image_path)
        self.items.append(
            BenchmarkItem(
                index=index, question=question, answer=answer, category=category,
                options=options or {}, hint=hint, image_b64=None, row=row, extras=all_extras,
            )
        )

    def build(self) -> Benchmark:
        if self.kind != "multiple_choice" and self.rows_seen == 0:
            raise BenchmarkFormatError(f"{self.path}: the file holds no questions")
        return Benchmark(
            name=self.name, kind=self.kind, items=self.items, skipped=self.skipped, path=self.path
        )


def strip_short_answer_suffix(text: str) -> str:
    """`text` without one trailing LLaVA-1.5 short-answer instruction (and the blank before it)."""
    stripped = text.rstrip()
    if stripped.endswith(SHORT_ANSWER_SUFFIX):
        return stripped[: -len(SHORT_ANSWER_SUFFIX)].rstrip()
    return text


def _comparable(text: str) -> str:
    return strip_short_answer_suffix(text).strip().casefold()


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(row, record, error) per non-blank line; row counts non-blank lines from 1."""
    row = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.strip():
                continue
            row += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield row, None, f"not valid JSON ({error.msg} at column {error.colno})"
                continue
            if not isinstance(record, dict):
                yield row, None, f"a JSON {type(record).__name__}, not an object"
                continue
            yield row, record, None


def _load_json(path: Path, layout: str) -> Any:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise BenchmarkFormatError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); {layout}"
        ) from error


def _require_inputs(question_file: str | Path, annotation_file: str | Path,
                    image_folder: str | Path, layout: str) -> tuple[Path, Path, Path]:
    """The three inputs most layouts have: two files and the image folder, each checked."""
    return (_require_file(question_file, layout), _require_file(annotation_file, layout),
            _require_dir(image_folder, "image folder", layout))


def _require_file(path: str | Path, layout: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkFormatError(f"benchmark file not found: {path}; {layout}")
    return path


def _require_dir(path: str | Path, what: str, layout: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise BenchmarkFormatError(f"{what} not found: {path}; {layout}")
    return path


def _parse_index(raw: Any) -> int | str:
    """An int for integers and canonical integer strings ("12", not "012" or "+12"), else a string."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    if text.isdigit() and text.isascii() and (text == "0" or not text.startswith("0")):
        return int(text)
    return text


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        return []
    return list(value)


def _most_frequent(answers: list[str]) -> str:
    """The most common answer; `Counter.most_common` keeps first-seen order among ties."""
    return Counter(answers).most_common(1)[0][0]


def _category(value: Any) -> str:
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_CATEGORY
