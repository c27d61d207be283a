"""ScienceQA in LLaVA-1.5's evaluation layout.

ScienceQA (`llava/eval/model_vqa_science.py`, `llava/eval/eval_science_qa.py`):
`llava_test_CQM-A.json`, a JSON list of {id, image? ("<id>/image.png"), conversations:
[{from: "human", value: <prompt with "<image>">}, ...]}; `problems.json` = {id: {question,
choices, answer (0-based index), hint, image, subject, grade, ...}}; `pid_splits.json` =
{split: [id, ...]}; images in `images/test/`.

Items: `options` {"A": choice, ...}, `answer` letter, `hint`, `category` = subject,
`extras["has_image"]`, `extras["num_options"]` (`question` and `extras["prompt"]`: see `common`).
"""

from __future__ import annotations

import string
from pathlib import Path

from allava.evaluation.benchmark_files import Benchmark, BenchmarkFormatError
from allava.evaluation.llava_layout.common import (
    MALFORMED_ANNOTATION,
    MALFORMED_LINE,
    NO_ANNOTATION,
    NOT_IN_QUESTION_FILE,
    NOT_IN_SPLIT,
    _Builder,
    _category,
    _load_json,
    _parse_index,
    _require_file,
    _require_inputs,
)

SCIENCEQA_LAYOUT = (
    "expected LLaVA's ScienceQA layout: a question JSON list (llava_test_CQM-A.json) of "
    "{id, image?, conversations: [{from, value}, ...]}, problems.json = {id: {question, choices, "
    "answer, hint, ...}} and optionally pid_splits.json = {split: [id, ...]}"
)

_OPTION_LETTERS = string.ascii_uppercase


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
