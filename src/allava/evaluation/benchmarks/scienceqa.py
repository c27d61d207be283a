"""ScienceQA test, the questions with an image (IMG: scienceqa_img), scored as LLaVA-1.5's
eval_science_qa.py (`reference.scienceqa`); the hint goes before the question as "Context: ...", as
in LLaVA's question file. Its default files are in `define(...)` below.

VLMEvalKit's ScienceQA_TEST.tsv / ScienceQA_VAL.tsv: index, image (empty for text-only
questions), question, hint, A-E, answer (a letter), category, optionally subject, l2-category,
split.

LLaVA-1.5's layout (`llava/eval/model_vqa_science.py`, `llava/eval/eval_science_qa.py`):
`llava_test_CQM-A.json`, a JSON list of {id, image? ("<id>/image.png"), conversations:
[{from: "human", value: <prompt with "<image>">}, ...]}; `problems.json` = {id: {question,
choices, answer (0-based index), hint, image, subject, grade, ...}}; `pid_splits.json` =
{split: [id, ...]}; images in `images/test/`. Items: `options` {"A": choice, ...}, `answer`
letter, `hint`, `category` = subject, `extras["has_image"]`, `extras["num_options"]` (`question`
and `extras["prompt"]`: see `formats.llava`).
"""

from __future__ import annotations

import string
from collections import defaultdict
from pathlib import Path
from typing import Any

from allava.evaluation.formats.common import NOT_IN_SPLIT, parse_index, require_file
from allava.evaluation.formats.llava import (
    MALFORMED_ANNOTATION,
    MALFORMED_LINE,
    NO_ANNOTATION,
    NOT_IN_QUESTION_FILE,
    ItemBuilder,
    category_or_default,
    load_json,
    require_inputs,
)
from allava.evaluation.formats.tsv_rows import (
    BASE_COLUMNS,
    TsvLayout,
    choice_letter,
    l2_category,
    read_benchmark_tsv,
    with_contract,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import DEFAULT_CATEGORY, Benchmark, BenchmarkFormatError, BenchmarkItem
from allava.evaluation.reference.scienceqa import scienceqa_accuracy
from allava.evaluation.registry import define, llava_reader, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

TSV_LAYOUT = TsvLayout(
    "ScienceQA", "ScienceQA_TEST.tsv", (*BASE_COLUMNS, "A", "B"), ("hint", "C", "D", "E", "category", "subject")
)
LLAVA_LAYOUT = (
    "expected LLaVA's ScienceQA layout: a question JSON list (llava_test_CQM-A.json) of "
    "{id, image?, conversations: [{from, value}, ...]}, problems.json = {id: {question, choices, "
    "answer, hint, ...}} and optionally pid_splits.json = {split: [id, ...]}"
)

_OPTION_LETTERS = string.ascii_uppercase


def load_scienceqa_tsv(path: str | Path, name: str = "ScienceQA-IMG") -> Benchmark:
    """ScienceQA: `options`, `answer` a letter, `hint`, `category` = the `subject` column if the file
    has one, else `category`; `extras["has_image"]`, `extras["num_options"]`, and
    `extras["l2_category"]` where present. Text-only rows (empty image cell) are kept with
    `has_image` False, as LLaVA's IMG accuracy needs to tell them apart."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        extras = {**item.extras, **l2_category(columns), "has_image": item.image_b64 is not None,
                  "num_options": len(item.options)}
        return with_contract(item, answer=choice_letter(item), extras=extras,
                             category=cell(columns, "subject", "category") or DEFAULT_CATEGORY)

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "multiple_choice", convert)


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
    question_file, problems_file, image_folder = require_inputs(
        question_file, problems_file, image_folder, LLAVA_LAYOUT)
    questions = load_json(question_file, LLAVA_LAYOUT)
    if not isinstance(questions, list):
        raise BenchmarkFormatError(f"{question_file}: the top level is not a list; {LLAVA_LAYOUT}")
    if not questions:
        raise BenchmarkFormatError(f"{question_file}: the file holds no questions; {LLAVA_LAYOUT}")
    problems = load_json(problems_file, LLAVA_LAYOUT)
    if not isinstance(problems, dict):
        raise BenchmarkFormatError(
            f"{problems_file}: the top level is not an object keyed by problem id; {LLAVA_LAYOUT}"
        )
    split_ids = _scienceqa_split_ids(problems_file, pid_splits_file, split)

    builder = ItemBuilder(name, "multiple_choice", question_file)
    seen_ids: set[str] = set()
    for row, record in enumerate(questions, start=1):
        problem_id = record.get("id") if isinstance(record, dict) else None
        conversations = record.get("conversations") if isinstance(record, dict) else None
        first_turn = conversations[0] if isinstance(conversations, list) and conversations else None
        if not isinstance(problem_id, (int, str)) or isinstance(problem_id, bool) \
                or not isinstance(first_turn, dict) or not isinstance(first_turn.get("value"), str):
            index = (parse_index(problem_id, canonical=True) if isinstance(problem_id, (int, str))
                     else f"row {row}")
            builder.skip(index, row, MALFORMED_LINE, "expected an object with id and conversations[0].value")
            continue
        index, key = parse_index(problem_id, canonical=True), str(problem_id)
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
            category=category_or_default(problem.get("subject")), image_path=image_path,
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
            builder.skip(parse_index(problem_id, canonical=True), len(questions) + offset,
                         NOT_IN_QUESTION_FILE, details)
    return builder.build()


def _scienceqa_split_ids(
    problems_file: Path, pid_splits_file: str | Path | None, split: str
) -> list[str] | None:
    if pid_splits_file is None:
        sibling = problems_file.with_name("pid_splits.json")
        if not sibling.is_file():
            return None
        pid_splits_file = sibling
    pid_splits_file = require_file(pid_splits_file, LLAVA_LAYOUT)
    splits = load_json(pid_splits_file, LLAVA_LAYOUT)
    if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
        available = ", ".join(sorted(splits)) if isinstance(splits, dict) else "none"
        raise BenchmarkFormatError(
            f"{pid_splits_file}: no {split!r} list of problem ids (splits: {available}); {LLAVA_LAYOUT}"
        )
    return [str(problem_id) for problem_id in splits[split]]


def score_scienceqa(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """LLaVA-1.5's eval_science_qa.py; headline: IMG accuracy (questions with an image)."""

    def accuracy(positions: list[int]) -> dict[str, Any]:
        return scienceqa_accuracy(
            [predictions[p] for p in positions], [items[p].answer for p in positions],
            [int(items[p].extras.get("num_options", len(items[p].options))) for p in positions],
            [bool(items[p].extras.get("has_image", True)) for p in positions],
        )

    entry = accuracy(list(range(len(items))))
    by_category: dict[str, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_category[item.category].append(position)
    if len(by_category) > 1:
        entry["per_category"] = {name: accuracy(by_category[name])["accuracy"] for name in sorted(by_category)}
    return as_percent(entry, "img_accuracy", "IMG accuracy (%)")


SCORER = register_scorer("scienceqa", score_scienceqa)

SCIENCEQA_IMG = define(
    "scienceqa_img", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_scienceqa_tsv, TSV_LAYOUT.required),
             "llava": llava_reader(load_scienceqa, "question_file", "problems_file", "image_folder",
                                   "pid_splits_file")},
    sources={"tsv": {"path": "${benchmark_data_dir}/ScienceQA_TEST.tsv"},
             "llava": {"question_file": "${benchmark_data_dir}/scienceqa/llava_test_CQM-A.json",
                       "problems_file": "${benchmark_data_dir}/scienceqa/problems.json",
                       "image_folder": "${benchmark_data_dir}/scienceqa/images/test",
                       "pid_splits_file": "${benchmark_data_dir}/scienceqa/pid_splits.json",
                       "split": "test"}},
    prompt={"hint_format": "Context: {hint}\n"},
    report=[{"column": "SQA", "metric": "img_accuracy", "scale": 100}],
)
