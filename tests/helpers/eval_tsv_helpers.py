"""Build small VLMEvalKit-style benchmark TSV files for the evaluation tests."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

from PIL import Image

RED = (220, 20, 20)
GREEN = (20, 200, 20)
BLUE = (20, 20, 220)
NOT_AN_IMAGE = base64.b64encode(b"this is not an image, just text bytes " * 3).decode()


def png_base64(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_tsv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """Write rows the way pandas' to_csv(sep="\\t") does: quote only cells that need it."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[str(cell) for cell in row] for row in rows])
    return path


def write_tsv_records(path: Path, records: list[dict[str, object]]) -> Path:
    """Write dict rows; the header is the union of their keys in first-seen order, and a key a
    row lacks is written as an empty cell (as pandas writes NaN)."""
    header: list[str] = []
    for record in records:
        header.extend(key for key in record if key not in header)
    return write_tsv(path, header, [[record.get(key, "") for key in header] for record in records])


def skip_reasons(benchmark) -> dict[object, str]:
    """Skipped index -> its full reason."""
    return {skip.index: skip.reason for skip in benchmark.skipped}


def items_by_index(benchmark) -> dict[object, object]:
    return {item.index: item for item in benchmark.items}
