"""MME: two yes/no questions per image over 14 subtasks; the official calculation (acc + acc+ per
subtask, perception and cognition sums: `reference.mme`). Its default files are in `define(...)`
below.

VLMEvalKit's MME.tsv: index, image, question (ending "Please answer yes or no."), answer
(Yes/No), category (the subtask, spelled as the official lists: OCR, artwork, ...,
code_reasoning), image_path (the image file; VLMEvalKit's `MME_rating` pairs an image's two
questions by it).
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

from allava.evaluation.formats.tsv_rows import (
    BAD_CATEGORY,
    BASE_COLUMNS,
    RowProblem,
    TsvLayout,
    image_hash,
    read_benchmark_tsv,
    with_contract,
    yes_no_answer,
)
from allava.evaluation.formats.vlmevalkit_tsv import cell
from allava.evaluation.items import Benchmark, BenchmarkItem
from allava.evaluation.reference.mme import COGNITION_CATEGORIES, PERCEPTION_CATEGORIES, mme_scores
from allava.evaluation.registry import define, tsv_reader
from allava.evaluation.scorers import ScoringContext, register_scorer

TSV_LAYOUT = TsvLayout("MME", "MME.tsv", (*BASE_COLUMNS, "category"), ("image_path",))

# MME subtasks by lowercased, underscore-joined spelling; VLMEvalKit's MME.tsv already uses the
# official spellings, the plural/space variants cover hand-made files.
_CATEGORIES = {name.lower(): name for name in (*PERCEPTION_CATEGORIES, *COGNITION_CATEGORIES)}
_CATEGORIES.update({"posters": "posters", "poster": "posters", "celebrities": "celebrity",
                    "landmarks": "landmark", "artworks": "artwork", "colour": "color"})


def load_mme_tsv(path: str | Path, name: str = "MME") -> Benchmark:
    """MME: `answer` "yes"/"no", `category` = the subtask as `reference.mme` spells it,
    `extras["image_id"]` shared by the two questions of an image: the `image_path` cell, or else
    a hash of the (resolved) image, so by-index image references pair up too."""

    def convert(item: BenchmarkItem, columns: dict[str, str]) -> BenchmarkItem:
        raw = cell(columns, "category") or ""
        category = _CATEGORIES.get("_".join(raw.lower().split()))
        if category is None:
            raise RowProblem(BAD_CATEGORY, f"category {raw!r} is not an MME subtask")
        image_id = cell(columns, "image_path")
        if image_id is None:
            image_id = image_hash(item.image_b64) if item.image_b64 else f"index:{item.index}"
        return with_contract(item, answer=yes_no_answer(item), category=category,
                             extras={**item.extras, "image_id": image_id})

    return read_benchmark_tsv(path, name, TSV_LAYOUT, "yes_no", convert)


def score_mme(items, predictions, context: ScoringContext, parser: str = "official") -> dict[str, Any]:
    """The official MME calculation. An image needs both of its questions answered; one left with
    a single answered question (cut by `limit`, or its partner skipped) is left out and counted.
    `parser`: how answers are read (`reference.mme.MME_PARSERS`)."""
    by_image: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        by_image[(item.category, str(item.extras.get("image_id", item.index)))].append(position)
    keep = sorted(p for group in by_image.values() if len(group) == 2 for p in group)
    unpaired = len(items) - len(keep)
    if unpaired:
        context.notes.append(f"MME: {unpaired} question(s) without their image's second question "
                             "were left out (acc+ needs both)")
    entry = mme_scores(
        [predictions[p] for p in keep], [items[p].answer for p in keep],
        [items[p].category for p in keep], [str(items[p].extras.get("image_id", items[p].index)) for p in keep],
        parser=parser,
    )
    entry["unpaired"] = unpaired
    return {"metric": "perception + cognition", "score": entry["total"], **entry}


SCORER = register_scorer("mme", score_mme)
# lmms-eval's looser answer parsing, on request: '+benchmark_overrides={mme: {scorer: mme_lmms_eval}}'
register_scorer("mme_lmms_eval", partial(score_mme, parser="lmms_eval"))

MME = define(
    "mme", scorer=SCORER, max_new_tokens=128,
    readers={"tsv": tsv_reader(load_mme_tsv, TSV_LAYOUT.required)},
    sources={"tsv": {"path": "${benchmark_data_dir}/MME.tsv"}},
    report=[{"column": "MME-P", "metric": "perception", "scale": 1},
            {"column": "MME-C", "metric": "cognition", "scale": 1}],
)
