"""POPE's readers: VLMEvalKit's POPE.tsv and LLaVA-1.5's question file, COCO labels and images."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation import BenchmarkFormatError, build_prompt
from allava.evaluation.benchmarks.pope import load_pope, load_pope_tsv
from allava.evaluation.items import load_item_image

from tests.helpers.eval_llava_files import SUFFIX, pope_files, skip_codes, write_jsonl
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


# ----------------------------------------------------------------------------- VLMEvalKit's TSV


def test_pope_reads_splits_lowercases_answers_and_skips_bad_rows(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "POPE.tsv", [
        {"index": 1, "image": RED_PNG, "question": "Is there a dog in the image?", "answer": "Yes",
         "category": "random", "image_path": "COCO_val2014_000000000001.jpg"},
        # VLMEvalKit stores a question shared by several splits once, with the splits comma-joined
        {"index": 2, "image": "1", "question": "Is there a cat in the image?", "answer": "No",
         "category": "random,adversarial, popular"},
        {"index": 3, "image": GREEN_PNG, "question": "Is there a car?", "answer": "maybe",
         "category": "popular"},
        {"index": 4, "image": GREEN_PNG, "question": "Is there a bus?", "answer": "no", "category": "hard"},
    ])
    benchmark = load_pope_tsv(path)
    assert (benchmark.name, benchmark.kind, benchmark.path) == ("POPE", "yes_no", path)
    first, shared = benchmark.items
    assert (first.index, first.question, first.answer, first.category) == (
        1, "Is there a dog in the image?", "yes", "random")
    assert first.extras == {"split": "random", "splits": ["random"]}
    assert first.options == {} and first.hint is None and first.image_b64 == RED_PNG
    assert (shared.answer, shared.category, shared.image_b64) == ("no", "adversarial,popular,random", RED_PNG)
    assert shared.extras == {"split": "adversarial,popular,random",
                             "splits": ["adversarial", "popular", "random"]}
    reasons = skip_reasons(benchmark)
    assert reasons[3] == "bad_answer: answer 'maybe' is neither yes nor no"
    assert reasons[4].startswith("bad_category: category 'hard' is not a POPE split")
    assert load_pope_tsv(path, name="POPE-COCO").name == "POPE-COCO"


# --------------------------------------------------------------------------- LLaVA-1.5's layout


def test_pope_items_carry_split_label_prompt_and_image_path(tmp_path: Path) -> None:
    benchmark = load_pope(*pope_files(tmp_path))
    assert (benchmark.name, benchmark.kind) == ("POPE", "yes_no")
    assert [item.index for item in benchmark.items] == [1, 2, 3]
    dog, cat, car = benchmark.items
    assert (dog.answer, cat.answer, car.answer) == ("yes", "no", "yes")
    assert (dog.category, car.category) == ("adversarial", "random")
    assert dog.extras["split"] == "adversarial" and car.extras["label"] == "yes"
    assert [item.row for item in benchmark.items] == [1, 2, 3]

    # The trailing instruction is taken off the question and kept in the original prompt...
    assert dog.question == "Is there a dog in the image?"
    assert dog.extras["prompt"] == "Is there a dog in the image?" + SUFFIX
    assert dog.extras["prompt_had_suffix"] is True
    assert car.question == car.extras["prompt"] == "Is there a car in the image?"
    assert car.extras["prompt_had_suffix"] is False
    # ...so that the prompt builder puts it back exactly once: LLaVA's prompt, unchanged.
    assert build_prompt(dog, "yes_no") == dog.extras["prompt"]
    assert build_prompt(car, "yes_no").count("single word or phrase") == 1

    assert dog.image_b64 is None and dog.extras["image_path"].endswith("a.png")
    image = load_item_image(dog)
    assert image.mode == "RGB" and image.size == (8, 6) and image.getpixel((0, 0)) == RED
    assert load_item_image(car).getpixel((2, 2)) == BLUE


def test_pope_problem_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    benchmark = load_pope(*pope_files(tmp_path))
    assert skip_codes(benchmark) == {
        4: "missing_image",
        "line 5": "malformed_line",  # no question id can be read from a broken line
        6: "no_annotation",  # no label line for this question
        7: "no_annotation",  # no coco_pope_popular.json at all
        8: "malformed_annotation",  # label "maybe"
        9: "malformed_line",  # no text field
    }
    by_index = {skip.index: skip for skip in benchmark.skipped}
    assert "gone.png" in by_index[4].reason
    assert "coco_pope_popular.json" in by_index[7].reason
    assert by_index["line 5"].row == 5
    assert len(benchmark.items) + len(benchmark.skipped) == 9  # every question line accounted for


def test_pope_missing_files_raise_clear_errors(tmp_path: Path) -> None:
    questions, coco, images = pope_files(tmp_path)
    with pytest.raises(BenchmarkFormatError, match="nope.jsonl.*POPE"):
        load_pope(tmp_path / "nope.jsonl", coco, images)
    with pytest.raises(BenchmarkFormatError, match="image folder not found.*val2015"):
        load_pope(questions, coco, tmp_path / "val2015")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(BenchmarkFormatError, match="coco_pope_<category>.json"):
        load_pope(questions, empty_dir, images)
    with pytest.raises(BenchmarkFormatError, match="no questions"):
        load_pope(write_jsonl(tmp_path / "blank.jsonl", ["", "  "]), coco, images)
