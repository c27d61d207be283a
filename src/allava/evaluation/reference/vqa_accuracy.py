"""VQA soft accuracy exactly as LLaVA-1.5 scores TextVQA (and prepares VizWiz answers).

Reproduces haotian-liu/LLaVA (commit c121f0432da27facab705978f83c4ada465e46fd, main)
`llava/eval/m4c_evaluator.py` (`EvalAIAnswerProcessor` and
`TextVQAAccuracyEvaluator`, themselves MMF's port of the EvalAI VQA answer normaliser), as called
by `llava/eval/eval_textvqa.py`. Both the prediction and each of the annotators' answers go
through the same processor; a prediction then scores the mean, over the leave-one-out subsets of
the annotators, of min(1, matching answers / 3).

VizWiz: LLaVA's `scripts/convert_vizwiz_for_submission.py` only runs this processor over the
predictions and uploads them; the EvalAI server scores them with the same 10-annotator formula,
"unanswerable" being an ordinary answer string. `vqa_score` is therefore the local equivalent
(the server's own normaliser was not read; see the report).

Quirks of the reference kept on purpose (each has a test):
  * "'s" is split off ("dog's" -> "dog 's") and apostrophes are otherwise kept, so "dont" becomes
    "don't" while "don't" stays as it is;
  * a period is dropped unless a digit follows it ("3.5" stays), but at most 32 per answer,
    because the reference passes `re.UNICODE` (== 32) where `re.sub` expects `count`;
  * the table maps "somebody'd" *to* "somebodyd", the reverse of every other entry;
  * number words become digits before articles are dropped, and only "none", "zero" ... "ten".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Contractions written without apostrophes, mapped to their usual spelling (the reference's
# table, entry for entry). A handful of keys can never fire, kept so the table can be audited
# against the reference: capitalised ones ("Im", "Ive", ...) because text is lowercased first,
# and ones containing "'s" ("she's", "let's", ...) because "'s" has been split off by then.
_CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd",  # sic: the reference maps this one backwards
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}

_NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

_ARTICLES = frozenset({"a", "an", "the"})

# Removed outright when written next to a space, otherwise replaced by a space ("x-ray" ->
# "x ray", "x - ray" -> "x  ray"). Apostrophes, colons, "*", "#", "%", "&" ... are not listed
# and survive. "," and "?" are listed but are always gone already (see normalize_vqa_answer).
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")

# A period not followed by a digit. (The reference's pattern also has a look-ahead meant as a
# look-behind, `(?!<=\d)`, which never matches at a period; so "5." loses its period too.)
_STRIPPABLE_PERIOD = re.compile(r"\.(?!\d)")
# The reference hands re.UNICODE (== 32) to `sub` as its `count` argument.
_MAX_PERIODS_STRIPPED = int(re.UNICODE)


def normalize_vqa_answer(text: str) -> str:
    """An answer as the EvalAI/m4c processor rewrites it before comparison (both sides use it)."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    text = _process_punctuation(text)
    return _process_digits_and_articles(text)


def vqa_score(prediction: str, annotator_answers: Sequence[str]) -> float:
    """Soft accuracy of one prediction: mean over leave-one-out annotator subsets of min(1, hits/3).

    The reference asserts exactly 10 annotators (TextVQA, VizWiz, VQAv2 all have 10); any
    non-empty list is accepted here, with the same leave-one-out formula.
    """
    if not annotator_answers:
        raise ValueError("need at least one annotator answer")
    predicted = normalize_vqa_answer(prediction)
    matches = [normalize_vqa_answer(answer) == predicted for answer in annotator_answers]
    total_hits = sum(matches)
    # Leaving annotator i out removes one hit exactly when annotator i matched.
    per_subset = [min(1.0, (total_hits - hit) / 3) for hit in matches]
    return sum(per_subset) / len(per_subset)


def vqa_accuracy(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float | int]:
    """Mean soft accuracy as a fraction (an empty input scores 0.0; the reference would divide by 0)."""
    if len(predictions) != len(answers):
        raise ValueError(f"got {len(predictions)} predictions for {len(answers)} answer lists")
    scores = [vqa_score(prediction, gold) for prediction, gold in zip(predictions, answers)]
    return {"accuracy": sum(scores) / len(scores) if scores else 0.0, "num_items": len(scores)}


def _process_punctuation(text: str) -> str:
    """Listed punctuation removed or spaced out, then unprotected periods removed.

    Whether a mark is removed or replaced by a space is decided on the text as it was on entry,
    not as earlier replacements left it. The reference also removes every mark once a
    digit-comma-digit sequence is present, but commas are gone before this step, so that
    condition can never hold and is not reproduced.
    """
    result = text
    for mark in _PUNCTUATION:
        touches_space = f"{mark} " in text or f" {mark}" in text
        result = result.replace(mark, "" if touches_space else " ")
    return _STRIPPABLE_PERIOD.sub("", result, count=_MAX_PERIODS_STRIPPED)


def _process_digits_and_articles(text: str) -> str:
    """Number words to digits, articles dropped, contractions restored; words re-joined by spaces."""
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    kept = [word for word in words if word not in _ARTICLES]
    return " ".join(_CONTRACTIONS.get(word, word) for word in kept)
