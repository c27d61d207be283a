"""Structured output: ask the endpoint for a JSON object with the sections of a mode.

OpenAI's API (and vLLM, SGLang, Ollama) can constrain a reply to a JSON schema
(`response_format: {"type": "json_schema", ...}`): a reply that cannot miss a section or break
the layout. Endpoints that do not support it answer HTTP 400 naming the field; `--structured
auto` then switches the run to free text (the prompt's own layout) once, and the item is asked
again, so no item is lost. The parser reads the JSON reply like any other layout.
"""
from __future__ import annotations

import re

from allava.synth.parsing import NUM_QUESTIONS, SECTIONS
from allava.utils.chat_client import ChatRequestError

STRUCTURED_CHOICES = ("auto", "on", "off")

_STRING = {"type": "string"}
_FIELDS = {
    "description": _STRING,
    "questions": {"type": "array", "items": _STRING, "minItems": NUM_QUESTIONS,
                  "maxItems": NUM_QUESTIONS},
    "chosen_question": _STRING,
    "answer": _STRING,
}
# What an endpoint says when it does not know the parameter or the schema feature.
_REFUSAL = re.compile(r"response_format|json_schema|structured output|guided", re.IGNORECASE)


class StructuredOutputRefused(RuntimeError):
    """`--structured on` and the endpoint refuses response_format: the run stops."""


def response_format(mode: str) -> dict | None:
    """The `response_format` of a request in `mode`; None for text mode (a free answer)."""
    keys = SECTIONS[mode]
    if not keys:
        return None
    schema = {"type": "object", "properties": {key: _FIELDS[key] for key in keys},
              "required": list(keys), "additionalProperties": False}
    return {"type": "json_schema",
            "json_schema": {"name": f"allava_{mode}", "strict": True, "schema": schema}}


def refuses_structured_output(error: ChatRequestError) -> bool:
    """A 400 (or 422) whose message names response_format or the schema."""
    return (error.reason == "bad_request" and error.status in (400, 422)
            and _REFUSAL.search(error.message) is not None)
