"""A request waiting for its answer, and the events the worker sends back to the HTTP side.

The worker thread never touches the event loop's objects directly: it hands events over with
`loop.call_soon_threadsafe`, one call per generation step for the whole batch.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from allava.serve.errors import APIError
from allava.serve.jobs import GenerationJob


@dataclass(frozen=True)
class Delta:
    """A piece of streamed text."""

    text: str


@dataclass(frozen=True)
class Finished:
    text: str  # the whole answer
    rest: str  # the part of it not sent as Deltas yet
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length"
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    error: APIError


Event = Delta | Finished | Failed


class PendingAnswer:
    def __init__(self, job: GenerationJob, loop: asyncio.AbstractEventLoop):
        self.job = job
        self.loop = loop
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        # Set by the HTTP side when the client is gone; the worker then drops the row.
        self.cancelled = False
        self.answered = False  # the worker sent an event: the request cannot be run again


def send_events(events: list[tuple[PendingAnswer, Event]]) -> None:
    """From the worker thread: each event to its request's queue, on that request's loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[PendingAnswer, Event]]] = {}
    for pending, event in events:
        pending.answered = True
        by_loop.setdefault(pending.loop, []).append((pending, event))
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, items)
        except RuntimeError:  # the loop is closed: the server is stopping, nobody listens
            pass


def _put_all(items: list[tuple[PendingAnswer, Event]]) -> None:
    for pending, event in items:
        pending.events.put_nowait(event)
