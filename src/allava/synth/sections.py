"""Find the sections of a teacher's reply, whatever layout the teacher chose.

Teachers are asked for one layout and write many: markdown headings of any level, bold or plain
labels ("**Description:**", "Answer -"), ALLaVA's tags ("<start of description>" ...
"<end of description>", the end tag sometimes forgotten), XML-like tags ("<answer>...</answer>"),
or a JSON object, in a code fence or not, with a preamble before and a sign-off after. Sections
are found by their label, a synonym from one table per mode (LABELS), in any order and any case.

`split_sections(mode, text)` returns {section key: text} for the sections found; whether the
required ones are there is the caller's decision (allava.synth.parsing).
"""
from __future__ import annotations

import json
import re
import textwrap

# Section key -> the labels a teacher gives it (case-insensitive; spaces, "_" and "-" alike).
_DESCRIPTION = ("description", "detailed description", "image description", "caption",
                "detailed caption", "image caption")
_QUESTIONS = ("candidate questions", "questions", "complex questions", "five questions",
              "question candidates", "question list")
_CHOSEN = ("chosen question", "selected question", "picked question", "question")
_ANSWER = ("answer", "detailed answer", "final answer", "response")
LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "laion": {"description": _DESCRIPTION, "questions": _QUESTIONS,
              "chosen_question": _CHOSEN, "answer": _ANSWER},
    # vflan is given its question: a teacher that echoes it under a label has written a section
    # that is recognised (so that it does not run into its neighbour) and then dropped.
    "vflan": {"description": _DESCRIPTION, "answer": _ANSWER, "echoed_question": _CHOSEN},
    "text": {"answer": _ANSWER},
}

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+-]*)[ \t]*$")
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$")  # a markdown horizontal rule
# A closing line that only offers more help: dropped from the end of the last section.
_SIGN_OFF = re.compile(
    r"^[*_]*(?:let me know\b|please let me know\b|(?:i )?hope (?:this|that) helps"
    r"|feel free to\b|happy to help\b|is there anything else\b"
    r"|if you (?:have|need) (?:any )?(?:more|other|further|additional)\b"
    r"|if you have any questions\b)", re.IGNORECASE)


# An opening paragraph of one short line that only introduces the reply: "Sure! Here is the
# answer.", "Certainly. Below is ...", "Here is my analysis:".
_PREAMBLE = re.compile(
    r"^(?:(?:sure|certainly|of course|absolutely)\b[^\n]{0,60}?\b(?:here|below|as follows)\b"
    r"|(?:sure|certainly|of course|absolutely|here(?:'s| is| are)|below (?:is|are))\b"
    r"[^\n]{0,60}[:!]$|(?:here(?:'s| is)|below is) (?:my|the|a)\b[^\n]{0,50}[.:]$)",
    re.IGNORECASE)


def split_sections(mode: str, text: str) -> dict[str, str]:
    """Section key -> its text (stripped; may be empty) for the sections of `mode` found.

    JSON is tried first, then tags, then headings and labels: a reply is read in the first
    layout that yields a section of this mode."""
    labels = LABELS[mode]
    for reader in (_json_sections, _tag_sections, _heading_sections):
        sections = reader(text, labels)
        if sections:
            return sections
    return {}


def label_name(key: str, mode: str) -> str:
    """The label used for `key` in messages: its first synonym."""
    return LABELS[mode][key][0]


def clean_block(lines: list[str]) -> str:
    """Join a section's lines, dropping blank lines and horizontal rules at either end."""
    while lines and (not lines[0].strip() or _RULE.match(lines[0])):
        lines = lines[1:]
    while lines and (not lines[-1].strip() or _RULE.match(lines[-1])):
        lines = lines[:-1]
    return textwrap.dedent("\n".join(lines)).strip()  # dedent: keep list indents relative


def drop_sign_off(text: str) -> str:
    """`text` without a last line that only offers more help ("Let me know if ..."); a text
    that is nothing but such a line is empty."""
    lines = text.strip().split("\n")
    if _SIGN_OFF.match(lines[-1].strip()):
        return clean_block(lines[:-1])
    return text


def drop_preamble(text: str) -> str:
    """`text` without an opening paragraph that only introduces it ("Sure! Here is the answer:")."""
    match = re.match(r"(?P<first>[^\n]*)\n[ \t]*\n(?P<rest>.*)", text.strip(), re.DOTALL)
    if match and match["rest"].strip() and _PREAMBLE.match(match["first"].strip()):
        return match["rest"].strip()
    return text


def _label_regex(labels: dict[str, tuple[str, ...]]) -> str:
    names = sorted((name for synonyms in labels.values() for name in synonyms), key=len, reverse=True)
    return "|".join(re.escape(name).replace(r"\ ", r"[ \t_-]+") for name in names)


def _key_of(name: str, labels: dict[str, tuple[str, ...]]) -> str | None:
    plain = " ".join(re.sub(r"[_-]", " ", name).lower().split())
    return next((key for key, synonyms in labels.items() if plain in synonyms), None)


# --- JSON ------------------------------------------------------------------------------------

_JSON_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(\{.*?\})[ \t]*\n[ \t]*```", re.DOTALL | re.IGNORECASE)


def _json_sections(text: str, labels: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Sections from a JSON object: the whole reply, or a fenced block inside it."""
    candidates = [match.group(1) for match in _JSON_FENCE.finditer(text)]
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        candidates.insert(0, stripped)
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            sections = {}
            for name, value in data.items():
                key = _key_of(str(name), labels)
                if key is not None and key not in sections:
                    sections[key] = _json_value_text(value)
            if sections:
                return sections
    return {}


def _json_value_text(value) -> str:
    """A JSON field as section text; a list (the questions) becomes a numbered list."""
    if isinstance(value, list):
        return "\n".join(f"{n}. {_json_value_text(item)}" for n, item in enumerate(value, 1))
    if value is None:
        return ""
    return str(value).strip()


# --- tags ------------------------------------------------------------------------------------

def _tag_sections(text: str, labels: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Sections between tags: `<start of X>` ... `<end of X>`, or `<X>` ... `</X>`.

    A section runs from its opening tag to the next tag of any kind, so a forgotten end tag
    costs nothing; text between an end tag and the next opening tag is the teacher's chatter."""
    names = _label_regex(labels)
    tag = re.compile(
        rf"<[ \t]*(?:(?P<start>start[ \t_-]+of)|(?P<end>end[ \t_-]+of)|(?P<slash>/))?[ \t_-]*"
        rf"(?P<name>{names})[ \t]*>", re.IGNORECASE)
    matches = list(tag.finditer(text))
    sections: dict[str, str] = {}
    runs_to_end = None  # the section with no tag after it: a sign-off may trail it
    for index, match in enumerate(matches):
        if match["end"] or match["slash"]:
            continue
        key = _key_of(match["name"], labels)
        if key is None or key in sections:
            continue
        until = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        body = text[match.end():until].split("\n")
        sections[key] = _without_own_heading(clean_block(body), key, labels)
        runs_to_end = key if until == len(text) else None
    if runs_to_end is not None:
        sections[runs_to_end] = drop_sign_off(sections[runs_to_end])
    return sections


def _without_own_heading(body: str, key: str, labels: dict[str, tuple[str, ...]]) -> str:
    """A tagged section that repeats its label as a heading ("<answer>\\n### Answer\\n...")."""
    first, _, rest = body.partition("\n")
    heading = _match_heading(first, _heading_pattern(labels), labels)
    if heading and heading[0] == key:
        return clean_block([heading[1], *rest.split("\n")]) if heading[1] else rest.strip()
    return body


# --- headings and labels ---------------------------------------------------------------------

def _heading_pattern(labels: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    return re.compile(
        r"^[ \t]*(?P<hashes>\#{1,6})?[ \t]*(?P<open>\*\*|__)?[ \t]*(?:\d{1,2}[.)][ \t]*)?"
        rf"(?P<name>{_label_regex(labels)})[ \t]*(?P<close>\*\*|__)?[ \t]*"
        r"(?P<colon>:|(?:-{1,2}|[\u2013\u2014])(?=[ \t]|$))?[ \t]*"
        r"(?P<close_after>\*\*|__)?[ \t]*(?P<rest>.*)$",
        re.IGNORECASE)


def _match_heading(line: str, pattern: re.Pattern[str], labels: dict[str, tuple[str, ...]]
                   ) -> tuple[str, str] | None:
    """(section key, text after the heading on the same line), when `line` is a heading.

    "### Answer", "## Answer:", "**Answer**", "**Answer:** text", "Answer: text", "Answer -",
    "**Answer** text", "Answer" alone."""
    match = pattern.match(line)
    if match is None:
        return None
    if match["open"] and not (match["close"] or match["close_after"]):
        return None
    # Text on the heading's line needs a colon or dash before it ("Answer: ..."), or a label in
    # bold ("**Answer** ..."): a sentence that starts with "Answer" is not a heading.
    if match["rest"] and not (match["colon"] or (match["open"] and match["close"])):
        return None
    key = _key_of(match["name"], labels)
    return (key, match["rest"].strip()) if key else None


def _heading_sections(text: str, labels: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Sections under headings or labels, one per line. Text before the first is dropped; a
    label seen a second time, or inside a fenced code block, is ordinary text."""
    pattern = _heading_pattern(labels)
    sections: dict[str, list[str]] = {}
    current: str | None = None
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        heading = None if in_code else _match_heading(line, pattern, labels)
        if heading and heading[0] not in sections:
            current, rest = heading
            sections[current] = [rest] if rest else []
        elif current is not None:
            sections[current].append(line)
    found = {key: clean_block(lines) for key, lines in sections.items()}
    if current is not None:
        found[current] = drop_sign_off(found[current])
    return found
