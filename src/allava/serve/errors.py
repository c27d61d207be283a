"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with an HTTP status.

Clients (the official `openai` package, vLLM's, LangChain) read `message` and `code` from that
body, so every refusal of this server, validation errors included, is written this way.
"""
from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A request refused (4xx) or failed (5xx), with the fields of OpenAI's error body."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def model_not_found(name: str) -> APIError:
    return APIError(404, f"The model `{name}` does not exist or you do not have access to it.",
                    param="model", code="model_not_found")


def unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key")


def overloaded(queued: int) -> APIError:
    return APIError(503, f"the server is at capacity ({queued} requests waiting); retry later",
                    type="server_error", code="queue_full")


def internal_error(message: str) -> APIError:
    return APIError(500, message, type="server_error", code="internal_error")
