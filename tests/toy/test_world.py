"""The toy world: scenes, rendering, the programmatic teacher and the dataset generator."""

from __future__ import annotations

import io
import json
import random
import re
import tarfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX
from allava.data.shard_writer import read_manifest, shard_paths
from allava.toy.cli import main as toy_cli_main
from allava.toy import generate as toy_generate
from allava.toy.generate import generate_toy_world, iter_corpus_texts, iter_shard_records
from allava.toy.teacher import (
    CAPTION_INSTRUCTIONS,
    CELL_PHRASES,
    CHOICE_FORMAT_WEIGHTS,
    EXACT_FORMAT_PROBABILITY,
    caption_record,
    instruct_record,
    text_record,
)
from allava.toy.world import (
    CELL_NAMES,
    COLORS,
    SHAPES,
    SIZE_FRACTIONS,
    Scene,
    ToyObject,
    article,
    cell_index,
    describe_object,
    encode_png,
    render_scene,
    render_scene_with_layout,
    sample_scene,
)

# --- scenes ---------------------------------------------------------------------------------------


def test_scenes_follow_spec_and_seed() -> None:
    rng, replay = random.Random(0), random.Random(0)
    scenes = [sample_scene(rng) for _ in range(500)]
    assert scenes == [sample_scene(replay) for _ in range(500)]
    counts = Counter(len(s.objects) for s in scenes)
    assert set(counts) == {1, 2, 3}
    for scene in scenes:
        cells = [cell_index(o.cell) for o in scene.objects]
        assert cells == sorted(set(cells))  # distinct cells, reading order
        for obj in scene.objects:
            assert obj.shape in SHAPES and obj.color in COLORS and obj.size in ("small", "large")


def test_article_and_description() -> None:
    assert article("orange") == "an" and article("red") == "a"
    assert describe_object(ToyObject("circle", "red", "small", "top left")) == "small red circle"


# --- rendering ------------------------------------------------------------------------------------


def test_render_is_deterministic_from_seed() -> None:
    scene = sample_scene(random.Random(3))
    a = encode_png(render_scene(scene, random.Random(7)))
    b = encode_png(render_scene(scene, random.Random(7)))
    c = encode_png(render_scene(scene, random.Random(8)))
    assert a == b and a != c
    image = Image.open(io.BytesIO(a))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (64, 64)
    assert render_scene(scene, random.Random(7), image_size=96).size == (96, 96)


def _interior_pixel(center: tuple[float, float], side: float, shape: str) -> tuple[int, int]:
    x, y = center
    if shape == "triangle":
        y += side / 6  # the centroid sits below the centre of the bounding square
    return int(x), int(y)


@pytest.mark.parametrize("image_size", [64, 90])
def test_objects_and_background_match_spec(image_size: int) -> None:
    rng = random.Random(11)
    cell = image_size / 3
    for _ in range(150):
        scene = sample_scene(rng)
        image, layout = render_scene_with_layout(scene, rng, image_size)
        pixels = np.asarray(image).astype(int)
        for placed in layout:
            obj = placed.obj
            row, col = divmod(cell_index(obj.cell), 3)
            low, high = SIZE_FRACTIONS[obj.size]
            assert low * cell <= placed.side <= high * cell
            assert abs(placed.center[0] - (col + 0.5) * cell) <= 0.1 * cell + 1e-9
            assert abs(placed.center[1] - (row + 0.5) * cell) <= 0.1 * cell + 1e-9
            x, y = _interior_pixel(placed.center, placed.side, obj.shape)
            spec = np.array(COLORS[obj.color])
            assert np.all(np.abs(pixels[y, x] - spec) <= 22), (obj, pixels[y, x])
        occupied = {o.cell for o in scene.objects}
        for name in CELL_NAMES:
            if name in occupied:
                continue
            row, col = divmod(cell_index(name), 3)
            # The middle of an empty cell is out of reach of any neighbour: pure background.
            y0, y1 = int((row + 0.3) * cell), int((row + 0.7) * cell)
            x0, x1 = int((col + 0.3) * cell), int((col + 0.7) * cell)
            patch = pixels[y0:y1, x0:x1].reshape(-1, 3)
            assert patch.min() >= 225 - 8
            assert np.all(patch.max(axis=0) - patch.min(axis=0) <= 16)  # noise within +-8
            assert patch.std() > 1  # and there is noise


def test_render_is_fast() -> None:
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(300)]
    start = time.perf_counter()
    for scene in scenes:
        render_scene(scene, rng)
    per_image = (time.perf_counter() - start) / len(scenes)
    assert per_image < 0.005  # ~0.35 ms measured; generous bound for busy CI machines


# --- teacher --------------------------------------------------------------------------------------


def _scenes(seed: int, n: int) -> list[Scene]:
    rng = random.Random(seed)
    return [sample_scene(rng) for _ in range(n)]


def _mentions(sentence: str, obj) -> bool:
    """Whether one caption sentence states all four attributes of `obj`, in any word order."""
    words = sentence.lower().replace(";", "").replace(".", "").split()
    said = max((p for p in CELL_PHRASES.values() if p in " ".join(words)), key=len)  # "top left" over "top"
    return {obj.size, obj.color, obj.shape} <= set(words) and said == CELL_PHRASES[obj.cell]


def test_caption_names_every_object_once_in_random_order() -> None:
    assert len(set(CAPTION_INSTRUCTIONS)) >= 8
    rng = random.Random(1)
    orders = set()
    for i, scene in enumerate(_scenes(1, 300)):
        record = caption_record(scene, rng, f"toy_cap_{i:06d}", image_id=f"toy_{i:06d}")
        assert record["id"] == f"toy_cap_{i:06d}" and record["source"] == "toy_caption"
        assert record["image"] == f"images/toy_{i:06d}.png"
        human, gpt = record["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert human["value"].startswith("<image>\n")
        assert human["value"][len("<image>\n"):] in CAPTION_INSTRUCTIONS
        text = gpt["value"]
        n = len(scene.objects)
        assert f"{n} object{'s' if n > 1 else ''} " in text
        sentences = text.rstrip(".").split(". ")[1:]
        assert len(sentences) == n
        # Each sentence describes exactly one object, and together they cover the scene.
        described = [next(k for k, o in enumerate(scene.objects) if _mentions(s, o))
                     for s in sentences]
        assert sorted(described) == list(range(n))
        orders.add(tuple(described) == tuple(sorted(described)))
    assert orders == {True, False}  # reading order sometimes, not always


_YES_NO = re.compile(r"^Is there (?:a|an) (?P<subject>[a-z ]+) in the image\?$")
_MCQ_QUESTIONS = {
    "color": re.compile(r"^What color is the (?P<shape>\w+)\?$"),
    "shape": re.compile(r"^What shape is the (?P<color>\w+) object\?$"),
    "count": re.compile(r"^How many objects are in the image\?$"),
    "position": re.compile(r"^Where is the (?P<color>\w+) (?P<shape>\w+)\?$"),
}


def _yes_no_truth(scene: Scene, subject: str) -> bool:
    words = subject.split()
    if words[-1] == "object":
        return any(o.color == words[0] for o in scene.objects)
    if len(words) == 1:
        return any(o.shape == words[0] for o in scene.objects)
    return any((o.color, o.shape) == (words[0], words[1]) for o in scene.objects)


def _mcq_truth(scene: Scene, category: str, match: re.Match) -> str:
    """The right option text, asserting the uniqueness rule that makes the question fair."""
    if category == "count":
        return str(len(scene.objects))
    g = match.groupdict()
    targets = [
        o for o in scene.objects
        if o.shape == g.get("shape", o.shape) and o.color == g.get("color", o.color)
    ]
    assert len(targets) == 1, (scene, match.group(0))
    return {"color": targets[0].color, "shape": targets[0].shape, "position": targets[0].cell}[category]


def test_instruct_answers_are_right_for_the_scene() -> None:
    rng = random.Random(2)
    categories, formats, yes_no = Counter(), Counter(), Counter()
    for i, scene in enumerate(_scenes(2, 1500)):
        record = instruct_record(scene, rng, f"toy_ins_{i:06d}")
        assert record["source"] == "toy_instruct" and record["image"] == f"images/toy_ins_{i:06d}.png"
        human, gpt = (t["value"] for t in record["conversations"])
        assert human.startswith("<image>\n")
        question, answer = human[len("<image>\n"):], gpt
        category, fmt = record["category"], record["format"]
        categories[category] += 1
        formats[category.split("-")[0], fmt] += 1
        kind, sub = category.split("-")
        if fmt == "exact" and kind == "pope":
            text, suffix = question.split("\n")
            assert suffix == SHORT_ANSWER_SUFFIX
            truth = _yes_no_truth(scene, _YES_NO.match(text)["subject"])
            assert answer == ("Yes" if truth else "No")
            yes_no[answer] += 1
        elif fmt == "exact":
            lines = question.split("\n")
            assert lines[-1] == CHOICE_SUFFIX
            options = dict(line.split(". ", 1) for line in lines[1:-1])
            assert list(options) == list("ABCD"[: len(options)])
            assert len(options) == (3 if sub == "shape" else 4)
            assert len(set(options.values())) == len(options)
            truth = _mcq_truth(scene, sub, _MCQ_QUESTIONS[sub].match(lines[0]))
            assert options[answer] == truth
        elif fmt == "short":
            assert kind == "mcq"
            text, suffix = question.split("\n")
            assert suffix == SHORT_ANSWER_SUFFIX
            assert answer == str(_mcq_truth(scene, sub, _MCQ_QUESTIONS[sub].match(text)))
        elif kind == "pope":
            assert answer.startswith("Yes, there") or answer.startswith("No, there is no ")
            if answer.startswith("Yes"):
                assert any(describe_object(o) in answer for o in scene.objects)
        elif sub == "count":
            n = len(scene.objects)
            assert answer == f"There {'is' if n == 1 else 'are'} {n} object{'s' if n > 1 else ''} in the image."
        else:
            assert answer.startswith("The ") and answer.endswith(".")
            said = answer[len("The "):-1]
            assert any(
                said in (f"{o.shape} is {o.color}", f"{o.color} object is {article(o.shape)} {o.shape}",
                         f"{o.color} {o.shape} is {CELL_PHRASES[o.cell]}")
                for o in scene.objects
            )
    assert set(categories) == {
        "pope-shape", "pope-color", "pope-pair", "mcq-color", "mcq-shape", "mcq-count", "mcq-position"
    }
    pope_exact = formats["pope", "exact"] / (formats["pope", "exact"] + formats["pope", "free"])
    assert abs(pope_exact - EXACT_FORMAT_PROBABILITY) < 0.05
    mcq = sum(n for (kind, _), n in formats.items() if kind == "mcq")
    for fmt, weight in CHOICE_FORMAT_WEIGHTS.items():
        assert abs(formats["mcq", fmt] / mcq - weight) < 0.05
    assert 0.35 < yes_no["Yes"] / sum(yes_no.values()) < 0.65


def test_text_records_have_no_image_and_correct_arithmetic() -> None:
    rng = random.Random(5)
    records = [text_record(rng, f"toy_text_{i:06d}") for i in range(400)]
    assert len({r["category"] for r in records}) >= 5
    for record in records:
        assert "image" not in record and record["source"] == "toy_text"
        question, answer = (t["value"] for t in record["conversations"])
        assert "<image>" not in question
        m = re.fullmatch(r"What is (\d+) plus (\d+)\?", question)
        if m:
            assert answer == f"{m[1]} plus {m[2]} is {int(m[1]) + int(m[2])}."


# --- generator ------------------------------------------------------------------------------------


def _members(directory: Path) -> dict[str, bytes]:
    out = {}
    for path in shard_paths(directory):
        with tarfile.open(path) as tar:
            for member in tar:
                out[member.name] = tar.extractfile(member).read()
    return out


def _small_world(out: Path, **overrides) -> dict:
    params = dict(num_images=30, num_text=12, num_val_images=5, num_benchmark_items=12,
                  samples_per_shard=16, progress=False, seed=3)
    params.update(overrides)
    return generate_toy_world(out, **params)


def test_generate_writes_all_splits_and_shares_images(tmp_path: Path) -> None:
    info = _small_world(tmp_path)
    assert info["skipped"] is False
    assert read_manifest(tmp_path / "caption")["totals"]["samples_written"] == 30
    assert len(read_manifest(tmp_path / "caption")["shards"]) == 2
    assert read_manifest(tmp_path / "instruct")["totals"]["samples_written"] == 30
    assert read_manifest(tmp_path / "text")["totals"]["samples_written"] == 12
    assert read_manifest(tmp_path / "val")["totals"]["samples_written"] == 10
    assert (tmp_path / "benchmarks" / "toy_pope.tsv").is_file()
    assert (tmp_path / "benchmarks" / "toy_mcq.tsv").is_file()
    assert json.loads((tmp_path / "toy_world.json").read_text())["counts"]["caption"] == 30

    caption, instruct, val = (_members(tmp_path / d) for d in ("caption", "instruct", "val"))
    assert caption["toy_cap_000007.png"] == instruct["toy_ins_000007.png"]
    cap_json = json.loads(caption["toy_cap_000007.json"])
    ins_json = json.loads(instruct["toy_ins_000007.json"])
    assert cap_json["image"] == ins_json["image"] == "images/toy_000007.png"
    train_images = {v for k, v in caption.items() if k.endswith(".png")}
    val_images = {v for k, v in val.items() if k.endswith(".png")}
    assert len(val_images) == 5 and not train_images & val_images

    texts = list(iter_corpus_texts(tmp_path))
    assert len(texts) == 30 + 30 + 12  # one rendered conversation per record
    assert any(t.startswith("[INST] <image>\n") for t in texts)
    assert all(" [/INST] " in t for t in texts)
    assert [r["id"] for r in iter_shard_records(tmp_path / "text")][:2] == ["toy_text_000000", "toy_text_000001"]


def test_parallel_rendering_writes_the_same_shards(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(toy_generate, "PARALLEL_MIN_IMAGES", 0)
    monkeypatch.setattr(toy_generate, "RENDER_CHUNK", 4)
    _small_world(tmp_path / "serial", workers=1)
    _small_world(tmp_path / "parallel", workers=2)
    for split in ("caption", "instruct", "val"):
        serial, parallel = (_members(tmp_path / run / split) for run in ("serial", "parallel"))
        assert list(serial) == list(parallel) and serial == parallel


def test_generate_is_deterministic_and_idempotent(tmp_path: Path) -> None:
    _small_world(tmp_path / "a")
    _small_world(tmp_path / "b")
    assert _members(tmp_path / "a" / "instruct") == _members(tmp_path / "b" / "instruct")
    assert (tmp_path / "a/benchmarks/toy_mcq.tsv").read_bytes() == (tmp_path / "b/benchmarks/toy_mcq.tsv").read_bytes()

    stamp = (tmp_path / "a" / "caption" / "manifest.json").stat().st_mtime_ns
    again = _small_world(tmp_path / "a")
    assert again["skipped"] is True
    assert (tmp_path / "a" / "caption" / "manifest.json").stat().st_mtime_ns == stamp

    changed = _small_world(tmp_path / "a", num_images=20)
    assert changed["skipped"] is False
    assert read_manifest(tmp_path / "a" / "caption")["totals"]["samples_written"] == 20
    assert len(shard_paths(tmp_path / "a" / "caption")) == 2
    assert sorted(p.name for p in (tmp_path / "a" / "caption").iterdir()) == [
        "manifest.json", "shard-000000.tar", "shard-000001.tar"
    ]


def test_cli_generates_and_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--out", str(tmp_path), "--num-images", "6", "--num-text", "3", "--num-val-images", "2",
            "--benchmark-items", "4", "--image-size", "32", "--seed", "1", "--no-progress"]
    assert toy_cli_main(argv) == 0
    assert "generated" in capsys.readouterr().out
    png = next(v for k, v in _members(tmp_path / "caption").items() if k.endswith(".png"))
    assert Image.open(io.BytesIO(png)).size == (32, 32)
    assert (tmp_path / "tokenizer" / "tokenizer.json").is_file()  # what train.py needs besides
    assert toy_cli_main(argv) == 0
    assert "up to date" in capsys.readouterr().out


def test_data_from_older_generator_code_is_regenerated(tmp_path: Path) -> None:
    """Same parameters and format version, but written by other code: not reused."""
    import json

    _small_world(tmp_path / "a")
    info_path = tmp_path / "a" / "toy_world.json"
    info = json.loads(info_path.read_text())
    assert len(info["generator_sha256"]) == 64
    info["generator_sha256"] = "0" * 64  # as if an older version of the teacher had written it
    info_path.write_text(json.dumps(info))
    assert _small_world(tmp_path / "a")["skipped"] is False
    assert json.loads(info_path.read_text())["generator_sha256"] != "0" * 64
