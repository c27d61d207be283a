"""MME's reader: categories, the yes/no instruction, and the image id that pairs an image's two questions."""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmarks.mme import load_mme_tsv

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, items_by_index, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


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
    items = items_by_index(benchmark)
    assert sorted(items) == [0, 1, 2]
    assert (items[0].question, items[0].answer, items[0].category) == (
        'Is the word in the logo "ABC"?', "yes", "OCR")
    assert items[0].extras == {"image_id": "OCR/0001.jpg"} == items[1].extras
    assert (items[1].answer, items[1].image_b64) == ("no", RED_PNG)
    assert (items[2].question, items[2].category) == ("Is the answer 4?", "numerical_calculation")
    reasons = skip_reasons(benchmark)
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


def test_the_lmms_eval_parser_is_a_named_scorer_chosen_in_the_benchmark_settings(tmp_path: Path) -> None:
    """`+benchmark_overrides={mme: {scorer: mme_lmms_eval}}` scores through eval.py's resolver."""
    from omegaconf import OmegaConf

    from allava.evaluation.registry import benchmark_spec_resolver
    from allava.evaluation.runner import evaluate_benchmarks

    write_tsv_records(tmp_path / "MME.tsv", [
        {"index": 0, "image": RED_PNG, "question": "Q1?", "answer": "Yes", "category": "color",
         "image_path": "color/1.jpg"},
        {"index": 1, "image": "0", "question": "Q2?", "answer": "No", "category": "color",
         "image_path": "color/1.jpg"},
    ])
    answers = tmp_path / "answers" / "mme"
    answers.mkdir(parents=True)
    (answers / "predictions.jsonl").write_text('{"index": 0, "prediction": "Y"}\n'
                                               '{"index": 1, "prediction": "N"}\n')
    scores = {}
    for scorer in ("mme", "mme_lmms_eval"):
        cfg = OmegaConf.create({"benchmark_data_dir": str(tmp_path), "paths": {},
                                "benchmark_overrides": {"mme": {"scorer": scorer}}})
        resolve = benchmark_spec_resolver(cfg)
        result = evaluate_benchmarks(None, ["mme"], tmp_path / scorer, resolve=resolve,
                                     predictions_dir=tmp_path / "answers")["mme"]
        scores[scorer] = (result["score"], result["parser"], result["reference"]["repository"])
    assert scores == {"mme": (0.0, "official", "zjunlp/Deco"),
                      "mme_lmms_eval": (200.0, "lmms_eval", "EvolvingLMMs-Lab/lmms-eval")}
