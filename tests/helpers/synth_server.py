"""A real OpenAI-compatible HTTP server on loopback, for the synth tests and benchmarks.

No mocks: the client under test goes through its whole HTTP stack (the openai client, httpx,
sockets). A `responder(request_json, index) -> Reply` scripts each answer; the index (0-based,
in order of arrival over all requests) makes "fail twice, then succeed" scripts easy.

    with LoopbackTeacher(lambda req, i: Reply(content="hello")) as server:
        client = ChatClient(server.base_url, "toy", None)
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from PIL import Image


@dataclass
class Reply:
    status: int = 200
    content: str | None = ""             # 200: the assistant text; errors: the error message
    headers: dict = field(default_factory=dict)
    delay: float = 0.0                   # seconds to wait before answering (latency, timeouts)
    body: bytes | None = None            # replaces the whole body (malformed responses)
    finish_reason: str = "stop"          # "length": a reply cut at max_tokens


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}

IMAGE_TOKENS = 85  # what a low-detail image costs at OpenAI; any constant will do here


def _text_and_images(request: dict):
    """Yields ("text", str) and ("image", url) for every part of every message."""
    for message in request.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            yield "text", content
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    yield "text", part.get("text", "")
                elif part.get("type") == "image_url":
                    url = part.get("image_url")
                    yield "image", url.get("url", "") if isinstance(url, dict) else str(url)


def estimate_prompt_tokens(request: dict) -> int:
    """~4 characters per token, plus a constant per image (base64 bytes are not text tokens)."""
    total = 0
    for kind, value in _text_and_images(request):
        total += len(value) // 4 if kind == "text" else IMAGE_TOKENS
    return total


def image_colours(request: dict) -> list[tuple[int, int, int]]:
    """RGB of the centre pixel of every data-URL image in the request, in message order."""
    colours = []
    for kind, url in _text_and_images(request):
        if kind != "image" or not url.startswith("data:"):
            continue
        payload = url.split(",", 1)[1]
        with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
            rgb = image.convert("RGB")
            colours.append(tuple(rgb.getpixel((rgb.width // 2, rgb.height // 2))))
    return colours


def completion_body(request: dict, content: str | None, finish_reason: str = "stop") -> dict:
    completion_tokens = len(content) // 4 if content else 0
    prompt_tokens = estimate_prompt_tokens(request)
    return {
        "id": f"chatcmpl-loopback-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "loopback"),
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def error_body(status: int, message: str | None) -> dict:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    try:
        default = HTTPStatus(status).phrase
    except ValueError:
        default = f"HTTP {status}"
    return {"error": {"message": message or default, "type": kind, "code": str(status)}}


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog: many clients connecting at once

    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is expected here, not a test failure


def scripted_reply(responder: Callable[[dict, int], Reply], request: dict, index: int) -> Reply:
    try:
        return responder(request, index)
    except Exception as exc:  # a broken script shows up as a 500, not a hang
        return Reply(status=500, content=f"responder raised {exc!r}")


def reply_body(request: dict, reply: Reply) -> bytes:
    """The HTTP body of `reply` to a chat-completions `request`."""
    if reply.body is not None:
        return reply.body
    if reply.status == 200:
        return json.dumps(completion_body(request, reply.content, reply.finish_reason)).encode()
    return json.dumps(error_body(reply.status, reply.content)).encode()


class JsonHandler(BaseHTTPRequestHandler):
    """The request handler both loopback servers build on: keep-alive JSON answers."""
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    timeout = 30  # an idle keep-alive connection frees its thread eventually
    # TCP_NODELAY, as production servers (uvicorn, vLLM) set it: the headers and the body go
    # out in two writes, and with Nagle's algorithm the body would wait for the client's
    # delayed ACK (~40 ms on Linux), adding that to every request's latency.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, headers: dict) -> None:
        self.send_response(status)
        if not any(name.lower() == "content-type" for name in headers):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)


class LoopbackTeacher:
    """Context manager: an OpenAI-style chat-completions server on 127.0.0.1, in a thread."""

    def __init__(self, responder: Callable[[dict, int], Reply]):
        self.responder = responder
        self.requests: list[dict] = []
        self.headers_seen: list[dict] = []  # header names lower-cased
        self._lock = threading.Lock()
        self._server = LoopbackServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LoopbackTeacher":
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, body: dict, headers: dict) -> int:
        with self._lock:
            self.requests.append(body)
            self.headers_seen.append(headers)
            return len(self.requests) - 1

    def _handler_class(self):
        owner = self

        class Handler(JsonHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, json.dumps(error_body(404, f"no route {self.path}")).encode(), {})
                    return
                try:
                    request = json.loads(raw)
                except ValueError:
                    self._send(400, json.dumps(error_body(400, "body is not JSON")).encode(), {})
                    return
                index = owner._record(request, {k.lower(): v for k, v in self.headers.items()})
                reply = scripted_reply(owner.responder, request, index)
                if reply.delay:
                    time.sleep(reply.delay)
                self._send(reply.status, reply_body(request, reply), reply.headers)

        return Handler
