"""Loading benchmarks in LLaVA-1.5's evaluation layout (question file + image folder + annotations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from allava.evaluation import BenchmarkFormatError, BenchmarkItem, UndecodableImageError, build_prompt
from allava.evaluation.llava_layout import (
    load_gqa,
    load_item_image,
    load_pope,
    load_scienceqa,
    load_textvqa,
    load_vizwiz,
    strip_short_answer_suffix,
    textvqa_question_of_prompt,
)
from allava.evaluation.scorers.gqa import gqa_accuracy
from allava.evaluation.scorers.scienceqa import scienceqa_accuracy
from allava.evaluation.scorers.vqa_accuracy import vqa_accuracy
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64

SUFFIX = "\nAnswer the question using a single word or phrase."


def _png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def _jsonl(path: Path, lines: list[Any]) -> Path:
    """Objects become JSON lines; strings are written verbatim (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def _json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _reasons(benchmark) -> dict[Any, str]:
    """Skipped index -> reason code (the part before the first colon)."""
    return {skip.index: skip.reason.split(":")[0] for skip in benchmark.skipped}


# ------------------------------------------------------------------------------------------- POPE


def _pope(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "pope" / "val2014"
    _png(images / "a.png", RED)
    _png(images / "b.png", BLUE)
    questions = _jsonl(tmp_path / "pope" / "llava_pope_test.jsonl", [
        {"question_id": 1, "image": "a.png", "text": "Is there a dog in the image?" + SUFFIX, "category": "adversarial"},
        {"question_id": 2, "image": "a.png", "text": "Is there a cat in the image?" + SUFFIX, "category": "adversarial"},
        {"question_id": 3, "image": "b.png", "text": "Is there a car in the image?", "category": "random"},
        {"question_id": 4, "image": "gone.png", "text": "Is there a bus in the image?" + SUFFIX, "category": "random"},
        '{"question_id": 5, "image": "a.png", "text": ',
        {"question_id": 6, "image": "b.png", "text": "Is there a tree in the image?" + SUFFIX, "category": "random"},
        {"question_id": 7, "image": "b.png", "text": "Is there a kite in the image?" + SUFFIX, "category": "popular"},
        {"question_id": 8, "image": "b.png", "text": "Is there a boat in the image?" + SUFFIX, "category": "random"},
        {"question_id": 9, "image": "b.png", "category": "random"},
    ])
    coco = tmp_path / "pope" / "coco"
    # Labels in another order than the questions: pairing is by image and question, not position.
    _jsonl(coco / "coco_pope_adversarial.json", [
        {"question_id": 1, "image": "a.png", "text": "Is there a cat in the image?", "label": "no"},
        {"question_id": 2, "image": "a.png", "text": "Is there a dog in the image?", "label": "yes"},
    ])
    _jsonl(coco / "coco_pope_random.json", [
        {"question_id": 1, "image": "b.png", "text": "Is there a car in the image?", "label": "yes"},
        {"question_id": 2, "image": "gone.png", "text": "Is there a bus in the image?", "label": "no"},
        {"question_id": 3, "image": "b.png", "text": "Is there a boat in the image?", "label": "maybe"},
    ])
    return questions, coco, images


def test_pope_items_carry_split_label_prompt_and_image_path(tmp_path: Path) -> None:
    benchmark = load_pope(*_pope(tmp_path))
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
    benchmark = load_pope(*_pope(tmp_path))
    assert _reasons(benchmark) == {
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
    questions, coco, images = _pope(tmp_path)
    with pytest.raises(BenchmarkFormatError, match="nope.jsonl.*POPE"):
        load_pope(tmp_path / "nope.jsonl", coco, images)
    with pytest.raises(BenchmarkFormatError, match="image folder not found.*val2015"):
        load_pope(questions, coco, tmp_path / "val2015")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(BenchmarkFormatError, match="coco_pope_<category>.json"):
        load_pope(questions, empty_dir, images)
    with pytest.raises(BenchmarkFormatError, match="no questions"):
        load_pope(_jsonl(tmp_path / "blank.jsonl", ["", "  "]), coco, images)


# ---------------------------------------------------------------------------------------- TextVQA


def _textvqa_annotations(tmp_path: Path) -> Path:
    return _json(tmp_path / "textvqa" / "TextVQA_0.5.1_val.json", {
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
    _png(images / "img1.png", GREEN)
    ocr = "\nReference OCR token: STOP, Main"
    questions = _jsonl(tmp_path / "textvqa" / "llava_textvqa_val_v051_ocr.jsonl", [
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
    _png(images / "img1.png", GREEN)
    questions = _jsonl(tmp_path / "q.jsonl", [
        {"question_id": 34602, "image": "img1.png", "text": "What is written on the sign?" + SUFFIX},
        # The same annotation reached a second time, through LLaVA's (image id, question) key.
        {"question_id": "img1", "image": "img1.png", "text": "What is written on the sign?" + SUFFIX},
    ])
    benchmark = load_textvqa(questions, _textvqa_annotations(tmp_path), images)
    assert [item.index for item in benchmark.items] == [34602]
    assert [(skip.index, skip.reason.split(":")[0]) for skip in benchmark.skipped] == [(34602, "duplicate_question")]


def test_textvqa_annotation_file_errors(tmp_path: Path) -> None:
    questions = _jsonl(tmp_path / "q.jsonl", [{"question_id": "x", "image": "x.png", "text": "Q?"}])
    (tmp_path / "images").mkdir()
    with pytest.raises(BenchmarkFormatError, match="TextVQA_0.5.1_val.json.*not found|not found.*TextVQA_0.5.1_val"):
        load_textvqa(questions, tmp_path / "TextVQA_0.5.1_val.json", tmp_path / "images")
    bad = _json(tmp_path / "bad.json", [{"question_id": 1}])
    with pytest.raises(BenchmarkFormatError, match=r"bad.json.*\"data\" list"):
        load_textvqa(questions, bad, tmp_path / "images")


def test_textvqa_question_of_prompt_follows_llava() -> None:
    assert textvqa_question_of_prompt("What?\nReference OCR token: A, B" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("Reference OCR token: A\nWhat?" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("What?" + SUFFIX) == "What?"
    assert textvqa_question_of_prompt("OCR tokens: a b Question: What is it? Short answer:") == "What is it?"


def test_suffix_is_removed_once_and_only_at_the_end() -> None:
    assert strip_short_answer_suffix("Q?" + SUFFIX) == "Q?"
    assert strip_short_answer_suffix("Q?" + SUFFIX + SUFFIX) == "Q?" + SUFFIX
    assert strip_short_answer_suffix("Q?" + SUFFIX + "\n") == "Q?"
    middle = "Answer the question using a single word or phrase. Then what?"
    assert strip_short_answer_suffix(middle) == middle


# -------------------------------------------------------------------------------------------- GQA


def test_gqa_answers_types_and_string_ids(tmp_path: Path) -> None:
    images = tmp_path / "gqa" / "images"
    _png(images / "n1.png", RED)
    _png(images / "n2.png", BLUE)
    questions = _jsonl(tmp_path / "gqa" / "llava_gqa_testdev_balanced.jsonl", [
        {"question_id": "201307251", "image": "n1.png", "text": "Is the sky blue?" + SUFFIX, "category": "default"},
        {"question_id": "05451384", "image": "n2.png", "text": "Which side is the cup on?" + SUFFIX},
        {"question_id": "999", "image": "n1.png", "text": "What is this?" + SUFFIX},
        {"question_id": "777", "image": "n1.png", "text": "What is that?" + SUFFIX},
        ["not", "an", "object"],
    ])
    annotations = _json(tmp_path / "gqa" / "testdev_balanced_questions.json", {
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
    assert _reasons(benchmark) == {999: "no_annotation", 777: "malformed_annotation", "line 5": "malformed_line"}

    scores = gqa_accuracy(["Yes.", "left"], [item.answer for item in benchmark.items],
                          [item.category for item in benchmark.items])
    assert scores["accuracy"] == 1.0 and scores["per_category"] == {"query": 1.0, "verify": 1.0}

    broken = tmp_path / "broken.json"
    broken.write_text('{"201307251": {"answer": ', encoding="utf-8")
    with pytest.raises(BenchmarkFormatError, match="broken.json: not valid JSON"):
        load_gqa(questions, broken, images)
    with pytest.raises(BenchmarkFormatError, match="keyed by question id"):
        load_gqa(questions, _json(tmp_path / "list.json", []), images)


# ----------------------------------------------------------------------------------------- VizWiz


def _vizwiz(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "vizwiz" / "val"
    _png(images / "VizWiz_val_00000000.png", RED)
    _png(images / "VizWiz_val_00000001.png", BLUE)
    unanswerable = "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    questions = _jsonl(tmp_path / "vizwiz" / "llava_val.jsonl", [
        {"question_id": 0, "image": "VizWiz_val_00000000.png", "text": "What is this?" + unanswerable + SUFFIX},
        {"question_id": 1, "image": "VizWiz_val_00000001.png", "text": "What color?" + unanswerable + SUFFIX},
        {"question_id": 2, "image": "VizWiz_val_00000009.png", "text": "What?" + unanswerable + SUFFIX},
    ])
    annotations = _json(tmp_path / "vizwiz" / "val.json", [
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
    assert _reasons(benchmark) == {2: "no_annotation"}


def test_vizwiz_test_split_without_annotations(tmp_path: Path) -> None:
    questions, _, images = _vizwiz(tmp_path)
    benchmark = load_vizwiz(questions, None, images)
    assert [item.index for item in benchmark.items] == [0, 1]
    assert all(item.answer == "" and item.extras["answers"] == [] for item in benchmark.items)
    assert _reasons(benchmark) == {2: "missing_image"}
    with pytest.raises(BenchmarkFormatError, match="not a list"):
        load_vizwiz(questions, _json(tmp_path / "dict.json", {"annotations": []}), images)


# -------------------------------------------------------------------------------------- ScienceQA


def _problem(question: str, choices: list[str], answer: Any, hint: str = "", split: str = "test",
             image: str | None = None, subject: str = "natural science") -> dict[str, Any]:
    return {"question": question, "choices": choices, "answer": answer, "hint": hint, "image": image,
            "subject": subject, "grade": "grade4", "split": split, "lecture": "", "solution": ""}


def _scienceqa(tmp_path: Path, with_pid_splits: bool = True) -> tuple[Path, Path, Path]:
    root = tmp_path / "scienceqa"
    images = root / "images" / "test"
    _png(images / "1" / "image.png", GREEN)
    problems = _json(root / "problems.json", {
        "1": _problem("Which is a mammal?", ["shark", "whale", "trout"], 1, image="image.png"),
        "2": _problem("Which word is a noun?", ["run", "dog"], 1, hint="Read the words.", subject="language science"),
        "3": _problem("Which is hotter?", ["ice", "fire"], 1, split="val"),
        "4": _problem("Which map is shown?", ["a", "b"], 0, image="image.png"),
        "5": _problem("Which is heavier?", ["a feather", "a rock"], 1),
        "6": _problem("Which is it?", ["x", "y"], 7),
    })
    if with_pid_splits:
        _json(root / "pid_splits.json", {"test": ["1", "2", "4", "5", "6"], "val": ["3"]})

    def question(problem_id: str, value: str, image: bool = False) -> dict[str, Any]:
        line: dict[str, Any] = {"id": problem_id, "conversations": [{"from": "human", "value": value},
                                                                   {"from": "gpt", "value": "A"}]}
        if image:
            line["image"] = f"{problem_id}/image.png"
        return line

    questions = _json(root / "llava_test_CQM-A.json", [
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
    assert _reasons(benchmark) == {
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
    assert _reasons(without)[3] == "not_in_split" and 5 not in _reasons(without)
    assert [item.index for item in without.items] == [1, 2]


def test_scienceqa_file_errors(tmp_path: Path) -> None:
    questions, problems, images = _scienceqa(tmp_path)
    with pytest.raises(BenchmarkFormatError, match="problems.json.*ScienceQA"):
        load_scienceqa(questions, tmp_path / "problems.json", images)
    with pytest.raises(BenchmarkFormatError, match="no 'minitest' list.*splits: test, val"):
        load_scienceqa(questions, problems, images, split="minitest")
    with pytest.raises(BenchmarkFormatError, match="not a list"):
        load_scienceqa(_json(tmp_path / "q.json", {"1": {}}), problems, images)
    jsonl_instead = _jsonl(tmp_path / "q.jsonl", [{"id": "1"}, {"id": "2"}])
    with pytest.raises(BenchmarkFormatError, match="q.jsonl: not valid JSON"):
        load_scienceqa(jsonl_instead, problems, images)


# ----------------------------------------------------------------------------------------- images


def test_load_item_image_errors_and_fallback(tmp_path: Path) -> None:
    questions, coco, images = _pope(tmp_path)
    dog = load_pope(questions, coco, images).items[0]
    (images / "a.png").write_bytes(b"not a png at all")
    with pytest.raises(UndecodableImageError, match="a.png"):
        load_item_image(dog)
    (images / "a.png").unlink()
    with pytest.raises(UndecodableImageError, match="a.png"):
        load_item_image(dog)
    # Items without a path (the TSV layout) still decode from base64.
    tsv_item = BenchmarkItem(index=1, question="q", answer="a", image_b64=png_base64(BLUE))
    assert load_item_image(tsv_item).getpixel((0, 0)) == BLUE
