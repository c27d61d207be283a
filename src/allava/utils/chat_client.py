"""The network layer: one chat-completions call to any OpenAI-compatible endpoint, with retries.

Built on the official `openai.AsyncOpenAI` client (which speaks to GPT-4o, vLLM, Ollama, ...)
with its own retries switched off: retrying here lets every HTTP attempt go through the rate
limiter and into `Usage`, with an injectable `sleep` and `rng` so tests are fast and exact.

Retry policy
- Retried: 429 (`rate_limited`), 5xx (`server_error`), 408 and client-side timeouts (`timeout`),
  connection failures (`connection_error`). Up to `max_retries` re-sends, then ChatRequestError.
- Not retried: other 4xx (`bad_request`: the same request would fail again) and a 200 without
  usable text (`empty_response`: the caller decides whether to re-ask, e.g. at another seed).
- Delay before re-send number k (k = 0, 1, ...): `min(backoff_max, backoff_base * 2**k)` times a
  jitter factor drawn from U(0.5, 1), so concurrent workers that failed together spread out.
- A server-requested delay (`retry-after-ms`, else `Retry-After` in seconds or as an HTTP date),
  on any retryable response, replaces that delay when it is longer: waiting less than asked only
  earns another 429. It is capped at `retry_after_max` (default 2 * backoff_max) so a server
  saying "come back in an hour" costs bounded time; the request keeps retrying and, if the server
  keeps refusing, fails as `rate_limited` after max_retries.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import openai
from openai.types.chat import ChatCompletion

from allava.utils.rate_limit import RateLimiter
from allava.utils.usage import Usage

log = logging.getLogger(__name__)

NO_KEY = "not-needed"  # local servers (vLLM, Ollama) accept any key, the client insists on one


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


class ChatRequestError(Exception):
    """A request that was given up on. `reason` is a short stable key for counting and logging:
    rate_limited, server_error, timeout, connection_error, bad_request, empty_response."""

    def __init__(self, reason: str, message: str, *, status: int | None = None, attempts: int = 1,
                 tokens: tuple[int, int] = (0, 0)):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.status = status
        self.attempts = attempts
        self.tokens = tokens  # (prompt, completion) billed for an unusable 200 reply

    def __reduce__(self):  # picklable despite the keyword-only fields (worker processes)
        return (_rebuild_error, (self.reason, self.message, self.status, self.attempts))


def _rebuild_error(reason, message, status, attempts):
    return ChatRequestError(reason, message, status=status, attempts=attempts)


def _retry_after_seconds(headers) -> float | None:
    """The server-requested delay in seconds, from retry-after-ms or Retry-After; None if absent."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:  # an HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT"
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _server_message(exc: openai.APIStatusError) -> str:
    """The human part of an OpenAI-style error body, short, for the ChatRequestError message."""
    body = exc.body
    if isinstance(body, dict):
        body = body.get("message", body)
    text = str(body) if body is not None else ""
    return text[:300] or f"HTTP {exc.status_code}"


def status_reason(status: int) -> str:
    """The ChatRequestError reason of an HTTP error status (the retryable ones are all but
    bad_request)."""
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if status == 408:
        return "timeout"
    return "bad_request"


def chat_body(model: str, messages: list[dict], max_tokens: int, temperature: float,
              response_format: dict | None = None) -> dict:
    """The JSON body of one chat-completions request (online, or a line of a Batch API file)."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature}
    if response_format is not None:
        body["response_format"] = response_format
    return body


def completion_from_body(body) -> Completion:
    """The Completion in a chat-completions response body (a dict or the client's model);
    raises ChatRequestError("empty_response") when it has no usable text. Tokens are read
    before the text is checked: a reply without text is billed all the same."""
    get = (lambda obj, key: obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None))
    usage = get(body, "usage")
    prompt = int((get(usage, "prompt_tokens") if usage is not None else 0) or 0)
    completion = int((get(usage, "completion_tokens") if usage is not None else 0) or 0)
    choices = get(body, "choices")
    if not choices:  # also covers a non-JSON body, which the openai client returns as str
        raise ChatRequestError("empty_response", "the response has no choices", status=200,
                               tokens=(prompt, completion))
    choice = choices[0]
    message = get(choice, "message")
    text = get(message, "content") if message is not None else None
    if not text or not text.strip():
        raise ChatRequestError("empty_response", "the response has no text", status=200,
                               tokens=(prompt, completion))
    return Completion(text=text, prompt_tokens=prompt, completion_tokens=completion,
                      finish_reason=get(choice, "finish_reason"))


class ChatClient:
    """Sends chat-completion requests, with rate limiting, retries and usage accounting."""

    def __init__(self, base_url: str, model: str, api_key: str | None, *,
                 timeout: float = 120.0, max_retries: int = 6,
                 backoff_base: float = 1.0, backoff_max: float = 60.0,
                 retry_after_max: float | None = None,
                 rate_limiter: RateLimiter | None = None, usage: Usage | None = None,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep):
        self.base_url = base_url
        self.model = model
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = 2 * backoff_max if retry_after_max is None else retry_after_max
        self.rate_limiter = rate_limiter
        self.usage = usage if usage is not None else Usage()
        self._rng = rng or random.Random()
        self._sleep = sleep
        # Kept only to scrub it out of server-supplied error text (some servers echo the key).
        self._secret = api_key if api_key and len(api_key) >= 4 else None
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or NO_KEY,
                                          max_retries=0, timeout=timeout)

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> "ChatClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def _backoff(self, retry: int, server_delay: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** retry) * self._rng.uniform(0.5, 1.0)
        if server_delay is not None:
            delay = max(delay, min(server_delay, self.retry_after_max))
        return delay

    def _error(self, reason: str, message: str, status: int | None, attempts: int) -> ChatRequestError:
        if self._secret:
            message = message.replace(self._secret, "[redacted]")
        self.usage.failures += 1
        return ChatRequestError(reason, message, status=status, attempts=attempts)

    async def complete(self, messages: list[dict], *, max_tokens: int, temperature: float = 0.2,
                       estimated_tokens: int | None = None,
                       response_format: dict | None = None) -> Completion:
        """One chat completion; raises ChatRequestError when given up on (see the module docstring).
        `response_format` (e.g. a JSON schema) is sent when given."""
        estimate = estimated_tokens if estimated_tokens is not None else max_tokens + 1000
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limiter is not None:
                await self.rate_limiter.acquire(estimate)
            self.usage.requests += 1
            status = server_delay = None
            try:
                # The client's generic POST, not `chat.completions.create`: that one re-walks
                # every message part to transform typed parameters, a large share of the client's
                # CPU per request at high concurrency (benchmarks/synth_throughput.py measures
                # it); our messages are already in wire format.
                body = chat_body(self.model, messages, max_tokens, temperature, response_format)
                response = await self._client.post("/chat/completions", cast_to=ChatCompletion,
                                                   body=body)
            except openai.APITimeoutError:  # before APIConnectionError: it is a subclass
                reason, message = "timeout", "no response within the timeout"
            except openai.APIConnectionError as exc:
                reason, message = "connection_error", f"cannot reach the server ({exc.__cause__!r})"
            except openai.APIStatusError as exc:
                status, message = exc.status_code, _server_message(exc)
                server_delay = _retry_after_seconds(exc.response.headers)
                reason = status_reason(status)
                if reason == "bad_request":
                    raise self._error("bad_request", f"HTTP {status}: {message}", status,
                                      attempt) from None
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # a 200 that does not parse
                raise self._error("empty_response", f"unparseable response body ({exc})", 200,
                                  attempt) from None
            else:
                return self._parse(response, attempt)

            if attempt > self.max_retries:
                where = f"HTTP {status}: " if status is not None else ""
                # `from None`: the chained openai error may quote the server's text verbatim.
                raise self._error(reason, f"{where}{message} (gave up after {attempt} attempts)",
                                  status, attempt) from None
            delay = self._backoff(attempt - 1, server_delay)
            log.debug("chat request failed (%s); retry %d/%d in %.2f s",
                      reason, attempt, self.max_retries, delay)
            self.usage.retries += 1
            await self._sleep(delay)

    def _parse(self, response, attempt: int) -> Completion:
        try:
            completion = completion_from_body(response)
        except ChatRequestError as error:
            self.usage.prompt_tokens += error.tokens[0]  # billed even when the text is unusable
            self.usage.completion_tokens += error.tokens[1]
            raise self._error(error.reason, error.message, 200, attempt) from None
        self.usage.prompt_tokens += completion.prompt_tokens
        self.usage.completion_tokens += completion.completion_tokens
        return completion
