"""GQA's readers: VLMEvalKit's TSV and LLaVA-1.5's question file, annotations and images."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation import BenchmarkFormatError
from allava.evaluation.benchmarks.gqa import load_gqa, load_gqa_tsv
from allava.evaluation.reference.gqa import gqa_accuracy

from tests.helpers.eval_llava_files import SUFFIX, skip_codes, write_json, write_jsonl, write_png
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


# ----------------------------------------------------------------------------- VLMEvalKit's TSV


def test_gqa_reads_answers_and_type_columns(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "GQA_TestDev_Balanced.tsv", [
        {"index": 201307251, "image": RED_PNG, "question": "Is it indoors or outdoors?", "answer": "outdoors",
         "structural": "choose", "semantic": "global", "detailed": "locationChoose"},
        {"index": 201307252, "image": RED_PNG, "question": "What is it?", "answer": ""},
    ])
    benchmark = load_gqa_tsv(path)
    (item,) = benchmark.items
    assert (benchmark.kind, item.answer, item.category) == ("short_answer", "outdoors", "choose")
    assert item.extras == {"semantic_type": "global", "detailed_type": "locationChoose"}
    assert skip_reasons(benchmark)[201307252] == "bad_answer: the answer cell is empty"
    plain = write_tsv_records(tmp_path / "gqa_plain.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q?", "answer": "yes", "category": "verify"}])
    assert load_gqa_tsv(plain).items[0].category == "verify"


# --------------------------------------------------------------------------- LLaVA-1.5's layout


def test_gqa_answers_types_and_string_ids(tmp_path: Path) -> None:
    images = tmp_path / "gqa" / "images"
    write_png(images / "n1.png", RED)
    write_png(images / "n2.png", BLUE)
    questions = write_jsonl(tmp_path / "gqa" / "llava_gqa_testdev_balanced.jsonl", [
        {"question_id": "201307251", "image": "n1.png", "text": "Is the sky blue?" + SUFFIX, "category": "default"},
        {"question_id": "05451384", "image": "n2.png", "text": "Which side is the cup on?" + SUFFIX},
        {"question_id": "999", "image": "n1.png", "text": "What is this?" + SUFFIX},
        {"question_id": "777", "image": "n1.png", "text": "What is that?" + SUFFIX},
        ["not", "an", "object"],
    ])
    annotations = write_json(tmp_path / "gqa" / "testdev_balanced_questions.json", {
        "201307251": {"answer": "yes", "imageId": "n1",
                      "types": {"structural": "verify", "semantic": "attr", "detailed": "colorVerify"}},
        "05451384": {"answer": "left", "imageId": "n2",
                     "types": {"structural": "query", "semantic": "rel", "detailed": "relS"}},
        "777": {"question": "What is that?"},
    })
    benchmark = load_gqa(questions, annotations, images)
    assert (benchmark.name, benchmark.kind) == ("GQA", "short_answer")
    # A canonical integer id becomes an int; "05451384" keeps its leading zero as a string.
    assert [item.index for item in benchmark.items] == [201307251, "05451384"]
    sky, cup = benchmark.items
    assert (sky.answer, cup.answer) == ("yes", "left")
    assert (sky.category, cup.category) == ("verify", "query")
    assert sky.extras["semantic_type"] == "attr" and cup.extras["detailed_type"] == "relS"
    assert sky.extras["question_id"] == "201307251" and sky.question == "Is the sky blue?"
    assert skip_codes(benchmark) == {999: "no_annotation", 777: "malformed_annotation", "line 5": "malformed_line"}

    scores = gqa_accuracy(["Yes.", "left"], [item.answer for item in benchmark.items],
                          [item.category for item in benchmark.items])
    assert scores["accuracy"] == 1.0 and scores["per_category"] == {"query": 1.0, "verify": 1.0}

    broken = tmp_path / "broken.json"
    broken.write_text('{"201307251": {"answer": ', encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="broken.json: not valid JSON"):
        load_gqa(questions, broken, images)
    with pytest.raises(BenchmarkFormatError, match="keyed by question id"):
        load_gqa(questions, write_json(tmp_path / "list.json", []), images)
