"""LLaVA-Bench's reader: GPT-4's reference answer, the caption, the categories."""

from __future__ import annotations

from pathlib import Path

from allava.evaluation.benchmarks.llava_bench import load_llava_bench_tsv

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, items_by_index, png_base64, skip_reasons, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


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
    items = items_by_index(benchmark)
    assert (items[0].answer, items[0].category) == ("Ironing on a moving taxi is unusual.", "complex")
    assert items[0].extras == {"reference": "Ironing on a moving taxi is unusual.", "caption": caption}
    assert [items[1].category, items[2].category] == ["detail", "conv"]
    assert items[2].image_b64 == RED_PNG
    assert skip_reasons(benchmark)[3] == "bad_category: category 'reasoning' is not one of conv, detail, complex"
