"""Turn a teacher's reply into fields and decide whether it is good enough to keep.

The sections are found by allava.synth.sections, in whatever layout the teacher wrote them
(headings, labels, tags, JSON); here they are checked and cleaned. What cannot be used is
rejected with an InvalidResponse whose `reason` is one of REASONS, for the pipeline to count,
log and (allava.synth.reparse) read again after a parser update.

Decisions:
- More than five questions: the first five are kept. The list is metadata (only the chosen
  question and its answer are trained on), so a sixth question is no reason to pay for the
  request again. Fewer than five is rejected: the teacher did not do the task as asked.
- A chosen question that is not among the five (teachers paraphrase) is kept as written, minus
  any leading number; a bare reference ("3", "Question 3") is resolved to that question.
- A code fence around the whole reply is removed. In text mode only a fence labelled markdown
  is, since a text answer may legitimately be one bare code block.
- A last paragraph that only offers more help ("Let me know if ...") is not part of a section.
"""
from __future__ import annotations

import re

from allava.synth.prompts import check_mode
from allava.synth.sections import drop_preamble, drop_sign_off, label_name, split_sections

REASONS = (
    "empty_response",  # nothing but whitespace (or an empty fence)
    "refusal",  # the teacher declined, apologised or said "as an AI"
    "missing_section",  # a required heading was not found
    "empty_section",  # a heading with nothing under it
    "question_count",  # laion: fewer than five questions
    "not_a_question",  # laion: the chosen question does not end with "?"
    "answer_too_short",
    "answer_too_long",
)

# The headings the package's default prompts ask for (allava/synth/resources/prompts/*.yaml).
HEADINGS = {
    "description": "### Description",
    "questions": "### Questions",
    "chosen_question": "### Chosen question",
    "answer": "### Answer",
}
SECTIONS = {
    "laion": ("description", "questions", "chosen_question", "answer"),
    "vflan": ("description", "answer"),
    "text": (),  # the whole reply is the answer
}
NUM_QUESTIONS = 5


class InvalidResponse(ValueError):
    """A teacher reply that cannot be used; `reason` is a key of REASONS, `detail` says more."""

    def __init__(self, reason: str, detail: str, sections: tuple[str, ...] = ()) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.sections = sections  # missing_section / empty_section: the keys of those sections

    @property
    def repairable(self) -> bool:
        """One section missing or empty: one follow-up turn asking for it may save the reply."""
        return self.reason in ("missing_section", "empty_section") and len(self.sections) == 1


def parse_response(mode: str, text: str, *, repair: str | None = None,
                   min_answer_words: int = 8, max_answer_chars: int = 8000) -> dict:
    """The fields of a valid reply, or InvalidResponse.

    laion -> {"description", "questions" (5 str), "question", "answer"};
    vflan -> {"description", "answer"}; text -> {"answer"}.
    `repair`: the teacher's reply to a follow-up turn that asked for the one section `text`
    lacked; its sections fill those missing or empty in `text` (a repair without any label is
    taken as the one section asked for).
    """
    check_mode(mode)
    text = _normalise(text)
    if not _strip_wrapping_fence(text, markdown_only=False):  # blank, or an empty fence
        raise InvalidResponse("empty_response", "the reply is empty")
    text = _strip_wrapping_fence(text, markdown_only=(mode == "text"))
    if looks_like_refusal(text):
        raise InvalidResponse("refusal", f"the reply opens with a refusal: {text[:80]!r}")

    if mode == "text":
        fields = {"answer": _text_answer(text)}
    else:
        sections = _required_sections(mode, text, repair)
        fields = {key: sections[key] for key in SECTIONS[mode]}
        if looks_like_refusal(fields["description"]):
            raise InvalidResponse("refusal", "the description is a refusal")
    if not fields["answer"]:
        raise InvalidResponse("empty_section", "the answer is empty")
    if looks_like_refusal(fields["answer"]):
        raise InvalidResponse("refusal", "the answer is a refusal")

    if mode == "laion":
        questions = _questions(fields["questions"])
        fields = {"description": fields["description"], "questions": questions,
                  "question": _chosen_question(fields["chosen_question"], questions),
                  "answer": fields["answer"]}
    _check_answer_length(fields["answer"], min_answer_words, max_answer_chars)
    return fields


# --- refusals --------------------------------------------------------------------------------

# Openings of a refusal. They are only looked for at the start of a sentence near the start of
# the text, so that "cannot" in ordinary prose ("the bridge cannot carry trucks") is not one.
_REFUSAL_OPENINGS = (
    r"(?:i'?m|i am) sorry,? (?:but|i)\b",
    r"sorry,? (?:but )?i (?:can'?t|cannot|can not|am unable|'?m unable|won'?t)\b",
    r"i apologi[sz]e,? (?:but|i)\b",
    r"i (?:can'?t|cannot|can not|won'?t|will not) (?:help|assist|provide|comply|fulfil|identify"
    r"|describe|answer|analy[sz]e|process|view|see|access|discuss|complete|do that|engage)",
    r"i(?:'?m| am) (?:unable|not able) to\b",
    r"as an ai\b",
    r"unfortunately,? i (?:can'?t|cannot|can not|am unable|'?m unable|am not able|'?m not able)\b",
)
_REFUSAL = re.compile(
    r"(?:^|[.!?]\s+|\n)[\s*_>\"'#-]*(?:" + "|".join(_REFUSAL_OPENINGS) + ")", re.IGNORECASE)
_REFUSAL_WINDOW = 120  # characters: the first sentence or two


def looks_like_refusal(text: str) -> bool:
    """True when a sentence starting in the first ~120 characters opens like a refusal."""
    head = text[:_REFUSAL_WINDOW].replace("\u2019", "'").replace("\u2018", "'")
    return _REFUSAL.search(head) is not None


# --- sections --------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+-]*)[ \t]*$")


def _normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _strip_wrapping_fence(text: str, *, markdown_only: bool) -> str:
    """The reply without a code fence around all of it."""
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    opening, closing = _FENCE.match(lines[0]), _FENCE.match(lines[-1])
    if not opening or not closing or closing.group(2):
        return text
    wrapper_labels = {"markdown", "md"} if markdown_only else {"", "markdown", "md", "text", "txt"}
    if opening.group(2).lower() not in wrapper_labels:
        return text
    return "\n".join(lines[1:-1]).strip()


def _required_sections(mode: str, text: str, repair: str | None = None) -> dict[str, str]:
    keys = SECTIONS[mode]
    sections = split_sections(mode, text)
    if repair is not None:
        sections = _with_repair(mode, sections, repair)
    missing = [key for key in keys if key not in sections]
    if missing:
        raise InvalidResponse("missing_section",
                              f"no {', '.join(label_name(key, mode) for key in missing)} section",
                              tuple(missing))
    empty = [key for key in keys if not sections[key]]
    if empty:
        raise InvalidResponse("empty_section",
                              f"nothing under {', '.join(label_name(key, mode) for key in empty)}",
                              tuple(empty))
    return sections


def _with_repair(mode: str, sections: dict[str, str], repair: str) -> dict[str, str]:
    lacking = [key for key in SECTIONS[mode] if not sections.get(key)]
    repair = _strip_wrapping_fence(_normalise(repair), markdown_only=False)
    supplied = split_sections(mode, repair)
    if not supplied and len(lacking) == 1:
        supplied = {lacking[0]: drop_sign_off(drop_preamble(repair))}
    return {**sections, **{key: supplied[key] for key in lacking if supplied.get(key)}}


def _text_answer(text: str) -> str:
    """Text mode needs no heading, but a teacher may still open with a label, a tag or a JSON
    object; a label further down ("... Answer: 42") is part of the answer."""
    first_line = text.split("\n", 1)[0]
    if text.startswith("{") or split_sections("text", first_line):
        answer = split_sections("text", text).get("answer")
        if answer is not None:
            return answer
    return drop_sign_off(drop_preamble(text))


# --- questions -------------------------------------------------------------------------------

# A list item: "1. ", "1) ", "1: ", "(1) ", "Q1: ", "Question 1: ", "- ", "* ", "• ".
_ITEM = re.compile(
    r"^(?P<indent>[ \t]*)(?:\d{1,2}[.):]|\(\d{1,2}\)|q(?:uestion)?[ \t]*\d{1,2}[ \t]*[.):-]?"
    r"|[-*\u2022+])[ \t]+(?P<text>\S.*)$",
    re.IGNORECASE)
# A chosen "question" that only points at one: "3", "#3", "Q3", "Question 3.", "(3)".
_REFERENCE = re.compile(r"^(?:q(?:uestion)?[ \t]*)?[#(]?[ \t]*(\d{1,2})[ \t]*[.):]?$", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"


def _plain(text: str) -> str:
    """Questions are plain text in the human turn: no bold markers."""
    return text.replace("**", "").replace("__", "")


def _questions(block: str) -> list[str]:
    """The first five questions of the list; fewer than five raises `question_count`."""
    lines = [_plain(line) for line in block.split("\n")]
    items: list[str] = []
    if any(_ITEM.match(line) for line in lines):
        # The least indented markers are the questions; deeper ones are sub-bullets.
        item_indent = min(_indent(match) for match in map(_ITEM.match, lines) if match)
        for line in lines:
            match = _ITEM.match(line)
            if match and _indent(match) <= item_indent:
                items.append(match["text"].strip())
            elif items and line.strip() and not items[-1].endswith("?"):
                # A question wrapped onto the next line; text after a finished question is
                # commentary ("These cover...") and sub-bullets are hints: both are dropped.
                items[-1] = f"{items[-1]} {line.strip()}"
    else:  # no markers at all: one question per line; an intro line has no "?" and is skipped
        items = [line.strip() for line in lines if line.strip().endswith("?")]
    items = [" ".join(item.split()) for item in items if item.strip()]
    if len(items) < NUM_QUESTIONS:
        raise InvalidResponse("question_count", f"{len(items)} questions, expected {NUM_QUESTIONS}")
    return items[:NUM_QUESTIONS]


def _indent(match: re.Match[str]) -> int:
    return len(match["indent"].expandtabs(4))


def _chosen_question(block: str, questions: list[str]) -> str:
    lines = [line.strip() for line in _plain(block).split("\n") if line.strip()]
    # One line ending in "?" is the question; anything after it is the teacher's commentary.
    text = lines[0] if lines[0].endswith("?") else " ".join(lines)
    text = " ".join(text.split())
    if match := _ITEM.match(text):
        text = match["text"]
    text = text.strip().strip(_QUOTES).strip()
    if reference := _REFERENCE.match(text):
        number = int(reference.group(1))
        if 1 <= number <= len(questions):
            text = questions[number - 1]
    if not text.endswith("?"):
        raise InvalidResponse("not_a_question", f"chosen question does not end with '?': {text[:80]!r}")
    return text


# --- answer ----------------------------------------------------------------------------------

def _check_answer_length(answer: str, min_words: int, max_chars: int) -> None:
    words = len(answer.split())
    if words < min_words:
        raise InvalidResponse("answer_too_short", f"{words} words, at least {min_words} needed")
    if len(answer) > max_chars:
        raise InvalidResponse("answer_too_long", f"{len(answer)} characters, at most {max_chars}")
