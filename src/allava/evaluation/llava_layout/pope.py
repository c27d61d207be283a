"""POPE in LLaVA-1.5's evaluation layout.

POPE (`llava/eval/model_vqa_loader.py`, `llava/eval/eval_pope.py`): `llava_pope_test.jsonl`, one
JSON object per line with `question_id`, `image`, `text`, `category` (adversarial / popular /
random); labels in `<annotation_dir>/coco_pope_<category>.json`, one JSON object per line with
`question_id`, `image`, `text`, `label` ("yes"/"no"); images in `val2014/`.
`eval_pope.py` pairs the k-th answer of a category with the k-th label line of that category's
file. Here a question is paired with the label line of its category that has the same `image`
and the same question text (suffix removed, case and surrounding blanks ignored), taken in file
order when several match: the same pairs as LLaVA's when the files are aligned, and a question
without a matching label is skipped instead of being scored against a neighbour's label.

Items: `category` = split, `answer` "yes"/"no", `extras["split"]`, `extras["label"]`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path

from allava.evaluation.benchmark_files import Benchmark, BenchmarkFormatError
from allava.evaluation.llava_layout.common import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    _Builder,
    _jsonl_records,
    _require_dir,
    _require_file,
    strip_short_answer_suffix,
)

POPE_LAYOUT = (
    "expected LLaVA's POPE layout: a question JSONL (llava_pope_test.jsonl) with question_id, image, "
    "text, category per line, and an annotation folder (coco/) holding coco_pope_<category>.json "
    "files of JSON lines with question_id, image, text, label"
)


def load_pope(
    question_file: str | Path, annotation_dir: str | Path, image_folder: str | Path, name: str = "POPE"
) -> Benchmark:
    """POPE as LLaVA-1.5 evaluates it; yes/no items, `category` = split (adversarial, ...)."""
    question_file = _require_file(question_file, POPE_LAYOUT)
    annotation_dir = _require_dir(annotation_dir, "annotation folder", POPE_LAYOUT)
    image_folder = _require_dir(image_folder, "image folder", POPE_LAYOUT)
    label_files = sorted(annotation_dir.glob("coco_pope_*.json"))
    if not label_files:
        raise BenchmarkFormatError(f"{annotation_dir}: no coco_pope_<category>.json file; {POPE_LAYOUT}")

    # split -> (image, question text) -> queue of (line number, label or problem)
    labels: dict[str, dict[tuple[str, str], deque[tuple[int, str | None, str]]]] = {}
    for label_file in label_files:
        split = label_file.name[len("coco_pope_") : -len(".json")]
        by_key: dict[tuple[str, str], deque[tuple[int, str | None, str]]] = defaultdict(deque)
        for line_number, record, error in _jsonl_records(label_file):
            if error is not None or not all(isinstance(record.get(key), str) for key in ("image", "text")):
                continue  # a label line that names no question cannot be matched to one
            label = record.get("label")
            label_text = label.strip().lower() if isinstance(label, str) else None
            problem = "" if label_text in ("yes", "no") else f"label {label!r} is neither yes nor no"
            key = (record["image"], _comparable(record["text"]))
            by_key[key].append((line_number, label_text if not problem else None, problem))
        labels[split] = by_key

    builder = _Builder(name, "yes_no", question_file)
    for row, record, error in _jsonl_records(question_file):
        line = builder.question_line(row, record, error, ("question_id", "image", "text", "category"))
        if line is None:
            continue
        index, raw_id, text, category = line.index, record["question_id"], record["text"], record["category"]
        split_labels = labels.get(category)
        if split_labels is None:
            builder.skip(index, row, NO_ANNOTATION, f"no coco_pope_{category}.json in {annotation_dir}")
            continue
        candidates = split_labels.get((record["image"], _comparable(text)))
        if not candidates:
            builder.skip(index, row, NO_ANNOTATION,
                         f"no line of coco_pope_{category}.json has this image and question")
            continue
        label_line, label, problem = candidates.popleft()
        if label is None:
            builder.skip(index, row, MALFORMED_ANNOTATION,
                         f"coco_pope_{category}.json line {label_line}: {problem}")
            continue
        image_path = builder.image_path(index, row, image_folder, record["image"])
        if image_path is None:
            continue
        builder.add(
            index=index, row=row, text=text, answer=label, category=category, image_path=image_path,
            extras={"question_id": raw_id, "split": category, "label": label},
        )
    return builder.build()


def _comparable(text: str) -> str:
    return strip_short_answer_suffix(text).strip().casefold()
