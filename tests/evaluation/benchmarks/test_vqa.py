"""TextVQA's and VizWiz's readers: VLMEvalKit's TSVs and LLaVA-1.5's layouts, the annotators' answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation import BenchmarkFormatError, build_prompt
from allava.evaluation.benchmarks.vqa import (
    load_textvqa,
    load_textvqa_tsv,
    load_vizwiz,
    load_vizwiz_tsv,
    textvqa_question_of_prompt,
)
from allava.evaluation.items import load_item_image
from allava.evaluation.reference.vqa_accuracy import vqa_accuracy

from tests.helpers.eval_llava_files import SUFFIX, skip_codes, write_json, write_jsonl, write_png
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, items_by_index, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


# ---------------------------------------------------------------------------- VLMEvalKit's TSVs


def test_textvqa_parses_the_annotator_answer_list(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "TextVQA_VAL.tsv", [
        {"index": 34602, "image": RED_PNG, "question": "what is the brand of this camera?",
         "answer": str(["nous les gosses", "dakota", "clos culombu", "dakota digital"] + ["dakota"] * 2
                       + ["dakota digital"] * 4)},
        # a tie: the earliest of the most frequent answers wins
        {"index": 34603, "image": "34602", "question": "what color is the text?\nAnswer the question using a "
         "single word or phrase.", "answer": "['red', 'blue', 'blue', 'red']"},
        {"index": 34604, "image": GREEN_PNG, "question": "what does it say?", "answer": "stop"},
        {"index": 34605, "image": GREEN_PNG, "question": "what is written?", "answer": "[sic]"},
        {"index": 34606, "image": GREEN_PNG, "question": "empty?", "answer": "[]"},
    ])
    benchmark = load_textvqa_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("TextVQA", "short_answer")
    items = items_by_index(benchmark)
    assert items[34602].answer == "dakota digital" and len(items[34602].extras["answers"]) == 10
    assert (items[34603].question, items[34603].answer) == ("what color is the text?", "red")
    assert items[34603].extras == {"answers": ["red", "blue", "blue", "red"]}
    assert (items[34604].answer, items[34604].extras) == ("stop", {"answers": ["stop"]})
    assert items[34605].extras == {"answers": ["[sic]"]}
    assert skip_reasons(benchmark)[34606] == "bad_answer: no answer in '[]'"


def test_vizwiz_reads_the_answers_column_or_else_answer(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "VizWiz.tsv", [
        {"index": 0, "image": RED_PNG, "question": "What is this?",
         "answers": str(["soda"] * 3 + ["unanswerable"] * 7),
         "answer_type": "other"},
    ])
    benchmark = load_vizwiz_tsv(path)
    (item,) = benchmark.items
    assert (benchmark.name, item.answer, item.category, len(item.extras["answers"])) == (
        "VizWiz", "unanswerable", "other", 10)
    legacy = write_tsv_records(tmp_path / "vizwiz_answer.tsv", [
        {"index": 0, "image": RED_PNG, "question": "What is this?", "answer": "['a', 'b', 'b']"}])
    assert load_vizwiz_tsv(legacy).items[0].extras == {"answers": ["a", "b", "b"]}
    neither = write_tsv_records(tmp_path / "vizwiz_none.tsv", [{"index": 0, "image": RED_PNG, "question": "q"}])
    with pytest.raises(BenchmarkFormatError, match=r"not a VizWiz file.*missing column\(s\) answers"):
        load_vizwiz_tsv(neither)


# ---------------------------------------------------------------- TextVQA in LLaVA-1.5's layout


def _textvqa_annotations(tmp_path: Path) -> Path:
    return write_json(tmp_path / "textvqa" / "TextVQA_0.5.1_val.json", {
        "dataset_name": "textvqa",
        "data": [
            {"question_id": 34602, "image_id": "img1", "question": "what is written on the sign?",
             "answers": ["stop"] * 7 + ["stop sign"] * 3},
            {"question_id": 34603, "image_id": "img1", "question": "what color is the sign?",
             "answers": ["red", "white", "white", "red", "red", "white", "red", "white", "red", "white"]},
            {"question_id": 34604, "image_id": "img2", "question": "what brand is this?", "answers": ["nikon"] * 10},
            {"question_id": 34605, "image_id": "img2", "question": "what year is it?", "answers": "2010"},
        ],
    })


def test_textvqa_matches_like_llava_and_keeps_ocr_tokens(tmp_path: Path) -> None:
    images = tmp_path / "textvqa" / "train_images"
    write_png(images / "img1.png", GREEN)
    ocr = "\nReference OCR token: STOP, Main"
    questions = write_jsonl(tmp_path / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl", [
        # LLaVA's question_id is the image id, shared by both questions on img1.
        {"question_id": "img1", "image": "img1.png", "text": "What is written on the sign?" + ocr + SUFFIX,
         "category": "default"},
        {"question_id": "img1", "image": "img1.png", "text": "What color is the sign?" + ocr + SUFFIX,
         "category": "default"},
        {"question_id": "img2", "image": "img2.png", "text": "What brand is this?" + SUFFIX},
        {"question_id": "img1", "image": "img1.png", "text": "Who made it?" + ocr + SUFFIX},
        {"question_id": "img2", "image": "img1.png", "text": "What year is it?" + SUFFIX},
        {"question_id": "img1", "image": "img1.png"},
    ])
    benchmark = load_textvqa(questions, _textvqa_annotations(tmp_path), images)
    assert (benchmark.name, benchmark.kind) == ("TextVQA", "short_answer")
    # Indexed by TextVQA's own question ids, unique where LLaVA's are not.
    assert [item.index for item in benchmark.items] == [34602, 34603]
    sign, color = benchmark.items
    assert sign.extras["question_id"] == "img1" and sign.extras["image_id"] == "img1"
    assert sign.extras["answers"] == ["stop"] * 7 + ["stop sign"] * 3 and sign.answer == "stop"
    assert len(color.extras["answers"]) == 10
    assert color.answer == "red"  # 5 against 5: the earliest answer wins the tie
    assert sign.question == "What is written on the sign?\nReference OCR token: STOP, Main"
    assert build_prompt(sign, "short_answer") == sign.extras["prompt"]
    assert load_item_image(sign).getpixel((1, 1)) == GREEN

    assert [(skip.row, skip.index, skip.reason.split(":")[0]) for skip in benchmark.skipped] == [
        (3, 34604, "missing_image"),  # matched, so indexed by the annotation's id
        (4, "img1", "no_annotation"),  # "Who made it?" has no annotation
        (5, 34605, "malformed_annotation"),  # its annotation's answers is not a list
        (6, "img1", "malformed_line"),  # no text
    ]

    # The items score with the reference VQA accuracy through extras["answers"].
    scores = vqa_accuracy(["Stop.", "white"], [item.extras["answers"] for item in benchmark.items])
    assert scores["accuracy"] == pytest.approx(1.0) and scores["num_items"] == 2


def test_textvqa_numeric_question_ids_and_duplicates(tmp_path: Path) -> None:
    images = tmp_path / "textvqa" / "train_images"
    write_png(images / "img1.png", GREEN)
    questions = write_jsonl(tmp_path / "q.jsonl", [
        {"question_id": 34602, "image": "img1.png", "text": "What is written on the sign?" + SUFFIX},
        # The same annotation reached a second time, through LLaVA's (image id, question) key.
        {"question_id": "img1", "image": "img1.png", "text": "What is written on the sign?" + SUFFIX},
    ])
    benchmark = load_textvqa(questions, _textvqa_annotations(tmp_path), images)
    assert [item.index for item in benchmark.items] == [34602]
    assert [(skip.index, skip.reason.split(":")[0]) for skip in benchmark.skipped] == [(34602, "duplicate_question")]


def test_textvqa_annotation_file_errors(tmp_path: Path) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question_id": "x", "image": "x.png", "text": "Q?"}])
    (tmp_path / "images").mkdir()
    with pytest.raises(BenchmarkFormatError, match="TextVQA_0.5.1_val.json.*not found|not found.*TextVQA_0.5.1_val"):
        load_textvqa(questions, tmp_path / "TextVQA_0.5.1_val.json", tmp_path / "images")
    bad = write_json(tmp_path / "bad.json", [{"question_id": 1}])
    with pytest.raises(BenchmarkFormatError, match=r"bad.json.*\"data\" list"):
        load_textvqa(questions, bad, tmp_path / "images")


def test_textvqa_question_of_prompt_follows_llava() -> None:
    assert textvqa_question_of_prompt("What?\nReference OCR token: A, B" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("Reference OCR token: A\nWhat?" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("What?" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("OCR tokens: a b Question: What is it? Short answer:") == "What is it?"


# ----------------------------------------------------------------- VizWiz in LLaVA-1.5's layout


def _vizwiz(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "vizwiz" / "val"
    write_png(images / "VizWiz_val_00000000.png", RED)
    write_png(images / "VizWiz_val_00000001.png", BLUE)
    unanswerable = "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    questions = write_jsonl(tmp_path / "vizwiz" / "llava_val.jsonl", [
        {"question_id": 0, "image": "VizWiz_val_00000000.png", "text": "What is this?" + unanswerable + SUFFIX},
        {"question_id": 1, "image": "VizWiz_val_00000001.png", "text": "What color?" + unanswerable + SUFFIX},
        {"question_id": 2, "image": "VizWiz_val_00000009.png", "text": "What?" + unanswerable + SUFFIX},
    ])
    annotations = write_json(tmp_path / "vizwiz" / "val.json", [
        {"image": "VizWiz_val_00000000.png", "question": "What is this?",
         "answers": [{"answer": "soup", "answer_confidence": "yes"}] * 8
         + [{"answer": "can", "answer_confidence": "maybe"}] * 2,
         "answerable": 1, "answer_type": "other"},
        {"image": "VizWiz_val_00000001.png", "question": "What color?",
         "answers": [{"answer": "unanswerable", "answer_confidence": "yes"}] * 10,
         "answerable": 0, "answer_type": "unanswerable"},
    ])
    return questions, annotations, images


def test_vizwiz_answers_and_answer_types(tmp_path: Path) -> None:
    questions, annotations, images = _vizwiz(tmp_path)
    benchmark = load_vizwiz(questions, annotations, images)
    assert (benchmark.name, benchmark.kind) == ("VizWiz", "short_answer")
    assert [item.index for item in benchmark.items] == [0, 1]
    soup, unknown = benchmark.items
    assert soup.extras["answers"] == ["soup"] * 8 + ["can"] * 2 and soup.answer == "soup"
    assert (soup.category, unknown.category) == ("other", "unanswerable")
    assert unknown.answer == "unanswerable" and unknown.extras["answerable"] == 0
    # Only the trailing instruction goes; VizWiz's "Unanswerable" instruction stays in the question.
    assert soup.question == "What is this?\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    assert build_prompt(soup, "short_answer") == soup.extras["prompt"]
    # Image 9 exists in neither the folder nor the annotations: the annotation is checked first.
    assert skip_codes(benchmark) == {2: "no_annotation"}


def test_vizwiz_test_split_without_annotations(tmp_path: Path) -> None:
    questions, _, images = _vizwiz(tmp_path)
    benchmark = load_vizwiz(questions, None, images)
    assert [item.index for item in benchmark.items] == [0, 1]
    assert all(item.answer == "" and item.extras["answers"] == [] for item in benchmark.items)
    assert skip_codes(benchmark) == {2: "missing_image"}
    with pytest.raises(BenchmarkFormatError, match="not a list"):
        load_vizwiz(questions, write_json(tmp_path / "dict.json", {"annotations": []}), images)
