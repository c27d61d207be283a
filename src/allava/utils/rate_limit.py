"""Client-side rate limiting, so a run stays under a provider's requests/tokens per minute.

Staying under the limits costs less than hitting them: every 429 is a wasted round trip plus a
backoff. The limiter keeps a log of what was sent in the last 60 s (a sliding window), which
guarantees the limits over *any* 60 s window; a token bucket of one minute's capacity would allow
up to twice the limit in a window that straddles its initial burst.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Awaitable, Callable

WINDOW_S = 60.0
# Float slack when comparing clock readings: after sleeping exactly until an entry expires, the
# clock may read a hair earlier, and a wait of ~1e-16 s would loop without advancing a fake clock.
_EPS = 1e-9


class _Window:
    """Amounts sent in the last WINDOW_S seconds, for one limit."""

    def __init__(self, limit: float):
        if limit <= 0:
            raise ValueError(f"a per-minute limit must be positive, got {limit}")
        self.limit = float(limit)
        self.log: deque[tuple[float, float]] = deque()  # (time sent, amount)
        self.used = 0.0

    def _expire(self, now: float) -> None:
        while self.log and now - self.log[0][0] >= WINDOW_S - _EPS:
            self.used -= self.log.popleft()[1]
        if not self.log:
            self.used = 0.0  # no float drift across long runs

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until `amount` fits; 0 if it fits now."""
        self._expire(now)
        if amount > self.limit:
            # Larger than a whole minute's allowance: it can never "fit", so let it through once
            # the window is empty (otherwise it would wait forever).
            return 0.0 if not self.log else self.log[-1][0] + WINDOW_S - now
        excess = self.used + amount - self.limit
        if excess <= _EPS:
            return 0.0
        freed = 0.0
        for sent_at, sent in self.log:  # oldest first: find when enough will have expired
            freed += sent
            if freed >= excess - _EPS:
                return max(sent_at + WINDOW_S - now, 0.0)
        raise AssertionError("unreachable: the whole log frees at least `used`")

    def record(self, amount: float, now: float) -> None:
        self.log.append((now, float(amount)))
        self.used += amount


class RateLimiter:
    """Waits before each request so that requests and (estimated) tokens per minute stay in limits.

    `None` for a limit means unlimited. `clock` and `sleep` are injectable for tests.
    """

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep):
        self._requests = _Window(requests_per_minute) if requests_per_minute is not None else None
        self._tokens = _Window(tokens_per_minute) if tokens_per_minute is not None else None
        self._clock = clock
        self._sleep = sleep
        # Waiters queue on the lock (asyncio.Lock is FIFO) and the head sleeps while holding it,
        # so requests go out in arrival order and two coroutines never take the same capacity.
        self._lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Returns when one request of `tokens` estimated tokens may be sent, and counts it."""
        if self._requests is None and self._tokens is None:
            return
        async with self._lock:
            while True:
                now = self._clock()
                wait = max(self._requests.wait_time(1, now) if self._requests else 0.0,
                           self._tokens.wait_time(tokens, now) if self._tokens else 0.0)
                if wait <= 0:
                    if self._requests:
                        self._requests.record(1, now)
                    if self._tokens:
                        self._tokens.record(tokens, now)
                    return
                await self._sleep(wait)
