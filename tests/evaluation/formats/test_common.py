"""The helpers both file layouts share: one index parser with the two readings each layout needs,
and the file checks with the error each kind of caller expects."""
from __future__ import annotations

import pytest

from allava.evaluation.formats.common import most_frequent, parse_index, require_dir, require_file
from allava.evaluation.items import BenchmarkFormatError


def test_a_tsv_index_is_anything_int_reads_a_llava_id_only_a_canonical_integer():
    assert [parse_index(raw) for raw in (" 12 ", "012", "+12", "a1", 7)] == [12, 12, 12, "a1", 7]
    assert [parse_index(raw, canonical=True) for raw in ("12", "012", "+12", "0", 7, " 3 ")] == [
        12, "012", "+12", 0, 7, 3]


def test_most_frequent_keeps_the_first_seen_answer_among_ties():
    assert most_frequent(["red", "white", "white", "red"]) == "red"


def test_a_missing_file_is_a_file_error_alone_and_a_format_error_within_a_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmark file not found: .*absent.tsv$"):
        require_file(tmp_path / "absent.tsv")
    with pytest.raises(BenchmarkFormatError, match="benchmark file not found: .*q.jsonl; expected X"):
        require_file(tmp_path / "q.jsonl", "expected X")
    with pytest.raises(BenchmarkFormatError, match="image folder not found: .*images; expected X"):
        require_dir(tmp_path / "images", "image folder", "expected X")
    assert require_dir(tmp_path, "image folder", "expected X") == tmp_path
