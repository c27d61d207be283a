"""Replies written the way real teacher VLMs write them, for allava.synth.parsing.parse_response.

Each case is one reply in a named layout *style* (markdown headings, bold or plain labels, tags,
JSON, fences, ...), either well formed or with one *malformation*, together with what a correct
parser must give: the exact fields of a well-formed reply, or the InvalidResponse reason of a
malformed one. The generator is seeded and deterministic: the same seed gives the same cases.

What "exactly these fields" means (the normalisation the expectations assume):
- line ends are "\\n" and no line of a field ends in whitespace;
- a field is its section's text with the whitespace at both ends removed; a paragraph break
  inside it stays one blank line ("\\n\\n");
- "questions" are the candidate questions without their number or bullet, each on one line;
- "question" is the chosen question's full text, also where the reply names it by reference
  ("3", "Question 3");
- a preamble before the sections and a sign-off after them belong to no field (in text mode
  too); a code fence around the whole reply is not part of it;
- in a JSON reply the fields are its string values.
The content never makes these ambiguous: it has no markdown markup, no "?" outside the questions,
no line starting with a section name, a number or a bullet, and nothing that opens like a refusal.

    python tests/synth/teacher_styles.py [--seed N] [--per-combination N] [--well-formed N]
                                         [--failures N] [--rev REV]

runs the parser over every case and prints a markdown table, one row per style: the parser in
the working tree, or with --rev REV the parsing.py of a git revision (the rest of the package as
in the working tree), to compare a rewrite with what it replaces.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import types
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import allava.synth.parsing

MODES = ("laion", "vflan", "text")
IMAGE_MODES = ("laion", "vflan")
KEYS = {"laion": ("description", "questions", "chosen_question", "answer"),
        "vflan": ("description", "answer"),
        "text": ("answer",)}
NUM_QUESTIONS = 5
MALFORMATIONS = ("missing_section", "empty_section", "question_count", "not_a_question",
                 "answer_too_short", "refusal", "empty_response")

# --- content ---------------------------------------------------------------------------------

SUBJECTS = ("bicycle", "fishing boat", "vendor's cart", "typewriter", "park bench", "food truck",
            "greenhouse", "lighthouse", "market stall", "tram", "wooden cabin", "bookshop window",
            "hot air balloon", "chess table", "bakery counter", "vintage car", "rowing boat",
            "telephone box")
SETTINGS = (("in", "a narrow cobbled lane"), ("in", "a quiet harbour"),
            ("in", "a busy city square"), ("in", "a mountain meadow"), ("in", "a small kitchen"),
            ("on", "an old railway platform"), ("on", "a windswept beach"),
            ("in", "a rooftop garden"),
            ("at", "a crowded farmers market"), ("in", "a misty forest clearing"),
            ("on", "a suburban driveway"), ("in", "a university courtyard"))
LIGHTS = ("late afternoon sunlight", "the grey light of an overcast morning", "warm lamplight",
          "harsh midday sun", "the blue glow of dusk", "bright fluorescent light",
          "soft light from a nearby window")
DETAILS = ("a stack of wooden crates", "a faded striped awning", "a pair of pigeons",
           "a chalkboard sign", "a row of potted herbs", "a bundle of newspapers",
           "a puddle that reflects the sky", "a coiled garden hose", "a folded umbrella",
           "a string of paper lanterns", "a rusty wheelbarrow", "a basket of green apples",
           "a sleeping cat", "a bicycle helmet")
COLOURS = ("red", "pale blue", "dark green", "mustard yellow", "white", "charcoal grey", "orange",
           "cream")
MOODS = ("calm", "lively", "nostalgic", "slightly lonely", "cheerful", "hurried", "peaceful")

OPENERS = (
    "The photograph shows {a_colour} {subject} {at_setting}.",
    "{A_colour} {subject} stands near the centre of the frame, {at_setting}.",
    "This picture captures {setting}, where {a_colour} {subject} draws the eye.",
    "At the heart of the scene is {a_colour} {subject}, photographed {at_setting}.",
)
SCENE_SENTENCES = (
    "Close by there is {d1}, and {d2} sits a little further back.",
    "{Light} falls across the scene and gives it a {mood} atmosphere.",
    "In the background, {d3} rests beside {d4}.",
    "The {subject} looks well used, with small scratches along its edges.",
    "Nobody is in the frame apart from a passer-by near the left edge.",
    "The ground is uneven and slightly damp, as if it rained earlier in the day.",
    "Colours are muted overall, except for the {colour} of the {subject}.",
    "Everything is in sharp focus, from the foreground to the distant rooftops.",
)
QUESTION_TEMPLATES = (
    "What is the {subject} most likely used for {at_setting}?",
    "How does {light} affect the mood of the scene?",
    "Why might {d1} have been left so close to the {subject}?",
    "What does the condition of the {subject} suggest about its age?",
    "How would the scene change if it were photographed at night?",
    "What season does the scene most likely show, and why?",
    "Who might own the {subject}, judging from its surroundings?",
    "What story could connect the {subject} with {d1}?",
    "Which details suggest whether {setting} is usually busy?",
    "How might the {subject} be looked after to keep its {colour} paint fresh?",
    "What would a visitor hear if they stood {at_setting} at this moment?",
)
ANSWER_SENTENCES = (
    "The {subject} appears to belong to everyday life {at_setting} rather than being placed "
    "there for the photograph.",
    "Its {colour} paint is worn in places, which points to years of regular use.",
    "{D1} nearby hints that someone works here and comes back often.",
    "{Light} softens every edge and makes the whole place feel {mood}.",
    "A local resident would probably walk past it without a second glance.",
    "Taken together, these clues suggest a practical purpose more than a decorative one.",
    "If the weather turned, the owner would most likely move it under cover.",
    "The arrangement looks unplanned, so the moment was probably captured by chance.",
    "Small signs of care, such as the tidy surroundings, show that the place is looked after.",
    "The photographer seems to have stood at eye level, which makes the view feel natural.",
    "Because {d2} is left out in the open, the owner probably trusts the neighbourhood.",
    "Anyone standing {at_setting} would notice the {colour} {subject} before anything else.",
    "The mood is {mood} rather than dramatic, and nothing in the frame seems staged.",
)
NOT_QUESTIONS = (  # a chosen "question" that is neither a question nor a reference to one
    "The one about the {subject}.",
    "Describe the {subject} and its surroundings.",
    "Explain what the {subject} is used for.",
    "The question about the lighting, since it invites the richest reply.",
)
SHORT_ANSWERS = ("It is red.", "Mostly for shade.", "Probably after sunset.", "Near the harbour.",
                 "Nobody owns it.")
REFUSALS = ("I'm sorry, but I can't help with that.",
            "I'm sorry, but I can't help with that request.",
            "I\u2019m sorry, but I can\u2019t help with that.")
BLANKS = ("", " ", "\n", "\n\n  \n", "\t \n ")
PREAMBLES = ("Here is my analysis:", "Sure! Here is the analysis of the image.",
             "Certainly. Below is the requested breakdown.", "Here is my analysis of the picture:")
TEXT_PREAMBLES = ("Here is my answer:", "Sure! Here is a detailed reply.",
                  "Certainly, here you go:")
SIGN_OFFS = ("Let me know if you need anything else.", "I hope this helps!",
             "Feel free to ask if you would like more detail.",
             "Let me know if you would like me to expand on any part.")


@dataclass(frozen=True)
class Content:
    description: str
    questions: tuple[str, ...]
    chosen: str  # the chosen question as the reply writes it: its text, or "3" / "Question 3"
    question: str  # the question the parser must return for it
    answer: str


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slots(rng: random.Random) -> dict[str, str]:
    """The words one scene is written with."""
    d1, d2, d3, d4 = rng.sample(DETAILS, 4)
    light, colour = rng.choice(LIGHTS), rng.choice(COLOURS)
    preposition, setting = rng.choice(SETTINGS)
    a_colour = f"{'an' if colour[0] in 'aeiou' else 'a'} {colour}"
    return {"subject": rng.choice(SUBJECTS), "setting": setting,
            "at_setting": f"{preposition} {setting}", "light": light, "Light": _cap(light),
            "d1": d1, "D1": _cap(d1), "d2": d2, "d3": d3, "d4": d4, "colour": colour,
            "a_colour": a_colour, "A_colour": _cap(a_colour), "mood": rng.choice(MOODS)}


def _paragraphs(rng: random.Random, sentences: list[str], split_chance: float) -> str:
    """The sentences as one paragraph, or now and then as two."""
    if len(sentences) >= 3 and rng.random() < split_chance:
        cut = rng.randint(1, len(sentences) - 1)
        return " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])
    return " ".join(sentences)


def make_description(rng: random.Random, slots: dict[str, str]) -> str:
    body = rng.sample(SCENE_SENTENCES, rng.randint(2, 4))
    sentences = [rng.choice(OPENERS).format(**slots)] + [s.format(**slots) for s in body]
    return _paragraphs(rng, sentences, 0.25)


def make_answer(rng: random.Random, slots: dict[str, str]) -> str:
    """20 to 80 words."""
    target = rng.randint(20, 70)
    sentences, words = [], 0
    for template in rng.sample(ANSWER_SENTENCES, len(ANSWER_SENTENCES)):
        sentence = template.format(**slots)
        if words + len(sentence.split()) > 80:
            continue
        sentences.append(sentence)
        words += len(sentence.split())
        if words >= target:
            break
    return _paragraphs(rng, sentences, 0.3)


def make_content(rng: random.Random, num_questions: int = NUM_QUESTIONS,
                 slots: dict[str, str] | None = None) -> Content:
    slots = slots or _slots(rng)
    questions = tuple(t.format(**slots) for t in rng.sample(QUESTION_TEMPLATES, num_questions))
    number = rng.randint(1, num_questions)
    chosen = questions[number - 1]
    if rng.random() < 0.25:
        chosen = rng.choice((str(number), f"Question {number}"))
    return Content(make_description(rng, slots), questions, chosen, questions[number - 1],
                   make_answer(rng, slots))


# --- layouts ---------------------------------------------------------------------------------

Sections = dict  # section key -> its text (a list of str for "questions"); a missing key is absent


@dataclass(frozen=True)
class Style:
    name: str
    modes: tuple[str, ...]
    render: Callable[[Sections, random.Random], str]
    # What the style does to a reply that is not laid out at all (a refusal, a blank reply).
    wrap: Callable[[str, random.Random], str]
    answer_heading: bool  # text mode: the answer sits under a heading that can be left empty


STYLES: dict[str, Style] = {}


def _as_is(text: str, rng: random.Random) -> str:
    return text


def style(name: str, modes: tuple[str, ...] = IMAGE_MODES, *, wrap=_as_is,
          answer_heading: bool = False):
    def register(render):
        STYLES[name] = Style(name, modes, render, wrap, answer_heading)
        return render
    return register


LABELS = {"description": "Description", "questions": "Questions",
          "chosen_question": "Chosen question", "answer": "Answer"}
SYNONYMS = {"description": ("description", "caption", "image description", "detailed description"),
            "questions": ("candidate questions", "questions", "complex questions"),
            "chosen_question": ("chosen question", "question", "selected question"),
            "answer": ("answer", "detailed answer", "response")}


def _body(key: str, value, numbering: str = "{n}. ", between: str = "\n") -> str:
    if key == "questions":
        return between.join(numbering.format(n=n) + q for n, q in enumerate(value, 1))
    return value


def _labelled(sections: Sections, label: Callable[[str], str], *, inline: bool = False,
              numbering: str = "{n}. ", names: dict[str, str] = LABELS) -> str:
    """One block per section: its label line, then its text on the next lines (or, `inline`,
    on the label's line; the question list always starts on a line of its own)."""
    blocks = []
    for key, value in sections.items():
        head, text = label(names[key]), _body(key, value, numbering)
        if not text:
            blocks.append(head)
        elif inline and key != "questions":
            blocks.append(f"{head} {text}")
        else:
            blocks.append(f"{head}\n{text}")
    return "\n\n".join(blocks)


def _h3(name: str) -> str:
    return f"### {name}"


def _fence(text: str, rng: random.Random) -> str:
    return f"```{rng.choice(('', 'markdown', 'md', 'text'))}\n{text}\n```"


def _markdown_fence(text: str, rng: random.Random) -> str:
    return f"```{rng.choice(('markdown', 'md'))}\n{text}\n```"


@style("heading_h1")
def heading_h1(sections, rng):
    return _labelled(sections, lambda name: f"# {name}")


@style("heading_h2")
def heading_h2(sections, rng):
    return _labelled(sections, lambda name: f"## {name}")


@style("heading_h3")
def heading_h3(sections, rng):
    return _labelled(sections, _h3)


@style("heading_h4")
def heading_h4(sections, rng):
    return _labelled(sections, lambda name: f"#### {name}")


@style("bold_colon")
def bold_colon(sections, rng):
    return _labelled(sections, lambda name: f"**{name}:**")


@style("bold_colon_inline")
def bold_colon_inline(sections, rng):
    return _labelled(sections, lambda name: f"**{name}:**", inline=True)


@style("bold")
def bold(sections, rng):
    return _labelled(sections, lambda name: f"**{name}**")


@style("bold_inline")
def bold_inline(sections, rng):
    return _labelled(sections, lambda name: f"**{name}**", inline=True)


@style("plain_colon")
def plain_colon(sections, rng):
    return _labelled(sections, lambda name: f"{name}:")


@style("plain_colon_inline")
def plain_colon_inline(sections, rng):
    return _labelled(sections, lambda name: f"{name}:", inline=True)


@style("plain_dash")
def plain_dash(sections, rng):
    return _labelled(sections, lambda name: f"{name} -")


@style("plain_dash_inline")
def plain_dash_inline(sections, rng):
    return _labelled(sections, lambda name: f"{name} -", inline=True)


# Label forms the case styles put their names in: heading, bold with colon, plain with colon.
_CASE_FORMS = ("## {}", "**{}:**", "{}:")


@style("upper_case")
def upper_case(sections, rng):
    form = rng.choice(_CASE_FORMS)
    return _labelled(sections, lambda name: form.format(name.upper()))


@style("lower_case")
def lower_case(sections, rng):
    form = rng.choice(_CASE_FORMS)
    return _labelled(sections, lambda name: form.format(name.lower()))


@style("title_case")
def title_case(sections, rng):
    form = rng.choice(_CASE_FORMS)
    return _labelled(sections, lambda name: form.format(name.title()))


@style("loose_whitespace")
def loose_whitespace(sections, rng):
    """Spaces and tabs around the labels, blank lines everywhere, sometimes CRLF line ends.
    Whitespace is only added at the ends of lines and sections, never inside a field."""
    blocks = []
    for key, value in sections.items():
        form = rng.choice(("{pad}##{gap}{name}{trail}", "{pad}**{name}:**{trail}",
                           "{pad}{name}{gap}:{trail}"))
        head = form.format(pad=rng.choice(("", " ", "  ")), gap=rng.choice((" ", "  ", "\t")),
                           name=LABELS[key], trail=rng.choice(("", " ", "   ", "\t")))
        text = _body(key, value, "{n}.  ", between=rng.choice(("\n", "\n\n", "\n  \n")))
        if text:
            head += rng.choice(("\n", "\n\n", "\n \n\n")) + text + rng.choice(("", "  ", "\t"))
        blocks.append(head)
    reply = "".join(block + rng.choice(("\n\n\n", "\n\n \n\n", "\n\t\n\n\n")) for block in blocks)
    reply = rng.choice(("", "\n", "  \n\n")) + reply
    return reply.replace("\n", "\r\n") if rng.random() < 0.5 else reply


# Orders with the chosen question and the answer before the candidate questions, and the answer
# before the description (so that vflan replies are reordered too).
_ORDERS = (("chosen_question", "answer", "description", "questions"),
           ("answer", "chosen_question", "questions", "description"),
           ("chosen_question", "answer", "questions", "description"))


@style("reordered")
def reordered(sections, rng):
    order = [key for key in rng.choice(_ORDERS) if key in sections]
    return _labelled({key: sections[key] for key in order}, _h3)


@style("numbered_paren", ("laion",))
def numbered_paren(sections, rng):
    return _labelled(sections, _h3, numbering="{n}) ")


@style("numbered_parens", ("laion",))
def numbered_parens(sections, rng):
    return _labelled(sections, _h3, numbering="({n}) ")


@style("numbered_q", ("laion",))
def numbered_q(sections, rng):
    return _labelled(sections, _h3, numbering="Q{n}: ")


@style("numbered_question", ("laion",))
def numbered_question(sections, rng):
    return _labelled(sections, _h3, numbering="Question {n}: ")


@style("bullet_dash", ("laion",))
def bullet_dash(sections, rng):
    return _labelled(sections, _h3, numbering="- ")


@style("bullet_star", ("laion",))
def bullet_star(sections, rng):
    return _labelled(sections, _h3, numbering="* ")


@style("bullet_dot", ("laion",))
def bullet_dot(sections, rng):
    return _labelled(sections, _h3, numbering="\u2022 ")


@style("synonyms")
def synonyms(sections, rng):
    names = {key: _cap(rng.choice(options)) for key, options in SYNONYMS.items()}
    return _labelled(sections, _h3, names=names)


_ALLAVA_TAGS = {"description": "description", "questions": "candidate questions",
                "chosen_question": "chosen question", "answer": "answer"}


def _allava_block(key: str, value, end_tag: bool) -> str:
    tag = _ALLAVA_TAGS[key]
    lines = [f"<start of {tag}>", _body(key, value)] + ([f"<end of {tag}>"] if end_tag else [])
    return "\n".join(line for line in lines if line)


@style("allava_tags")
def allava_tags(sections, rng):
    return "\n\n".join(_allava_block(key, value, True) for key, value in sections.items())


@style("allava_tags_no_end")
def allava_tags_no_end(sections, rng):
    """Some end tags missing (at least one, perhaps all)."""
    keys = list(sections)
    open_ended = {key for key in keys if rng.random() < 0.5} or {rng.choice(keys)}
    return "\n\n".join(_allava_block(key, sections[key], key not in open_ended) for key in keys)


_XML_TAGS = {"description": "description", "questions": "questions",
             "chosen_question": "chosen_question", "answer": "answer"}


@style("xml_tags")
def xml_tags(sections, rng):
    blocks = []
    for key, value in sections.items():
        tag, text = _XML_TAGS[key], _body(key, value)
        if not text or ("\n" not in text and rng.random() < 0.5):
            blocks.append(f"<{tag}>{text}</{tag}>")
        else:
            blocks.append(f"<{tag}>\n{text}\n</{tag}>")
    return rng.choice(("\n", "\n\n")).join(blocks)


def _json_object(sections: Sections, rng: random.Random) -> str:
    names = {"description": "description", "questions": "questions", "answer": "answer",
             "chosen_question": rng.choice(("question", "chosen_question"))}
    return json.dumps({names[key]: value for key, value in sections.items()},
                      indent=rng.choice((None, 2, 4)))


@style("json")
def json_object(sections, rng):
    return _json_object(sections, rng)


@style("json_fenced")
def json_fenced(sections, rng):
    return f"```json\n{_json_object(sections, rng)}\n```"


@style("fenced", wrap=_fence)
def fenced(sections, rng):
    return _fence(_labelled(sections, _h3), rng)


@style("preamble_signoff")
def preamble_signoff(sections, rng):
    return f"{rng.choice(PREAMBLES)}\n\n{_labelled(sections, _h3)}\n\n{rng.choice(SIGN_OFFS)}"


@style("text_plain", ("text",))
def text_plain(sections, rng):
    return sections["answer"]


@style("text_answer_label", ("text",), answer_heading=True)
def text_answer_label(sections, rng):
    head = rng.choice(("Answer:", "### Answer", "**Answer:**", "## Answer"))
    answer = sections["answer"]
    if not answer:
        return head
    if head.endswith(":") and rng.random() < 0.5:
        return f"{head} {answer}"
    return f"{head}\n{answer}"


@style("text_fenced", ("text",), wrap=_markdown_fence)
def text_fenced(sections, rng):
    return _markdown_fence(sections["answer"], rng)


@style("text_preamble_signoff", ("text",))
def text_preamble_signoff(sections, rng):
    return f"{rng.choice(TEXT_PREAMBLES)}\n\n{sections['answer']}\n\n{rng.choice(SIGN_OFFS)}"


# --- cases -----------------------------------------------------------------------------------

@dataclass
class Case:
    style: str
    malformation: str | None  # None: well formed
    mode: str
    text: str
    expected: dict | None = None  # the fields parse_response must return (well-formed cases)
    expected_reason: str | None = None  # the InvalidResponse reason (malformed cases)
    index: int = 0

    @property
    def id(self) -> str:
        return f"{self.mode}-{self.style}-{self.malformation or 'well_formed'}-{self.index}"


def styles_for(mode: str) -> list[Style]:
    return [s for s in STYLES.values() if mode in s.modes]


def malformations_for(mode: str, style: Style) -> tuple[str | None, ...]:
    if mode == "text":
        empty = ("empty_section",) if style.answer_heading else ()
        return (None, *empty, "answer_too_short", "refusal", "empty_response")
    laion_only = ("question_count", "not_a_question")
    return (None, *(m for m in MALFORMATIONS if mode == "laion" or m not in laion_only))


def expected_fields(mode: str, content: Content) -> dict:
    if mode == "laion":
        return {"description": content.description, "questions": list(content.questions),
                "question": content.question, "answer": content.answer}
    if mode == "vflan":
        return {"description": content.description, "answer": content.answer}
    return {"answer": content.answer}


def make_case(mode: str, style: Style, malformation: str | None, rng: random.Random,
              index: int = 0) -> Case:
    slots = _slots(rng)
    content = make_content(rng, rng.choice((3, 4)) if malformation == "question_count"
                           else NUM_QUESTIONS, slots)
    full = {"description": content.description, "questions": list(content.questions),
            "chosen_question": content.chosen, "answer": content.answer}
    sections = {key: full[key] for key in KEYS[mode]}
    case = Case(style.name, malformation, mode, "", index=index)
    if malformation is None:
        case.expected = expected_fields(mode, content)
    else:
        case.expected_reason = malformation
    if malformation == "missing_section":
        del sections[rng.choice(list(sections))]
    elif malformation == "empty_section":
        key = rng.choice(list(sections))
        sections[key] = [] if key == "questions" else ""
    elif malformation == "not_a_question":
        sections["chosen_question"] = rng.choice(NOT_QUESTIONS).format(**slots)
    elif malformation == "answer_too_short":
        sections["answer"] = rng.choice(SHORT_ANSWERS)
    elif malformation == "refusal":
        refusal = rng.choice(REFUSALS)
        if rng.random() < 0.5:  # the whole reply
            case.text = style.wrap(refusal, rng)
            return case
        sections["answer"] = refusal  # laid out as asked, with a refusal for the answer
    elif malformation == "empty_response":
        case.text = style.wrap(rng.choice(BLANKS), rng)
        return case
    case.text = style.render(sections, rng)
    return case


def generate_cases(seed: int = 0, per_combination: int = 2, well_formed: int = 4) -> list[Case]:
    """`per_combination` malformed cases for every mode x style x malformation the style applies
    to, and `well_formed` well-formed ones for every mode x style.

    Each case has its own generator, seeded from (seed, mode, style, malformation, index), so a
    case does not change when styles are added or removed.
    """
    cases = []
    for mode in MODES:
        for style_ in styles_for(mode):
            for malformation in malformations_for(mode, style_):
                count = well_formed if malformation is None else per_combination
                for index in range(count):
                    rng = random.Random(f"{seed}/{mode}/{style_.name}/{malformation}/{index}")
                    cases.append(make_case(mode, style_, malformation, rng, index))
    return cases


# --- report ----------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def load_parser(rev: str | None = None) -> types.ModuleType:
    """allava.synth.parsing as it is in the working tree, or its file at git revision `rev`."""
    if rev is None:
        return allava.synth.parsing
    path = "src/allava/synth/parsing.py"
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"parsing_at_{rev}")
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def outcome(case: Case,
            parser: types.ModuleType = allava.synth.parsing) -> tuple[bool, str, object]:
    """(right?, what happened in a few words, the parser's fields or error)."""
    try:
        fields = parser.parse_response(case.mode, case.text)
    except parser.InvalidResponse as error:
        if case.malformation is None:
            return False, f"well-formed -> {error.reason}", error
        return error.reason == case.expected_reason, f"{case.malformation} -> {error.reason}", error
    except Exception as error:  # noqa: BLE001 - a crash is an outcome to report
        return False, f"crash {type(error).__name__}", error
    if case.malformation is not None:
        return False, f"{case.malformation} -> kept", fields
    wrong = sorted(key for key in set(fields) | set(case.expected)
                   if fields.get(key) != case.expected.get(key))
    return not wrong, f"wrong {'+'.join(wrong)}" if wrong else "ok", fields


def summary_table(cases: list[Case], parser: types.ModuleType = allava.synth.parsing) -> str:
    rows = ["| style | modes | well-formed kept | malformed rejected, right reason "
            "| wrong outcome | most common wrong outcomes |",
            "|---|---|---|---|---|---|"]
    totals = Counter()
    for name in STYLES:
        mine = [case for case in cases if case.style == name]
        if not mine:
            continue
        good, bad, wrong, modes = Counter(), Counter(), Counter(), []
        for case in mine:
            right, what, _ = outcome(case, parser)
            kind = "well" if case.malformation is None else "mal"
            (good if right else bad)[kind] += 1
            if not right:
                wrong[what] += 1
            if case.mode not in modes:
                modes.append(case.mode)
        well, mal = good["well"] + bad["well"], good["mal"] + bad["mal"]
        common = ", ".join(f"{what} x{n}" for what, n in wrong.most_common(3))
        rows.append(f"| {name} | {'/'.join(modes)} | {good['well']}/{well} | {good['mal']}/{mal} "
                    f"| {sum(wrong.values())} | {common} |")
        totals.update({"good_well": good["well"], "well": well, "good_mal": good["mal"],
                       "mal": mal, "wrong": sum(wrong.values())})
    rows.append(f"| **all** | {'/'.join(MODES)} | {totals['good_well']}/{totals['well']} "
                f"| {totals['good_mal']}/{totals['mal']} | {totals['wrong']} |  |")
    return "\n".join(rows)


def show_failures(cases: list[Case], per_style: int,
                  parser: types.ModuleType = allava.synth.parsing) -> str:
    out = []
    for name in STYLES:
        failures = [(case, what, got) for case in cases if case.style == name
                    for right, what, got in [outcome(case, parser)] if not right][:per_style]
        for case, what, got in failures:
            want = case.expected if case.malformation is None else case.expected_reason
            out.append(f"--- {case.id}: {what}\n{case.text}\n... expected: {want!r}\n"
                       f"... got: {got!r}\n")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-combination", type=int, default=2,
                        help="malformed cases per mode x style x malformation")
    parser.add_argument("--well-formed", type=int, default=4,
                        help="well-formed cases per mode x style")
    parser.add_argument("--failures", type=int, default=0, metavar="N",
                        help="also print up to N failing cases per style")
    parser.add_argument("--rev", help="test parsing.py as it is at this git revision")
    args = parser.parse_args(argv)
    cases = generate_cases(args.seed, args.per_combination, args.well_formed)
    under_test = load_parser(args.rev)
    print(f"{len(cases)} cases (seed {args.seed}; per mode x style: {args.well_formed} well "
          f"formed, {args.per_combination} per malformation); parser: "
          f"{args.rev or 'working tree'}\n")
    print(summary_table(cases, under_test))
    if args.failures:
        print("\n" + show_failures(cases, args.failures, under_test))


if __name__ == "__main__":
    main()
