"""Held-out toy benchmarks: VLMEvalKit TSV layout, balanced, and right for their scenes."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from pathlib import Path

from PIL import Image

from allava.toy.benchmarks import write_toy_mcq, write_toy_pope
from allava.toy.world import CELL_NAMES, COLORS, SHAPES, article, scene_from_json


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _assert_images(rows: list[dict[str, str]], size: int) -> None:
    for row in rows:
        image = Image.open(io.BytesIO(base64.b64decode(row["image"], validate=True)))
        assert image.format == "PNG" and image.size == (size, size) and image.mode == "RGB"


def test_pope_layout_balance_and_truth(tmp_path: Path) -> None:
    path = write_toy_pope(tmp_path / "toy_pope.tsv", num_items=120, seed=4)
    rows = _read_tsv(path)
    assert len(rows) == 120
    assert set(rows[0]) >= {"index", "image", "question", "answer", "category"}
    assert [int(r["index"]) for r in rows] == list(range(120))
    assert Counter(r["answer"] for r in rows) == {"yes": 60, "no": 60}
    assert Counter((r["category"], r["answer"]) for r in rows) == {
        (c, a): 20 for c in ("shape", "color", "pair") for a in ("yes", "no")
    }
    _assert_images(rows, 64)

    binding_no = 0
    for row in rows:
        scene = scene_from_json(json.loads(row["scene"]))
        present = {(o.color, o.shape) for o in scene.objects}
        colors, shapes = {c for c, _ in present}, {s for _, s in present}
        q, category = row["question"], row["category"]
        if category == "shape":
            shape = next(s for s in SHAPES if q == f"Is there {article(s)} {s} in the image?")
            truth = shape in shapes
        elif category == "color":
            color = next(c for c in COLORS if q == f"Is there {article(c)} {c} object in the image?")
            truth = color in colors
        else:
            color, shape = next(
                (c, s) for c in COLORS for s in SHAPES if q == f"Is there {article(c)} {c} {s} in the image?"
            )
            truth = (color, shape) in present
            binding_no += not truth and (color in colors or shape in shapes)
        assert row["answer"] == ("yes" if truth else "no"), row["question"]
    assert binding_no == 20  # every pair-"no" reuses a present colour or shape


def test_mcq_layout_rules_and_truth(tmp_path: Path) -> None:
    path = write_toy_mcq(tmp_path / "toy_mcq.tsv", num_items=80, seed=9, image_size=48)
    rows = _read_tsv(path)
    assert len(rows) == 80
    assert Counter(r["category"] for r in rows) == {"color": 20, "shape": 20, "count": 20, "position": 20}
    _assert_images(rows, 48)
    letters = Counter()
    for row in rows:
        scene = scene_from_json(json.loads(row["scene"]))
        options = {k: row[k] for k in "ABCD" if row[k]}
        assert len(set(options.values())) == len(options)
        assert row["answer"] in options
        letters[row["answer"]] += 1
        answer = options[row["answer"]]
        category, q = row["category"], row["question"]
        if category == "count":
            assert q == "How many objects are in the image?"
            assert sorted(options.values()) == ["1", "2", "3", "4"]
            assert answer == str(len(scene.objects))
            continue
        if category == "color":
            shape = q.removeprefix("What color is the ").removesuffix("?")
            targets = [o for o in scene.objects if o.shape == shape]
            assert set(options.values()) <= set(COLORS) and len(options) == 4
            truth = targets[0].color
        elif category == "shape":
            color = q.removeprefix("What shape is the ").removesuffix(" object?")
            targets = [o for o in scene.objects if o.color == color]
            assert sorted(options.values()) == sorted(SHAPES) and row["D"] == ""
            truth = targets[0].shape
        else:
            color, shape = q.removeprefix("Where is the ").removesuffix("?").split()
            targets = [o for o in scene.objects if (o.color, o.shape) == (color, shape)]
            assert set(options.values()) <= set(CELL_NAMES) and len(options) == 4
            truth = targets[0].cell
        assert len(targets) == 1, q  # the uniqueness rule keeps the question unambiguous
        assert answer == truth
    assert len(letters) >= 3  # the right option is not always in one place


def test_benchmarks_are_deterministic_from_seed(tmp_path: Path) -> None:
    a = write_toy_mcq(tmp_path / "a.tsv", 16, seed=1).read_bytes()
    b = write_toy_mcq(tmp_path / "b.tsv", 16, seed=1).read_bytes()
    c = write_toy_mcq(tmp_path / "c.tsv", 16, seed=2).read_bytes()
    assert a == b and a != c
    assert write_toy_pope(tmp_path / "p.tsv", 10, seed=1).read_bytes() == write_toy_pope(
        tmp_path / "q.tsv", 10, seed=1
    ).read_bytes()
    assert not list(tmp_path.glob("*.tmp"))
    assert b"\t\t" not in a.split(b"\n")[0]  # header has no empty column names
