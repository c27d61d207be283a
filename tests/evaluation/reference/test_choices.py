"""Reference-faithful scorers (VLMEvalKit rules, MMBench circular, SEED/MMStar, official MMMU),
on hand-computed cases."""

import random

import pytest

from allava.evaluation.reference.choice_extraction import infer_choice, prediction_as_loaded
from allava.evaluation.reference.mmbench import circular_accuracy, circular_group_id, vanilla_accuracy
from allava.evaluation.reference.mmmu import (
    calculate_ins_level_acc,
    eval_multi_choice,
    eval_open,
    extract_numbers,
    mmmu_accuracy,
    normalize_str,
    parse_multi_choice_response,
    parse_open_response,
)
from allava.evaluation.reference.seed_mmstar import choice_accuracy

ANIMALS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}


# --- VLMEvalKit can_infer ---------------------------------------------------------------------
# Expected values follow vlmeval/utils/matching_util.py at e8e78f05 (rule numbers as in the
# choice_extraction docstring). ANIMALS' texts total 14 characters, so text matching (rule 2)
# only reads predictions of at most 28 characters.


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("A", "A"),
        ("(B)", "B"),
        ("The answer is C.", "C"),  # 1d: C is token 3 of 4, index 3 > 4 - 5
        ("[D]", "D"),
        ("**B**", "B"),  # '*' is one of the accepted delimiters
        ("C: bird", "C"),
        ("A and B", None),  # 1d needs exactly one letter; no "answer is", no option text
        ("B-", None),  # '-' is not an accepted delimiter
        ("'B'", None),  # nor are quotes
        ("b", None),  # letter tokens are case-sensitive
        ("It is a dog", "B"),  # no letter token ("a" is lowercase): 2, option text
        ("A dog", "A"),  # the article quirk: "A" is a letter token
        ("a cat and a dog", None),  # 2: two option texts
        ("Z", "Z"),  # 1e
        ("None fits: Z", "Z"),  # 1e: no option letter, a "Z" token
        ("Cannot determine the answer from the image", "Z"),  # 1b
        ("Sorry, I can't help with images of people yet.", "Z"),  # 1b
        ("I'm sorry, but without the image provided, B", "Z"),  # 1b comes before any letter
        ("Failed to obtain answer via API. B", None),  # 1a; 2 finds no option text
        ("", None),
        ("   ", None),
    ],
)
def test_infer_choice_follows_vlmevalkit_can_infer(prediction: str, expected: str | None) -> None:
    assert infer_choice(prediction, dict(ANIMALS)) == expected


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        # 1d: splits.index(ch) > len(splits) - 5, i.e. the first occurrence in the last 4 tokens.
        ("B is the answer", "B"),  # 4 tokens, index 0 > -1
        ("I would go with B", "B"),  # 5 tokens, index 4 > 0
        ("B is my final answer", None),  # 5 tokens, index 0 > 0 fails; 1f and 2 find nothing
        ("B is good, so pick B", None),  # index() is the FIRST "B" (0 > 1 fails), not the last
        # A letter too early falls through to 1f, not to 1e, even with a "Z" token.
        ("B seems wrong and so do the others, Z", None),
        # 1d fails (index 0 of 12 tokens), 1f has no "answer is", 2 gives up: 62 > 28 characters.
        ("B is correct because the dog is clearly visible in the picture", None),
    ],
)
def test_a_lone_letter_counts_only_among_the_last_four_tokens(prediction: str, expected: str | None) -> None:
    assert infer_choice(prediction, dict(ANIMALS)) == expected


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("The correct answer is **C**.", "C"),  # 1d already: C is the last token
        # 1d fails (C is at index 4 of 17 tokens); 1f: "correct answer is **C**".
        ("The correct answer is **C**. Here's why: the bird sits on the branch next to the nest", "C"),
        # No uppercase letter token at all; 1f is case-insensitive and upper-cases the letter.
        ("the answer is c, since a bird is flying there in the sky", "C"),
        ("THE ANSWER IS d and nothing else comes close to it, really", "D"),
        # 1f has no word boundary: "answer is cat" reads as C (bird), not as the text of A.
        ("The answer is cat", "C"),
        # 1f: "answer is (B)" and "answer is: B" do not match; 2 gives up on the length.
        ("Looking closely at the image, the answer is (B) for sure, I think", None),
        ("Looking closely at the image, the answer is: B for sure, I think", None),
    ],
)
def test_verbose_answer_pattern_is_the_last_letter_rule(prediction: str, expected: str | None) -> None:
    assert infer_choice(prediction, dict(ANIMALS)) == expected


def test_verbose_answer_letter_must_be_a_to_d_and_one_of_the_options() -> None:
    long_tail = " because of what the picture shows in its lower left corner"
    two = {"A": "yes", "B": "no"}
    assert infer_choice("The answer is D" + long_tail, two) is None  # D is no option here
    five = {**ANIMALS, "E": "frog"}
    assert infer_choice("So I guess the answer is E" + long_tail, five) is None  # [ABCD] only
    assert infer_choice("So I guess the answer is D" + long_tail, five) == "D"


def test_text_matching_gives_up_beyond_twice_the_options_total_length() -> None:
    # can_infer_text: len(answer) > 2 * sum(len(str(v)) for v in choices.values()) -> False.
    at_limit = "it is a dog, for sure, yes!!"
    assert len(at_limit) == 2 * len("catdogbirdfish")
    assert infer_choice(at_limit, ANIMALS) == "B"
    assert infer_choice(at_limit + "!", ANIMALS) is None
    assert infer_choice("a small dog", ANIMALS) == "B"
    assert infer_choice("I can see a small dog sitting on the grass near the house", ANIMALS) is None


def test_api_failure_marker_skips_letters_but_not_text_matching() -> None:
    buses = {"A": "red double-decker bus", "B": "yellow school bus"}  # 38 characters, limit 76
    assert infer_choice("Failed to obtain answer via API. red double-decker bus", buses) == "A"
    assert infer_choice("Failed to obtain answer via API. B", buses) is None
    assert infer_choice("Failed to obtain answer via API. dog", dict(ANIMALS)) is None  # 36 > 28


def test_letter_wins_over_text_and_z_is_not_counted_next_to_a_letter() -> None:
    assert infer_choice("B, a cat", ANIMALS) == "B"  # text "cat" would say A
    assert infer_choice("Z or B", ANIMALS) == "B"  # one option letter: Z only counts alone


def test_quantifier_guard_sends_long_answers_with_a_to_text_matching() -> None:
    assert infer_choice("A big brown dog", ANIMALS) == "A"
    assert infer_choice("A big brown dog", ANIMALS, quantifier_guard=True) == "B"
    assert infer_choice("A dog", ANIMALS, quantifier_guard=True) == "A"  # three tokens or fewer
    # The guard returns from can_infer_option before the "answer is" pattern (1f) is tried.
    assert infer_choice("A picture; the answer is a", ANIMALS) == "A"  # 1d fails, 1f reads "a"
    assert infer_choice("A picture; the answer is a", ANIMALS, quantifier_guard=True) is None


def test_infer_choice_rejects_non_letter_option_keys() -> None:
    with pytest.raises(ValueError):
        infer_choice("dog", {"1": "cat", "2": "dog"})


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [("None", "nan"), ("NA", "nan"), ("N/A", "nan"), ("", "nan"), ("null", "nan"),
     ("NAN", "NAN"), (" None", " None"), ("A", "A"), (None, "nan")],
)
def test_prediction_as_loaded_turns_pandas_na_strings_into_nan(prediction, expected: str) -> None:
    # image_mcq.py: data = load(eval_file) (pandas defaults); data['prediction'] = [str(x) ...].
    assert prediction_as_loaded(prediction) == expected


def test_scorers_match_the_prediction_as_vlmevalkit_reloads_it() -> None:
    yes_no = {"A": "no", "B": "yes"}
    assert infer_choice("None", yes_no) == "A"  # "no" is in "none"
    # VLMEvalKit matches "nan" instead: no option text in it, so unread and wrong.
    result = vanilla_accuracy(["None"], ["A"], [yes_no])
    assert (result["accuracy"], result["unparsed"]) == (0.0, 1)
    calls = []
    vanilla_accuracy(["NA"], ["A"], [yes_no], matcher=lambda p, o: calls.append(p))
    assert calls == ["nan"]  # the judge is shown "nan" too


# --- circular evaluation ----------------------------------------------------------------------


def _circular_set() -> dict:
    rows = [
        # (index, prediction, answer, category)
        (1, "A", "A", "CP"),
        (1_000_001, "(B)", "B", "CP"),
        (2_000_001, "C.", "C", "CP"),
        (3_000_001, "The answer is D", "D", "CP"),  # group 1: all right
        (2, "B", "B", "CP"),
        (1_000_002, "C", "C", "CP"),
        (2_000_002, "A", "D", "CP"),  # group 2: one rotation wrong
        (3, "C", "C", "LR"),  # group 3: no rotations present, scored as it is
        (1_000_004, "A", "A", "LR"),  # rotations of 4 without item 4: ignored
        (2_000_004, "A", "A", "LR"),
    ]
    rows = rows[::-1]  # input order must not matter
    return {
        "indices": [row[0] for row in rows],
        "predictions": [row[1] for row in rows],
        "answers": [row[2] for row in rows],
        "options": [dict(ANIMALS) for _ in rows],
        "categories": [row[3] for row in rows],
    }


def test_circular_group_id_is_index_mod_one_million() -> None:
    assert [circular_group_id(i) for i in (7, 1_000_007, 3_000_007)] == [7, 7, 7]


def test_circular_accuracy_counts_groups_and_needs_every_rotation_right() -> None:
    result = circular_accuracy(**_circular_set())
    assert result["group_hits"] == {1: True, 2: False, 3: True}
    assert result["num_groups"] == 3
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["per_category"] == {"CP": 0.5, "LR": 1.0}
    assert result["ignored_items"] == 2
    assert result["unparsed"] == 0


def test_circular_unparsed_rotation_fails_without_matcher_and_asks_matcher_only_for_it() -> None:
    data = {
        "indices": [5, 1_000_005],
        "predictions": ["A", "I cannot tell"],
        "answers": ["A", "B"],
        "options": [dict(ANIMALS), dict(ANIMALS)],
    }
    result = circular_accuracy(**data)
    assert result["accuracy"] == 0.0 and result["unparsed"] == 1

    calls = []

    def judge(prediction, options):
        calls.append(prediction)
        return "B"

    assert circular_accuracy(**data, matcher=judge)["accuracy"] == 1.0
    assert calls == ["I cannot tell"]
    assert circular_accuracy(**data, matcher=lambda p, o: None)["accuracy"] == 0.0


def test_circular_group_fails_when_a_rotation_is_unread_under_the_new_rules() -> None:
    # "B is correct because ..." was read as B before PR 1175; now no rule reads it, so the group
    # goes to the judge, and without one (exact_matching) it is wrong.
    data = {
        "indices": [8, 1_000_008],
        "predictions": ["A", "B is correct because the dog is clearly visible in the picture"],
        "answers": ["A", "B"],
        "options": [dict(ANIMALS), dict(ANIMALS)],
    }
    result = circular_accuracy(**data)
    assert (result["accuracy"], result["unparsed"]) == (0.0, 1)
    assert circular_accuracy(**data, matcher=lambda p, o: "B")["accuracy"] == 1.0


@pytest.mark.parametrize("wrong", ["B", "Z"])
def test_circular_rule_read_wrong_rotation_fails_group_before_any_judge_call(wrong: str) -> None:
    calls = []

    def judge(prediction, options):
        calls.append(prediction)
        return "B"

    result = circular_accuracy(
        [6, 1_000_006], [wrong, "hmm"], ["A", "B"], [dict(ANIMALS)] * 2, matcher=judge
    )
    assert result["accuracy"] == 0.0
    assert calls == []


def test_circular_explicit_group_ids_override_the_modulo_rule() -> None:
    result = circular_accuracy(
        [10, 11], ["A", "B"], ["A", "A"], [dict(ANIMALS)] * 2, group_ids=[10, 10]
    )
    assert result["num_groups"] == 1 and result["accuracy"] == 0.0


def test_circular_rejects_duplicate_indices_and_length_mismatch() -> None:
    with pytest.raises(ValueError):
        circular_accuracy([1, 1], ["A", "A"], ["A", "A"], [dict(ANIMALS)] * 2)
    with pytest.raises(ValueError):
        circular_accuracy([1, 2], ["A"], ["A", "A"], [dict(ANIMALS)] * 2)


def test_vanilla_accuracy_scores_each_item_and_uses_matcher_only_when_rules_fail() -> None:
    predictions, answers = ["A", "hmm", "C", "Z"], ["A", "B", "D", "D"]
    options = [dict(ANIMALS)] * 4
    result = vanilla_accuracy(predictions, answers, options, ["x", "x", "y", "y"])
    assert result["accuracy"] == 0.25
    assert result["unparsed"] == 1
    assert result["per_category"] == {"x": 0.5, "y": 0.0}
    calls = []

    def judge(prediction, options):
        calls.append(prediction)
        return "B"

    assert vanilla_accuracy(predictions, answers, options, matcher=judge)["accuracy"] == 0.5
    assert calls == ["hmm"]


# --- SEED-Bench / MMStar ----------------------------------------------------------------------


def test_choice_accuracy_reports_overall_and_per_category_means() -> None:
    result = choice_accuracy(
        predictions=["A", "B", "The answer is C", "D"],
        answers=["A", "C", "C", "D"],
        options=[dict(ANIMALS)] * 4,
        categories=["math", "math", "coarse perception", "coarse perception"],
        l2_categories=["x", "y", "x", "y"],
    )
    assert result["accuracy"] == 0.75
    assert result["num_items"] == 4
    assert result["per_category"] == {"coarse perception": 1.0, "math": 0.5}
    assert result["per_l2_category"] == {"x": 1.0, "y": 0.5}
    assert "hits" not in result


# --- MMMU official ----------------------------------------------------------------------------

CHOICES = ["A", "B", "C", "D"]
FRUIT = {"A": "banana", "B": "red apple", "C": "grape", "D": "pear"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("(B)", "B"),
        ("B", "B"),
        ("B.", "B"),
        ("(A) is wrong, so the answer is (C)", "C"),  # several bracketed: the last one
        ("A or B? I pick B", "B"),  # several bare letters: the last one
        ("(D) and also A", "D"),  # bracketed letters take precedence over bare ones
        ("I think the correct one is the red apple", "B"),  # option text, > 5 words
        ("banana first, but on reflection a pear is what I see", "D"),  # last option text wins
    ],
)
def test_mmmu_parse_multi_choice_paths(response: str, expected: str) -> None:
    assert parse_multi_choice_response(response, CHOICES, FRUIT, random.Random(0)) == expected


def test_mmmu_unparsable_choice_is_a_seeded_random_pick() -> None:
    rng = random.Random(42)
    # "red apple" has only two words, so option texts are not searched: random pick, not B.
    picks = [parse_multi_choice_response(r, CHOICES, FRUIT, rng) for r in ("red apple", "no idea", "??")]
    assert picks == ["A", "A", "C"]  # random.seed(42) then random.choice, as the official module
    again = random.Random(42)
    assert [parse_multi_choice_response("?", CHOICES, FRUIT, again) for _ in range(3)] == picks


def test_mmmu_open_response_extracts_numbers_after_answer_indicators() -> None:
    parsed = parse_open_response("The answer is 3.5 m")
    assert 3.5 in parsed and "3.5 m" in parsed
    assert eval_open("3.5", parsed)
    assert eval_open("3.50", parsed)
    assert not eval_open("3.6", parsed)
    assert parse_open_response("Therefore, the speed is 12 m/s.") == ["12 m/s", 12.0]


def test_mmmu_open_response_lowercases_before_sentence_split() -> None:
    # The official split needs an uppercase letter after ". ", which lowercasing removed: one
    # sentence, whose shortest tail is "5", so the "4" is never a candidate.
    parsed = parse_open_response("It is 4. So it is 5")
    assert parsed == [5.0]
    assert not eval_open("4", parsed)
    # Newlines do split; "=" counts on the last line only.
    assert parse_open_response("x = 2\nso y = 7 m") == ["7 m", 7.0]


def test_mmmu_normalisation_and_number_extraction() -> None:
    assert normalize_str(" 1,000 ") == [1000.0]
    assert normalize_str("3.14159") == [3.14]
    assert normalize_str("X") == [" x", "x "]
    assert normalize_str("Paris") == ["paris"]
    assert extract_numbers("about 1,234 apples and 3e8 m/s, -0.5 too") == ["1,234", "3e8", "234", "8", "-0.5"]
    assert eval_open("Paris", parse_open_response("The capital is Paris."))
    assert eval_open(["24", "twenty-four"], parse_open_response("There are 24 birds"))


def test_mmmu_eval_multi_choice_is_exact_equality() -> None:
    assert eval_multi_choice("B", "B")
    assert not eval_multi_choice("B", "b")
    assert eval_multi_choice(["A", "C"], "C")
    assert not eval_multi_choice(["A", "C"], "B")


def test_mmmu_accuracy_is_instance_weighted_across_subjects() -> None:
    def mc(answer, response, **where):
        return {"question_type": "multiple-choice", "answer": answer, "response": response,
                "options": ["cat", "dog", "bird", "fish"], **where}

    def open_q(answer, response, **where):
        return {"question_type": "open", "answer": answer, "response": response, **where}

    items = [
        mc("A", "(A)", subject="Art"),
        mc("B", "(C)", subject="Art"),
        open_q("3.5", "The answer is 3.5 m", subject="Math"),
        open_q("12", "Therefore, the speed is 12 m/s.", subject="Math"),
        open_q("4", "It is 4. So it is 5", subject="Math"),
        mc("D", "D", id="validation_Biology_1"),
    ]
    result = mmmu_accuracy(items)
    assert result["num_items"] == 6
    assert result["accuracy"] == pytest.approx(4 / 6)  # not the subject mean, 0.722
    assert result["per_subject"]["Art"] == {"acc": 0.5, "num_example": 2}
    assert result["per_subject"]["Math"]["acc"] == pytest.approx(2 / 3)
    assert result["per_subject"]["Biology"] == {"acc": 1.0, "num_example": 1}
    assert result["per_domain"]["Science"]["acc"] == pytest.approx(3 / 4)  # not 0.833
    assert result["per_domain"]["Science"]["num_example"] == 4
    assert result["per_domain"]["Art and Design"]["acc"] == 0.5
    assert set(result["per_domain"]) == {"Art and Design", "Science"}


def test_mmmu_accuracy_random_picks_are_deterministic_by_default() -> None:
    item = {"question_type": "multiple-choice", "response": "no idea", "options": ["x", "y", "z", "w"],
            "subject": "Art"}
    assert mmmu_accuracy([{**item, "answer": "A"}])["accuracy"] == 1.0  # Random(42) picks A first
    assert mmmu_accuracy([{**item, "answer": "B"}])["accuracy"] == 0.0
    assert mmmu_accuracy([{**item, "answer": "A"}], rng=random.Random(3))["accuracy"] == (
        1.0 if random.Random(3).choice(CHOICES) == "A" else 0.0
    )


def test_calculate_ins_level_acc_weights_by_instances() -> None:
    results = {"a": {"acc": 1.0, "num_example": 1}, "b": {"acc": 0.0, "num_example": 3}}
    assert calculate_ins_level_acc(results) == 0.25
    assert calculate_ins_level_acc({}) == 0.0
