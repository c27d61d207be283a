"""Rule-based option extraction exactly as VLMEvalKit does it before asking an LLM judge.

Reproduces `can_infer`, `can_infer_option` and `can_infer_text` of VLMEvalKit's
`vlmeval/utils/matching_util.py` (open-compass/VLMEvalKit, commit e8e78f05f3080fe28154f2130321f17951c3be94,
the matching refined by its PR 1175), and the way `ImageMCQDataset.evaluate_heuristic`
(`vlmeval/dataset/image_mcq.py`) prepares a prediction before matching. The rules, in order:

0. Prediction text (`prediction_as_loaded`): VLMEvalKit reloads the predictions file with pandas
   (`load` in `vlmeval/smp/file.py`: `read_excel` / `read_csv` defaults) and then applies
   ``str(x)``, so a prediction that is one of pandas' NA strings ("None", "NA", "", ...)
   is matched as "nan".
1. `can_infer_option` (`infer_option_letter`):
   a. a prediction containing the API-failure marker gets no letter (text matching still runs);
   b. one containing any refusal phrase is "Z";
   c. the characters ``.()[],:;!*#{}`` become spaces and the text is split on whitespace; the
      option letters present as whole tokens are counted (case-sensitive, each letter once);
   d. exactly one letter present: with `quantifier_guard` (VLMEvalKit's VERBOSE environment
      variable) a token "A" among more than three tokens makes this step give up at once;
      otherwise the letter counts only if ``splits.index(letter) > len(splits) - 5``, i.e. its
      FIRST occurrence is among the last four tokens; if not, the step falls through to (f);
   e. no letter present but a token "Z": "Z" (VLMEvalKit counts {"Z", ""} among the tokens, but
      whitespace splitting never yields an empty token, so only "Z" can count);
   f. `_VERBOSE_ANSWER_RE`, case-insensitive, on the raw prediction: "(correct) answer is", then
      an A-D letter optionally wrapped in "*", gives that letter (upper-cased) if it is an option.
      Only A-D, no word boundary ("The answer is Cat" gives C), and "answer is (B)" / "answer is:
      B" do not match.
2. `can_infer_text` (`infer_option_text`): a lowercased prediction longer than twice the total
   length of the option texts gives up; otherwise the lowercased option texts are looked for as
   substrings and exactly one hit means that option.

"Z" is VLMEvalKit's "no option fits" answer. It is a definite answer (wrong unless the ground
truth is "Z"), not a failure: VLMEvalKit does not send it to the LLM judge. A failure of all
steps is returned as None, which is where VLMEvalKit would call its judge (or, under
``exact_matching``, score the item wrong).

Known quirk kept on purpose: an English article "A" is a letter token ("A dog" picks option A
when A is an option). VLMEvalKit only guards against this when VERBOSE is set;
`quantifier_guard=True` turns that guard on.

Not ported: `can_infer_sequence` / `can_infer_lego` (LEGO's ordering questions only) and the
optional SPLIT_THINK splitting of predictions at inference time.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from allava.evaluation.formats.common import is_pandas_na

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

# A lone letter counts only if it first appears among this many final tokens
# (VLMEvalKit: `splits.index(ch) > len(splits) - 5`).
LAST_TOKENS = 4

# Verbose answers such as "The correct answer is **B**." (VLMEvalKit's `_VERBOSE_ANSWER_RE`).
VERBOSE_ANSWER_RE = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")

# Text matching gives up on predictions longer than this many times the options' total length.
TEXT_LENGTH_FACTOR = 2

# What `str()` of pandas' missing value reads as.
PANDAS_NA_TEXT = "nan"


def prediction_as_loaded(prediction: object) -> str:
    """The prediction text VLMEvalKit matches: reloaded with pandas, then `str()`-ed, an NA string
    (rule 0 above) becomes "nan"."""
    text = str(prediction)
    return PANDAS_NA_TEXT if is_pandas_na(text) else text


def infer_choice(
    prediction: str, options: Mapping[str, str], *, quantifier_guard: bool = False
) -> str | None:
    """The option letter (or "Z") VLMEvalKit's `can_infer` reads from `prediction`; None if it fails.

    `options` maps letters ("A", "B", ...) to option texts, in the order of the question; give
    only the options the question has (VLMEvalKit drops blank option columns first). Apply
    `prediction_as_loaded` first where the prediction comes from a model's output.
    """
    prediction = str(prediction)
    letter = infer_option_letter(prediction, options, quantifier_guard=quantifier_guard)
    if letter is not None:
        return letter
    return infer_option_text(prediction, options)


def infer_option_letter(
    prediction: str, options: Mapping[str, str], *, quantifier_guard: bool = False
) -> str | None:
    """Rule 1 above (`can_infer_option`): a refusal, a late lone letter token, a lone "Z", or a
    verbose "answer is X"."""
    if API_FAILURE_MARKER in prediction:
        return None
    if any(phrase in prediction for phrase in REFUSAL_PHRASES):
        return REFUSAL_LETTER
    tokens = letter_tokens(prediction)
    found = [letter for letter in options if letter in tokens]
    if len(found) == 1:
        # VLMEvalKit's VERBOSE-only guard returns before the verbose-answer pattern is tried.
        if quantifier_guard and "A" in tokens and len(tokens) > 3:
            return None
        if is_among_last_tokens(tokens, found[0]):
            return found[0]
    elif not found and REFUSAL_LETTER in tokens:
        return REFUSAL_LETTER
    return verbose_answer_letter(prediction, options)


def letter_tokens(prediction: str) -> list[str]:
    """The prediction's whitespace tokens once the letter delimiters are spaces."""
    return prediction.translate(_DELIMITERS_TO_SPACES).split()


def is_among_last_tokens(tokens: list[str], letter: str) -> bool:
    """Whether the letter's first occurrence is among the last LAST_TOKENS tokens."""
    return tokens.index(letter) > len(tokens) - (LAST_TOKENS + 1)


def verbose_answer_letter(prediction: str, options: Mapping[str, str]) -> str | None:
    """The A-D letter after "(correct) answer is" (any case), if it is one of the options."""
    match = VERBOSE_ANSWER_RE.search(prediction)
    if match is None:
        return None
    letter = match.group(1).upper()
    return letter if letter in options else None


def infer_option_text(prediction: str, options: Mapping[str, str]) -> str | None:
    """Rule 2 above (`can_infer_text`): the one option whose text occurs in a short prediction."""
    lowered = prediction.lower()
    # The length is that of the lowercased prediction, against the option texts as given.
    if len(lowered) > TEXT_LENGTH_FACTOR * sum(len(str(text)) for text in options.values()):
        return None
    _check_option_letters(options)
    hits = [letter for letter, text in options.items() if str(text).lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def _check_option_letters(options: Mapping[str, str]) -> None:
    """VLMEvalKit asserts option keys are uppercase letters (after its length check); fail loudly."""
    for letter in options:
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise ValueError(f"option keys must be single uppercase letters, got {letter!r}")
