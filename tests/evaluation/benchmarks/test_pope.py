"""POPE's readers (VLMEvalKit's POPE.tsv; LLaVA-1.5's question file, COCO labels and images) and its scorer."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation import BenchmarkFormatError, build_prompt
from allava.evaluation.benchmarks.pope import POPE, load_pope, load_pope_tsv, score_pope
from allava.evaluation.items import BenchmarkItem, load_item_image
from allava.evaluation.report import metric_value
from allava.evaluation.scorers import ScoringContext

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


# ------------------------------------------------------------------------------------- scoring
# Expected values follow haotian-liu/LLaVA c121f04, llava/eval/eval_pope.py: answers parsed by
# lines 12-20, counts by lines 39-48 ("yes" positive), ratios by lines 37 and 53-56, per category.


def _scored_items(rows: list[tuple[str, str | list[str]]]) -> list[BenchmarkItem]:
    """Items from (label, split or splits) pairs; a list of splits is a VLMEvalKit shared row."""
    items = []
    for index, (label, split) in enumerate(rows, start=1):
        splits = split if isinstance(split, list) else [split]
        items.append(BenchmarkItem(index=index, question="Is there a dog?", answer=label,
                                   category=",".join(splits), extras={"split": ",".join(splits), "splits": splits}))
    return items


def test_score_pope_reports_each_split_the_headline_means_and_pooled_metrics() -> None:
    items = _scored_items([
        ("yes", "random"), ("yes", "random"), ("no", "random"), ("no", "random"),
        ("yes", "popular"), ("no", "popular"), ("no", "popular"),
        ("yes", "adversarial"), ("no", "adversarial"),
    ])
    predictions = [
        "Yes", "No", "Yes", "No",  # random: TP 1, FN 1, FP 1, TN 1
        "Yes", "Yes, a dog.", "no",  # popular: TP 1, FP 1, TN 1
        "No", "No.",  # adversarial: FN 1, TN 1 (TP = 0: eval_pope.py raises ZeroDivisionError)
    ]
    entry = score_pope(items, predictions, ScoringContext(kind="yes_no"))
    per_split = entry["per_category"]
    assert list(per_split) == ["adversarial", "popular", "random"]
    assert per_split["random"] == {"TP": 1, "FP": 1, "TN": 1, "FN": 1, "accuracy": 0.5, "precision": 0.5,
                                   "recall": 0.5, "f1": 0.5, "yes_ratio": 0.5, "num_items": 4}
    assert per_split["popular"] == pytest.approx({
        "TP": 1, "FP": 1, "TN": 1, "FN": 0, "accuracy": 2 / 3, "precision": 0.5, "recall": 1.0,
        "f1": 2 / 3, "yes_ratio": 2 / 3, "num_items": 3})
    # Undefined ratios (0/0) are reported as 0.0 where the reference would crash.
    assert per_split["adversarial"] == {"TP": 0, "FP": 0, "TN": 1, "FN": 1, "accuracy": 0.5, "precision": 0.0,
                                        "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0, "num_items": 2}
    # Headline: the split F1s averaged, (0 + 2/3 + 1/2) / 3, as LLaVA-1.5's published POPE number.
    assert entry["mean_f1_over_splits"] == pytest.approx(7 / 18)
    assert (entry["score"], entry["metric"]) == (pytest.approx(700 / 18), "mean F1 over splits (%)")
    assert entry["mean_accuracy_over_splits"] == pytest.approx(5 / 9)
    assert entry["mean_yes_ratio_over_splits"] == pytest.approx(7 / 18)
    # Pooled over the 9 rows: TP 2, FP 2, TN 3, FN 2.
    assert (entry["pooled_accuracy"], entry["pooled_f1"], entry["pooled_yes_ratio"]) == pytest.approx(
        (5 / 9, 0.5, 4 / 9))
    assert (entry["num_items"], entry["pooled_num_rows"]) == (9, 9)
    assert {"f1", "accuracy", "yes_ratio"}.isdisjoint(entry)  # no unqualified aggregate


def test_score_pope_counts_a_shared_row_in_each_of_its_splits() -> None:
    items = _scored_items([("yes", ["adversarial", "popular"]), ("no", "random")])
    # Line 16 splits on " " only: "No\nthere is none" is one word, so "yes": a false positive.
    entry = score_pope(items, ["Yes", "No\nthere is none"], ScoringContext(kind="yes_no"))
    per_split = entry["per_category"]
    assert [per_split[split]["TP"] for split in ("adversarial", "popular")] == [1, 1]
    assert (per_split["random"]["FP"], per_split["random"]["f1"]) == (1, 0.0)
    assert entry["mean_f1_over_splits"] == pytest.approx(2 / 3)  # (1 + 1 + 0) / 3
    # Pooled over 3 split rows: TP 2, FP 1: precision 2/3, recall 1, F1 0.8.
    assert (entry["pooled_accuracy"], entry["pooled_f1"], entry["pooled_yes_ratio"]) == pytest.approx(
        (2 / 3, 0.8, 1.0))
    assert (entry["num_items"], entry["pooled_num_rows"]) == (2, 3)


def test_pope_results_table_column_is_the_headline() -> None:
    assert POPE.settings["report"] == [{"column": "POPE", "metric": "mean_f1_over_splits", "scale": 100}]
    entry = score_pope(_scored_items([("yes", "random"), ("no", "popular")]), ["Yes", "Yes"],
                       ScoringContext(kind="yes_no"))
    assert metric_value(entry, "mean_f1_over_splits") * 100 == entry["score"] == 50.0  # (1 + 0) / 2
