"""A server that can hold one waiting request refuses the flood beyond it with 503 at once
(OpenAI-style body) and answers what it took; SIGINT or SIGTERM stop a server cleanly (exit 0)
after the answer it is writing."""
from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.helpers.serve_process import ServeProcess, start_together
from tests.serve.conftest import MODEL_NAME, user_message

SLOW = {"model": MODEL_NAME, "messages": [user_message("What is it?")], "max_tokens": 120,
        "temperature": 0, "ignore_eos": True}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


@pytest.fixture(scope="module")
def servers(model_dir):
    """{"small": a server holding one waiting request, one batched at a time; "SIGINT",
    "SIGTERM": servers to stop}, started side by side (start-up is most of this module's time)."""
    small = ServeProcess(model_dir, "--model-name", MODEL_NAME, "--max-queue", "1",
                         "--max-batch-size", "1")
    started = dict(zip(["small", *SIGNALS], start_together(
        small, *(ServeProcess(model_dir, "--model-name", MODEL_NAME) for _ in SIGNALS))))
    yield started
    for server in started.values():
        server.close()


def post(server: ServeProcess, body: dict) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=120)


def test_a_full_queue_answers_503_at_once_and_serves_the_rest(servers):
    small = servers["small"]
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: post(small, SLOW), range(12)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 503} and statuses.count(200) >= 2
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.json() == {"error": {
        "message": refused.json()["error"]["message"], "type": "server_error",
        "param": None, "code": "queue_full"}}
    assert refused.elapsed.total_seconds() < min(r.elapsed.total_seconds()
                                                 for r in responses if r.status_code == 200)
    assert all(r.json()["usage"]["completion_tokens"] == 120
               for r in responses if r.status_code == 200)
    stats = small.stats()
    assert stats["rejected_queue_full"] == statuses.count(503)
    assert stats["largest_batch"] == 1
    assert small.get("/health")["status"] == "ok"


@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_stops_the_server_with_exit_0_after_the_answer_in_flight(servers, name):
    server = servers[name]
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(post, server, {**SLOW, "max_tokens": 200})
        deadline = time.monotonic() + 30
        while server.stats()["running"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)  # until the worker is generating the answer
        assert server.stop(SIGNALS[name]) == 0
        assert in_flight.result().json()["usage"]["completion_tokens"] == 200
