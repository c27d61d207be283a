"""Request and token accounting for a chat-completions client (synthesis and the judge).

One `Usage` is shared by every request of a run (asyncio is single-threaded, so plain `+=` is
safe) and saved next to the data, so that a resumed run keeps counting and the bill is known.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class Usage:
    requests: int = 0           # HTTP requests sent, retries included
    retries: int = 0            # requests that were re-sent after a retryable failure
    failures: int = 0           # requests given up on (ChatRequestError raised)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Follow-up turns that asked for a missing section, and their tokens (a part of the totals).
    repairs: int = 0
    repair_prompt_tokens: int = 0
    repair_completion_tokens: int = 0
    # Requests answered through the Batch API (`allava synth --batch`), and their tokens: kept
    # apart from the online counts above because they are billed at batch prices.
    batch_requests: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    batches: int = 0            # batches created

    def add(self, other: "Usage") -> "Usage":
        """Adds `other` into this one (e.g. the usage of a previous, resumed run); returns self."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Usage":
        """Missing keys count as 0 and unknown keys are ignored, so older/newer files still load."""
        d = d or {}
        return cls(**{f.name: int(d.get(f.name, 0) or 0) for f in fields(cls)})

    def cost(self, prices: dict | None) -> float | None:
        """Cost in the prices' currency; `prices` = {"input_per_million", "output_per_million"},
        optionally with "batch_input_per_million", "batch_output_per_million" for batch tokens.

        None means "price unknown" (e.g. a local server) and gives None rather than a misleading 0.
        A prices dict missing an online key raises KeyError: a silent 0 would under-report the bill.
        """
        if prices is None:
            return None
        return self.online_cost(prices) + self.batch_cost(prices)

    def online_cost(self, prices: dict) -> float:
        return (self.prompt_tokens * float(prices["input_per_million"])
                + self.completion_tokens * float(prices["output_per_million"])) / 1e6

    def batch_cost(self, prices: dict) -> float:
        # A model without batch prices is charged its online prices: an upper bound, never an
        # under-reported bill.
        input_price = prices.get("batch_input_per_million", prices["input_per_million"])
        output_price = prices.get("batch_output_per_million", prices["output_per_million"])
        return (self.batch_prompt_tokens * float(input_price)
                + self.batch_completion_tokens * float(output_price)) / 1e6
