"""The HTTP API: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`, `GET /stats`.

Every error is OpenAI's shape (`errors`), FastAPI's own 422 validation errors included (as
400s, which is what OpenAI answers). With an API key set, the `/v1` routes need
`Authorization: Bearer <key>`; `/health` and `/stats` stay open for probes and dashboards.
"""
from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from allava.models.build import VLMBundle
from allava.serve.body_limit import BodySizeLimit
from allava.serve.engine import BatchingEngine
from allava.serve.errors import APIError, bad_request, internal_error, model_not_found, \
    unauthorized
from allava.serve.jobs import JobLimits, build_job
from allava.serve.pending import Delta, Failed, Finished, PendingAnswer
from allava.serve.responses import DONE, ChunkWriter, completion_body, model_card
from allava.serve.schema import ChatCompletionRequest


@dataclass(frozen=True)
class ServerSettings:
    model_name: str  # what requests must name in `model`
    limits: JobLimits
    api_key: str | None = None
    max_request_bytes: int = 20 * 2**20  # larger bodies get 413 (BodySizeLimit)


def create_app(bundle: VLMBundle, engine: BatchingEngine, settings: ServerSettings) -> FastAPI:
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="allava serve", lifespan=lifespan)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    _add_error_handlers(app)

    def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise unauthorized("You didn't provide an API key: send Authorization: Bearer <key>.")
        if not hmac.compare_digest(key.strip().encode(), settings.api_key.encode()):
            raise unauthorized("Incorrect API key provided.")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": settings.model_name}

    @app.get("/stats")
    async def stats() -> dict:
        return {**engine.stats.as_dict(), "waiting": len(engine.queue),
                "running": engine.running,
                "max_batch_size": engine.max_batch_size, "max_queue": engine.queue.capacity}

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models() -> dict:
        return {"object": "list", "data": [model_card(settings.model_name, created)]}

    @app.get("/v1/models/{name:path}", dependencies=[Depends(require_key)])
    async def model(name: str) -> dict:
        if name != settings.model_name:
            raise model_not_found(name)
        return model_card(name, created)

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)])
    async def chat_completions(body: ChatCompletionRequest):
        if body.model != settings.model_name:
            raise model_not_found(body.model)
        with engine.arriving():
            job = await run_in_threadpool(build_job, body, bundle, settings.limits)
            pending = engine.submit(job)
        if job.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            writer = ChunkWriter(settings.model_name, include_usage)
            return StreamingResponse(_stream(pending, writer), media_type="text/event-stream")
        return completion_body(settings.model_name, await _answer(pending))

    return app


async def _answer(pending: PendingAnswer) -> Finished:
    try:
        while True:
            event = await pending.events.get()
            if isinstance(event, Finished):
                return event
            if isinstance(event, Failed):
                raise event.error
    except asyncio.CancelledError:  # the request was abandoned: free its row
        pending.cancelled = True
        raise


async def _stream(pending: PendingAnswer, writer: ChunkWriter) -> AsyncIterator[str]:
    try:
        yield writer.start()
        while True:
            event = await pending.events.get()
            if isinstance(event, Delta):
                yield writer.text(event.text)
            elif isinstance(event, Finished):
                if event.rest:
                    yield writer.text(event.rest)
                yield writer.end(event)
                break
            else:
                yield writer.error(event.error)
                break
        yield DONE
    finally:  # also when the client left mid-answer: its row stops at the next step
        pending.cancelled = True


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        where = [".".join(str(part) for part in p["loc"] if part != "body") for p in problems]
        message = "; ".join(f"{place or 'body'}: {p['msg']}"
                            for place, p in zip(where[:3], problems[:3]))
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        refusal = bad_request(f"invalid request: {message}{more}", param=where[0] or None)
        return JSONResponse(refusal.body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        body = APIError(error.status_code, str(error.detail), type=kind).body()
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(internal_error(f"internal error: {error}").body(), status_code=500)
