"""SEED-Bench's and MMStar's readers: options, categories, l2 categories."""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmarks.seed_mmstar import load_mmstar_tsv, load_seed_tsv

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


def test_seed_and_mmstar_read_options_categories_and_l2_categories(tmp_path: Path) -> None:
    seed = write_tsv_records(tmp_path / "SEEDBench_IMG.tsv", [
        {"index": 1, "image": RED_PNG, "question": "How many towels are in the image?", "A": "One", "B": "Two",
         "C": "Three", "D": "Four", "answer": "A", "category": "Instance Counting"}])
    benchmark = load_seed_tsv(seed)
    (item,) = benchmark.items
    assert (benchmark.name, benchmark.kind, item.answer, item.category, item.extras) == (
        "SEED-Bench", "multiple_choice", "A", "Instance Counting", {})
    assert item.options == {"A": "One", "B": "Two", "C": "Three", "D": "Four"}

    for column in ("l2-category", "l2_category"):
        mmstar = write_tsv_records(tmp_path / f"MMStar_{column}.tsv", [
            {"index": 0, "image": RED_PNG, "question": "Which option describes the image?", "A": "a cat",
             "B": "a dog", "answer": "B", "category": "coarse perception", column: "image scene and topic"},
            {"index": 1, "image": RED_PNG, "question": "Which?", "A": "a", "B": "b", "answer": "",
             "category": "math", column: "numeric commonsense and calculation"}])
        benchmark = load_mmstar_tsv(mmstar)
        (item,) = benchmark.items
        assert (benchmark.name, item.answer, item.category, item.extras) == (
            "MMStar", "B", "coarse perception", {"l2_category": "image scene and topic"})
        assert skip_reasons(benchmark)[1] == "bad_answer: answer '' is not one of the options A, B"
