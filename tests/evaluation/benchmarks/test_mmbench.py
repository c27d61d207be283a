"""MMBench's reader (EN and CN): rotated indices, hints, l2 categories, g_index."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation.benchmarks.mmbench import load_mmbench_tsv
from allava.evaluation.items import BenchmarkFormatError

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


def test_mmbench_keeps_rotated_indices_hints_and_l2_categories(tmp_path: Path) -> None:
    base = {"question": "Which color is shown?", "category": "attribute_recognition",
            "l2-category": "finegrained_perception (instance-level)", "split": "dev"}
    path = write_tsv_records(tmp_path / "MMBench_DEV_EN.tsv", [
        {"index": 5, "image": RED_PNG, "hint": "Look closely.", "A": "red", "B": "green", "C": "blue",
         "answer": "A", **base},
        {"index": 1000005, "image": "5", "hint": "Look closely.", "A": "green", "B": "blue", "C": "red",
         "answer": "C", **base},
        {"index": 6, "image": GREEN_PNG, "A": "cat", "B": "dog", "answer": "E", **base},
        {"index": 7, "image": GREEN_PNG, "A": "only", "answer": "A", **base},
        {"index": "x7", "image": GREEN_PNG, "A": "a", "B": "b", "answer": "A", **base},
    ])
    benchmark = load_mmbench_tsv(path, name="MMBench_DEV_EN")
    assert (benchmark.name, benchmark.kind) == ("MMBench_DEV_EN", "multiple_choice")
    original, rotated = benchmark.items
    assert (original.index, original.question, original.answer, original.hint) == (
        5, "Which color is shown?", "A", "Look closely.")
    assert original.options == {"A": "red", "B": "green", "C": "blue"}
    assert original.category == "attribute_recognition"
    assert original.extras == {"l2_category": "finegrained_perception (instance-level)", "split": "dev"}
    assert (rotated.index, rotated.answer, rotated.image_b64) == (1000005, "C", RED_PNG)
    reasons = skip_reasons(benchmark)
    assert reasons[6] == "bad_answer: answer 'E' is not one of the options A, B"
    assert reasons[7] == "bad_options: 1 option(s); a choice question needs at least 2"
    assert reasons["x7"] == "bad_index: index 'x7' is not an integer"


def test_mmbench_cn_reads_g_index_and_needs_a_category_column(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "MMBench_DEV_CN.tsv", [
        {"index": 3, "g_index": 3, "image": RED_PNG, "question": "图中是什么颜色？", "A": "红", "B": "绿",
         "answer": "a", "category": "属性识别"},
        {"index": 1000003, "g_index": "3.0", "image": "3", "question": "图中是什么颜色？", "A": "绿", "B": "红",
         "answer": "B", "category": "属性识别"},
    ])
    items = load_mmbench_tsv(path).items
    assert [(item.index, item.answer, item.extras["g_index"]) for item in items] == [
        (3, "A", 3), (1000003, "B", 3)]
    assert items[0].question == "图中是什么颜色？"

    no_category = write_tsv_records(tmp_path / "no_category.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q", "A": "a", "B": "b", "answer": "A"}])
    with pytest.raises(BenchmarkFormatError,
                       match=r"no_category\.tsv: not a MMBench file.*missing column\(s\) category"):
        load_mmbench_tsv(no_category)
