"""What every benchmark's own TSV reader shares: a missing column names the file, the column and the
benchmark; missing and empty files; duplicated indices and undecodable images become skipped rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation.benchmarks.gqa import load_gqa_tsv
from allava.evaluation.benchmarks.llava_bench import load_llava_bench_tsv
from allava.evaluation.benchmarks.mmbench import load_mmbench_tsv
from allava.evaluation.benchmarks.mme import load_mme_tsv
from allava.evaluation.benchmarks.mmmu import load_mmmu_tsv
from allava.evaluation.benchmarks.mmvet import load_mmvet_tsv
from allava.evaluation.benchmarks.pope import load_pope_tsv
from allava.evaluation.benchmarks.scienceqa import load_scienceqa_tsv
from allava.evaluation.benchmarks.seed_mmstar import load_mmstar_tsv, load_seed_tsv
from allava.evaluation.benchmarks.vqa import load_textvqa_tsv
from allava.evaluation.items import BenchmarkFormatError

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, RED, png_base64, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


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
