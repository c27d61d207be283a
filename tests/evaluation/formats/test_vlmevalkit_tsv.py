"""Loading VLMEvalKit-style TSV benchmarks written into tmp_path with the generic reader."""

import base64
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from allava.evaluation import BenchmarkFormatError, check_tsv_header, load_tsv_benchmark

from tests.helpers.eval_tsv_helpers import BLUE, GREEN, NOT_AN_IMAGE, RED, png_base64, write_tsv, write_tsv_records

RED_PNG, GREEN_PNG, BLUE_PNG = png_base64(RED), png_base64(GREEN), png_base64(BLUE)


MC_HEADER = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category"]


def _multiple_choice_file(tmp_path: Path) -> Path:
    return write_tsv(
        tmp_path / "MMBench_toy.tsv",
        MC_HEADER,
        [
            [10, png_base64(RED), "Which colour?", "Look closely.", "red", "blue", "green", "", "A", "colour"],
            [11, png_base64(BLUE), "Which colour?", "nan", "red", "blue", "", "", "B", "colour"],
            [12, "10", "Same picture,\nnew line?", "", "yes", "no", "", "", "A", "reasoning"],
        ],
    )


def test_multiple_choice_file_is_parsed_with_options_hints_and_images(tmp_path: Path) -> None:
    benchmark = load_tsv_benchmark(_multiple_choice_file(tmp_path))
    assert (benchmark.name, benchmark.kind, benchmark.skipped) == ("MMBench_toy", "multiple_choice", [])
    first, second, third = benchmark.items
    assert first.index == 10 and first.answer == "A" and first.category == "colour"
    assert first.options == {"A": "red", "B": "blue", "C": "green"}  # empty D left out
    assert first.hint == "Look closely."
    assert second.options == {"A": "red", "B": "blue"}
    assert second.hint is None  # "nan" is pandas' missing value
    assert third.question == "Same picture,\nnew line?"  # quoted multi-line cell
    assert third.hint is None

    image = first.load_image()
    assert image.mode == "RGB" and image.size == (8, 6) and image.getpixel((0, 0)) == RED
    assert second.load_image().getpixel((3, 3)) == BLUE
    # VLMEvalKit stores a shared image once; "10" refers to row index 10's image.
    assert third.load_image().getpixel((0, 0)) == RED


def test_yes_no_and_short_answer_kinds_are_inferred(tmp_path: Path) -> None:
    header = ["index", "image", "question", "answer", "category"]
    yes_no = write_tsv(
        tmp_path / "pope.tsv",
        header,
        [[1, png_base64(RED), "Is it red?", "Yes", "c"], [2, png_base64(RED), "Is it blue?", "no", "c"]],
    )
    short = write_tsv(
        tmp_path / "gqa.tsv",
        header,
        [[1, png_base64(RED), "Is it red?", "yes", "c"], [2, png_base64(RED), "Colour?", "red", "c"]],
    )
    assert load_tsv_benchmark(yes_no).kind == "yes_no"
    assert load_tsv_benchmark(short).kind == "short_answer"
    assert load_tsv_benchmark(yes_no, kind="short_answer").kind == "short_answer"


def test_option_columns_without_two_options_in_most_rows_are_not_multiple_choice(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "mostly_open.tsv",
        ["index", "image", "question", "A", "B", "answer"],
        [
            [1, png_base64(RED), "q1", "red", "blue", "A"],
            [2, png_base64(RED), "q2", "red", "", "red"],
            [3, png_base64(RED), "q3", "", "", "blue"],
        ],
    )
    benchmark = load_tsv_benchmark(path)
    assert benchmark.kind == "short_answer"
    assert benchmark.items[0].category == "uncategorized"  # no category column


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "no_answer.tsv", ["index", "image", "question"], [[1, png_base64(RED), "q"]])
    with pytest.raises(BenchmarkFormatError, match=r"no_answer\.tsv.*missing required column\(s\) answer"):
        load_tsv_benchmark(path)
    with pytest.raises(BenchmarkFormatError, match="answer"):
        check_tsv_header(path)


def test_row_with_wrong_field_count_names_the_row(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "ragged.tsv",
        ["index", "image", "question", "answer"],
        [[1, png_base64(RED), "q", "yes"], [2, png_base64(RED), "q", "yes", "extra"]],
    )
    with pytest.raises(BenchmarkFormatError, match=r"ragged\.tsv: data row 2 .* 5 fields but the header has 4"):
        load_tsv_benchmark(path)


def test_empty_and_missing_files_give_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(BenchmarkFormatError, match="empty"):
        load_tsv_benchmark(empty)
    with pytest.raises(FileNotFoundError, match="nowhere.tsv"):
        load_tsv_benchmark(tmp_path / "nowhere.tsv")


def test_undecodable_image_row_is_skipped_and_counted(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "broken.tsv",
        ["index", "image", "question", "answer"],
        [
            [1, png_base64(RED), "q", "yes"],
            [2, NOT_AN_IMAGE, "q", "no"],
            [3, "99", "q", "no"],  # refers to an index that does not exist
            [4, png_base64(GREEN), "q", "no"],
        ],
    )
    benchmark = load_tsv_benchmark(path)
    assert [item.index for item in benchmark.items] == [1, 4]
    assert [(skip.index, skip.row) for skip in benchmark.skipped] == [(2, 2), (3, 3)]
    assert "does not decode" in benchmark.skipped[0].reason
    assert "'99'" in benchmark.skipped[1].reason
    assert benchmark.kind == "yes_no"  # inferred from every row, skipped ones included


def test_text_only_rows_have_no_image(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "text.tsv", ["index", "image", "question", "answer"], [[1, "", "2+2?", "4"]])
    assert load_tsv_benchmark(path).items[0].load_image() is None


def test_images_larger_than_the_default_csv_field_limit_load(tmp_path: Path) -> None:
    noise = Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3))  # incompressible
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    big = base64.b64encode(buffer.getvalue()).decode()
    assert len(big) > 131072
    path = write_tsv(tmp_path / "big.tsv", ["index", "image", "question", "answer"], [[1, big, "q", "yes"]])
    assert load_tsv_benchmark(path).items[0].load_image().size == (256, 256)


def test_head_keeps_the_first_rows_including_skipped_ones(tmp_path: Path) -> None:
    path = write_tsv(
        tmp_path / "rows.tsv",
        ["index", "image", "question", "answer"],
        [[i, NOT_AN_IMAGE if i == 2 else png_base64(RED), "q", "yes"] for i in range(1, 6)],
    )
    head = load_tsv_benchmark(path).head(3)
    assert [item.index for item in head.items] == [1, 3]
    assert [skip.index for skip in head.skipped] == [2]


# ---------------------------------------------------- the hooks the benchmarks' own readers use


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


# ------------------------------------------------------ pandas' missing values, as VLMEvalKit reads


def test_option_cells_holding_pandas_na_strings_are_no_options_and_warn_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # VLMEvalKit: load() is pandas.read_csv(f, sep='\t'), and build_choices keeps a letter only
    # if not pd.isna(item[ch]). pandas 3.1.1's STR_NA_VALUES holds "None", "NA", "N/A", "null"
    # and "nan", matched exactly: "NAN" and " None" stay text.
    path = write_tsv(
        tmp_path / "na_options.tsv",
        ["index", "image", "question", "hint", "A", "B", "C", "D", "E", "answer"],
        [
            [1, RED_PNG, "Which?", "None", "None", "NA", "N/A", "null", "NAN", "E"],
            [2, RED_PNG, "Which?", "NA hint", "red", "blue", " None", "nan", "", "A"],
        ],
    )
    with caplog.at_level("WARNING", logger="allava.evaluation.formats.vlmevalkit_tsv"):
        first, second = load_tsv_benchmark(path, "multiple_choice").items
    assert first.options == {"E": "NAN"}
    assert first.hint is None  # build_prompt's pd.isna(line['hint']) too
    assert second.options == {"A": "red", "B": "blue", "C": "None"}
    assert second.hint == "NA hint"
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1  # once per file, "" cells (plain blanks) not counted
    assert "5 option cell(s)" in warnings[0] and "na_options.tsv" in warnings[0]
    assert "'None' x1" in warnings[0] and "'nan' x1" in warnings[0]


def test_files_without_na_option_text_do_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="allava.evaluation.formats.vlmevalkit_tsv"):
        load_tsv_benchmark(_multiple_choice_file(tmp_path))
    assert caplog.records == []
