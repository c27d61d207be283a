"""Refuses request bodies over a size limit (413) before the server holds them in memory.

FastAPI reads and parses a whole JSON body before any route sees it, so without a bound one
client could make the server buffer gigabytes. The declared `Content-Length` is checked first;
a body sent without one (chunked) is counted as it arrives.
"""
from __future__ import annotations

import json

from allava.serve.errors import APIError


class BodyTooLarge(Exception):
    pass


def too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is over {limit / 2**20:g} MiB; send smaller images "
                    "(the tower sees a few hundred pixels) or raise the server's "
                    "--max-request-mb", code="request_too_large")


class BodySizeLimit:
    """ASGI middleware around the app: bodies over `max_bytes` get a 413 in OpenAI's shape."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        received, exceeded, refused = 0, False, False

        async def counted():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def sent(message) -> None:
            # FastAPI turns any error while reading the body into its own 400; once the limit
            # is passed, whatever the app answers is replaced by the 413.
            nonlocal refused
            if not exceeded:
                return await send(message)
            if not refused:
                refused = True
                await self._refuse(send)

        try:
            await self.app(scope, counted, sent)
        except BodyTooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps(too_large(self.max_bytes).body()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
