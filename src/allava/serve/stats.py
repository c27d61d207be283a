"""Counters of the batching engine, for `GET /stats`: how many batches ran, how full they were,
how busy the worker was."""
from __future__ import annotations

import threading
from collections import Counter


class EngineStats:
    """Thread-safe: the worker counts batches, the HTTP side refusals."""

    def __init__(self):
        self._lock = threading.Lock()
        self.batches = 0
        self.requests = 0
        self.generated_tokens = 0
        self.busy_seconds = 0.0  # in generate: against wall time, how busy the worker is
        self.batch_sizes: Counter[int] = Counter()
        self.rejected_queue_full = 0
        self.failed = 0

    def count_batch(self, size: int, generated_tokens: int, seconds: float) -> None:
        with self._lock:
            self.busy_seconds += seconds
            self.batches += 1
            self.requests += size
            self.generated_tokens += generated_tokens
            self.batch_sizes[size] += 1

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict:
        with self._lock:
            return {"batches": self.batches, "requests": self.requests,
                    "generated_tokens": self.generated_tokens,
                    "busy_seconds": round(self.busy_seconds, 3),
                    "requests_per_batch": self.requests / self.batches if self.batches else None,
                    "largest_batch": max(self.batch_sizes, default=0),
                    "batch_sizes": {str(size): n for size, n in sorted(self.batch_sizes.items())},
                    "rejected_queue_full": self.rejected_queue_full, "failed": self.failed}
