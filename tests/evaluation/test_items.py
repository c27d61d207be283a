"""An item's image: from a file of LLaVA-1.5's layout, else from its base64 text."""

from __future__ import annotations

from pathlib import Path

import pytest

from allava.evaluation import BenchmarkItem, UndecodableImageError
from allava.evaluation.benchmarks.pope import load_pope
from allava.evaluation.items import load_item_image

from tests.helpers.eval_llava_files import pope_files
from tests.helpers.eval_tsv_helpers import BLUE, png_base64


def test_load_item_image_errors_and_fallback(tmp_path: Path) -> None:
    questions, coco, images = pope_files(tmp_path)
    dog = load_pope(questions, coco, images).items[0]
    (images / "a.png").write_bytes(b"not a png at all")
    with pytest.raises(UndecodableImageError, match="a.png"):
        load_item_image(dog)
    (images / "a.png").unlink()
    with pytest.raises(UndecodableImageError, match="a.png"):
        load_item_image(dog)
    # Items without a path (the TSV layout) still decode from base64.
    tsv_item = BenchmarkItem(index=1, question="q", answer="a", image_b64=png_base64(BLUE))
    assert load_item_image(tsv_item).getpixel((0, 0)) == BLUE
