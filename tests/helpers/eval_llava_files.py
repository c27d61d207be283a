"""Build small benchmark files in LLaVA-1.5's evaluation layout (question JSONL, annotation JSON,
image folder) for the evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.helpers.eval_tsv_helpers import BLUE, RED

SUFFIX = "\nAnswer the question using a single word or phrase."


def write_png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """Objects become JSON lines; strings are written verbatim (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def skip_codes(benchmark) -> dict[Any, str]:
    """Skipped index -> reason code (the part before the first colon)."""
    return {skip.index: skip.reason.split(":")[0] for skip in benchmark.skipped}


def pope_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """POPE's question file, label folder and image folder, with a row for each problem."""
    images = tmp_path / "pope" / "val2014"
    write_png(images / "a.png", RED)
    write_png(images / "b.png", BLUE)
    questions = write_jsonl(tmp_path / "pope" / "llava_pope_test.jsonl", [
        {"question_id": 1, "image": "a.png", "text": "Is there a dog in the image?" + SUFFIX, "category": "adversarial"},
        {"question_id": 2, "image": "a.png", "text": "Is there a cat in the image?" + SUFFIX, "category": "adversarial"},
        {"question_id": 3, "image": "b.png", "text": "Is there a car in the image?", "category": "random"},
        {"question_id": 4, "image": "gone.png", "text": "Is there a bus in the image?" + SUFFIX, "category": "random"},
        '{"question_id": 5, "image": "a.png", "text": ',
        {"question_id": 6, "image": "b.png", "text": "Is there a tree in the image?" + SUFFIX, "category": "random"},
        {"question_id": 7, "image": "b.png", "text": "Is there a kite in the image?" + SUFFIX, "category": "popular"},
        {"question_id": 8, "image": "b.png", "text": "Is there a boat in the image?" + SUFFIX, "category": "random"},
        {"question_id": 9, "image": "b.png", "category": "random"},
    ])
    coco = tmp_path / "pope" / "coco"
    # Labels in another order than the questions: pairing is by image and question, not position.
    write_jsonl(coco / "coco_pope_adversarial.json", [
        {"question_id": 1, "image": "a.png", "text": "Is there a cat in the image?", "label": "no"},
        {"question_id": 2, "image": "a.png", "text": "Is there a dog in the image?", "label": "yes"},
    ])
    write_jsonl(coco / "coco_pope_random.json", [
        {"question_id": 1, "image": "b.png", "text": "Is there a car in the image?", "label": "yes"},
        {"question_id": 2, "image": "gone.png", "text": "Is there a bus in the image?", "label": "no"},
        {"question_id": 3, "image": "b.png", "text": "Is there a boat in the image?", "label": "maybe"},
    ])
    return questions, coco, images
