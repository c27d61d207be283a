"""Reference-exact scorers (VQA soft accuracy, GQA, ScienceQA, MME) on hand-computed cases.

Expected values are worked out by hand from the reference scripts named in each module's
docstring; the cases marked "quirk" pin behaviour that differs from a "sensible" scorer on
purpose, so that our numbers stay comparable with published ones.
"""

import pytest

from allava.evaluation.reference.gqa import gqa_accuracy, normalize_gqa_prediction
from allava.evaluation.reference.mme import (
    COGNITION_CATEGORIES,
    PERCEPTION_CATEGORIES,
    mme_scores,
    parse_mme_answer,
    parse_mme_answer_lmms_eval,
)
from allava.evaluation.reference.scienceqa import (
    FAILED,
    parse_scienceqa_prediction,
    reference_answer,
    scienceqa_accuracy,
)
from allava.evaluation.reference.vqa_accuracy import normalize_vqa_answer, vqa_accuracy, vqa_score

# ----------------------------------------------------------------------------- VQA (m4c / EvalAI)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),
        ("none", "0"),
        ("The Three", "3"),  # article dropped, number word mapped
        ("a dog.", "dog"),
        ("An apple!", "apple"),
        ("What?", "what"),
        ("1,000", "1000"),
        ("3.5", "3.5"),  # a period before a digit is kept
        ("5.", "5"),
        ("a.b", "ab"),
        ("dont", "don't"),
        ("isnt", "isn't"),
        ("don't", "don't"),  # apostrophes are not punctuation here
        ("dog's", "dog 's"),  # quirk: "'s" is split off, not removed
        ("somebody'd", "somebodyd"),  # quirk: the reference table maps this one backwards
        ("x-ray", "x ray"),  # a mark not touching a space becomes a space ...
        ("x-ray x- ray", "xray x ray"),  # ... unless that mark touches a space anywhere
        ("  Coca\tCola\n", "coca cola"),
        ("stop: now", "stop: now"),  # ":" is not in the punctuation list
    ],
)
def test_normalize_vqa_answer_matches_m4c_processor(raw: str, expected: str) -> None:
    assert normalize_vqa_answer(raw) == expected


def test_normalize_vqa_answer_strips_at_most_32_periods() -> None:
    # quirk: the reference passes re.UNICODE (32) as re.sub's count.
    assert normalize_vqa_answer("." * 32 + "dog") == "dog"
    assert normalize_vqa_answer("." * 33 + "dog") == ".dog"


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        (0, 0.0),
        (1, 0.3),  # 9 subsets keep the hit: 9 * (1/3) / 10
        (2, 0.6),  # 2 subsets see 1 hit, 8 see 2: (2/3 + 16/3) / 10
        (3, 0.9),  # 3 subsets see 2 hits, 7 see 3: (3 * 2/3 + 7) / 10
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_vqa_score_is_leave_one_out_mean(hits: int, expected: float) -> None:
    annotators = ["red"] * hits + ["blue"] * (10 - hits)
    assert vqa_score("red", annotators) == pytest.approx(expected)


def test_vqa_score_normalises_both_sides() -> None:
    assert vqa_score("two", ["2"] * 10) == 1.0
    assert vqa_score("2", ["Two"] * 3 + ["three"] * 7) == pytest.approx(0.9)
    assert vqa_score("a dog.", ["dog"] * 2 + ["cat"] * 8) == pytest.approx(0.6)
    assert vqa_score("dont know", ["don't know"] * 10) == 1.0


def test_vqa_score_vizwiz_unanswerable_is_an_ordinary_answer() -> None:
    annotators = ["unanswerable"] * 2 + ["soup"] * 8
    assert vqa_score("Unanswerable", annotators) == pytest.approx(0.6)
    assert vqa_score("soup", annotators) == 1.0


def test_vqa_score_rejects_empty_annotators() -> None:
    with pytest.raises(ValueError):
        vqa_score("dog", [])


def test_vqa_accuracy_means_item_scores() -> None:
    answers = [["2"] * 10, ["dog"] * 2 + ["cat"] * 8, ["yes"] * 10]
    result = vqa_accuracy(["two", "dog", "no"], answers)
    assert result["num_items"] == 3
    assert result["accuracy"] == pytest.approx((1.0 + 0.6 + 0.0) / 3)
    assert vqa_accuracy([], []) == {"accuracy": 0.0, "num_items": 0}
    with pytest.raises(ValueError):
        vqa_accuracy(["dog"], [])


# ------------------------------------------------------------------------------------------ GQA


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes.", "yes"),
        ("Yes...", "yes"),  # every trailing period
        (" Bus. ", "bus"),  # generation output is stripped before conversion
        ("yes .", "yes "),  # quirk: only periods are removed from the end
        ("yes!", "yes!"),
        ("a bus", "a bus"),  # no article removal
    ],
)
def test_normalize_gqa_prediction(raw: str, expected: str) -> None:
    assert normalize_gqa_prediction(raw) == expected


def test_gqa_accuracy_exact_match_with_categories() -> None:
    result = gqa_accuracy(
        ["Yes.", "a bus", "Left", "no"],
        ["yes", "bus", "left", "yes"],
        categories=["verify", "query", "choose", "verify"],
    )
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["num_items"] == 4
    assert result["per_category"] == {"choose": 1.0, "query": 0.0, "verify": 0.5}


def test_gqa_accuracy_leaves_gold_untouched() -> None:
    # The official eval.py compares with the gold answer as stored.
    assert gqa_accuracy(["yes"], ["Yes"]) == {"accuracy": 0.0, "num_items": 1}
    with pytest.raises(ValueError):
        gqa_accuracy(["yes"], ["yes", "no"])


# ------------------------------------------------------------------------------------ ScienceQA


# Expected values follow haotian-liu/LLaVA c121f04, llava/eval/eval_science_qa.py: rule 1 is line 65
# (`pred_text in args.options`), rule 2 line 67 (first character in A-E, then ". "), rule 3 lines
# 70-73 (`The answer is ([A-Z]).`, exactly one match), else "FAILED" (75); `get_pred_idx` (32-35)
# turns a letter beyond the question's options, or "FAILED", into -1: wrong (None here).
@pytest.mark.parametrize(
    ("prediction", "num_options", "expected"),
    [
        ("A", 4, "A"),  # rule 1
        ("E", 5, "E"),
        ("E", 4, None),  # get_pred_idx: beyond this question's options
        ("b", 4, None),  # case-sensitive
        (" A", 4, None),  # no strip: not an option, and " " is not a letter for rule 2
        (" B ", 4, None),
        ("B\n", 4, None),
        ("A.", 4, None),  # rule 2 needs 3 characters
        ("(A)", 4, None),
        ("B. blue", 4, "B"),  # rule 2
        ("A. ", 4, "A"),
        ("A.\nBecause it is red.", 4, None),  # rule 2 needs ". ", a newline is not a space
        ("A\nBecause it is red.", 4, None),
        (" A. red", 4, None),  # rule 2 reads the first character as it is
        ("A. The answer is B.", 4, "A"),  # rule 2 comes before rule 3
        ("The answer is C.", 4, "C"),  # rule 3
        ("I think The answer is C, because", 4, "C"),  # rule 3: "." is any character
        ("The answer is Dog", 4, "D"),  # quirk: only the letter after "is " is read
        ("The answer is C", 4, None),  # quirk: a character must follow the letter
        ("The answer is C\n", 4, None),  # ... and "." does not match a newline
        ("The answer is B, so The answer is C.", 4, None),  # two matches: FAILED
        ("The answer is B. The answer is B.", 4, None),  # two matches, even agreeing ones
        ("The answer is E.", 4, None),  # a letter beyond the options: get_pred_idx -1
        ("The answer is F.", 6, None),  # options stop at E whatever the choice count
        ("the answer is C.", 4, None),  # case-sensitive
        ("The answer is (C).", 4, None),
        ("I would pick C", 4, None),
        ("FAILED", 4, None),
        ("", 4, None),
    ],
)
def test_parse_scienceqa_prediction(prediction: str, num_options: int, expected: str | None) -> None:
    assert parse_scienceqa_prediction(prediction, num_options) == expected


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("C", "C"),
        ("The answer is Z.", "Z"),  # line 70: [A-Z], range checked later by get_pred_idx
        ("Z. zebra", FAILED),  # line 67: rule 2 only for A-E
        ("The answer is C", FAILED),  # line 75
        ("", FAILED),
    ],
)
def test_reference_answer_is_the_letter_or_failed(prediction: str, expected: str) -> None:
    assert reference_answer(prediction) == expected


def test_scienceqa_accuracy_counts_unparsable_as_wrong_and_reports_img_subset() -> None:
    result = scienceqa_accuracy(
        predictions=["A", "The answer is B.", "C.", "D", "E"],
        answers=[0, "B", "C", "A", "E"],  # indices as in problems.json, or letters
        options_counts=[2, 3, 4, 4, 4],
        has_image=[True, True, False, True, False],
    )
    assert result["num_items"] == 5
    assert result["accuracy"] == pytest.approx(2 / 5)
    assert result["unparsable"] == 2  # "C." and the out-of-range "E"
    assert result["img_accuracy"] == pytest.approx(2 / 3)
    assert result["num_img_items"] == 3


def test_scienceqa_accuracy_scores_unstripped_and_unterminated_answers_wrong() -> None:
    # eval_science_qa.py lines 65-75: " A" and "B\n" match no rule; "The answer is B" with nothing
    # after the letter does not match line 70's pattern. All three are FAILED, hence wrong.
    result = scienceqa_accuracy([" A", "B\n", "The answer is B"], [0, 1, 1], [2, 2, 2])
    assert result == {"accuracy": 0.0, "num_items": 3, "unparsable": 3}


def test_scienceqa_accuracy_without_image_flags() -> None:
    result = scienceqa_accuracy(["B"], ["B"], [2])
    assert result == {"accuracy": 1.0, "num_items": 1, "unparsable": 0}
    with pytest.raises(ValueError):
        scienceqa_accuracy(["B"], ["B"], [2, 3])


# ------------------------------------------------------------------------------------------ MME


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Yes", "yes"),
        ("no", "no"),
        ("NO.", "no"),
        ("Yes, there is a dog.", "yes"),
        ("No, yes", "no"),  # "yes" is past the 4-character window
        ("not sure", "no"),  # quirk: "no" inside "not"
        ("Nope", "no"),
        ("I think yes", "other"),  # quirk: the answer is outside the window
        ("  yes", "other"),  # quirk: nothing is stripped
        ("There is a dog.", "other"),
        ("", "other"),
    ],
)
def test_parse_mme_answer(prediction: str, expected: str) -> None:
    assert parse_mme_answer(prediction) == expected


# lmms-eval 0.7.3, lmms_eval/tasks/mme/utils.py parse_pred_ans: lower(), strip(), drop ".";
# "yes"/"no" as is; a single character: "y" -> yes, "n" -> no, else other; then the window.
@pytest.mark.parametrize(
    ("prediction", "official", "lmms_eval"),
    [
        ("Y", "other", "yes"),
        ("n", "other", "no"),
        ("N.", "other", "no"),  # "." dropped, then one character
        ("x", "other", "other"),
        ("  yes", "other", "yes"),  # stripped first
        ("\nNo", "no", "no"),  # the newline is inside the 4-character window
        ("y.e.s", "other", "yes"),  # every "." goes
        ("Yes", "yes", "yes"),
        ("No, yes", "no", "no"),
        ("I think yes", "other", "other"),
        ("", "other", "other"),
    ],
)
def test_mme_parsers_official_and_lmms_eval(prediction: str, official: str, lmms_eval: str) -> None:
    assert parse_mme_answer(prediction) == official
    assert parse_mme_answer_lmms_eval(prediction) == lmms_eval


def test_one_image_answered_y_n_moves_a_category_by_100_points_between_parsers() -> None:
    rows = [("Y", "Yes", "color", "a.jpg"), ("N", "No", "color", "a.jpg"),
            ("yes", "Yes", "color", "b.jpg"), ("no", "No", "color", "b.jpg")]
    predictions, answers, categories, image_ids = (list(column) for column in zip(*rows))
    official = mme_scores(predictions, answers, categories, image_ids)
    lmms = mme_scores(predictions, answers, categories, image_ids, parser="lmms_eval")
    assert official["per_category"]["color"]["score"] == pytest.approx(100.0)  # 50 + 50
    assert lmms["per_category"]["color"]["score"] == pytest.approx(200.0)
    assert (official["parser"], lmms["parser"]) == ("official", "lmms_eval")
    with pytest.raises(ValueError, match="unknown MME parser"):
        mme_scores(predictions, answers, categories, image_ids, parser="loose")


def test_mme_category_names_are_the_official_ones() -> None:
    assert PERCEPTION_CATEGORIES == (
        "existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
        "artwork", "OCR",
    )
    assert COGNITION_CATEGORIES == (
        "commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning",
    )


def test_mme_scores_acc_acc_plus_and_totals() -> None:
    rows = [
        # existence: img1 both right, img2 one of two right -> acc 3/4, acc+ 1/2
        ("Yes", "Yes", "existence", "e1.jpg"),
        ("OCR-free", "No", "OCR", "o1.jpg"),  # "ocr-" has neither word -> other, wrong
        ("no", "No", "existence", "e1.jpg"),
        ("yes", "Yes", "existence", "e2.jpg"),
        ("yes", "No", "existence", "e2.jpg"),
        ("No.", "no", "OCR", "o1.jpg"),
        # code_reasoning: both right -> 200
        ("Yes.", "yes", "code_reasoning", "c1.png"),
        ("no", "no", "code_reasoning", "c1.png"),
        # a category MME does not have: scored, not totalled
        ("yes", "yes", "extra", "x1.png"),
        ("yes", "yes", "extra", "x1.png"),
    ]
    predictions, answers, categories, image_ids = (list(column) for column in zip(*rows))
    result = mme_scores(predictions, answers, categories, image_ids)

    existence = result["per_category"]["existence"]
    assert existence["acc"] == pytest.approx(75.0)
    assert existence["acc_plus"] == pytest.approx(50.0)
    assert existence["score"] == pytest.approx(125.0)
    assert (existence["num_questions"], existence["num_images"]) == (4, 2)

    ocr = result["per_category"]["OCR"]  # one of two right: acc counts it, acc+ does not
    assert (ocr["acc"], ocr["acc_plus"], ocr["score"], ocr["num_other"]) == (50.0, 0.0, 50.0, 1)

    assert result["per_category"]["code_reasoning"]["score"] == pytest.approx(200.0)
    assert result["per_category"]["extra"]["score"] == pytest.approx(200.0)
    assert result["perception"] == pytest.approx(175.0)
    assert result["cognition"] == pytest.approx(200.0)
    assert result["total"] == pytest.approx(375.0)
    assert result["num_items"] == 10


def test_mme_scores_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="two questions"):
        mme_scores(["yes"] * 3, ["yes"] * 3, ["color"] * 3, ["a.jpg"] * 3)
    with pytest.raises(ValueError, match="yes or no"):
        mme_scores(["yes", "yes"], ["yes", "maybe"], ["color"] * 2, ["a.jpg"] * 2)
    with pytest.raises(ValueError):
        mme_scores(["yes"], ["yes", "no"], ["color"], ["a.jpg"])
