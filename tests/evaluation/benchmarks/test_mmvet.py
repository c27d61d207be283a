"""MM-Vet's reader: the capabilities in every spelling."""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmarks.mmvet import load_mmvet_tsv

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, items_by_index, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


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
    items = items_by_index(benchmark)
    assert (items[0].answer, items[0].category, items[0].extras) == (
        "-1 <AND> -5", "ocr,math", {"capabilities": ["ocr", "math"]})
    assert items[1].extras["capabilities"] == ["rec", "ocr", "know", "gen"]
    assert items[1].category == "rec,ocr,know,gen"
    assert items[2].category == "rec,spat"
    assert skip_reasons(benchmark)[3].startswith(
        "bad_category: category 'vision' is not a list of MM-Vet capabilities")
