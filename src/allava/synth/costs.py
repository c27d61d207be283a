"""Prices per model and token estimates for rate limits and dry runs.

The default prices table ships with the package (`allava/synth/resources/prices.yaml`, read
through importlib.resources); `allava synth --prices FILE` reads a user's own copy instead.
"""
from __future__ import annotations

import math


from allava.utils.package_data import ResourcePath, read_yaml, resource

PRICES_FILE = resource("allava.synth", "resources", "prices.yaml")


def load_prices(model: str, path: ResourcePath | None = None) -> dict[str, float] | None:
    """The model's `{input_per_million, output_per_million}` from `path` (default: PRICES_FILE),
    plus `batch_input_per_million`, `batch_output_per_million` (Batch API prices) when listed;
    None when the model is not listed."""
    table = read_yaml(path, PRICES_FILE, "prices file")[1] or {}
    entry = table.get(model)
    if entry is None:
        return None
    prices = {"input_per_million": float(entry["input_per_million"]),
              "output_per_million": float(entry["output_per_million"])}
    for key in ("batch_input_per_million", "batch_output_per_million"):
        if key in entry:
            prices[key] = float(entry[key])
    return prices


def text_tokens(text: str) -> int:
    """About four characters per token for English under GPT tokenizers."""
    return math.ceil(len(text) / 4)


def image_tokens(width: int, height: int) -> int:
    """OpenAI's documented count for a high-detail image: fit in 2048 x 2048, shortest side
    scaled to 768, then 170 per 512 px tile plus 85. Other servers count differently; this
    sizes rate limits and cost estimates, it is not billed."""
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = 768 / min(width, height) if min(width, height) > 768 else 1.0
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def request_cost(prices: dict[str, float] | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    if prices is None:
        return None
    return (prompt_tokens * prices["input_per_million"]
            + completion_tokens * prices["output_per_million"]) / 1e6
