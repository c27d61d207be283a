"""Whether more requests are about to join the queue: lets the worker fill a batch before
starting it.

A batch started with the first few of a burst of requests leaves the rest for a second batch,
and the two then alternate for as long as their clients keep sending: half-full batches, where
a step costs little more for a full batch than for half of one. So a worker holding a batch
that is not full waits while
- the HTTP side is preparing a request (it is in the queue within a millisecond or two), or
- clients that were answered have not sent their next request yet (clients in a loop send
  again as soon as they are answered) and the last answer or arrival is less than `gap`
  seconds old,
never longer than the engine's `max_batch_wait`. A lone client waits for nothing: its next
request comes after its answer and finds no one else to expect. What this gains:
benchmarks/README.md, "Serving throughput".
"""
from __future__ import annotations

import threading
import time


class Arrivals:
    def __init__(self, gap: float = 0.02):
        self.gap = gap
        self._lock = threading.Lock()
        self._preparing = 0
        self._answered_not_back = 0
        self._last_event = 0.0

    def preparing(self) -> None:
        """The HTTP side started on a request."""
        with self._lock:
            self._preparing += 1
            self._answered_not_back = max(0, self._answered_not_back - 1)
            self._last_event = time.monotonic()

    def prepared(self) -> None:
        """That request is queued, or was refused."""
        with self._lock:
            self._preparing -= 1

    def answered(self, count: int) -> None:
        with self._lock:
            self._answered_not_back += count
            self._last_event = time.monotonic()

    def more_coming(self) -> bool:
        with self._lock:
            return self._preparing > 0 or (
                self._answered_not_back > 0 and time.monotonic() - self._last_event < self.gap)
