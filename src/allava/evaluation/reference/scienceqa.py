"""ScienceQA accuracy exactly as LLaVA-1.5's `llava/eval/eval_science_qa.py` computes it.

Reproduces haotian-liu/LLaVA `llava/eval/eval_science_qa.py` (main loop plus `get_pred_idx`).
Newlines in the prediction become ". " first; then the first rule that applies decides:
  1. the whole prediction, stripped, is one of "A".."E";
  2. the unstripped prediction starts with a letter "A".."E" followed by ". " ("B. blue");
  3. it contains "The answer is ": the first "The answer is X." (X in A-E, period right after)
     wins; failing that the first "The answer is X" with X in A-E; failing both, unparsable;
  4. anything else is unparsable ("FAILED" in the reference).
A letter beyond the question's own options (e.g. "E" for a 4-option question) is then wrong too;
`parse_scienceqa_prediction` reports it as None, and `unparsable` counts it with the failures.

Quirks kept (each has a test): everything is case-sensitive ("b", "the answer is B" fail);
"A." and "(A)" fail, "A. " needs the space and no leading blank; "A\\nbecause" parses as "A";
rule 3 reads only the letter after "is ", so "The answer is Dog" parses as "D".
The reference also reports "IMG-Accuracy" over questions whose prompt holds "<image>"; pass
`has_image` to get it as `img_accuracy`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from allava.evaluation.metrics import mean_of

# The reference's `--options` default; letters are looked up among these before the question's
# own option count is applied.
_OPTION_LETTERS = ("A", "B", "C", "D", "E")
_STATED_WITH_PERIOD = re.compile(r"The answer is ([A-E])\.")
_STATED = re.compile(r"The answer is ([A-E])")


def parse_scienceqa_prediction(prediction: str, num_options: int) -> str | None:
    """The option letter LLaVA reads from a prediction, or None when it would score it wrong as unreadable."""
    letter = _reference_letter(prediction.replace("\n", ". "))
    if letter is None or _OPTION_LETTERS.index(letter) >= num_options:
        return None
    return letter


def scienceqa_accuracy(
    predictions: Sequence[str],
    answers: Sequence[str | int],
    options_counts: Sequence[int],
    has_image: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Accuracy (fraction) with unparsable predictions counted wrong; `img_accuracy` if `has_image`.

    `answers` are letters ("C") or, as in ScienceQA's problems.json, 0-based option indices.
    """
    if not len(predictions) == len(answers) == len(options_counts):
        raise ValueError(
            f"got {len(predictions)} predictions, {len(answers)} answers, {len(options_counts)} option counts"
        )
    if has_image is not None and len(has_image) != len(answers):
        raise ValueError(f"got {len(has_image)} has_image flags for {len(answers)} answers")
    parsed = [parse_scienceqa_prediction(pred, count) for pred, count in zip(predictions, options_counts)]
    gold = [_OPTION_LETTERS[answer] if isinstance(answer, int) else answer for answer in answers]
    correct = [letter is not None and letter == target for letter, target in zip(parsed, gold)]
    result: dict[str, Any] = {
        "accuracy": mean_of(correct),
        "num_items": len(correct),
        "unparsable": sum(letter is None for letter in parsed),
    }
    if has_image is not None:
        with_image = [is_correct for is_correct, flag in zip(correct, has_image) if flag]
        result["img_accuracy"] = mean_of(with_image)
        result["num_img_items"] = len(with_image)
    return result


def _reference_letter(text: str) -> str | None:
    """Rules 1-4 of the module docstring on newline-replaced text; any of A-E, unchecked against the count."""
    if text.strip() in _OPTION_LETTERS:
        return text.strip()
    if len(text) >= 3 and text[0] in _OPTION_LETTERS and text[1:3] == ". ":
        return text[0]
    if "The answer is " in text:
        match = _STATED_WITH_PERIOD.search(text) or _STATED.search(text)
        return match.group(1) if match else None
    return None
