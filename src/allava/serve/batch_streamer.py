"""What `generate` calls at every step of a batch: each row's new token to its own request.

`generate` reports the `[B]` tokens of each step to a streamer, then asks its stopping
criteria which rows are done. `BatchStreamer` is both ends: it gives every row its token, ends
the row at its own end of sequence, stop string or max_tokens (or when its client left), sends
streamed text and finished answers right away, and `FinishedRows` tells `generate` which rows
are done, so the batch stops once all are (a row done early only waits, ignored, in the batch).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from allava.serve.answer_text import AnswerText
from allava.serve.pending import Delta, Event, Finished, PendingAnswer


class Row:
    """One request's place in a batch."""

    def __init__(self, pending: PendingAnswer, tokenizer, eos_ids: frozenset[int]):
        self.pending = pending
        self.job = pending.job
        self.text = AnswerText(tokenizer, self.job.stop)
        self.eos_ids = frozenset() if self.job.ignore_eos else eos_ids
        self.tokens = 0
        self.finish_reason: str | None = None

    def take(self, token: int) -> None:
        self.tokens += 1
        if token in self.eos_ids:
            self.finish_reason = "stop"
            return
        self.text.add(token)
        if self.text.hit_stop():
            self.finish_reason = "stop"
        elif self.tokens >= self.job.max_tokens:
            self.finish_reason = "length"

    def finished(self) -> Finished:
        rest = self.text.rest() if self.job.stream else ""
        return Finished(self.text.final(), rest, self.finish_reason or "length",
                        len(self.job.prompt_ids), self.tokens)


class BatchStreamer(BaseStreamer):
    def __init__(self, rows: list[Row], send: Callable[[list[tuple[PendingAnswer, Event]]], None]):
        self.rows = rows
        self.send = send
        self.done = [False] * len(rows)
        self.generated = 0  # tokens given to live rows, for the server's counters

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1:  # generate reports the prompt first: nothing new yet
            return
        events: list[tuple[PendingAnswer, Event]] = []
        for index, token in enumerate(value.tolist()):
            if self.done[index]:
                continue
            row = self.rows[index]
            if row.pending.cancelled:  # the client left: drop the row, tell no one
                self.done[index] = True
                continue
            row.take(token)
            self.generated += 1
            if row.finish_reason is not None:
                self.done[index] = True
                events.append((row.pending, row.finished()))
            elif row.job.stream:
                piece = row.text.fresh()
                if piece:
                    events.append((row.pending, Delta(piece)))
        if events:
            self.send(events)

    def end(self) -> None:
        """Rows still open when `generate` returns ran out of tokens: they end at "length"."""
        events = [(row.pending, row.finished()) for index, row in enumerate(self.rows)
                  if not self.done[index] and not row.pending.cancelled]
        self.done = [True] * len(self.rows)
        if events:
            self.send(events)


class FinishedRows(StoppingCriteria):
    def __init__(self, streamer: BatchStreamer):
        self.streamer = streamer

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.tensor(self.streamer.done, dtype=torch.bool, device=input_ids.device)
