"""The text-only tasks asked in the benchmark answer formats: the answers must be right, and the
prompts must be exactly the benchmarks' formats (the image QA reuses what these teach)."""
from __future__ import annotations

import random
import re

import pytest

from allava.evaluation.answer_formats import CHOICE_SUFFIX, OPTION_LETTERS, SHORT_ANSWER_SUFFIX, choice_prompt
from allava.toy.text_tasks import TEXT_TASKS

YES_NO_TASKS = ("sum_check", "word_in_list", "starts_with", "larger_check")
CHOICE_TASKS = ("sum_choice", "letter_count_choice", "list_length_choice", "list_member_choice")


def _true_yes_no(question: str) -> bool:
    if m := re.fullmatch(r"Is (\d+) plus (\d+) equal to (-?\d+)\?", question):
        return int(m[1]) + int(m[2]) == int(m[3])
    if m := re.fullmatch(r'Is the word "(\w+)" in the list: ([\w, ]+)\?', question):
        return m[1] in m[2].split(", ")
    if m := re.fullmatch(r'Does the word "(\w+)" start with the letter "(\w)"\?', question):
        return m[1].startswith(m[2])
    if m := re.fullmatch(r"Is (\d+) larger than (\d+)\?", question):
        return int(m[1]) > int(m[2])
    raise AssertionError(f"unexpected question {question!r}")


def _true_choice(question: str) -> str:
    if m := re.fullmatch(r"What is (\d+) plus (\d+)\?", question):
        return str(int(m[1]) + int(m[2]))
    if m := re.fullmatch(r'How many letters are in the word "(\w+)"\?', question):
        return str(len(m[1]))
    if m := re.fullmatch(r"How many words are in the list: ([\w, ]+)\?", question):
        return str(len(m[1].split(", ")))
    if m := re.fullmatch(r"Which is the (first|second|third) word in the list: ([\w, ]+)\?", question):
        return m[2].split(", ")[("first", "second", "third").index(m[1])]
    raise AssertionError(f"unexpected question {question!r}")


@pytest.mark.parametrize("name", YES_NO_TASKS)
def test_yes_no_tasks_are_right_and_balanced(name: str) -> None:
    rng = random.Random(11)
    answers = []
    for _ in range(300):
        prompt, answer = TEXT_TASKS[name](rng)
        question, suffix = prompt.split("\n")
        assert suffix == SHORT_ANSWER_SUFFIX
        assert answer == ("Yes" if _true_yes_no(question) else "No")
        answers.append(answer)
    assert 0.3 < answers.count("Yes") / len(answers) < 0.7


@pytest.mark.parametrize("name", CHOICE_TASKS)
def test_choice_tasks_are_right_with_distinct_options(name: str) -> None:
    rng = random.Random(12)
    letters = set()
    for _ in range(300):
        prompt, answer = TEXT_TASKS[name](rng)
        question, *option_lines, suffix = prompt.split("\n")
        assert suffix == CHOICE_SUFFIX
        assert 3 <= len(option_lines) <= 4
        options = [line.split(". ", 1) for line in option_lines]
        assert [letter for letter, _ in options] == list(OPTION_LETTERS[: len(options)])
        texts = [text for _, text in options]
        assert len(set(texts)) == len(texts)
        assert dict(options)[answer] == _true_choice(question)
        letters.add(answer)
    assert letters == set(OPTION_LETTERS)  # the right answer is not always in one place


def test_choice_prompt_rejects_an_answer_outside_the_options() -> None:
    with pytest.raises(ValueError, match="answer index"):
        choice_prompt("Which?", ["x", "y"], 2)
