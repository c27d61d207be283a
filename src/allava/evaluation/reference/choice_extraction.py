"""Rule-based option extraction exactly as VLMEvalKit does it before asking an LLM judge.

Reproduces `can_infer`, `can_infer_option` and `can_infer_text` from VLMEvalKit's
`vlmeval/utils/matching_util.py` (open-compass/VLMEvalKit, read at commit 18fc37a5). Behaviour,
step by step:

1. A prediction containing VLMEvalKit's API-failure marker skips letter detection (but still
   gets text matching); one containing any of its refusal phrases is answer "Z".
2. Letter detection: the characters ``.()[],:;!*#{}`` become spaces, the text is split on
   whitespace, and each option letter is looked up as a whole token (case-sensitive). Exactly one
   option letter among the tokens means that letter; no option letter but a lone "Z" token means
   "Z"; anything else (two or more letters, or nothing) fails this step. So "(B)", "B.", "[B]",
   "**B**" and "The answer is B." all give "B", while "B-", "'B'" and lowercase "b" do not.
3. Text matching: the lowercased option texts are looked for as substrings of the lowercased
   prediction; exactly one hit means that option.

"Z" is VLMEvalKit's "no option fits" answer. It is a definite answer (wrong unless the ground
truth is "Z"), not a failure: VLMEvalKit does not send it to the LLM judge. A failure of all
steps is returned as None, which is where VLMEvalKit would call its judge (or, without one, score
the item wrong).

Known quirk kept on purpose: an English article "A" is a letter token ("A dog" picks option A
when A is an option). VLMEvalKit only guards against this when the VERBOSE environment variable
is set; `quantifier_guard=True` turns that guard on.

Variant not reproduced: one stored snapshot of matching_util.py (commit 134b4ea6) additionally
requires the letter to sit more than five tokens before the end and skips text matching for
long predictions; it rejects a bare "A", so we follow the long-standing version above.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

REFUSAL_LETTER = "Z"

# A judge/API error string; VLMEvalKit never reads a letter out of it.
API_FAILURE_MARKER = "Failed to obtain answer via API"

# Predictions that VLMEvalKit treats as a refusal to answer ("Z").
REFUSAL_PHRASES: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)

# Characters that may wrap a letter and still leave it a token of its own.
LETTER_DELIMITERS = ".()[],:;!*#{}"
_DELIMITERS_TO_SPACES = str.maketrans(LETTER_DELIMITERS, " " * len(LETTER_DELIMITERS))


def infer_choice(
    prediction: str, options: Mapping[str, str], *, quantifier_guard: bool = False
) -> str | None:
    """The option letter (or "Z") VLMEvalKit's rules read from `prediction`; None if they fail.

    `options` maps letters ("A", "B", ...) to option texts, in the order of the question; give
    only the options the question has (VLMEvalKit drops empty option columns first).
    """
    prediction = str(prediction)
    letter = infer_option_letter(prediction, options, quantifier_guard=quantifier_guard)
    if letter is not None:
        return letter
    return infer_option_text(prediction, options)


def infer_option_letter(
    prediction: str, options: Mapping[str, str], *, quantifier_guard: bool = False
) -> str | None:
    """Step 1-2 above (`can_infer_option`): a refusal or a single delimited letter token."""
    if API_FAILURE_MARKER in prediction:
        return None
    if any(phrase in prediction for phrase in REFUSAL_PHRASES):
        return REFUSAL_LETTER
    tokens = prediction.translate(_DELIMITERS_TO_SPACES).split()
    token_set = set(tokens)
    found = [letter for letter in options if letter in token_set]
    if len(found) == 1:
        # VLMEvalKit's VERBOSE-only guard: "A" among more than three tokens may be an article.
        if quantifier_guard and "A" in token_set and len(tokens) > 3:
            return None
        return found[0]
    if not found and REFUSAL_LETTER in token_set:
        return REFUSAL_LETTER
    return None


def infer_option_text(prediction: str, options: Mapping[str, str]) -> str | None:
    """Step 3 above (`can_infer_text`): the one option whose text occurs in the prediction."""
    _check_option_letters(options)
    lowered = prediction.lower()
    hits = [letter for letter, text in options.items() if str(text).lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def _check_option_letters(options: Mapping[str, str]) -> None:
    """VLMEvalKit asserts option keys are uppercase letters; fail loudly on anything else."""
    for letter in options:
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise ValueError(f"option keys must be single uppercase letters, got {letter!r}")
