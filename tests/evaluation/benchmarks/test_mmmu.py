"""MMMU's reader: the split, open and list answers, multi-image rows, the subject."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation.benchmarks.mmmu import load_mmmu_tsv
from allava.evaluation.items import BenchmarkFormatError

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, items_by_index, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


def _mmmu_rows() -> list[dict[str, object]]:
    return [
        {"index": 1, "image": RED_PNG, "question": "What style is <image 1>?", "A": "Baroque",
         "B": "Mannerist", "C": "Rococo", "answer": "B", "category": "Art_Theory",
         "l2-category": "Art & Design",
         "split": "validation", "id": "validation_Art_Theory_12"},
        {"index": 2, "image": GREEN_PNG, "question": "Solve <image 1>.", "answer": "['24/7', '3.429']",
         "category": "Math", "l2-category": "Science", "split": "validation", "id": "validation_Math_15"},
        {"index": 3, "image": BLUE_PNG, "question": "Dev question <image 1>", "A": "x", "B": "y",
         "answer": "A", "category": "Math", "split": "dev", "id": "dev_Math_1"},
        {"index": 4, "image": str([RED_PNG, BLUE_PNG]), "question": "Compare <image 1> with <image 2>.",
         "A": "same", "B": "different", "answer": "['B']", "category": "Art", "split": "validation",
         "id": "validation_Art_3"},
        {"index": 5, "image": RED_PNG, "question": "Which?", "A": "p", "B": "q", "answer": "D",
         "category": "Physics", "split": "validation", "id": "validation_Physics_2"},
    ]


def test_mmmu_keeps_the_validation_split_and_reads_open_list_and_multi_image_rows(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "MMMU_DEV_VAL.tsv", _mmmu_rows())
    benchmark = load_mmmu_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("MMMU", "short_answer")
    items = items_by_index(benchmark)
    assert sorted(items) == [1, 2, 4]
    choice, open_question, multi = items[1], items[2], items[4]
    assert (choice.question, choice.answer, choice.category) == ("What style is <image 1>?", "B", "Art_Theory")
    assert choice.options == {"A": "Baroque", "B": "Mannerist", "C": "Rococo"}
    assert choice.extras == {"question_type": "multiple-choice", "subject": "Art_Theory",
                             "l2_category": "Art & Design", "id": "validation_Art_Theory_12"}
    assert (open_question.answer, open_question.options) == ("24/7", {})
    assert open_question.extras == {"question_type": "open", "subject": "Math", "l2_category": "Science",
                                    "id": "validation_Math_15", "answers": ["24/7", "3.429"]}
    assert (multi.image_b64, multi.answer) == (RED_PNG, "B")
    assert multi.extras == {"num_images": 2, "multi_image": True, "question_type": "multiple-choice",
                            "subject": "Art", "id": "validation_Art_3", "answers": ["B"]}
    reasons = skip_reasons(benchmark)
    assert reasons[3] == "not_in_split: row is in the 'dev' split, not 'validation'"
    assert reasons[5] == "bad_answer: answer 'D' is not one of the options A, B"
    assert [skip.row for skip in benchmark.skipped] == [3, 5]


def test_mmmu_split_argument_and_subject_from_the_category_column(tmp_path: Path) -> None:
    rows = [{key: value for key, value in row.items() if key != "id"} for row in _mmmu_rows()]
    path = write_tsv_records(tmp_path / "MMMU_DEV_VAL.tsv", rows)
    dev = load_mmmu_tsv(path, split="dev")
    assert [item.index for item in dev.items] == [3]
    assert dev.items[0].extras == {"question_type": "multiple-choice", "subject": "Math"}
    assert len(dev.skipped) == 4 and sum(s.reason.startswith("not_in_split") for s in dev.skipped) == 4
    everything = load_mmmu_tsv(path, split=None)
    assert sorted(item.index for item in everything.items) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown MMMU split 'train'"):
        load_mmmu_tsv(path, split="train")


def test_mmmu_needs_a_split_column_unless_split_is_none(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "mmmu_nosplit.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q", "A": "a", "B": "b", "answer": "A", "category": "Math"}])
    with pytest.raises(BenchmarkFormatError,
                       match=r"mmmu_nosplit\.tsv: not a MMMU file.*missing column\(s\) split"):
        load_mmmu_tsv(path)
    assert load_mmmu_tsv(path, split=None).items[0].extras["subject"] == "Math"


def test_rows_of_another_split_are_excluded_not_skipped_or_unknown(tmp_path: Path) -> None:
    """Re-scoring predictions another tool made for every row of MMMU_DEV_VAL: the dev row is
    counted as excluded by split; it is neither a broken row nor an unknown prediction."""
    from allava.evaluation.benchmarks.mmmu import MMMU_VAL
    from allava.evaluation.predictions_file import PREDICTIONS
    from allava.evaluation.registry import BenchmarkSpec
    from allava.evaluation.runner import evaluate_benchmarks

    path = write_tsv_records(tmp_path / "MMMU_DEV_VAL.tsv", _mmmu_rows())
    spec = BenchmarkSpec(name="mmmu_val", load=lambda: load_mmmu_tsv(path),
                         scorer=MMMU_VAL.settings["scorer"])
    answers = tmp_path / "answers" / "mmmu_val"
    answers.mkdir(parents=True)
    (answers / PREDICTIONS).write_text("".join(
        f'{{"index": {index}, "prediction": "{text}"}}\n'
        for index, text in [(1, "B"), (2, "24/7"), (3, "A"), (4, "B"), (5, "A")]))
    results = evaluate_benchmarks(None, [spec], tmp_path / "out",
                                  predictions_dir=tmp_path / "answers")["mmmu_val"]
    assert (results["num_items"], results["excluded_by_split"]) == (3, 1)
    assert results["skipped"] == 1  # row 5: its answer is not one of its options
    assert results["unknown_predictions"] == 0 and results["missing_predictions"] == 0
