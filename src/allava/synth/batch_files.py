"""The files of the Batch API: input files split to the provider's limits, and the result lines
of output and error files turned into what the online client would have returned.

Input line: {"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}.
Result line: {"custom_id", "response": {"status_code", "body"}, "error"}; a request that failed
carries an `error` object or a non-200 response, in the output or the error file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from allava.utils.chat_client import ChatRequestError, Completion, completion_from_body, status_reason

ENDPOINT = "/v1/chat/completions"
# The error codes of requests a batch never ran (its window ran out, or it was cancelled).
UNFINISHED_CODES = ("batch_expired", "batch_cancelled")


@dataclass(frozen=True)
class BatchLimits:
    """OpenAI's limits on one input file; other providers may set lower ones."""
    max_requests: int = 50_000
    max_bytes: int = 200 * 1000 * 1000


class RequestTooLarge(ValueError):
    """One request alone exceeds the input file's size limit."""


def request_line(custom_id: str, body: dict) -> bytes:
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")


class InputWriter:
    """Writes request lines into as many input files as the limits require; `new_path()` names
    the next file. `files` lists (path, custom_ids) of every file written."""

    def __init__(self, limits: BatchLimits, new_path: Callable[[], Path]):
        self.limits = limits
        self.new_path = new_path
        self.files: list[tuple[Path, list[str]]] = []
        self._handle = None
        self._bytes = 0

    def add(self, custom_id: str, line: bytes) -> None:
        if len(line) > self.limits.max_bytes:
            raise RequestTooLarge(f"the request is {len(line):,} bytes, over the batch input "
                                  f"file limit of {self.limits.max_bytes:,}")
        full = self._handle is not None and (
            len(self.files[-1][1]) >= self.limits.max_requests
            or self._bytes + len(line) > self.limits.max_bytes)
        if self._handle is None or full:
            self._open()
        self._handle.write(line)
        self._bytes += len(line)
        self.files[-1][1].append(custom_id)

    def _open(self) -> None:
        self.close()
        path = self.new_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "wb")
        self._bytes = 0
        self.files.append((path, []))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "InputWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lines_of(path: Path, custom_ids: set[str]) -> Iterable[tuple[str, bytes]]:
    """The request lines of an input file whose custom_id is in `custom_ids` (to send again)."""
    with open(path, "rb") as handle:
        for line in handle:
            custom_id = json.loads(line)["custom_id"]
            if custom_id in custom_ids:
                yield custom_id, line


def results_by_id(*texts: str) -> dict[str, dict]:
    """The result lines of output and error files, by custom_id (blank lines skipped)."""
    results = {}
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                entry = json.loads(line)
                results[str(entry.get("custom_id"))] = entry
    return results


class Unfinished:
    """A request the batch never ran: sent again in a new batch, or rejected."""


UNFINISHED = Unfinished()


def outcome(entry: dict | None, batch_ended_early: bool) -> Completion | ChatRequestError | Unfinished:
    """What one result line means, as the online client would report it. `batch_ended_early`:
    the batch expired or was cancelled, so a request without a line never ran."""
    if entry is None:
        if batch_ended_early:
            return UNFINISHED
        return ChatRequestError("missing_result", "the batch has no result for this request")
    error = entry.get("error")
    response = entry.get("response") or {}
    status = response.get("status_code")
    if error:
        code = str(error.get("code") or "")
        if code in UNFINISHED_CODES:
            return UNFINISHED
        reason = "rate_limited" if "rate_limit" in code else (
            status_reason(status) if isinstance(status, int) and status != 200 else "server_error")
        return ChatRequestError(reason, f"{code or 'error'}: {error.get('message', '')}",
                                status=status)
    if status != 200:
        body = response.get("body") or {}
        message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else ""
        reason = status_reason(status) if isinstance(status, int) else "server_error"
        return ChatRequestError(reason, f"HTTP {status}: {message}"[:300], status=status)
    try:
        return completion_from_body(response.get("body"))
    except ChatRequestError as empty:
        return empty
