"""The runner end to end, with a tiny predictor that really looks at the images it is given."""

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from allava.evaluation import evaluate_benchmarks, format_results_table
from tests.helpers.eval_tsv_helpers import BLUE, GREEN, NOT_AN_IMAGE, RED, png_base64, write_tsv

MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
SHORT_SUFFIX = "\nAnswer the question using a single word or phrase."


class ColourPredictor:
    """Sees only whether an image is more red than blue: green images look blue to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def answer(self, questions: list[str], images: list[Image.Image | None], max_new_tokens: int = 32) -> list[str]:
        self.calls.append((list(questions), max_new_tokens))
        return [self._answer_one(question, image) for question, image in zip(questions, images)]

    @staticmethod
    def _answer_one(question: str, image: Image.Image | None) -> str:
        red, _, blue = ImageStat.Stat(image).mean
        colour = "red" if red > blue else "blue"
        if question.endswith(MC_SUFFIX):
            letters = [line[0] for line in question.splitlines() if line[1:] == f". {colour}"]
            return f"The answer is {letters[0]}." if letters else "I am not sure."
        return "Yes" if colour in question else "No, it is not."


def _png_that_fails_only_on_full_decode(color: tuple[int, int, int]) -> str:
    """A PNG with valid chunk checksums but corrupt compressed pixels: passes verify(), fails load()."""
    data = base64.b64decode(png_base64(color))
    start = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[start : start + 4])[0]
    garbage = b"\x00" * length
    chunk = struct.pack(">I", length) + b"IDAT" + garbage + struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    return base64.b64encode(data[:start] + chunk + data[start + 12 + length :]).decode()


def _yes_no_file(tmp_path: Path) -> Path:
    header = ["index", "image", "question", "answer", "category"]
    return write_tsv(
        tmp_path / "pope_colours.tsv",
        header,
        [
            [1, png_base64(RED), "Is the image red?", "yes", "red"],  # -> Yes (TP)
            [2, png_base64(RED), "Is the image blue?", "no", "red"],  # -> No (TN)
            [3, png_base64(BLUE), "Is the image blue?", "yes", "blue"],  # -> Yes (TP)
            [4, png_base64(GREEN), "Is the image green?", "yes", "green"],  # looks blue -> No (FN)
            [5, png_base64(GREEN), "Is the image blue?", "no", "green"],  # looks blue -> Yes (FP)
            [6, NOT_AN_IMAGE, "Is the image red?", "yes", "red"],  # skipped by the loader
            [7, _png_that_fails_only_on_full_decode(RED), "Is the image red?", "yes", "red"],  # skipped at run time
        ],
    )


def _multiple_choice_file(tmp_path: Path) -> Path:
    header = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category"]
    question = "Which colour fills the image?"
    return write_tsv(
        tmp_path / "colour_choice.tsv",
        header,
        [
            [1, png_base64(RED), question, "Look closely.", "red", "blue", "green", "", "A", "warm"],  # A right
            [2, png_base64(BLUE), question, "", "green", "blue", "", "", "B", "cold"],  # B right
            [3, png_base64(GREEN), question, "", "red", "green", "blue", "", "B", "cold"],  # says C: wrong
            [4, png_base64(GREEN), question, "", "red", "green", "", "", "B", "cold"],  # unparsable
        ],
    )


def test_runner_writes_predictions_and_hand_computed_results(tmp_path: Path) -> None:
    predictor = ColourPredictor()
    out_dir = tmp_path / "eval"
    results = evaluate_benchmarks(
        predictor,
        [str(_yes_no_file(tmp_path)), str(_multiple_choice_file(tmp_path))],
        out_dir,
        batch_size=2,
        max_new_tokens=7,
        progress=False,
    )

    pope = results["pope_colours"]
    assert pope.pop("per_category") == {"blue": 1.0, "green": 0.0, "red": 1.0}
    assert pope == pytest.approx(
        {
            "kind": "yes_no",
            "metric": "accuracy (%)",
            "score": 60.0,
            "accuracy": 3 / 5,
            "precision": 2 / 3,
            "recall": 2 / 3,
            "f1": 2 / 3,
            "yes_ratio": 3 / 5,
            "num_items": 5,
            "skipped": 2,
            "reference": "allava (no reference script)",  # a TSV given by path: generic scorer
        }
    )
    choice = results["colour_choice"]
    assert choice == {
        "kind": "multiple_choice",
        "metric": "accuracy (%)",
        "score": 50.0,
        "accuracy": 0.5,
        "unparsable": 1,
        "per_category": {"cold": 1 / 3, "warm": 1.0},
        "num_items": 4,
        "skipped": 0,
        "reference": "allava (no reference script)",
    }

    written = json.loads((out_dir / "results.json").read_text())
    assert written["colour_choice"] == choice
    assert set(written) == {"pope_colours", "colour_choice"}

    lines = (out_dir / "pope_colours" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"index": 1, "prediction": "Yes"},
        {"index": 2, "prediction": "No, it is not."},
        {"index": 3, "prediction": "Yes"},
        {"index": 4, "prediction": "No, it is not."},
        {"index": 5, "prediction": "Yes"},
    ]
    skipped = [json.loads(line) for line in (out_dir / "pope_colours" / "skipped.jsonl").read_text().splitlines()]
    assert [(skip["index"], skip["row"]) for skip in skipped] == [(6, 6), (7, 7)]
    assert not (out_dir / "colour_choice" / "skipped.jsonl").exists()
    choice_lines = (out_dir / "colour_choice" / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line)["prediction"] for line in choice_lines] == [
        "The answer is A.",
        "The answer is B.",
        "The answer is C.",
        "I am not sure.",
    ]


def test_runner_batches_and_builds_llava_prompts(tmp_path: Path) -> None:
    predictor = ColourPredictor()
    evaluate_benchmarks(
        predictor,
        [str(_yes_no_file(tmp_path)), str(_multiple_choice_file(tmp_path))],
        tmp_path / "eval",
        batch_size=2,
        max_new_tokens=7,
        progress=False,
    )
    # POPE: 5 loadable items in batches of 2, 2, 1 (+ one item that fails to decode at run time
    # and leaves its batch one short); multiple choice: 2, 2.
    assert [len(questions) for questions, _ in predictor.calls] == [2, 2, 1, 2, 2]
    assert {tokens for _, tokens in predictor.calls} == {7}
    assert predictor.calls[0][0][0] == "Is the image red?" + SHORT_SUFFIX
    assert predictor.calls[3][0][0] == (
        "Look closely.\nWhich colour fills the image?\nA. red\nB. blue\nC. green" + MC_SUFFIX
    )


def test_names_are_resolved_and_limit_keeps_first_rows(tmp_path: Path) -> None:
    files = {"POPE": _yes_no_file(tmp_path)}
    out_dir = tmp_path / "eval"
    results = evaluate_benchmarks(
        ColourPredictor(), ["POPE"], out_dir, resolve=files.__getitem__, limit=3, progress=False
    )
    assert list(results) == ["POPE"]
    assert results["POPE"]["num_items"] == 3 and results["POPE"]["accuracy"] == 1.0
    assert results["POPE"]["skipped"] == 0
    assert len((out_dir / "POPE" / "predictions.jsonl").read_text().splitlines()) == 3


def test_bad_benchmark_entries_fail_before_any_prediction(tmp_path: Path) -> None:
    predictor = ColourPredictor()
    good = str(_yes_no_file(tmp_path))
    bad = write_tsv(tmp_path / "no_question.tsv", ["index", "image", "answer"], [[1, png_base64(RED), "yes"]])
    with pytest.raises(ValueError, match="no_question.tsv.*question"):
        evaluate_benchmarks(predictor, [good, str(bad)], tmp_path / "eval", progress=False)
    with pytest.raises(ValueError, match="'POPE' is not a .tsv file and no resolver"):
        evaluate_benchmarks(predictor, [good, "POPE"], tmp_path / "eval", progress=False)
    with pytest.raises(FileNotFoundError, match="'POPE' resolves to .*missing.tsv"):
        evaluate_benchmarks(
            predictor, [good, "POPE"], tmp_path / "eval", resolve=lambda _: tmp_path / "missing.tsv", progress=False
        )
    with pytest.raises(FileNotFoundError, match="absent.tsv"):
        evaluate_benchmarks(predictor, [str(tmp_path / "absent.tsv")], tmp_path / "eval", progress=False)
    assert predictor.calls == []


def test_predictor_returning_the_wrong_number_of_answers_is_an_error(tmp_path: Path) -> None:
    class Mute:
        def answer(self, questions, images, max_new_tokens=32):
            return []

    with pytest.raises(RuntimeError, match="returned 0 answers for 2 questions"):
        evaluate_benchmarks(Mute(), [str(_yes_no_file(tmp_path))], tmp_path / "eval", batch_size=2, progress=False)


def test_results_table_from_a_run(tmp_path: Path) -> None:
    results = evaluate_benchmarks(
        ColourPredictor(), [str(_yes_no_file(tmp_path))], tmp_path / "eval", progress=False
    )
    table = format_results_table(results)
    assert "pope_colours" in table and "60.00" in table and "yes_ratio 60.00" in table
    assert any(line.startswith("|   green") and "0.00" in line for line in table.splitlines())
