"""POPE (COCO val2014): object-existence yes/no questions in three splits, random, popular and
adversarial. Scored as haotian-liu/LLaVA at commit c121f0432da27facab705978f83c4ada465e46fd,
file `llava/eval/eval_pope.py` (run by `scripts/v1_5/eval/pope.sh`), per split; headline: F1
averaged over the splits (`score_pope`). Its default files are in `define(...)` below.

VLMEvalKit's POPE.tsv: index, image, question, answer (Yes/No), category (the split; a question
shared by several splits is stored once with the splits comma-joined, e.g.
"adversarial,popular,random", which VLMEvalKit's `POPE_rating` splits again), optionally image_path.

LLaVA-1.5's layout (`llava/eval/model_vqa_loader.py`, `llava/eval/eval_pope.py`):
`llava_pope_test.jsonl`, one JSON object per line with `question_id`, `image`, `text`, `category`
(adversarial / popular / random); labels in `<annotation_dir>/coco_pope_<category>.json`, one JSON
object per line with `question_id`, `image`, `text`, `label` ("yes"/"no"); images in `val2014/`.
`eval_pope.py` pairs the k-th answer of a category with the k-th label line of that category's
file. Here a question is paired with the label line of its category that has the same `image`
and the same question text (suffix removed, case and surrounding blanks ignored), taken in file
order when several match: the same pairs as LLaVA's when the files are aligned, and a question
without a matching label is skipped instead of being scored against a neighbour's label.
"""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from allava.evaluation.answer_parsing import parse_yes_no
from allava.evaluation.formats.common import require_dir, require_file
from allava.evaluation.formats.llava import (
    MALFORMED_ANNOTATION,
    NO_ANNOTATION,
    ItemBuilder,
    jsonl_records,
    strip_short_answer_suffix,
)
from allava.evaluation.formats.tsv_rows import (
    BAD_CATEGORY,
    BASE_COLUMNS,
    RowProblem,
    TsvLayout,
    read_benchmark_tsv,
    with_contract,
    yes_no_answer,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import Benchmark, BenchmarkFormatError, BenchmarkItem
from allava.evaluation.metrics import mean_of, yes_no_counts, yes_no_rates
from allava.evaluation.registry import define, llava_reader, tsv_reader
from allava.evaluation.scorers import ScoringContext, as_percent, register_scorer

SPLITS: tuple[str, ...] = ("adversarial", "popular", "random")
TSV_LAYOUT = TsvLayout("POPE", "POPE.tsv", (*BASE_COLUMNS, "category"), ("image_path",))
LLAVA_LAYOUT = (
    "expected LLaVA's POPE layout: a question JSONL (llava_pope_test.jsonl) with question_id, image, "
    "text, category per line, and an annotation folder (coco/) holding coco_pope_<category>.json "
    "files of JSON lines with question_id, image, text, label"
)


def load_pope_tsv(path: str | Path, name: str = "POPE") -> Benchmark:
    """POPE: `answer` "yes"/"no"; `category` = `extras["split"]` = the split (random / popular /
    adversarial). A row VLMEvalKit shares between splits ("adversarial,popular,random") stays one
    item whose category is the splits comma-joined in that order; `extras["splits"]` always lists
    them, so that per-split metrics count such a row in each of its splits (as `POPE_rating`)."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        named = {part.strip().lower() for part in raw.split(",") if part.strip()}
        unknown = sorted(named - set(SPLITS))
        if not named or unknown:
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not a POPE split ({', '.join(SPLITS)})")
        splits = [split for split in SPLITS if split in named]
        split = ",".join(splits)
        return with_contract(item, answer=yes_no_answer(item), category=split,
                             extras={**item.extras, "split": split, "splits": splits})

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "yes_no", convert)


def load_pope(
    question_file: str | Path, annotation_dir: str | Path, image_folder: str | Path, name: str = "POPE"
) -> Benchmark:
    """POPE as LLaVA-1.5 evaluates it; yes/no items, `category` = `extras["split"]` = the split
    (adversarial, ...), `answer` "yes"/"no", `extras["label"]`."""
    question_file = require_file(question_file, LLAVA_LAYOUT)
    annotation_dir = require_dir(annotation_dir, "annotation folder", LLAVA_LAYOUT)
    image_folder = require_dir(image_folder, "image folder", LLAVA_LAYOUT)
    label_files = sorted(annotation_dir.glob("coco_pope_*.json"))
    if not label_files:
        raise BenchmarkFormatError(f"{annotation_dir}: no coco_pope_<category>.json file; {LLAVA_LAYOUT}")

    # split -> (image, question text) -> queue of (line number, label or problem)
    labels: dict[str, dict[tuple[str, str], deque[tuple[int, str | None, str]]]] = {}
    for label_file in label_files:
        split = label_file.name[len("coco_pope_") : -len(".json")]
        by_key: dict[tuple[str, str], deque[tuple[int, str | None, str]]] = defaultdict(deque)
        for line_number, record, error in jsonl_records(label_file):
            if error is not None or not all(isinstance(record.get(key), str) for key in ("image", "text")):
                continue  # a label line that names no question cannot be matched to one
            label = record.get("label")
            label_text = label.strip().lower() if isinstance(label, str) else None
            problem = "" if label_text in ("yes", "no") else f"label {label!r} is neither yes nor no"
            key = (record["image"], _comparable(record["text"]))
            by_key[key].append((line_number, label_text if not problem else None, problem))
        labels[split] = by_key

    builder = ItemBuilder(name, "yes_no", question_file)
    for row, record, index in builder.questions(("question_id", "image", "text", "category")):
        raw_id, text, category = record["question_id"], record["text"], record["category"]
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


def score_pope(items, predictions, context: ScoringContext) -> dict[str, Any]:
    """POPE as LLaVA's eval_pope.py scores it, per split, with the published headline.

    Headline (`score`, the results table's POPE column): `mean_f1_over_splits`, the F1 of each
    split averaged over the splits present (adversarial, popular, random). That is the POPE number
    LLaVA-1.5 publishes (85.9 for llava-v1.5-7b and -13b, `docs/MODEL_ZOO.md`): the paper does not
    say how the splits are combined (haotian-liu/LLaVA#806), but the mean of the three F1 that
    eval_pope.py prints reproduces it (haotian-liu/LLaVA#626, comment 1772025961). ALLaVA's own
    table (arXiv:2402.11684 v2, Table 4) has no POPE column (`resources/published_allava.yaml`).

    `per_category[split]`: what eval_pope.py prints for that category (lines 50-61): TP, FP, TN,
    FN, accuracy, precision, recall, f1, yes_ratio, plus `num_items` ("# samples"). Where the
    reference divides by zero (it raises ZeroDivisionError whenever a split has TP = 0: precision
    with nothing predicted "yes", recall with no "yes" label, else F1 = 0/0), the undefined ratio
    is reported as 0.0 instead; the counts beside it show when that happened.

    Also: `mean_accuracy_over_splits`, `mean_yes_ratio_over_splits`, and `pooled_accuracy`,
    `pooled_f1`, `pooled_yes_ratio` over every scored row, a row listed under several splits
    counted once in each (`pooled_num_rows` of them); `num_items` counts the items themselves.
    """
    per_split = {split: _split_metrics(counts) for split, counts in _split_counts(items, predictions).items()}
    pooled = {key: sum(metrics[key] for metrics in per_split.values()) for key in ("TP", "FP", "TN", "FN")}
    pooled_rates = yes_no_rates(pooled)
    entry = {
        "mean_f1_over_splits": _mean_over_splits(per_split, "f1"),
        "mean_accuracy_over_splits": _mean_over_splits(per_split, "accuracy"),
        "mean_yes_ratio_over_splits": _mean_over_splits(per_split, "yes_ratio"),
        "pooled_accuracy": pooled_rates["accuracy"],
        "pooled_f1": pooled_rates["f1"],
        "pooled_yes_ratio": pooled_rates["yes_ratio"],
        "pooled_num_rows": sum(pooled.values()),
        "per_category": per_split,
        "num_items": len(items),
    }
    return as_percent(entry, "mean_f1_over_splits", "mean F1 over splits (%)")


def _split_counts(items, predictions) -> dict[str, dict[str, int]]:
    """Confusion counts per split, splits in sorted order."""
    by_split: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for item, prediction in zip(items, predictions, strict=True):
        # A VLMEvalKit row may belong to several splits ("adversarial,popular"): it counts in each.
        for split in item.extras.get("splits") or [item.category]:
            parsed, targets = by_split[split]
            parsed.append(parse_yes_no(prediction))
            targets.append(item.answer.strip().lower())
    return {split: yes_no_counts(*by_split[split]) for split in sorted(by_split)}


def _split_metrics(counts: dict[str, int]) -> dict[str, Any]:
    return {**counts, **yes_no_rates(counts), "num_items": sum(counts.values())}


def _mean_over_splits(per_split: dict[str, dict[str, Any]], key: str) -> float:
    return mean_of([metrics[key] for metrics in per_split.values()])


SCORER = register_scorer("pope", score_pope)

POPE = define(
    "pope", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_pope_tsv, TSV_LAYOUT.required),
             "llava": llava_reader(load_pope, "question_file", "annotation_dir", "image_folder")},
    sources={"tsv": {"path": "${benchmark_data_dir}/POPE.tsv"},
             "llava": {"question_file": "${benchmark_data_dir}/pope/llava_pope_test.jsonl",
                       "annotation_dir": "${benchmark_data_dir}/pope/coco",
                       "image_folder": "${benchmark_data_dir}/pope/val2014"}},
    report=[{"column": "POPE", "metric": "mean_f1_over_splits", "scale": 100}],
)
