"""The bounded queue between the HTTP side (many threads and tasks) and the one worker.

Bounded so that a flood is refused at once (503) instead of piling up minutes of latency.
`take_batch` serves the oldest request first and takes along every waiting request that can
share its batch (same group), so no group waits behind a busier one for long; a batch that is
not full may wait a little for requests on their way (`arrivals`).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")
POLL_SECONDS = 0.002  # how often a worker waiting for more requests looks again


class QueueFull(Exception):
    """The queue holds `capacity` waiting requests already."""


class RequestQueue(Generic[Item]):
    def __init__(self, capacity: int, group: Callable[[Item], Hashable]):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._group = group
        self._items: deque[Item] = deque()
        self._ready = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> None:
        with self._ready:
            if self._closed or len(self._items) >= self.capacity:
                raise QueueFull(f"{len(self._items)} requests waiting")
            self._items.append(item)
            self._ready.notify()

    def take_batch(self, limit: int, more_coming: Callable[[], bool] = lambda: False,
                   max_wait: float = 0.0) -> list[Item]:
        """Blocks until a request waits; returns it with up to `limit - 1` more of its group,
        in arrival order. While the batch is not full and `more_coming()`, waits up to
        `max_wait` seconds for them. [] once the queue is closed."""
        with self._ready:
            self._ready.wait_for(lambda: self._items or self._closed)
            deadline = time.monotonic() + max_wait
            while (not self._closed and self._group_size() < limit and more_coming()
                   and time.monotonic() < deadline):
                self._ready.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            if self._closed:
                return []
            key = self._group(self._items[0])
            batch: list[Item] = []
            rest: deque[Item] = deque()
            for item in self._items:
                if len(batch) < limit and self._group(item) == key:
                    batch.append(item)
                else:
                    rest.append(item)
            self._items = rest
            return batch

    def _group_size(self) -> int:
        """How many waiting requests share the oldest one's group."""
        key = self._group(self._items[0])
        return sum(1 for item in self._items if self._group(item) == key)

    def close(self) -> list[Item]:
        """Wakes the worker to stop; returns the requests that were still waiting."""
        with self._ready:
            self._closed = True
            left, self._items = list(self._items), deque()
            self._ready.notify_all()
            return left
