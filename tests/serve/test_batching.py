"""Concurrent requests are answered in shared batches, with the same answers as one at a time;
broken requests among them fail alone, with the right 4xx, and the server stays healthy."""
from __future__ import annotations

import asyncio

import openai
import pytest

from tests.serve.conftest import MODEL_NAME, data_url, user_message

QUESTIONS = ["What is it?", "Describe the colours, please.", "How many shapes are there?",
             "Where is the red circle?", "hello", "Is there a square at the top left?",
             "What is the largest object made of?"]


def good_requests(images) -> list[dict]:
    """26 greedy requests: questions of different lengths, with each image or none, different
    max_tokens (so rows end at different steps), some streamed."""
    urls = [data_url(images[name]) for name in ("noise", "red", "wide")] + [None]
    return [{"messages": [user_message(QUESTIONS[i % len(QUESTIONS)], urls[i % len(urls)])],
             "max_tokens": 4 + i % 9, "temperature": 0, "stream": i % 5 == 0}
            for i in range(26)]


def broken_requests(images) -> list[tuple[dict, type, int]]:
    two = [{"type": "image_url", "image_url": {"url": data_url(images["red"])}},
           {"type": "image_url", "image_url": {"url": data_url(images["wide"])}},
           {"type": "text", "text": "Which is brighter?"}]
    return [({"messages": [user_message("Hi", "data:image/png;base64,%%%")]},
             openai.BadRequestError, 400),
            ({"messages": [user_message("Hi")], "model": "unknown"}, openai.NotFoundError, 404),
            ({"messages": [{"role": "user", "content": two}]}, openai.BadRequestError, 400),
            ({"messages": [user_message("Hi")], "n": 2}, openai.BadRequestError, 400)]


async def answer(client: openai.AsyncOpenAI, request: dict) -> str:
    request = {"model": MODEL_NAME, **request}
    if not request.get("stream"):
        return (await client.chat.completions.create(**request)).choices[0].message.content
    pieces = [chunk.choices[0].delta.content or ""
              async for chunk in await client.chat.completions.create(**request)]
    return "".join(pieces)


async def expect_error(client: openai.AsyncOpenAI, request: dict, kind: type) -> int:
    with pytest.raises(kind) as error:
        await client.chat.completions.create(**{"model": MODEL_NAME, **request})
    return error.value.status_code


SAMPLED = {"messages": [user_message("Tell me a story.")], "max_tokens": 6, "temperature": 0.8,
           "top_p": 0.9}


async def run_concurrently(base_url: str, images) -> tuple[list[str], list[str], list[int]]:
    async with openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0,
                                  timeout=120) as client:
        good = good_requests(images)
        one_at_a_time = [await answer(client, request) for request in good]
        broken = broken_requests(images)
        calls = [answer(client, request) for request in good]
        # The broken requests go in among the good ones.
        for position, (request, kind, _) in zip((3, 10, 17, 24), broken):
            calls.insert(position, expect_error(client, request, kind))
        # Sampled requests cannot share a greedy batch: they run in batches of their own.
        calls += [client.chat.completions.create(model=MODEL_NAME, **SAMPLED) for _ in range(2)]
        results = await asyncio.gather(*calls)
        sampled = [results.pop() for _ in range(2)]
        assert all(1 <= reply.usage.completion_tokens <= 6 for reply in sampled)
        statuses = [results.pop(position) for position in (24, 17, 10, 3)][::-1]
        return one_at_a_time, results, statuses


def test_32_concurrent_requests_share_batches_and_broken_ones_fail_alone(server, images):
    before = server.stats()
    one_at_a_time, together, statuses = asyncio.run(run_concurrently(server.base_url, images))
    after = server.stats()

    assert together == one_at_a_time
    assert statuses == [expected for _, _, expected in broken_requests(images)]
    batches = after["batches"] - before["batches"]
    requests = after["requests"] - before["requests"]
    assert requests == 2 * 26 + 2  # the broken ones never reached the worker
    assert batches - 26 <= 8  # 26 one at a time, then the 28 concurrent ones in a few
    assert after["largest_batch"] >= 8
    assert server.get("/health")["status"] == "ok"
