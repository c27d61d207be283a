"""ScienceQA's readers: VLMEvalKit's TSV and LLaVA-1.5's question file, problems.json and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from allava.evaluation import BenchmarkFormatError, build_prompt
from allava.evaluation.benchmarks.scienceqa import load_scienceqa, load_scienceqa_tsv
from allava.evaluation.items import load_item_image
from allava.evaluation.reference.scienceqa import scienceqa_accuracy

from tests.helpers.eval_llava_files import skip_codes, write_json, write_jsonl, write_png
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


# ----------------------------------------------------------------------------- VLMEvalKit's TSV


def test_scienceqa_keeps_text_only_questions_with_has_image_false(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "ScienceQA_TEST.tsv", [
        {"index": 11, "image": RED_PNG, "question": "Which of these states is farthest north?",
         "hint": "", "A": "Ohio", "B": "Maine", "C": "Texas", "answer": "B", "category": "Geography",
         "subject": "social science", "l2-category": "Geography"},
        {"index": 12, "image": "", "question": "Which word would you find on a dictionary page?",
         "hint": "Guide words: fox - hear", "A": "hang", "B": "hunt", "answer": "A",
         "category": "Reference skills", "subject": "language science"},
        {"index": 13, "image": RED_PNG, "question": "Pick one.", "A": "x", "B": "y", "answer": "C",
         "category": "Physics", "subject": "natural science"},
    ])
    benchmark = load_scienceqa_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("ScienceQA-IMG", "multiple_choice")
    with_image, text_only = benchmark.items
    assert (with_image.answer, with_image.category, with_image.hint) == ("B", "social science", None)
    assert with_image.options == {"A": "Ohio", "B": "Maine", "C": "Texas"}
    assert with_image.extras == {"has_image": True, "num_options": 3, "l2_category": "Geography"}
    assert (text_only.image_b64, text_only.hint, text_only.category) == (
        None, "Guide words: fox - hear", "language science")
    assert text_only.extras == {"has_image": False, "num_options": 2}
    assert skip_reasons(benchmark)[13].startswith("bad_answer: answer 'C' is not one of the options A, B")

    no_subject = write_tsv_records(tmp_path / "ScienceQA_VAL.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q", "A": "a", "B": "b", "answer": "B",
         "category": "Physics"}])
    assert load_scienceqa_tsv(no_subject).items[0].category == "Physics"


# --------------------------------------------------------------------------- LLaVA-1.5's layout


def _problem(question: str, choices: list[str], answer: Any, hint: str = "", split: str = "test",
             image: str | None = None, subject: str = "natural science") -> dict[str, Any]:
    return {"question": question, "choices": choices, "answer": answer, "hint": hint, "image": image,
            "subject": subject, "grade": "grade4", "split": split, "lecture": "", "solution": ""}


def _scienceqa(tmp_path: Path, with_pid_splits: bool = True) -> tuple[Path, Path, Path]:
    root = tmp_path / "scienceqa"
    images = root / "images" / "test"
    write_png(images / "1" / "image.png", GREEN)
    problems = write_json(root / "problems.json", {
        "1": _problem("Which is a mammal?", ["shark", "whale", "trout"], 1, image="image.png"),
        "2": _problem("Which word is a noun?", ["run", "dog"], 1, hint="Read the words.", subject="language science"),
        "3": _problem("Which is hotter?", ["ice", "fire"], 1, split="val"),
        "4": _problem("Which map is shown?", ["a", "b"], 0, image="image.png"),
        "5": _problem("Which is heavier?", ["a feather", "a rock"], 1),
        "6": _problem("Which is it?", ["x", "y"], 7),
    })
    if with_pid_splits:
        write_json(root / "pid_splits.json", {"test": ["1", "2", "4", "5", "6"], "val": ["3"]})

    def question(problem_id: str, value: str, image: bool = False) -> dict[str, Any]:
        line: dict[str, Any] = {"id": problem_id, "conversations": [{"from": "human", "value": value},
                                                                   {"from": "gpt", "value": "A"}]}
        if image:
            line["image"] = f"{problem_id}/image.png"
        return line

    questions = write_json(root / "llava_test_CQM-A.json", [
        question("1", "Context: N/A\nWhich is a mammal?\nA. shark\nB. whale\nC. trout\n<image>", image=True),
        question("2", "Context: Read the words.\nWhich word is a noun?\nA. run\nB. dog"),
        question("3", "Context: N/A\nWhich is hotter?\nA. ice\nB. fire"),
        question("4", "Context: N/A\nWhich map is shown?\nA. a\nB. b\n<image>", image=True),
        {"conversations": []},
        question("6", "Context: N/A\nWhich is it?\nA. x\nB. y"),
        question("99", "Context: N/A\nWhat?\nA. x\nB. y"),
    ])
    return questions, problems, images


def test_scienceqa_options_answers_hints_and_images(tmp_path: Path) -> None:
    benchmark = load_scienceqa(*_scienceqa(tmp_path))
    assert (benchmark.name, benchmark.kind) == ("ScienceQA", "multiple_choice")
    assert [item.index for item in benchmark.items] == [1, 2]
    mammal, noun = benchmark.items
    assert mammal.options == {"A": "shark", "B": "whale", "C": "trout"} and mammal.answer == "B"
    assert noun.options == {"A": "run", "B": "dog"} and noun.answer == "B"
    assert mammal.question == "Which is a mammal?" and mammal.hint is None  # empty hint
    assert noun.hint == "Read the words."
    assert (mammal.category, noun.category) == ("natural science", "language science")
    assert mammal.extras["has_image"] is True and noun.extras["has_image"] is False
    assert mammal.extras["num_options"] == 3 and noun.extras["num_options"] == 2
    assert mammal.extras["question_id"] == "1"
    # The prompt as model_vqa_science.py reads it: "<image>" removed, then stripped.
    assert mammal.extras["prompt"] == "Context: N/A\nWhich is a mammal?\nA. shark\nB. whale\nC. trout"
    # LLaVA's text as shipped ("Context: ..." line included), plus the letter instruction that
    # model_vqa_science.py --single-pred-prompt appends at run time.
    assert build_prompt(noun, "multiple_choice") == (
        noun.extras["prompt"] + "\nAnswer with the option's letter from the given choices directly."
    )
    assert load_item_image(mammal).getpixel((0, 0)) == GREEN
    assert "image_path" not in noun.extras and load_item_image(noun) is None

    scores = scienceqa_accuracy(["B", "A"], [item.answer for item in benchmark.items],
                                [item.extras["num_options"] for item in benchmark.items],
                                has_image=[item.extras["has_image"] for item in benchmark.items])
    assert scores["accuracy"] == 0.5 and scores["img_accuracy"] == 1.0


def test_scienceqa_skipped_rows_and_split_filter(tmp_path: Path) -> None:
    benchmark = load_scienceqa(*_scienceqa(tmp_path))
    assert skip_codes(benchmark) == {
        3: "not_in_split",
        4: "missing_image",
        "row 5": "malformed_line",
        6: "malformed_annotation",  # answer index 7 of 2 choices
        99: "no_annotation",
        5: "not_in_question_file",  # in pid_splits' test list, absent from the question file
    }
    rows = {skip.index: skip.row for skip in benchmark.skipped}
    assert rows[5] > 7  # after the question file's rows, so Benchmark.head drops it first

    # Without pid_splits.json, each problem's own split field decides; nothing is "missing".
    without = load_scienceqa(*_scienceqa(tmp_path / "other", with_pid_splits=False))
    assert skip_codes(without)[3] == "not_in_split" and 5 not in skip_codes(without)
    assert [item.index for item in without.items] == [1, 2]


def test_scienceqa_file_errors(tmp_path: Path) -> None:
    questions, problems, images = _scienceqa(tmp_path)
    with pytest.raises(BenchmarkFormatError, match="problems.json.*ScienceQA"):
        load_scienceqa(questions, tmp_path / "problems.json", images)
    with pytest.raises(BenchmarkFormatError, match="no 'minitest' list.*splits: test, val"):
        load_scienceqa(questions, problems, images, split="minitest")
    with pytest.raises(BenchmarkFormatError, match="not a list"):
        load_scienceqa(write_json(tmp_path / "q.json", {"1": {}}), problems, images)
    jsonl_instead = write_jsonl(tmp_path / "q.jsonl", [{"id": "1"}, {"id": "2"}])
    with pytest.raises(BenchmarkFormatError, match="q.jsonl: not valid JSON"):
        load_scienceqa(jsonl_instead, problems, images)
