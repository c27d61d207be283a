"""The per-benchmark VLMEvalKit TSV readers: each benchmark's column layout, the item contract the
suite's scorers rely on, and the skipped rows and format errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation.benchmark_files import BenchmarkFormatError, load_tsv_benchmark
from allava.evaluation.tsv_readers import (
    load_gqa_tsv,
    load_llava_bench_tsv,
    load_mmbench_tsv,
    load_mme_tsv,
    load_mmmu_tsv,
    load_mmstar_tsv,
    load_mmvet_tsv,
    load_pope_tsv,
    load_scienceqa_tsv,
    load_seed_tsv,
    load_textvqa_tsv,
    load_vizwiz_tsv,
)
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


def _reasons(benchmark) -> dict[object, str]:
    return {skip.index: skip.reason for skip in benchmark.skipped}


def _by_index(benchmark) -> dict[object, object]:
    return {item.index: item for item in benchmark.items}


# ------------------------------------------------------------------------------------ POPE


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
    reasons = _reasons(benchmark)
    assert reasons[3] == "bad_answer: answer 'maybe' is neither yes nor no"
    assert reasons[4].startswith("bad_category: category 'hard' is not a POPE split")
    assert load_pope_tsv(path, name="POPE-COCO").name == "POPE-COCO"


# ------------------------------------------------------------------------------------- MME


def test_mme_maps_categories_strips_the_yes_no_instruction_and_pairs_images(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "MME.tsv", [
        {"index": 0, "image": RED_PNG, "question": "Is the word in the logo \"ABC\"? Please answer yes or no.",
         "answer": "Yes", "category": "OCR", "image_path": "OCR/0001.jpg"},
        {"index": 1, "image": "0", "question": "Is the word in the logo \"XYZ\"? Please answer yes or no.",
         "answer": "No", "category": "OCR", "image_path": "OCR/0001.jpg"},
        {"index": 2, "image": GREEN_PNG, "question": "Is the answer 4?  Please answer yes or no.",
         "answer": "Yes", "category": "Numerical Calculation", "image_path": "numerical_calculation/7.png"},
        {"index": 3, "image": GREEN_PNG, "question": "Is it sunny?", "answer": "Yes", "category": "weather",
         "image_path": "x.jpg"},
        {"index": 4, "image": GREEN_PNG, "question": "Is it red?", "answer": "Unknown", "category": "color",
         "image_path": "color/1.jpg"},
    ])
    benchmark = load_mme_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("MME", "yes_no")
    items = _by_index(benchmark)
    assert sorted(items) == [0, 1, 2]
    assert (items[0].question, items[0].answer, items[0].category) == (
        'Is the word in the logo "ABC"?', "yes", "OCR")
    assert items[0].extras == {"image_id": "OCR/0001.jpg"} == items[1].extras
    assert (items[1].answer, items[1].image_b64) == ("no", RED_PNG)
    assert (items[2].question, items[2].category) == ("Is the answer 4?", "numerical_calculation")
    reasons = _reasons(benchmark)
    assert reasons[3] == "bad_category: category 'weather' is not an MME subtask"
    assert reasons[4] == "bad_answer: answer 'Unknown' is neither yes nor no"


def test_mme_without_image_path_pairs_questions_by_the_image_itself(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "MME.tsv", [
        {"index": 10, "image": RED_PNG, "question": "Q1?", "answer": "Yes", "category": "code_reasoning"},
        {"index": 11, "image": "10", "question": "Q2?", "answer": "No", "category": "code_reasoning"},
        {"index": 12, "image": RED_PNG, "question": "Q3?", "answer": "No", "category": "artwork"},
        {"index": 13, "image": BLUE_PNG, "question": "Q4?", "answer": "No", "category": "artwork"},
    ])
    image_ids = {item.index: item.extras["image_id"] for item in load_mme_tsv(path).items}
    assert image_ids[10] == image_ids[11] == image_ids[12] != image_ids[13]
    assert image_ids[10].startswith("sha1:")


# ---------------------------------------------------------------------------------- MMBench


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
    reasons = _reasons(benchmark)
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


# -------------------------------------------------------------------------------- ScienceQA


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
    assert _reasons(benchmark)[13].startswith("bad_answer: answer 'C' is not one of the options A, B")

    no_subject = write_tsv_records(tmp_path / "ScienceQA_VAL.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q", "A": "a", "B": "b", "answer": "B",
         "category": "Physics"}])
    assert load_scienceqa_tsv(no_subject).items[0].category == "Physics"


# ------------------------------------------------------------------------------------- MMMU


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
    items = _by_index(benchmark)
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
    reasons = _reasons(benchmark)
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


# ----------------------------------------------------------------------------- VQA answers


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
    items = _by_index(benchmark)
    assert items[34602].answer == "dakota digital" and len(items[34602].extras["answers"]) == 10
    assert (items[34603].question, items[34603].answer) == ("what color is the text?", "red")
    assert items[34603].extras == {"answers": ["red", "blue", "blue", "red"]}
    assert (items[34604].answer, items[34604].extras) == ("stop", {"answers": ["stop"]})
    assert items[34605].extras == {"answers": ["[sic]"]}
    assert _reasons(benchmark)[34606] == "bad_answer: no answer in '[]'"


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
    assert _reasons(benchmark)[201307252] == "bad_answer: the answer cell is empty"
    plain = write_tsv_records(tmp_path / "gqa_plain.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q?", "answer": "yes", "category": "verify"}])
    assert load_gqa_tsv(plain).items[0].category == "verify"


# ------------------------------------------------------------------------------ SEED, MMStar


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
        assert _reasons(benchmark)[1] == "bad_answer: answer '' is not one of the options A, B"


# ------------------------------------------------------------------------------- open ended


def test_mmvet_reads_capabilities_in_every_spelling(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "MMVet.tsv", [
        {"index": 0, "image": RED_PNG, "question": "What is x in the equation?", "answer": "-1 <AND> -5",
         "category": "ocr,math"},
        {"index": 1, "image": RED_PNG, "question": "Explain the meme.", "answer": "It jokes about names.",
         "category": "rec, ocr, know, gen"},
        {"index": 2, "image": RED_PNG, "question": "Where is it?", "answer": "left", "category": "rec spat"},
        {"index": 3, "image": RED_PNG, "question": "What?", "answer": "x", "category": "vision"},
    ])
    benchmark = load_mmvet_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("MM-Vet", "open_ended")
    items = _by_index(benchmark)
    assert (items[0].answer, items[0].category, items[0].extras) == (
        "-1 <AND> -5", "ocr,math", {"capabilities": ["ocr", "math"]})
    assert items[1].extras["capabilities"] == ["rec", "ocr", "know", "gen"]
    assert items[1].category == "rec,ocr,know,gen"
    assert items[2].category == "rec,spat"
    assert _reasons(benchmark)[3].startswith(
        "bad_category: category 'vision' is not a list of MM-Vet capabilities")


def test_llava_bench_reads_reference_caption_and_categories(tmp_path: Path) -> None:
    caption = "A man is ironing clothes on the back of a yellow taxi."
    path = write_tsv_records(tmp_path / "LLaVABench.tsv", [
        {"index": 0, "image": RED_PNG, "question": "What is unusual about this image?", "caption": caption,
         "gpt4_ans": "Ironing on a moving taxi is unusual.", "category": "complex"},
        {"index": 1, "image": "0", "question": "Describe the image.", "caption": caption,
         "gpt4_ans": "A man irons.", "category": "Detail Description"},
        {"index": 2, "image": "0", "question": "What color is the taxi?", "caption": caption,
         "gpt4_ans": "Yellow.", "category": "llava_bench_conv"},
        {"index": 3, "image": "0", "question": "Why?", "caption": caption, "gpt4_ans": "Because.",
         "category": "reasoning"},
    ])
    benchmark = load_llava_bench_tsv(path)
    assert (benchmark.name, benchmark.kind) == ("LLaVA-Bench", "open_ended")
    items = _by_index(benchmark)
    assert (items[0].answer, items[0].category) == ("Ironing on a moving taxi is unusual.", "complex")
    assert items[0].extras == {"reference": "Ironing on a moving taxi is unusual.", "caption": caption}
    assert [items[1].category, items[2].category] == ["detail", "conv"]
    assert items[2].image_b64 == RED_PNG
    assert _reasons(benchmark)[3] == "bad_category: category 'reasoning' is not one of conv, detail, complex"


# ---------------------------------------------------------------------- shared error handling


READERS_AND_COLUMNS = [
    (load_pope_tsv, "POPE", "category"),
    (load_mme_tsv, "MME", "category"),
    (load_mmbench_tsv, "MMBench", "A"),
    (load_scienceqa_tsv, "ScienceQA", "answer"),
    (load_mmmu_tsv, "MMMU", "split"),
    (load_textvqa_tsv, "TextVQA", "answer"),
    (load_gqa_tsv, "GQA", "question"),
    (load_seed_tsv, "SEED-Bench", "category"),
    (load_mmstar_tsv, "MMStar", "category"),
    (load_mmvet_tsv, "MM-Vet", "category"),
    (load_llava_bench_tsv, "LLaVA-Bench", "gpt4_ans"),
]


@pytest.mark.parametrize(("reader", "benchmark", "column"), READERS_AND_COLUMNS)
def test_a_missing_column_names_the_file_the_column_and_the_benchmark(
    tmp_path: Path, reader, benchmark: str, column: str
) -> None:
    full = {"index": 1, "image": RED_PNG, "question": "q?", "answer": "A", "category": "random", "A": "a",
            "B": "b", "split": "validation", "caption": "c", "gpt4_ans": "g"}
    path = write_tsv_records(tmp_path / "user_file.tsv", [{k: v for k, v in full.items() if k != column}])
    with pytest.raises(BenchmarkFormatError) as error:
        reader(path)
    message = str(error.value)
    assert f"user_file.tsv: not a {benchmark} file" in message
    assert f"missing column(s) {column};" in message


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="benchmark file not found"):
        load_pope_tsv(tmp_path / "absent.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(BenchmarkFormatError, match="the file is empty"):
        load_mme_tsv(empty)


def test_duplicated_index_and_undecodable_image_rows_are_skipped_not_dropped(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "SEEDBench_IMG.tsv", [
        {"index": 1, "image": RED_PNG, "question": "q1", "A": "a", "B": "b", "answer": "A", "category": "c"},
        {"index": 1, "image": RED_PNG, "question": "q2", "A": "a", "B": "b", "answer": "B", "category": "c"},
        {"index": 2, "image": "bm90IGFuIGltYWdl" * 8, "question": "q3", "A": "a", "B": "b", "answer": "A",
         "category": "c"},
    ])
    benchmark = load_seed_tsv(path)
    assert [item.question for item in benchmark.items] == ["q1"]
    assert [(skip.row, skip.reason.split(":")[0]) for skip in benchmark.skipped] == [
        (2, "duplicate_index"), (3, "image does not decode (UnidentifiedImageError")]


# ---------------------------------------------------------- the hooks added to load_tsv_benchmark


def test_load_tsv_benchmark_hooks_answer_column_keep_columns_and_multi_image(tmp_path: Path) -> None:
    path = write_tsv_records(tmp_path / "hooks.tsv", [
        {"index": 1, "image": str([RED_PNG, GREEN_PNG]), "question": "q", "gpt4_ans": "ref", "extra": "x"},
        {"index": 2, "image": str([BLUE_PNG]), "question": "q2", "gpt4_ans": "ref2", "extra": ""},
    ])
    default = load_tsv_benchmark(path, "open_ended", answer_column="gpt4_ans")
    assert default.items == [] and [s.reason for s in default.skipped] == [
        "multi-image questions are not supported (the image cell is a list)"] * 2
    hooked = load_tsv_benchmark(
        path, "open_ended", answer_column="gpt4_ans", keep_columns=True, multi_image="first")
    first, second = hooked.items
    assert (first.answer, first.image_b64, second.image_b64) == ("ref", RED_PNG, BLUE_PNG)
    assert first.extras == {"num_images": 2, "multi_image": True,
                            "columns": {"index": "1", "question": "q", "gpt4_ans": "ref", "extra": "x"}}
    assert second.extras["num_images"] == 1 and "multi_image" not in second.extras
    with pytest.raises(BenchmarkFormatError, match=r"missing required column\(s\) answer"):
        load_tsv_benchmark(path)
