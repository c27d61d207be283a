"""The chat-completions request body, as OpenAI clients send it, and what this server refuses.

Fields the server does not implement are refused by name when they would change the answer
(`n` > 1, tools, log-probabilities, penalties, JSON output); harmless ones (`user`, `metadata`,
`store`, ...) are accepted and ignored, as OpenAI-compatible servers do.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from allava.serve.errors import APIError, bad_request

MAX_STOP_STRINGS = 4  # OpenAI's limit


class ImageURL(BaseModel):
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    """One part of a message's content; `conversation` says which types are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    ignore_eos: bool = False  # vLLM's extension: answer up to max_tokens whatever the model says
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None

    def answer_limit(self) -> int | None:
        """`max_completion_tokens` (OpenAI's current name) or else `max_tokens`."""
        return self.max_completion_tokens if self.max_completion_tokens is not None \
            else self.max_tokens

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP_STRINGS:
            raise bad_request(f"stop takes at most {MAX_STOP_STRINGS} strings, got {len(stops)}",
                              param="stop")
        if any(not s for s in stops):
            raise bad_request("stop strings must not be empty", param="stop")
        return tuple(stops)


def unsupported(name: str) -> APIError:
    return bad_request(f"{name} is not supported by this server", param=name)


def check_supported(request: ChatCompletionRequest) -> None:
    """Refuses (400) what this server cannot do, naming the field."""
    if request.n not in (None, 1):
        raise bad_request(f"n={request.n}: this server writes one choice per request (n=1)",
                          param="n")
    if request.stream_options is not None and not request.stream:
        raise bad_request("stream_options is only allowed when stream is true",
                          param="stream_options")
    form = (request.response_format or {}).get("type", "text")
    if form != "text":
        raise bad_request(f"response_format {form!r} is not supported by this server (no "
                          "structured output); send free text", param="response_format")
    refused = {"tools": request.tools, "functions": request.functions,
               "logprobs": request.logprobs, "top_logprobs": request.top_logprobs,
               "frequency_penalty": request.frequency_penalty,
               "presence_penalty": request.presence_penalty, "logit_bias": request.logit_bias}
    for name, value in refused.items():
        if value:  # None, 0, False and empty collections ask for nothing
            raise unsupported(name)
