"""MME scores exactly as the official MME `eval_tool/calculation.py` computes them.

Reproduces `calculation.py` from the MME release's eval_tool (read in zjunlp/Deco at commit
a3ccc150b715373f3019fc07cb1836c1961d7e15, `eval_tool/calculation.py`, a verbatim copy; LLaVA's
`scripts/v1_5/eval/mme.sh` runs it after `convert_answer_to_mme.py`, which writes the raw model
text into the result files).
  * Parsing: the prediction is lowercased; exactly "yes" or "no" is taken as is; otherwise
    "yes" anywhere in its first 4 characters means yes, else "no" there means no, else "other".
  * Per category: `acc` is the share of questions right; `acc_plus` the share of images with
    both of their two questions right; `score` = acc + acc_plus, each in percent (0-200).
  * `perception` and `cognition` sum the scores of their categories; `total` adds the two.

Quirks kept (each has a test): the 4-character window makes "not sure" and "nope" a "no",
"no, yes" a "no" but "I think yes" an "other"; nothing is stripped, so two leading spaces push
"yes" out of the window ("other" is always wrong). Unlike the rest of this package, MME reports
percentages, so acc and acc_plus are percentages here too.

lmms-eval's MME task (EvolvingLMMs-Lab/lmms-eval 0.7.3, `lmms_eval/tasks/mme/utils.py`,
`parse_pred_ans`, "brought from Otter Eval") parses more loosely: it lowercases, strips and drops
every ".", maps a lone "y" / "n" to yes / no, then applies the same 4-character window. Its
scores are the same sums otherwise (its per-category mean of acc + acc+ per image equals acc +
acc_plus here). `parser="lmms_eval"` (the `mme_lmms_eval` scorer) reads answers its way; the
official parser stays the default, as LLaVA-1.5 and ALLaVA report MME through the official tool.
An image answered "Y" / "N" moves a category by up to 100 points between the two.

Where we differ: the reference pairs consecutive lines of a category's file as the two questions
of one image; here questions are grouped by (category, image id), so input order is free, and an
image without exactly two questions raises ValueError where the reference's assertion would
stop. A prediction containing a newline or tab breaks the reference's line format; here it is
simply parsed as text. Categories outside the two lists below are scored but not totalled; a
missing category contributes nothing to its total (the reference would fail to open its file).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

PERCEPTION_CATEGORIES: tuple[str, ...] = (
    "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
    "artwork", "OCR",
)
COGNITION_CATEGORIES: tuple[str, ...] = (
    "commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning",
)


def parse_mme_answer(prediction: str) -> str:
    """"yes", "no" or "other", read from the lowercased prediction's first four characters."""
    text = prediction.lower()
    if text in ("yes", "no"):
        return text
    return _read_window(text)


def parse_mme_answer_lmms_eval(prediction: str) -> str:
    """"yes", "no" or "other" as lmms-eval's MME task reads them (module docstring)."""
    text = prediction.lower().strip().replace(".", "")
    if text in ("yes", "no"):
        return text
    if len(text) == 1:
        return {"y": "yes", "n": "no"}.get(text, "other")
    return _read_window(text)


def _read_window(text: str) -> str:
    """The rule both parsers end with: "yes", else "no", in the first four characters."""
    window = text[:4]
    if "yes" in window:
        return "yes"
    if "no" in window:
        return "no"
    return "other"


MME_PARSERS = {"official": parse_mme_answer, "lmms_eval": parse_mme_answer_lmms_eval}


def mme_scores(
    predictions: Sequence[str],
    answers: Sequence[str],
    categories: Sequence[str],
    image_ids: Sequence[str],
    parser: str = "official",
) -> dict[str, Any]:
    """Per-category acc / acc_plus / score (percent) and the perception, cognition and total sums;
    answers read by `parser` (MME_PARSERS: the official tool's, or lmms-eval's)."""
    if parser not in MME_PARSERS:
        raise ValueError(f"unknown MME parser {parser!r}; known: {sorted(MME_PARSERS)}")
    parse = MME_PARSERS[parser]
    if not len(predictions) == len(answers) == len(categories) == len(image_ids):
        raise ValueError(
            f"got {len(predictions)} predictions, {len(answers)} answers, "
            f"{len(categories)} categories, {len(image_ids)} image ids"
        )
    # category -> image id -> [is the question right, ...]
    images: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    others: dict[str, int] = defaultdict(int)
    for prediction, answer, category, image_id in zip(predictions, answers, categories, image_ids):
        gold = answer.lower()
        if gold not in ("yes", "no"):
            raise ValueError(f"MME answers are yes or no, got {answer!r}")
        parsed = parse(prediction)
        others[category] += parsed == "other"
        images[category][image_id].append(parsed == gold)

    per_category = {name: _category_scores(images[name], others[name]) for name in sorted(images)}
    perception = sum(per_category[name]["score"] for name in PERCEPTION_CATEGORIES if name in per_category)
    cognition = sum(per_category[name]["score"] for name in COGNITION_CATEGORIES if name in per_category)
    return {
        "per_category": per_category,
        "perception": float(perception),
        "cognition": float(cognition),
        "total": float(perception + cognition),
        "num_items": len(predictions),
        "parser": parser,
    }


def _category_scores(questions_by_image: dict[str, list[bool]], num_other: int) -> dict[str, Any]:
    """acc, acc_plus and score in percent for one category, plus its question and image counts."""
    for image_id, results in questions_by_image.items():
        if len(results) != 2:
            raise ValueError(f"MME has two questions per image; image {image_id!r} has {len(results)}")
    flat = [is_right for results in questions_by_image.values() for is_right in results]
    acc = sum(flat) / len(flat) * 100
    acc_plus = sum(all(results) for results in questions_by_image.values()) / len(questions_by_image) * 100
    return {
        "acc": acc,
        "acc_plus": acc_plus,
        "score": acc + acc_plus,
        "num_questions": len(flat),
        "num_images": len(questions_by_image),
        "num_other": num_other,
    }
