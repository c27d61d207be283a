"""MMMU scoring as the official MMMU evaluation code does it.

Reproduces `parse_multi_choice_response`, `check_is_number`, `normalize_str`, `extract_numbers`,
`parse_open_response`, `eval_multi_choice`, `eval_open` and `evaluate` from the MMMU repository's
`eval/eval_utils.py` (MMMU-Benchmark/MMMU, read at commits 44b45b50 and bb91f232; newer trees
keep it as `mmmu/utils/eval_utils.py`, which the index does not hold), the subject-to-discipline
table of `eval/data_utils.py`, and `calculate_ins_level_acc` with the per-subject grouping of
`eval/main_eval_only.py`. (`calculate_ins_level_acc` itself was read from copies that cite
MMMU's eval_utils.py at commit 51ce7f3e.)

Official behaviours kept on purpose, because they move the published numbers:

- An unparsable multiple-choice response gets a RANDOM option. The official module seeds
  Python's global `random` with 42 at import and draws from it in call order; pass a
  `random.Random` to control the stream (`random.Random(42)` draws exactly what the official
  code would draw in a fresh process). Without one, a module-level `Random(42)` shared by all
  calls stands in for the official global stream.
- Option texts are only searched for in responses longer than five words.
- Open answers: the response is lowercased *before* it is split into sentences on ". " followed
  by an uppercase letter, so in practice it is split on newlines only.

One deliberate difference: `parse_open_response` removes duplicates keeping first-seen order,
where the official code returns `list(set(...))` in arbitrary order; the verdict of `eval_open`
does not depend on the order.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MULTIPLE_CHOICE = "multiple-choice"

# eval/data_utils.py: the six disciplines and their 30 subjects.
DOMAIN_SUBJECTS: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}

# Stands in for the official module's `random.seed(42)` when no generator is passed.
_SHARED_RNG = random.Random(42)

# Stripped, one character kind after another, from both ends of a multiple-choice response.
_EDGE_PUNCTUATION = (",", ".", "!", "?", ";", ":", "'")

# Words after which the official parser expects the answer of an open question.
_ANSWER_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL_KEY_RESPONSES = frozenset({":", ",", ".", "!", "?", ";", "'"})
# Official pattern: ". " before an uppercase letter, or a newline (see the module docstring).
_SENTENCE_BREAK = re.compile(r"\.\s(?=[A-Z])|\n")

# The three number shapes, searched separately and concatenated in this order.
_THOUSANDS_NUMBER = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")  # 1,234 / -12,345,678
_SCIENTIFIC_NUMBER = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")  # 3e8 / 1.5E-3
_PLAIN_NUMBER = re.compile(
    r"""
    -?(?: \d+\.\d+ | \.\d+ | \d+\b )   # 3.14, .5, 42
    (?![eE][+-]?\d+)                   # not the mantissa of scientific notation
    (?![,\d])                          # not followed by a comma or another digit
    """,
    re.VERBOSE,
)


def get_multi_choice_info(options: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Letters for a question's options in order: ({"A": text, ...}, ["A", "B", ...])."""
    letters = [chr(ord("A") + i) for i in range(len(options))]
    return dict(zip(letters, options)), letters


def parse_multi_choice_response(
    response: str,
    all_choices: Sequence[str],
    index2ans: Mapping[str, str],
    rng: random.Random | None = None,
) -> str:
    """The option letter the official MMMU parser reads from `response` (never None).

    Order: "(B)"-style letters; else " B "-style letters; else, for responses longer than five
    words, option texts (case-insensitive). Several candidates: the one occurring last wins (the
    first listed on a tie). None at all: a random choice from `all_choices`, drawn from `rng`.
    """
    for character in _EDGE_PUNCTUATION:
        response = response.strip(character)
    padded = f" {response} "

    by_letter = True
    bracketed = [choice for choice in all_choices if f"({choice})" in padded]
    candidates = bracketed or [choice for choice in all_choices if f" {choice} " in padded]
    if not candidates and len(padded.split()) > 5:
        lowered = padded.lower()
        candidates = [letter for letter, text in index2ans.items() if text.lower() in lowered]
        by_letter = not candidates

    if not candidates:
        return (rng if rng is not None else _SHARED_RNG).choice(list(all_choices))
    if len(candidates) == 1:
        return candidates[0]
    if not by_letter:
        lowered = padded.lower()
        positions = [lowered.rfind(index2ans[letter].lower()) for letter in candidates]
    elif bracketed:
        positions = [padded.rfind(f"({letter})") for letter in candidates]
    else:
        positions = [padded.rfind(f" {letter} ") for letter in candidates]
    return candidates[positions.index(max(positions))]


def check_is_number(text: str) -> bool:
    """Whether Python's float() accepts `text` once commas are removed ("1,000", "3e8", "inf")."""
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def normalize_str(text: str) -> list[str | float]:
    """Official answer normalisation: numbers to floats rounded to 2 places, else lowercase.

    A one-character string becomes [" x", "x "], so that it only matches as a separate word
    at one side when searched for inside a longer response.
    """
    text = text.strip()
    if check_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


def extract_numbers(text: str) -> list[str]:
    """Numbers written in `text`: with thousands commas, then scientific, then plain ones.

    The three searches are independent, as officially: "1,234" yields "1,234" and also "234".
    """
    return (
        _THOUSANDS_NUMBER.findall(text) + _SCIENTIFIC_NUMBER.findall(text) + _PLAIN_NUMBER.findall(text)
    )


def parse_open_response(response: str) -> list[str | float]:
    """Normalised candidate answers in an open-question response (strings and floats).

    Each line's shortest tail after an answer indicator ("is ", "so ", "answer ", ... and "="
    on the last line) is a key response; without any, the whole (lowercased) response is. The
    candidates are the key responses plus every number in them, each normalised by normalize_str.
    """
    key_responses = _key_responses(response)
    raw = key_responses + [number for key in key_responses for number in extract_numbers(key)]
    normalized = [value for item in raw for value in normalize_str(item)]
    return list(dict.fromkeys(normalized))


def eval_multi_choice(gold: str | Sequence[str], pred: str) -> bool:
    """Exact equality with the gold letter, or with any of a list of gold letters."""
    if isinstance(gold, list):
        return pred in gold
    return gold == pred


def eval_open(gold: str | Sequence[str], preds: Iterable[str | float]) -> bool:
    """Official open-answer check over already-normalised candidates `preds`.

    A float candidate must equal a numeric gold answer (after rounding to 2 places); a string
    candidate must contain a string gold answer. Numbers never match strings and vice versa.
    """
    golds = gold if isinstance(gold, list) else [gold]
    norm_answers = [value for answer in golds for value in normalize_str(answer)]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(answer, str) and answer in pred for answer in norm_answers):
                return True
        elif pred in norm_answers:
            return True
    return False


def calculate_ins_level_acc(results: Mapping[str, Mapping[str, float]]) -> float:
    """Instance-weighted accuracy over groups given as {name: {"acc": ..., "num_example": ...}}."""
    total = sum(group["num_example"] for group in results.values())
    if total == 0:
        return 0.0
    return sum(group["acc"] * group["num_example"] for group in results.values()) / total


def subject_from_id(item_id: str) -> str:
    """The subject of an MMMU id such as "validation_Art_Theory_12" ("Art_Theory")."""
    return "_".join(item_id.split("_")[1:-1])


def score_item(item: Mapping[str, Any], rng: random.Random | None = None) -> bool:
    """Whether one MMMU item is answered correctly, parsing its raw `response` officially.

    Keys: `question_type` ("multiple-choice" or anything else for open), `answer` (a letter, an
    open answer, or a list of either), `response`, and for multiple choice `options` (texts in
    letter order).
    """
    if item["question_type"] == MULTIPLE_CHOICE:
        index2ans, all_choices = get_multi_choice_info(item["options"])
        letter = parse_multi_choice_response(item["response"], all_choices, index2ans, rng)
        return eval_multi_choice(item["answer"], letter)
    return eval_open(item["answer"], parse_open_response(item["response"]))


def mmmu_accuracy(items: Iterable[Mapping[str, Any]], rng: random.Random | None = None) -> dict[str, Any]:
    """Official MMMU accuracy: overall, per subject and per discipline, all instance-weighted.

    Items are as for `score_item`, plus `subject` (or an official `id` it can be read from).
    Items are parsed in the given order; random picks come from `rng`, by default a fresh
    `random.Random(42)` (the official stream in a fresh process). Disciplines with no items are
    left out, where the official printout lists them with 0 items; subjects outside MMMU's 30
    count in `accuracy` and `per_subject` only.
    """
    generator = rng if rng is not None else random.Random(42)
    correct: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        subject = item["subject"] if "subject" in item else subject_from_id(item["id"])
        correct[subject].append(score_item(item, generator))

    per_subject = {
        subject: {"acc": sum(flags) / len(flags), "num_example": len(flags)}
        for subject, flags in correct.items()
    }
    per_domain = {}
    for domain, subjects in DOMAIN_SUBJECTS.items():
        present = {subject: per_subject[subject] for subject in subjects if subject in per_subject}
        if present:
            per_domain[domain] = {
                "acc": calculate_ins_level_acc(present),
                "num_example": sum(group["num_example"] for group in present.values()),
            }
    return {
        "accuracy": calculate_ins_level_acc(per_subject),
        "num_items": sum(group["num_example"] for group in per_subject.values()),
        "per_subject": dict(sorted(per_subject.items())),
        "per_domain": per_domain,
    }


def _key_responses(response: str) -> list[str]:
    """The official `get_key_subresponses`: per line, the shortest tail after an indicator."""
    response = response.strip().strip(".").lower()
    lines = _SENTENCE_BREAK.split(response)
    keys: list[str] = []
    for number, line in enumerate(lines):
        indicators = _ANSWER_INDICATORS + (("=",) if number == len(lines) - 1 else ())
        shortest: str | None = None
        for indicator in indicators:
            if indicator in line:
                tail = line.split(indicator)[-1].strip()
                # An empty tail is falsy officially, so a later indicator replaces it.
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL_KEY_RESPONSES:
            keys.append(shortest)
    return keys or [response]
