"""Turn free-form model outputs into answers that can be compared with the ground truth.

`parse_yes_no` ports the yes/no rule of haotian-liu/LLaVA at commit
c121f0432da27facab705978f83c4ada465e46fd, file `llava/eval/eval_pope.py` (`eval_pope`, lines
9-20). The other parsers follow no reference script: they are our lenient rules for benchmarks
given by path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# eval_pope.py line 17: these exact (case-sensitive) words mean "no"; keeping them makes our POPE
# numbers comparable with the published ones.
_NEGATIVE_WORDS = frozenset({"No", "no", "not"})

_ARTICLES = frozenset({"a", "an", "the"})

# "(B)", "B", "B.", "B)", "B:" as the whole answer.
_BARE_LETTER = re.compile(r"\(?([A-Za-z])[.):]?")
# "B. red", "B) red", "B: red", "(B) red" at the start of the answer.
_LEADING_LETTER = re.compile(r"(?:\(([A-Z])\)|([A-Z])[.):])(?:\s|$)")
# "The answer is B", "Answer: (B)", "the correct option is B." anywhere in the answer.
_STATED_LETTER = re.compile(r"(?i:answer|option|choice)\s*(?:is\s*)?:?\s*\(?([A-Z])\b(?![.'’]?[A-Za-z])")


def parse_yes_no(prediction: str) -> str:
    """"yes" or "no", exactly as LLaVA's eval_pope.py reads a prediction (lines 12-20).

    Only the text before the first "." counts; commas are removed; it is split on single spaces
    (`split(' ')`, not on any whitespace), and "no" is returned iff one of those pieces is exactly
    "No", "no" or "not". Anything else, the empty string included, is "yes". The prediction is
    taken as stored: LLaVA's generator strips its outputs, and so does our predictor, so no
    whitespace is stripped here. Quirks kept: "No\\nbecause" and "\\nNo" are "yes" (the newline
    glues the words together), so are "NO", "Not" and "No!"; " No" and "No," are "no".
    """
    first_sentence = prediction.split(".")[0]  # lines 12-13: the whole text when there is no "."
    words = first_sentence.replace(",", "").split(" ")  # lines 15-16
    return "no" if _NEGATIVE_WORDS.intersection(words) else "yes"


def parse_choice_letter(prediction: str, options: Mapping[str, str]) -> str | None:
    """The option letter a prediction picks, or None when no rule identifies exactly one.

    Rules, in order: the answer is a bare letter ("B", "(B)", "B."); it starts with one ("B. red",
    "(B) red"); it states one ("The answer is B"); it equals or contains exactly one option's text.
    A letter that is not among `options` counts as unparsable.
    """
    text = prediction.strip()
    if not text:
        return None
    letter = _explicit_letter(text)
    if letter is not None:
        return letter if letter in options else None
    return _letter_by_option_text(text, options)


def normalize_short_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (for exact-match scoring)."""
    return " ".join(word for word in _lowercase_words(text) if word not in _ARTICLES)


def _explicit_letter(text: str) -> str | None:
    """The letter named by the first letter rule that matches, if any."""
    if match := _BARE_LETTER.fullmatch(text):
        return match.group(1).upper()
    if match := _LEADING_LETTER.match(text):
        return match.group(1) or match.group(2)
    if match := _STATED_LETTER.search(text):
        return match.group(1)
    return None


def _letter_by_option_text(text: str, options: Mapping[str, str]) -> str | None:
    answer = _normalize_option_text(text)
    normalized = {letter: _normalize_option_text(option) for letter, option in options.items()}
    equal = [letter for letter, option in normalized.items() if option and option == answer]
    if len(equal) == 1:
        return equal[0]
    contained = [
        letter for letter, option in normalized.items() if option and f" {option} " in f" {answer} "
    ]
    # "dark red" also contains the option "red"; the longer, more specific match wins.
    specific = [
        letter
        for letter in contained
        if not any(
            other != letter and normalized[letter] in normalized[other] for other in contained
        )
    ]
    return specific[0] if len(specific) == 1 else None


def _normalize_option_text(text: str) -> str:
    # Articles stay: an option may differ from another by its article alone.
    return " ".join(_lowercase_words(text))


def _lowercase_words(text: str) -> list[str]:
    """Lowercased words with every Unicode punctuation character treated as a space."""
    spaced = "".join(" " if unicodedata.category(char).startswith("P") else char for char in text.lower())
    return spaced.split()
