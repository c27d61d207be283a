"""ScienceQA accuracy exactly as LLaVA-1.5 computes it.

Ports haotian-liu/LLaVA at commit c121f0432da27facab705978f83c4ada465e46fd (main), file
`llava/eval/eval_science_qa.py`: the answer extraction of its main loop (lines 65-75) and
`get_pred_idx` (lines 28-35), as `scripts/v1_5/eval/sqa.sh` runs it (default `--options`
A-E). The prediction is taken as stored (`model_vqa_science.py` strips its outputs, and so does our
predictor). The first rule that applies gives the reference's `answer`:
  1. the prediction is one of "A".."E" (`pred_text in args.options`, no strip);
  2. it has at least 3 characters, its first is one of "A".."E" and the next two are ". "
     ("B. blue");
  3. `re.compile(r'The answer is ([A-Z]).').findall(...)` finds exactly one match: that letter;
  4. otherwise "FAILED".
`get_pred_idx` then turns a letter outside the question's own options (`options[:len(choices)]`)
and "FAILED" into -1, which is never the answer: wrong. `parse_scienceqa_prediction` reports those
as None, and `unparsable` counts them.

Quirks kept (each has a test): everything is case-sensitive ("b", "the answer is B" fail); no
whitespace is stripped (" A" and "B\\n" fail, "A. " needs its space); "A." and "(A)" fail; in rule
3 the "." matches any one character but a newline, so a character must follow the letter
("The answer is B" at the very end fails, "The answer is Dog" reads "D"), the letter may be any of
A-Z (then wrong as out of range), and two matches fail even when they agree.
The reference also reports "IMG-Accuracy" over questions whose prompt holds "<image>"; pass
`has_image` to get it as `img_accuracy`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from allava.evaluation.metrics import mean_of

# The reference's `--options` default (line 15); letters are looked up among these before the
# question's own option count is applied.
_OPTION_LETTERS = ("A", "B", "C", "D", "E")
_STATED = re.compile(r"The answer is ([A-Z]).")  # line 70, verbatim
FAILED = "FAILED"  # line 75: the reference's answer when no rule applies


def parse_scienceqa_prediction(prediction: str, num_options: int) -> str | None:
    """The option letter LLaVA reads from a prediction, or None when it scores it wrong as unreadable
    ("FAILED", or a letter beyond the question's `num_options`: `get_pred_idx` returns -1)."""
    answer = reference_answer(prediction)
    return answer if answer in _OPTION_LETTERS[:num_options] else None


def reference_answer(prediction: str) -> str:
    """The reference's `answer` (lines 65-75): a letter A-Z, or "FAILED"; not checked against the options."""
    if prediction in _OPTION_LETTERS:
        return prediction
    if len(prediction) >= 3 and prediction[0] in _OPTION_LETTERS and prediction[1:3] == ". ":
        return prediction[0]
    matches = _STATED.findall(prediction)
    return matches[0] if len(matches) == 1 else FAILED


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

