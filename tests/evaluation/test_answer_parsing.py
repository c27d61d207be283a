"""Answer parsing and prompt building, on hand-written model outputs."""

import pytest

from allava.evaluation import (
    LLAVA_1_5_STYLE,
    MMBENCH_CN_STYLE,
    OPEN_ENDED_STYLE,
    BenchmarkItem,
    PromptStyle,
    build_prompt,
    default_prompt_style,
    normalize_short_answer,
    parse_choice_letter,
    parse_yes_no,
)

COLOUR_OPTIONS = {"A": "red", "B": "blue", "C": "green", "D": "dark red"}


# Expected values follow haotian-liu/LLaVA c121f04, llava/eval/eval_pope.py lines 12-20: keep the
# text before the first "." (12-13), drop "," (15), split on " " only (16), "no" iff a piece is
# exactly "No", "not" or "no" (17), else "yes" (19-20).
@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("Yes", "yes"),
        ("yes.", "yes"),
        ("No", "no"),
        ("no.", "no"),
        ("No, there is no dog.", "no"),
        ("There is not a dog in the image.", "no"),
        ("Yes. There is no cat in the picture.", "yes"),  # 12-13: only the first sentence counts
        ("Yes.No", "yes"),  # 12-13: "Yes" is the first sentence, even without a space
        ("No.Yes", "no"),
        ("...no", "yes"),  # 12-13: the first sentence is empty
        ("Yes, but not a real one.", "no"),  # 17: "not" anywhere in the first sentence
        ("Yes, no.", "no"),
        # 16: whitespace other than " " does not separate words
        ("No\nThe image shows a cat", "yes"),
        ("\nNo", "yes"),
        ("No\tthere is none", "yes"),
        ("Yes\nno", "yes"),
        # 16: extra spaces leave empty pieces but keep "No" whole
        (" No", "no"),
        ("No ", "no"),
        ("  no  ", "no"),
        # 15: commas are removed, not turned into spaces
        ("No,", "no"),
        ("No,there is none", "yes"),  # "Nothere"
        # 17: exact, case-sensitive words; other punctuation stays attached
        ("NO", "yes"),
        ("Not at all", "yes"),
        ("No!", "yes"),
        ("No;", "yes"),
        ('"No"', "yes"),
        ("Nope", "yes"),
        ("isn't", "yes"),
        ("I cannot tell", "yes"),
        # refusals and empty output: "yes" unless a negative word happens to be in them
        ("I'm sorry, I can't answer that.", "yes"),
        ("I do not know.", "no"),
        ("", "yes"),
    ],
)
def test_parse_yes_no_follows_llava_pope_rules(prediction: str, expected: str) -> None:
    assert parse_yes_no(prediction) == expected


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("B", "B"),
        ("b", "B"),
        (" C \n", "C"),
        ("(C)", "C"),
        ("D.", "D"),
        ("B. blue", "B"),
        ("B) blue", "B"),
        ("B: blue", "B"),
        ("(B) blue", "B"),
        ("The answer is C.", "C"),
        ("Answer: (A)", "A"),
        ("The correct option is B", "B"),
        ("blue", "B"),
        ("Blue.", "B"),
        ("It is blue.", "B"),
        ("A blue square.", "B"),  # "A" followed by a word is the article, not the option letter
        ("dark red", "D"),  # equals D although it also contains option A's text
        ("It is dark red.", "D"),  # the more specific option wins
        ("red or blue", None),  # two options named
        ("E", None),  # a letter that is not an option
        ("The answer is E", None),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_parse_choice_letter(prediction: str, expected: str | None) -> None:
    assert parse_choice_letter(prediction, COLOUR_OPTIONS) == expected


def test_parse_choice_letter_only_accepts_offered_letters() -> None:
    assert parse_choice_letter("C", {"A": "yes", "B": "no"}) is None
    assert parse_choice_letter("no", {"A": "yes", "B": "no"}) == "B"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower.", "eiffel tower"),
        ("  Two   dogs! ", "two dogs"),
        ("an apple", "apple"),
        ("A", ""),
        ("Yes", "yes"),
        ("“Stop”", "stop"),
    ],
)
def test_normalize_short_answer(text: str, expected: str) -> None:
    assert normalize_short_answer(text) == expected


def _item(**fields) -> BenchmarkItem:
    defaults = {"index": 1, "question": "What colour is the car?", "answer": "red"}
    return BenchmarkItem(**{**defaults, **fields})


def test_short_answer_and_yes_no_prompts_get_the_single_word_suffix() -> None:
    expected = "What colour is the car?\nAnswer the question using a single word or phrase."
    assert build_prompt(_item(), "short_answer") == expected
    assert build_prompt(_item(), "yes_no") == expected


def test_multiple_choice_prompt_has_hint_options_and_letter_suffix() -> None:
    item = _item(hint="The car is parked.", options={"B": "blue", "A": "red", "C": "green"})
    assert build_prompt(item, "multiple_choice") == (
        "The car is parked.\nWhat colour is the car?\nA. red\nB. blue\nC. green\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_prompt_styles_change_only_the_instructions() -> None:
    item = _item(hint="Context.", options={"A": "red", "B": "blue"})
    assert build_prompt(item, "multiple_choice", MMBENCH_CN_STYLE).endswith("B. blue\n请直接回答选项字母。")
    # Options are laid out whenever the item has them; the open-ended style adds no instruction.
    assert build_prompt(item, "short_answer", OPEN_ENDED_STYLE) == "Context.\nWhat colour is the car?\nA. red\nB. blue"
    sqa = PromptStyle(hint_format="Context: {hint}\n", extra_instruction="Think.")
    assert build_prompt(item, "multiple_choice", sqa).startswith("Context: Context.\nWhat colour is the car?\nThink.\nA. red")
    assert build_prompt(_item(), "open_ended") == "What colour is the car?"
    with pytest.raises(ValueError, match="unknown prompt setting"):
        PromptStyle.from_config({"sufix": ""})
    assert PromptStyle.from_config({"use_hint": False}) == PromptStyle(use_hint=False)
    no_hint = PromptStyle(use_hint=False)
    assert build_prompt(item, "multiple_choice", no_hint).startswith("What colour is the car?\nA. red")


def test_default_prompt_style_by_benchmark_name() -> None:
    assert default_prompt_style("MMBench_DEV_EN") == LLAVA_1_5_STYLE
    assert default_prompt_style("MMBench_DEV_CN") == MMBENCH_CN_STYLE
    assert default_prompt_style("MMVet") == OPEN_ENDED_STYLE
    assert default_prompt_style("POPE") == LLAVA_1_5_STYLE
