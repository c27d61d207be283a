"""parse_response against replies in the layouts real teachers write (teacher_styles.py).

Every well-formed reply must give exactly its fields, every malformed one must be rejected with
its reason; the generator itself is checked for determinism, coverage and the content rules that
keep its expectations unambiguous.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter

import pytest

from allava.synth.parsing import REASONS, InvalidResponse, parse_response
from allava.synth.prompts import MODES
from tests.synth import teacher_styles as ts

CASES = ts.generate_cases()
WELL_FORMED = [case for case in CASES if case.malformation is None]
MALFORMED = [case for case in CASES if case.malformation is not None]


def case_id(case: ts.Case) -> str:
    return case.id


@pytest.mark.parametrize("case", WELL_FORMED, ids=case_id)
def test_a_well_formed_reply_parses_to_exactly_its_fields(case):
    assert parse_response(case.mode, case.text) == case.expected


@pytest.mark.parametrize("case", MALFORMED, ids=case_id)
def test_a_malformed_reply_is_rejected_with_its_reason(case):
    with pytest.raises(InvalidResponse) as caught:
        parse_response(case.mode, case.text)
    assert caught.value.reason == case.expected_reason


# --- the generator ----------------------------------------------------------------------------

# The layouts the generator claims, as named in the parser's spec.
CLAIMED_STYLES = {
    "laion": {"heading_h1", "heading_h2", "heading_h3", "heading_h4", "bold_colon",
              "bold_colon_inline", "bold", "bold_inline", "plain_colon", "plain_colon_inline",
              "plain_dash", "plain_dash_inline", "upper_case", "lower_case", "title_case",
              "loose_whitespace", "reordered", "numbered_paren", "numbered_parens", "numbered_q",
              "numbered_question", "bullet_dash", "bullet_star", "bullet_dot", "synonyms",
              "allava_tags", "allava_tags_no_end", "xml_tags", "json", "json_fenced", "fenced",
              "preamble_signoff"},
    "text": {"text_plain", "text_answer_label", "text_fenced", "text_preamble_signoff"},
}
CLAIMED_STYLES["vflan"] = {name for name in CLAIMED_STYLES["laion"]
                           if not name.startswith(("numbered_", "bullet_"))}


def digest(cases: list[ts.Case]) -> str:
    return hashlib.sha256(repr([(c.id, c.text, c.expected, c.expected_reason)
                                for c in cases]).encode()).hexdigest()


def test_the_generator_is_deterministic():
    assert ts.generate_cases() == CASES
    assert digest(ts.generate_cases(seed=1)) != digest(CASES)
    assert ts.generate_cases(per_combination=1, well_formed=1)[0] == CASES[0]


def test_the_generator_gives_the_same_cases_in_another_process():
    """No hash() or set order leaks in: a fresh interpreter with another hash salt agrees."""
    code = ("from tests.synth.teacher_styles import generate_cases; "
            "from tests.synth.test_teacher_styles import digest; print(digest(generate_cases()))")
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ts.REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == digest(CASES)


def test_every_claimed_style_mode_and_malformation_is_generated():
    assert {mode: {s.name for s in ts.styles_for(mode)} for mode in MODES} == CLAIMED_STYLES
    wanted = Counter()
    for mode in MODES:
        for style in ts.styles_for(mode):
            for malformation in ts.malformations_for(mode, style):
                wanted[mode, style.name, malformation] = 4 if malformation is None else 2
    assert Counter((c.mode, c.style, c.malformation) for c in CASES) == wanted
    assert {c.malformation for c in MALFORMED} == set(ts.MALFORMATIONS)
    assert set(ts.MALFORMATIONS) <= set(REASONS)
    by_mode = {mode: {c.malformation for c in MALFORMED if c.mode == mode} for mode in MODES}
    assert by_mode["laion"] == set(ts.MALFORMATIONS)
    assert by_mode["vflan"] == set(ts.MALFORMATIONS) - {"question_count", "not_a_question"}
    assert by_mode["text"] == {"empty_section", "answer_too_short", "refusal", "empty_response"}
    assert len(CASES) == len({c.id for c in CASES})


def test_cases_state_either_fields_or_a_reason():
    for case in WELL_FORMED:
        assert case.expected_reason is None
        assert set(case.expected) == {"laion": {"description", "questions", "question", "answer"},
                                      "vflan": {"description", "answer"},
                                      "text": {"answer"}}[case.mode]
    for case in MALFORMED:
        assert case.expected is None and case.expected_reason == case.malformation


# Section names, and what would make a line of content look like markup or a list item.
_LABEL_START = re.compile(r"^(?:description|caption|image|detailed|questions?|candidate|complex"
                          r"|chosen|selected|answer|response)\b", re.IGNORECASE)
_ITEM_START = re.compile(r"^(?:\d|[-*\u2022+(]|q\d)", re.IGNORECASE)


def plain_prose(text: str) -> bool:
    return (text == text.strip() and "\r" not in text and "\n\n\n" not in text
            and not re.search(r"[*#`<>_\[\]{}|~]", text)
            and all(line == line.rstrip() for line in text.split("\n"))
            and not any(_LABEL_START.match(line) or _ITEM_START.match(line)
                        for line in text.split("\n") if line))


def test_well_formed_content_is_plain_varied_and_within_the_limits():
    for case in WELL_FORMED:
        fields = case.expected
        assert 20 <= len(fields["answer"].split()) <= 80, case.id
        prose = [fields["answer"]] + ([fields["description"]] if "description" in fields else [])
        assert all(plain_prose(text) and "?" not in text for text in prose), case.id
        if case.mode == "laion":
            questions = fields["questions"]
            assert len(questions) == len(set(questions)) == 5, case.id
            assert all(plain_prose(q) and "\n" not in q and q.count("?") == 1 and q.endswith("?")
                       for q in questions), case.id
            assert fields["question"] in questions
    answers = [case.expected["answer"] for case in WELL_FORMED]
    descriptions = [case.expected["description"] for case in WELL_FORMED if case.mode != "text"]
    assert len(set(answers)) >= 0.98 * len(answers)  # not one string repeated
    assert len(set(descriptions)) >= 0.98 * len(descriptions)
    assert any("\n\n" in text for text in answers) and any("\n\n" in t for t in descriptions)


def test_the_chosen_question_is_sometimes_given_by_reference():
    contents = [ts.make_content(random.Random(i)) for i in range(200)]
    references = [c for c in contents if c.chosen != c.question]
    assert 20 <= len(references) <= 80
    for content in references:
        number = int(content.chosen.removeprefix("Question "))
        assert content.question == content.questions[number - 1]
    assert {c.chosen.isdigit() for c in references} == {True, False}


def test_malformed_content_is_what_its_reason_says():
    for case in MALFORMED:
        if case.malformation == "empty_response":  # blank, or an empty fence
            assert re.fullmatch(r"\s*|```[a-z]*\s*```", case.text), case.id
        elif case.malformation == "answer_too_short":
            assert any(answer in case.text for answer in ts.SHORT_ANSWERS), case.id
        elif case.malformation == "refusal":
            assert any(refusal in case.text or json.dumps(refusal)[1:-1] in case.text
                       for refusal in ts.REFUSALS), case.id
        elif case.malformation == "question_count":  # 3 or 4 questions, and perhaps the chosen one
            assert 3 <= case.text.count("?") <= 5, case.id
        elif case.malformation == "not_a_question":  # 5 questions, and no "?" after them
            assert case.text.count("?") == 5, case.id


def test_the_synonyms_style_uses_every_synonym():
    texts = "\n".join(c.text for c in CASES if c.style == "synonyms")
    for key, names in ts.SYNONYMS.items():
        for name in names:
            assert re.search(rf"^### {re.escape(name)}$", texts, re.MULTILINE | re.IGNORECASE), name


def test_the_report_has_a_row_per_style_and_counts_every_case():
    table = ts.summary_table(CASES)
    rows = [line for line in table.split("\n") if line.startswith("| ")][1:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [*ts.STYLES, "**all**"]
    total = rows[-1].split(" | ")
    assert total[2].endswith(f"/{len(WELL_FORMED)}") and total[3].endswith(f"/{len(MALFORMED)}")


@pytest.mark.skipif(not (ts.REPO / ".git").exists(), reason="not a git checkout")
def test_the_report_can_load_the_parser_of_a_git_revision():
    parser = ts.load_parser("HEAD")
    assert callable(parser.parse_response) and issubclass(parser.InvalidResponse, ValueError)
