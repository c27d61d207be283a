"""ALLaVA-format conversations to chat messages, and the chat template applied to them."""
from __future__ import annotations

from typing import Any

IMAGE_TAG = "<image>"

# The chat format of the released ALLaVA models: `[INST] {question} [/INST] {answer}{eos}`.
# Used when a tokenizer has no template of its own (and by the toy tokenizer).
ALLAVA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)

# ChatML (SmolLM2's, Qwen2's format) without a default system turn: SmolLM2's own template
# prepends a 20-token system prompt to every sample, a fifth of a toy sample's length.
CHATML_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
NAMED_CHAT_TEMPLATES = {"allava": ALLAVA_CHAT_TEMPLATE, "chatml": CHATML_CHAT_TEMPLATE}

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
          "system": "system"}


class MalformedConversation(ValueError):
    """A record whose conversation cannot be trained on; `reason` is a short stable key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def to_messages(conversations: list[dict[str, Any]], needs_answer: bool = True
                ) -> list[dict[str, str]]:
    """`[{"from": "human", "value": ...}, ...]` -> `[{"role": "user", "content": ...}, ...]`,
    checking that turns alternate user/assistant (an optional system turn first) and, unless
    `needs_answer` is False (a prompt, which ends with a question), that there is at least
    one assistant turn."""
    if not isinstance(conversations, list) or not conversations:
        raise MalformedConversation("no_conversation")
    messages = []
    for turn in conversations:
        if not isinstance(turn, dict):
            raise MalformedConversation("malformed_turn", repr(turn)[:80])
        speaker = turn.get("from", turn.get("role"))
        role = _ROLES.get(speaker)
        if role is None:
            raise MalformedConversation("unknown_role", repr(speaker))
        content = turn.get("value", turn.get("content"))
        if not isinstance(content, str) or not content.strip():
            raise MalformedConversation("empty_turn")
        messages.append({"role": role, "content": content})
    body = messages[1:] if messages[0]["role"] == "system" else messages
    for position, message in enumerate(body):
        expected = "user" if position % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise MalformedConversation("turns_not_alternating")
    if needs_answer and not any(m["role"] == "assistant" for m in body):
        raise MalformedConversation("no_assistant_turn")
    return messages


def set_chat_template(tokenizer, choice: str | None = None) -> None:
    """`choice` (model.llm.chat_template): None keeps the tokenizer's own template and gives
    ALLaVA's to a tokenizer without one (Phi-2's, the base StableLM-2's); a name of
    NAMED_CHAT_TEMPLATES forces that one ("allava": the released models' format, "chatml":
    ChatML with no default system turn); any other string is a Jinja template."""
    if choice in NAMED_CHAT_TEMPLATES:
        tokenizer.chat_template = NAMED_CHAT_TEMPLATES[choice]
    elif choice:
        tokenizer.chat_template = choice
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = ALLAVA_CHAT_TEMPLATE


def ensure_image_token(tokenizer) -> int:
    """Adds `<image>` as a special token when missing; returns its id."""
    if IMAGE_TAG not in tokenizer.get_vocab():
        add_special_markers(tokenizer, [IMAGE_TAG])
    return tokenizer.convert_tokens_to_ids(IMAGE_TAG)


def add_special_markers(tokenizer, markers: list[str]) -> None:
    """Adds tokens that must never be split or merged with text (works on transformers 4 and 5)."""
    from tokenizers import AddedToken

    tokenizer.add_tokens([AddedToken(m, special=True, normalized=False) for m in markers],
                         special_tokens=True)


# Renders a message's content whether it is a string or a list of parts
# (`{"type": "image"}`, `{"type": "text", "text": ...}`), the form transformers' processors and
# OpenAI clients send; an image part becomes `<image>` followed by a newline, as in training data.
_CONTENT_MACRO = (
    "{%- macro allava_content(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part['type'] in ('image', 'image_url') -%}{{ '<image>\n' }}"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)
# `image_placement: after_text`: a turn that starts with `<image>\n` (8 characters) becomes its
# text, a newline, `<image>` (as `VLMProcessor._place_image` does).
_AFTER_TEXT_MACRO = (
    "{%- macro allava_after_text(content) -%}"
    "{%- if content.startswith('<image>\n') -%}{{ content[8:] ~ '\n<image>' }}"
    "{%- else -%}{{ content }}{%- endif -%}"
    "{%- endmacro -%}"
)
_CONTENT_SPELLINGS = ("message['content']", 'message["content"]', "message.content")


def multimodal_chat_template(template: str, image_placement: str = "as_written") -> str:
    """`template` made to accept content given as a list of parts as well as a string, and to
    place images as training did (`image_placement`), so that a processor outside this package
    writes the very prompts the model was trained on.

    Only templates that read a turn's content as `message['content']` (or `message.content`)
    can be rewritten; any other raises, naming the template's choice to make."""
    if not any(spelling in template for spelling in _CONTENT_SPELLINGS):
        raise ValueError("the chat template reads no message['content']; cannot teach it image "
                         "parts (set model.llm.chat_template to 'allava', 'chatml' or a "
                         "template that reads message['content'])")
    wrap = "allava_content({})"
    if image_placement == "after_text":  # parts to text first, then the image moved
        wrap = "allava_after_text(allava_content({}))"
    rewritten = template
    for spelling in _CONTENT_SPELLINGS:
        rewritten = rewritten.replace(spelling, wrap.format(spelling))
    prefix = _CONTENT_MACRO + (_AFTER_TEXT_MACRO if image_placement == "after_text" else "")
    return prefix + rewritten
