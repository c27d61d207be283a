"""allava-synth: prompt templates, parsing and validation of teacher replies, output records."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from allava.synth.parsing import HEADINGS, REASONS, SECTIONS, InvalidResponse, parse_response
from allava.synth.prompts import (
    MODES,
    PROMPT_DIR,
    PROMPT_SETS,
    PromptSet,
    build_messages,
    load_caption_instructions,
    load_prompts,
)
from allava.synth.records import (
    caption_record,
    instruct_record,
    pick_caption_instruction,
    text_record,
)

DESCRIPTION = ("A red bicycle leans against a weathered brick wall next to a wooden door whose blue "
               "paint is peeling. A potted fern sits on the step, and late sunlight throws long "
               "shadows across the cobblestones.")
QUESTIONS = [
    "What colour is the bicycle's frame?",
    "How is the bicycle positioned relative to the door?",
    "Why might the owner have left the bicycle unlocked here?",
    "What period of construction does the brickwork suggest?",
    "What is likely to happen to the door's paint over the coming years?",
]
ANSWER = ("The owner is probably inside the building for a short visit. The bicycle stands right "
          "beside the door rather than at a rack, which suggests a quick stop, and the quiet "
          "cobbled lane makes theft feel unlikely to a local resident.")
CHOSEN = QUESTIONS[2]
EXPECTED_LAION = {"description": DESCRIPTION, "questions": QUESTIONS, "question": CHOSEN,
                  "answer": ANSWER}


def laion_reply(h=("### Description", "### Questions", "### Chosen question", "### Answer"),
                numbering="{n}. ", order=(0, 1, 2, 3), chosen=CHOSEN, questions=QUESTIONS,
                answer=ANSWER) -> str:
    bodies = [DESCRIPTION,
              "\n".join(numbering.format(n=i + 1) + q for i, q in enumerate(questions)),
              chosen, answer]
    return "\n\n".join(f"{h[i]}\n{bodies[i]}" for i in order) + "\n"


def vflan_reply(h=("### Description", "### Answer"), order=(0, 1)) -> str:
    bodies = [DESCRIPTION, ANSWER]
    return "\n\n".join(f"{h[i]}\n{bodies[i]}" for i in order)


def reason_of(mode: str, text: str, **kwargs) -> str:
    with pytest.raises(InvalidResponse) as caught:
        parse_response(mode, text, **kwargs)
    assert caught.value.reason in REASONS
    return caught.value.reason


# --- well-formed replies -------------------------------------------------------------------------

def test_well_formed_laion_reply_parses_into_its_fields():
    assert parse_response("laion", laion_reply()) == EXPECTED_LAION


def test_well_formed_vflan_reply_parses_into_its_fields():
    assert parse_response("vflan", vflan_reply()) == {"description": DESCRIPTION, "answer": ANSWER}


def test_text_reply_is_the_answer_with_its_markdown_kept():
    reply = f"## Overview\n\n{ANSWER}\n\n- first point\n- **second** point\n"
    assert parse_response("text", reply) == {"answer": reply.strip()}


def test_multi_paragraph_sections_keep_their_inner_layout():
    answer = f"{ANSWER}\n\n1. First, the setting.\n2. Second, the lock."
    assert parse_response("laion", laion_reply(answer=answer))["answer"] == answer


# --- tolerated variations ------------------------------------------------------------------------

LAION_VARIANTS = {
    "bold headings": laion_reply(h=("**Description**", "**Questions**", "**Chosen question**",
                                    "**Answer**")),
    "bold headings with colon inside": laion_reply(
        h=("**Description:**", "**Questions:**", "**Chosen Question:**", "**Answer:**")),
    "bold headings with colon outside": laion_reply(
        h=("**Description**:", "**Questions**:", "**Chosen question**:", "**Answer**:")),
    "plain headings with colon": laion_reply(
        h=("Description:", "Questions:", "Chosen question:", "Answer:")),
    "one hash, upper case": laion_reply(h=("# DESCRIPTION", "# QUESTIONS", "# CHOSEN QUESTION",
                                           "# ANSWER")),
    "two hashes with colons": laion_reply(h=("## Description:", "## Questions:",
                                             "## Chosen question:", "## Answer:")),
    "hash and bold": laion_reply(h=("### **Description**", "### **Questions**",
                                    "### **Chosen question**", "### **Answer**")),
    "numbered headings": laion_reply(h=("### 1. Description", "### 2. Questions",
                                        "### 3. Chosen question", "### 4. Answer")),
    "extra spaces in headings": laion_reply(h=("###   Description  ", "  ### Questions",
                                               "###  Chosen   question ", "### Answer   ")),
    "different order": laion_reply(order=(3, 1, 0, 2)),
    "CRLF line ends": laion_reply().replace("\n", "\r\n"),
    "code fence": "```\n" + laion_reply() + "```",
    "markdown code fence": "```markdown\n" + laion_reply() + "\n```\n",
    "preamble": "Sure! Here is the analysis you asked for.\n\n" + laion_reply(),
    "horizontal rules between sections": laion_reply().replace("\n\n###", "\n\n---\n\n###"),
    "numbering 1)": laion_reply(numbering="{n}) "),
    "numbering (1)": laion_reply(numbering="({n}) "),
    "numbering Q1:": laion_reply(numbering="Q{n}: "),
    "numbering Question 1:": laion_reply(numbering="Question {n}: "),
    "dash bullets": laion_reply(numbering="- "),
    "star bullets": laion_reply(numbering="* "),
    "bold numbers": laion_reply(numbering="**{n}.** "),
    "indented numbers": laion_reply(numbering="   {n}. "),
    "blank lines between questions": laion_reply(numbering="\n{n}. "),
    "chosen question numbered": laion_reply(chosen="3. " + CHOSEN),
    "chosen question as Q3:": laion_reply(chosen="Q3: " + CHOSEN),
    "chosen question in bold and quotes": laion_reply(chosen=f'**"{CHOSEN}"**'),
    "chosen question as a reference": laion_reply(chosen="Question 3"),
    "chosen question with a remark after it": laion_reply(
        chosen=CHOSEN + "\n\nThis one allows the richest answer."),
}


@pytest.mark.parametrize("reply", LAION_VARIANTS.values(), ids=LAION_VARIANTS.keys())
def test_laion_variations_parse_to_the_same_fields(reply):
    assert parse_response("laion", reply) == EXPECTED_LAION


def test_inline_content_after_a_heading_colon_is_kept():
    reply = (f"Description: {DESCRIPTION}\n\nQuestions:\n"
             + "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS))
             + f"\n\n**Chosen question:** {CHOSEN}\n\n## Answer: {ANSWER}\n")
    assert parse_response("laion", reply) == EXPECTED_LAION


def test_bold_inside_questions_is_removed_but_kept_in_the_answer():
    bold = [q.replace("bicycle", "**bicycle**") for q in QUESTIONS]
    answer = ANSWER.replace("quick stop", "**quick stop**")
    parsed = parse_response("laion", laion_reply(questions=bold, chosen=bold[2], answer=answer))
    assert parsed["questions"] == QUESTIONS
    assert parsed["question"] == CHOSEN
    assert "**quick stop**" in parsed["answer"]


def test_a_question_wrapped_over_two_lines_is_one_question():
    block = "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS))
    block = block.replace("relative to", "relative\n   to")
    reply = laion_reply().replace(
        "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS)), block)
    assert parse_response("laion", reply)["questions"] == QUESTIONS


def test_commentary_and_sub_bullets_in_the_question_list_are_not_questions():
    block = ("Here are five questions:\n"
             + "\n".join(f"{i + 1}. {q}\n   - hint: look closely" for i, q in enumerate(QUESTIONS))
             + "\nThese cover five different aspects.")
    reply = laion_reply().replace(
        "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS)), block)
    assert parse_response("laion", reply)["questions"] == QUESTIONS


def test_unnumbered_questions_one_per_line_are_accepted():
    parsed = parse_response("laion", laion_reply(numbering=""))
    assert parsed["questions"] == QUESTIONS


def test_more_than_five_questions_keeps_the_first_five():
    extra = QUESTIONS + ["Which season does the light suggest?"]
    assert parse_response("laion", laion_reply(questions=extra))["questions"] == QUESTIONS


def test_a_paraphrased_chosen_question_is_accepted_as_written():
    paraphrase = "Why would someone leave this bicycle unlocked by the door?"
    parsed = parse_response("laion", laion_reply(chosen="4. " + paraphrase))
    assert parsed["question"] == paraphrase


VFLAN_VARIANTS = {
    "different order": vflan_reply(order=(1, 0)),
    "bold headings": vflan_reply(h=("**Description:**", "**Answer:**")),
    "## Answer:": vflan_reply(h=("## Description:", "## Answer:")),
    "plain headings": vflan_reply(h=("Description", "Answer")),
    "CRLF and fence": ("```\n" + vflan_reply() + "\n```").replace("\n", "\r\n"),
    "preamble": "Certainly.\n\n" + vflan_reply(),
}


@pytest.mark.parametrize("reply", VFLAN_VARIANTS.values(), ids=VFLAN_VARIANTS.keys())
def test_vflan_variations_parse_to_the_same_fields(reply):
    assert parse_response("vflan", reply) == {"description": DESCRIPTION, "answer": ANSWER}


def test_text_mode_unwraps_a_markdown_fence_and_drops_an_answer_heading():
    assert parse_response("text", f"```markdown\n### Answer\n{ANSWER}\n```") == {"answer": ANSWER}
    assert parse_response("text", f"**Answer:** {ANSWER}") == {"answer": ANSWER}


def test_text_mode_keeps_an_answer_that_is_one_bare_code_block():
    code = "```\nSELECT name, COUNT(*) AS orders FROM customers JOIN orders USING (id) GROUP BY name;\n```"
    assert parse_response("text", code, min_answer_words=3) == {"answer": code}


def test_a_heading_inside_a_code_block_or_repeated_is_ordinary_text():
    answer = f"{ANSWER}\n\n```python\n# Description\nx = 1\n```\n\nAnswer: the owner is inside."
    parsed = parse_response("vflan", vflan_reply().replace(ANSWER, answer))
    assert parsed == {"description": DESCRIPTION, "answer": answer}


def test_a_heading_inside_a_code_block_does_not_open_a_section():
    answer = f"{ANSWER}\n\n```python\n# Description\nx = 1\n```"
    reply = f"### Answer\n{answer}\n\n### Description\n{DESCRIPTION}"
    assert parse_response("vflan", reply) == {"description": DESCRIPTION, "answer": answer}


def test_a_sentence_starting_with_a_section_name_is_not_a_heading():
    answer = f"{ANSWER}\nAnswering this fully also needs the time of day."
    parsed = parse_response("vflan", vflan_reply().replace(ANSWER, answer))
    assert parsed["answer"] == answer


# --- rejections ---------------------------------------------------------------------------------

REFUSALS = [
    "I'm sorry, but I can't help with identifying people in images.",
    "I\u2019m sorry, but I can\u2019t assist with that request.",
    "Sorry, I cannot describe this picture.",
    "I cannot help with that.",
    "I am unable to provide a description of this image.",
    "As an AI, I do not have the ability to see pictures, but I can try to help otherwise.",
    "**I apologize, but** this request is outside what I can do.",
    "Unfortunately, I can't view the attached file. Please send it again in another format.",
]


@pytest.mark.parametrize("reply", REFUSALS)
@pytest.mark.parametrize("mode", MODES)
def test_a_refusal_reply_is_rejected_in_every_mode(mode, reply):
    assert reason_of(mode, reply) == "refusal"


def test_a_refusal_inside_the_answer_section_is_rejected():
    refusal = "I'm sorry, but I can't speculate about why a person would do that with this bike."
    assert reason_of("laion", laion_reply(answer=refusal)) == "refusal"
    assert reason_of("vflan", vflan_reply().replace(ANSWER, refusal)) == "refusal"


def test_a_refusal_in_the_description_is_rejected():
    reply = laion_reply().replace(DESCRIPTION, "I am unable to describe the people in this picture.")
    assert reason_of("laion", reply) == "refusal"


@pytest.mark.parametrize("answer", [
    "The bridge looks solid, but its narrow deck cannot carry heavy trucks, so a weight limit "
    "sign stands at the entrance and I cannot stress enough how sensible that is.",
    "Engineers often say that as an AI system matures, it needs more data; I cannot help "
    "noticing that this photo shows exactly such a server room.",
    "Many people cannot resist a fresh croissant. I'm sorry to say the bakery in the scene "
    "looks closed, because its shutters are down and its lights are off.",
])
def test_cannot_in_ordinary_prose_is_not_a_refusal(answer):
    assert parse_response("text", answer) == {"answer": answer}
    assert parse_response("laion", laion_reply(answer=answer))["answer"] == answer


@pytest.mark.parametrize("reply", ["", "   \r\n\t", "```\n\n```"])
def test_an_empty_reply_is_rejected(reply):
    assert reason_of("laion", reply) == "empty_response"
    assert reason_of("text", reply) == "empty_response"


@pytest.mark.parametrize("heading", ["### Description", "### Questions", "### Chosen question",
                                     "### Answer"])
def test_a_missing_section_is_rejected_and_named(heading):
    reply = laion_reply().replace(heading + "\n", "")
    with pytest.raises(InvalidResponse) as caught:
        parse_response("laion", reply)
    assert caught.value.reason == "missing_section"
    assert heading.removeprefix("### ").lower() in caught.value.detail


def test_a_reply_without_any_headings_is_missing_sections():
    assert reason_of("vflan", f"{DESCRIPTION}\n\n{ANSWER}") == "missing_section"


def test_an_empty_section_is_rejected():
    reply = vflan_reply().replace(DESCRIPTION, "")
    assert reason_of("vflan", reply) == "empty_section"
    assert reason_of("laion", laion_reply(answer="---")) == "empty_section"


@pytest.mark.parametrize("count", [0, 1, 4])
def test_fewer_than_five_questions_is_rejected(count):
    reply = laion_reply(questions=QUESTIONS[:count] or ["Nothing to ask here."])
    assert reason_of("laion", reply) == "question_count"


def test_a_chosen_question_without_a_question_mark_is_rejected():
    assert reason_of("laion", laion_reply(chosen="The third one.")) == "not_a_question"
    assert reason_of("laion", laion_reply(chosen="Question 9")) == "not_a_question"


def test_answer_length_limits():
    short = "Because he is inside."
    assert reason_of("laion", laion_reply(answer=short)) == "answer_too_short"
    assert reason_of("vflan", vflan_reply().replace(ANSWER, short)) == "answer_too_short"
    assert reason_of("text", short) == "answer_too_short"
    assert parse_response("text", short, min_answer_words=4) == {"answer": short}
    assert reason_of("text", ANSWER, max_answer_chars=50) == "answer_too_long"
    assert reason_of("laion", laion_reply(answer=ANSWER * 40)) == "answer_too_long"


def test_invalid_response_carries_reason_and_detail_and_only_known_reasons():
    error = InvalidResponse("refusal", "the answer is a refusal")
    assert isinstance(error, ValueError)
    assert (error.reason, error.detail) == ("refusal", "the answer is a refusal")
    assert "refusal" in str(error)
    with pytest.raises(ValueError):
        InvalidResponse("made_up_reason", "x")
    assert len(set(REASONS)) == len(REASONS)


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="laion.*vflan.*text"):
        parse_response("coco", "anything")


# --- layouts other than the prompt's ----------------------------------------------------------

TAG_CONTENT = {"description": DESCRIPTION, "question": CHOSEN, "answer": ANSWER,
               "candidate questions": "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS))}


def tagged(order=("description", "candidate questions", "question", "answer"), end_tags=True,
           style="allava") -> str:
    parts = []
    for tag in order:
        if style == "allava":
            parts.append(f"<start of {tag}>\n{TAG_CONTENT[tag]}\n" + (f"<end of {tag}>" if end_tags else ""))
        else:
            name = tag.replace(" ", "_").upper()
            parts.append(f"<{name}>{TAG_CONTENT[tag]}</{name}>")
    return "\n\n".join(parts)


@pytest.mark.parametrize("reply", [
    tagged(),
    tagged(end_tags=False),
    tagged(order=("question", "answer", "description", "candidate questions")),
    "Here is my work.\n" + tagged() + "\nLet me know if you need anything else.",
    tagged(style="xml"),
    tagged().replace("<start of", "<START OF").replace("<end of", "<End Of"),
    tagged().replace("<start of candidate questions>", "<start_of_candidate_questions>"),
], ids=["allava", "no-end-tags", "any-order", "preamble-sign-off", "xml", "case", "underscores"])
def test_tagged_sections_are_read(reply):
    assert parse_response("laion", reply) == EXPECTED_LAION


@pytest.mark.parametrize("fenced", [False, True])
def test_a_json_object_is_read(fenced):
    data = {"image_description": DESCRIPTION, "candidate_questions": QUESTIONS,
            "chosen_question": 3, "detailed-answer": ANSWER}
    reply = json.dumps(data, indent=2)
    if fenced:
        reply = f"Here you go:\n```json\n{reply}\n```"
    assert parse_response("laion", reply) == EXPECTED_LAION


@pytest.mark.parametrize("label", ["Description -", "Description \u2014", "DESCRIPTION:",
                                   "#### description", "**Image description**",
                                   "Caption:"])
def test_labels_in_other_styles_and_synonyms(label):
    reply = laion_reply().replace("### Description", label)
    assert parse_response("laion", reply) == EXPECTED_LAION


def test_synonyms_of_every_section():
    reply = laion_reply(h=("## Caption", "## Candidate questions", "## Selected question",
                           "## Response"))
    assert parse_response("laion", reply) == EXPECTED_LAION


def test_a_sign_off_after_the_last_section_is_not_part_of_it():
    reply = laion_reply() + "\nI hope this helps! Let me know if you have more questions."
    assert parse_response("laion", reply)["answer"] == ANSWER
    text = ANSWER + "\n\nFeel free to ask if anything is unclear."
    assert parse_response("text", text) == {"answer": ANSWER}


def test_vflan_reads_past_an_echoed_question():
    reply = f"**Question:** Why is it here?\n**Description:** {DESCRIPTION}\n**Response:** {ANSWER}"
    assert parse_response("vflan", reply) == {"description": DESCRIPTION, "answer": ANSWER}


def test_text_mode_reads_a_tagged_answer_but_not_a_label_in_the_middle():
    assert parse_response("text", f"<start of answer>\n{ANSWER}\n<end of answer>") == {"answer": ANSWER}
    inner = f"First, work it out step by step.\nAnswer: {ANSWER}"
    assert parse_response("text", inner) == {"answer": inner}


# --- prompts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_prompts_load_for_every_mode(mode):
    prompts = load_prompts(mode)
    assert isinstance(prompts, PromptSet) and prompts.mode == mode
    assert prompts.system.strip() and prompts.user.strip()
    assert isinstance(prompts.max_tokens, int) and prompts.max_tokens >= 500
    assert 0.0 <= prompts.temperature <= 1.0
    assert (PROMPT_DIR / f"{mode}.yaml").read_text().lstrip().startswith("#")  # the explanation


@pytest.mark.parametrize("mode", MODES)
def test_every_prompt_asks_for_the_headings_the_parser_needs_in_order(mode):
    prompts = load_prompts(mode)
    lines = [line.strip() for line in (prompts.system + "\n" + prompts.user).split("\n")]
    wanted = [HEADINGS[key] for key in SECTIONS[mode]]
    assert [line for line in lines if line in HEADINGS.values()] == wanted
    if mode == "text":
        assert not any(line.startswith("#") for line in lines)


@pytest.mark.parametrize("mode", ["laion", "vflan"])
def test_a_reply_laid_out_as_the_prompt_asks_parses(mode):
    """Fill each heading line of the prompt with content: the parser must accept the result."""
    prompts = load_prompts(mode)
    content = {"### Description": DESCRIPTION, "### Chosen question": CHOSEN, "### Answer": ANSWER,
               "### Questions": "\n".join(f"{i + 1}. {q}" for i, q in enumerate(QUESTIONS))}
    headings = [line.strip() for line in prompts.user.split("\n")
                if line.strip() in content]
    reply = "\n\n".join(f"{heading}\n{content[heading]}" for heading in headings)
    parsed = parse_response(mode, reply)
    assert parsed["description"] == DESCRIPTION and parsed["answer"] == ANSWER


@pytest.mark.parametrize("mode", MODES)
def test_the_allava_tags_set_asks_for_tagged_sections_and_such_a_reply_parses(mode):
    """Replace what the prompt puts between each tag pair with content: the result parses."""
    prompts = load_prompts(mode, prompt_set="allava_tags")
    assert (PROMPT_SETS["allava_tags"] / f"{mode}.yaml").read_text().lstrip().startswith("#")
    assert "###" not in prompts.user
    tags = re.findall(r"^<start of ([a-z ]+)>$", prompts.user, re.MULTILINE)
    assert tags == {"laion": ["description", "candidate questions", "question", "answer"],
                    "vflan": ["description", "answer"], "text": ["answer"]}[mode]
    reply = "\n".join(f"<start of {tag}>\n{TAG_CONTENT[tag]}\n<end of {tag}>" for tag in tags)
    parsed = parse_response(mode, reply)
    assert parsed["answer"] == ANSWER
    if mode == "laion":
        assert parsed == EXPECTED_LAION


def test_an_unknown_prompt_set_names_the_packaged_ones():
    with pytest.raises(ValueError, match="headings.*allava_tags"):
        load_prompts("laion", prompt_set="fancy")


def test_image_prompts_tell_the_teacher_not_to_mention_the_provided_image():
    for mode in ("laion", "vflan"):
        assert "image provided" in " ".join(load_prompts(mode).user.split())


def test_unknown_mode_lists_the_known_modes():
    with pytest.raises(ValueError) as caught:
        load_prompts("coco")
    assert all(mode in str(caught.value) for mode in MODES)


def write_prompt(directory: Path, mode: str, **data) -> None:
    (directory / f"{mode}.yaml").write_text(yaml.safe_dump(data))


def test_a_prompt_file_with_a_missing_key_names_the_file_and_key(tmp_path):
    write_prompt(tmp_path, "laion", system="s", user="u", max_tokens=100)
    with pytest.raises(ValueError, match=r"laion\.yaml.*temperature"):
        load_prompts("laion", tmp_path)


def test_a_prompt_file_is_checked_for_its_placeholder_and_types(tmp_path):
    write_prompt(tmp_path, "vflan", system="s", user="no placeholder", max_tokens=100,
                 temperature=0.2)
    with pytest.raises(ValueError, match=r"vflan\.yaml.*\{question\}"):
        load_prompts("vflan", tmp_path)
    write_prompt(tmp_path, "text", system="s", user="{instruction}", max_tokens="many",
                 temperature=0.2)
    with pytest.raises(ValueError, match="max_tokens"):
        load_prompts("text", tmp_path)
    with pytest.raises(FileNotFoundError, match="laion"):
        load_prompts("laion", tmp_path)


def test_an_edited_prompt_directory_is_used(tmp_path):
    write_prompt(tmp_path, "text", system="", user="Q: {instruction}", max_tokens=64, temperature=1)
    prompts = load_prompts("text", tmp_path)
    assert prompts == PromptSet("text", "", "Q: {instruction}", 64, 1.0)
    # an empty system prompt is left out of the messages
    assert build_messages(prompts, instruction="hi") == [{"role": "user", "content": "Q: hi"}]


def test_caption_instructions_load_and_vary():
    instructions = load_caption_instructions()
    assert 12 <= len(instructions) <= 20
    assert len(set(instructions)) == len(instructions)
    assert all(text.strip() and "<image>" not in text for text in instructions)


def test_caption_instructions_with_an_image_token_are_refused(tmp_path):
    path = tmp_path / "instructions.yaml"
    path.write_text(yaml.safe_dump({"instructions": ["<image>\nDescribe it."]}))
    with pytest.raises(ValueError, match="<image>"):
        load_caption_instructions(path)
    path.write_text(yaml.safe_dump({"instructions": []}))
    with pytest.raises(ValueError, match="instructions"):
        load_caption_instructions(path)


# --- messages ------------------------------------------------------------------------------------

IMAGE_URL = "data:image/jpeg;base64,/9j/4AAQ"


def test_laion_messages_put_the_image_before_the_text():
    prompts = load_prompts("laion")
    system, user = build_messages(prompts, image_data_url=IMAGE_URL)
    assert system == {"role": "system", "content": prompts.system}
    assert user["role"] == "user"
    assert user["content"] == [{"type": "image_url", "image_url": {"url": IMAGE_URL}},
                               {"type": "text", "text": prompts.user}]


def test_a_question_with_braces_is_rendered_literally():
    question = "Solve {x} + {0} = 3 and explain {instruction} and {question} in {{braces}}."
    prompts = load_prompts("vflan")
    _, user = build_messages(prompts, image_data_url=IMAGE_URL, question=question)
    assert user["content"][0]["type"] == "image_url"
    text = user["content"][1]["text"]
    assert text == prompts.user.replace("{question}", question)
    assert text.count(question) == 1


def test_an_edited_template_with_literal_braces_renders():
    prompts = PromptSet("vflan", "sys", 'Reply as JSON like {"answer": "..."}.\n{question}', 100, 0.0)
    _, user = build_messages(prompts, image_data_url=IMAGE_URL, question="What is {x}?")
    assert user["content"][1]["text"] == 'Reply as JSON like {"answer": "..."}.\nWhat is {x}?'


def test_text_messages_have_a_plain_string_with_the_instruction():
    prompts = load_prompts("text")
    messages = build_messages(prompts, instruction="Write a haiku about {rain}.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert isinstance(messages[1]["content"], str)
    assert "Write a haiku about {rain}." in messages[1]["content"]
    assert "{instruction}" not in messages[1]["content"]


@pytest.mark.parametrize("mode, fields, message", [
    ("laion", {}, "image_data_url"),
    ("vflan", {"image_data_url": IMAGE_URL}, "question"),
    ("vflan", {"question": "What is it?"}, "image_data_url"),
    ("text", {}, "instruction"),
    ("text", {"instruction": "   "}, "instruction"),
])
def test_missing_fields_are_refused(mode, fields, message):
    with pytest.raises(ValueError, match=message):
        build_messages(load_prompts(mode), **fields)


def test_fields_a_mode_does_not_use_are_ignored():
    """The engine passes every item's fields as they come; a stray one must not stop a run."""
    laion = load_prompts("laion")
    assert build_messages(laion, image_data_url=IMAGE_URL, question="Why?", instruction="x") == \
        build_messages(laion, image_data_url=IMAGE_URL)
    text = load_prompts("text")
    messages = build_messages(text, instruction="Hi {question}", question="Q", image_data_url=IMAGE_URL)
    assert messages[1]["content"] == text.user.replace("{instruction}", "Hi {question}")


# --- records -------------------------------------------------------------------------------------

def test_caption_record_schema():
    record = caption_record("allava_laion", "100277305", "images/100277305.jpeg", DESCRIPTION,
                            "Describe this image in detail.")
    assert record == {
        "id": "allava_laion_cap_100277305",
        "image": "images/100277305.jpeg",
        "conversations": [
            {"from": "human", "value": "<image>\nDescribe this image in detail."},
            {"from": "gpt", "value": DESCRIPTION},
        ],
    }
    assert json.loads(json.dumps(record)) == record


def test_instruct_record_schema():
    record = instruct_record("allava_vflan", "a+b_7", "images/a+b_7.png", CHOSEN, ANSWER)
    assert record == {
        "id": "allava_vflan_inst_a+b_7",
        "image": "images/a+b_7.png",
        "conversations": [{"from": "human", "value": "<image>\n" + CHOSEN},
                          {"from": "gpt", "value": ANSWER}],
    }


def test_text_record_has_no_image():
    record = text_record("evol", "42", "Explain recursion.", ANSWER)
    assert record == {"id": "evol_text_42",
                      "conversations": [{"from": "human", "value": "Explain recursion."},
                                        {"from": "gpt", "value": ANSWER}]}
    assert "<image>" not in json.dumps(record)


def test_pick_caption_instruction_is_deterministic_and_varies_across_ids():
    instructions = load_caption_instructions()
    ids = [f"item{i}" for i in range(200)]
    picks = [pick_caption_instruction(instructions, item_id) for item_id in ids]
    assert picks == [pick_caption_instruction(instructions, item_id) for item_id in ids]
    assert len(set(picks)) >= len(instructions) - 2  # spread over (nearly) all of them
    other_seed = [pick_caption_instruction(instructions, item_id, seed=1) for item_id in ids]
    assert other_seed != picks
    with pytest.raises(ValueError):
        pick_caption_instruction([], "item0")


def test_pick_caption_instruction_is_the_same_in_another_process():
    """A resumed run is a new process with a new hash() salt; the choice must not change."""
    instructions = load_caption_instructions()
    here = [pick_caption_instruction(instructions, f"id{i}") for i in range(20)]
    code = ("import json; from allava.synth.prompts import load_caption_instructions as l; "
            "from allava.synth.records import pick_caption_instruction as p; "
            "print(json.dumps([p(l(), f'id{i}') for i in range(20)]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == here


@pytest.mark.parametrize("opening, dropped", [
    ("Sure! Here is a detailed answer.", True), ("Here is my answer:", True),
    ("Certainly!", True), ("Sure, a bicycle left by a door is usually a short visit.", False),
    ("Here are the three reasons the owner is likely inside.", False)])
def test_text_mode_drops_an_opening_that_only_introduces_the_answer(opening, dropped):
    parsed = parse_response("text", f"{opening}\n\n{ANSWER}")
    assert parsed == {"answer": ANSWER if dropped else f"{opening}\n\n{ANSWER}"}
