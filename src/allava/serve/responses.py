"""Response bodies in OpenAI's shapes: `chat.completion`, `chat.completion.chunk` as server-sent
events (`data: {chunk}` ... `data: [DONE]`), `list` of models."""
from __future__ import annotations

import json
import time
import uuid

from allava.serve.errors import APIError
from allava.serve.pending import Finished

DONE = "data: [DONE]\n\n"


def usage(finished: Finished) -> dict:
    return {"prompt_tokens": finished.prompt_tokens,
            "completion_tokens": finished.completion_tokens,
            "total_tokens": finished.prompt_tokens + finished.completion_tokens}


def completion_body(model: str, finished: Finished) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "logprobs": None, "finish_reason": finished.finish_reason,
                         "message": {"role": "assistant", "content": finished.text,
                                     "refusal": None}}],
            "usage": usage(finished)}


def model_card(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "allava"}


def event(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


class ChunkWriter:
    """The events of one streamed answer; every chunk shares the answer's id and time. With
    `include_usage`, chunks carry `"usage": null` and a last one, without choices, the usage."""

    def __init__(self, model: str, include_usage: bool):
        self.head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": model, "system_fingerprint": None}
        self.include_usage = include_usage

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> str:
        chunk = {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                           "finish_reason": finish_reason}]}
        if self.include_usage:
            chunk["usage"] = None
        return event(chunk)

    def start(self) -> str:
        return self._chunk({"role": "assistant", "content": ""})

    def text(self, piece: str) -> str:
        return self._chunk({"content": piece})

    def end(self, finished: Finished) -> str:
        """The closing chunk(s): the finish reason, then the usage if asked for."""
        closing = self._chunk({}, finished.finish_reason)
        if self.include_usage:
            closing += event({**self.head, "choices": [], "usage": usage(finished)})
        return closing

    @staticmethod
    def error(error: APIError) -> str:
        return event(error.body())
