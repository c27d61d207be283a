"""Small helpers every reader shares, whatever its file layout: empty cells, indices, the most
frequent of the annotators' answers, the checks that a file or folder exists, and the skip code
both layouts use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from allava.evaluation.items import BenchmarkFormatError

# The cell texts that pandas.read_csv / read_excel read as missing by default (keep_default_na):
# `pandas._libs.parsers.STR_NA_VALUES` of pandas 3.1.1, the version VLMEvalKit (which pins no
# version) gets today. pandas is no dependency of ours, hence the copy. A cell matches only
# exactly: case counts ("NAN" is text) and so do spaces (" None" is text).
PANDAS_NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
# A row or question outside the split being evaluated (a SkippedItem's reason "not_in_split: ...").
NOT_IN_SPLIT = "not_in_split"


def is_pandas_na(text: str) -> bool:
    """Whether pandas' default reading of a TSV/Excel cell holding `text` gives a missing value."""
    return text in PANDAS_NA_STRINGS


def is_blank_cell(text: str) -> bool:
    """Whether a cell counts as empty: pandas' missing value, or only blanks. (pandas keeps an
    all-blank cell as text; we treat it as empty, since no option or label is made of blanks.)"""
    return is_pandas_na(text) or not text.strip()


def parse_index(raw: Any, *, canonical: bool = False) -> int | str:
    """An item index: an int where `raw` is one, else the stripped text.

    By default any text `int()` reads is an int ("12", "012", "+12": a TSV's index column).
    With `canonical`, only canonical integer strings are ("12", not "012" or "+12"), so that two
    distinct question ids of LLaVA's files never become the same index.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    if canonical:
        is_canonical = text.isdigit() and text.isascii() and (text == "0" or not text.startswith("0"))
        return int(text) if is_canonical else text
    try:
        return int(text)
    except ValueError:
        return text


def most_frequent(answers: Sequence[str]) -> str:
    """The most common answer; `Counter.most_common` keeps first-seen order among ties."""
    return Counter(answers).most_common(1)[0][0]


def require_file(path: str | Path, layout: str | None = None) -> Path:
    """`path`, checked to be a file. Missing: a FileNotFoundError for a file named on its own (a
    TSV), or, when `layout` describes the files a reader expects, a BenchmarkFormatError saying so."""
    path = Path(path)
    if not path.is_file():
        if layout is None:
            raise FileNotFoundError(f"benchmark file not found: {path}")
        raise BenchmarkFormatError(f"benchmark file not found: {path}; {layout}")
    return path


def require_dir(path: str | Path, what: str, layout: str) -> Path:
    """`path`, checked to be a folder (`what`: "image folder", ...) of the files `layout` describes."""
    path = Path(path)
    if not path.is_dir():
        raise BenchmarkFormatError(f"{what} not found: {path}; {layout}")
    return path
