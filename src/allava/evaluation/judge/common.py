"""What the MM-Vet and LLaVA-Bench graders share: bounded judge requests, the item fields, the
predictions.

Judge failures. A reply with no usable text (the client's `empty_response`) is an unparseable
reply, as in both references (their parsers fail on it). Any other `ChatRequestError` (the endpoint
stayed unreachable after the client's retries, or refused the request) is not a judgment: the
item is reported with `error` set to the reason, left out of every aggregate, counted in `errors`,
and `complete` is False. The references retry such failures forever instead.

Items are `MMVetItem` / `LLaVABenchItem` or plain mappings with the same fields (see the classes).
Predictions are a mapping from item id to the model's answer, or a sequence aligned with the items.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from allava.utils.chat_client import ChatClient, ChatRequestError

log = logging.getLogger(__package__)  # the graders log as allava.evaluation.judge


class _Gate:
    """Bounds the judge requests in flight."""

    def __init__(self, concurrency: int):
        if int(concurrency) < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self._semaphore = asyncio.Semaphore(int(concurrency))

    async def ask(self, judge: ChatClient, messages: list[dict], *, max_tokens: int,
                  temperature: float) -> str | None:
        """The reply text; None for a reply without usable text; other TeacherErrors propagate."""
        async with self._semaphore:
            try:
                completion = await judge.complete(messages, max_tokens=max_tokens,
                                                  temperature=temperature)
            except ChatRequestError as exc:
                if exc.reason == "empty_response":
                    return None
                raise
        return completion.text


def _field(raw: Mapping[str, Any], names: Sequence[str], position: int) -> Any:
    for name in names:
        if name in raw and raw[name] is not None:
            return raw[name]
    raise ValueError(f"item {position}: missing field {' / '.join(names)}")


def _predictions_for(ids: list[str], predictions: Mapping[Any, Any] | Sequence[Any]) -> list[str]:
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate item id(s): {', '.join(dupes[:5])}")
    if isinstance(predictions, Mapping):
        by_id = {str(key): value for key, value in predictions.items()}
        missing = [i for i in ids if by_id.get(i) is None]
        if missing:
            raise ValueError(f"no prediction for {len(missing)} item(s), e.g. {', '.join(missing[:5])}")
        return [str(by_id[i]) for i in ids]
    if isinstance(predictions, (str, bytes)) or len(predictions) != len(ids):
        raise ValueError(f"predictions must be a mapping by id or a sequence of {len(ids)} answers")
    if any(p is None for p in predictions):
        raise ValueError("a prediction is None")
    return [str(p) for p in predictions]
