"""The synth network layer against a real HTTP server on loopback: ChatClient, RateLimiter, Usage."""
from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import pickle
import random
import socket
import time
import traceback

import pytest
from PIL import Image

from allava.utils.rate_limit import RateLimiter
from allava.utils.chat_client import Completion, ChatClient, ChatRequestError
from allava.utils.usage import Usage
from tests.helpers.synth_server import LoopbackTeacher, Reply, estimate_prompt_tokens, image_colours

SECRET = "sk-test-SECRET-123"
MESSAGES = [{"role": "user", "content": "Describe the image in detail, please."}]


class RecordingSleep:
    """Stands in for asyncio.sleep: records the delays and returns at once (but still yields)."""

    def __init__(self, clock: "FakeClock | None" = None):
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.clock is not None:
            self.clock.now += delay
        await asyncio.sleep(0)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ask(server: LoopbackTeacher, messages=MESSAGES, *, api_key=None, **kwargs):
    """Runs one `complete` call; returns (Completion or ChatRequestError, client, sleep recorder)."""
    sleep = kwargs.pop("sleep", None) or RecordingSleep()
    max_tokens = kwargs.pop("max_tokens", 64)

    async def go():
        client = ChatClient(server.base_url, "toy-teacher", api_key, sleep=sleep,
                               rng=random.Random(0), **kwargs)
        try:
            return await client.complete(messages, max_tokens=max_tokens), client
        except ChatRequestError as exc:
            return exc, client
        finally:
            await client.aclose()

    result, client = asyncio.run(go())
    return result, client, sleep


def scripted(*replies: Reply):
    """A responder that plays `replies` in order and repeats the last one."""
    return lambda request, index: replies[min(index, len(replies) - 1)]


# ---------------------------------------------------------------------------------------- success

def test_ok_reply_gives_text_tokens_and_sends_the_request_fields():
    text = "A red square sits on a blue background."
    with LoopbackTeacher(scripted(Reply(content=text))) as server:
        result, client, sleep = ask(server, max_tokens=77)
    assert result == Completion(text=text, prompt_tokens=estimate_prompt_tokens(server.requests[0]),
                                completion_tokens=len(text) // 4, finish_reason="stop")
    assert result.prompt_tokens > 0
    sent = server.requests[0]
    assert sent["model"] == "toy-teacher" and sent["messages"] == MESSAGES
    assert sent["max_tokens"] == 77 and sent["temperature"] == pytest.approx(0.2)
    assert client.usage == Usage(requests=1, prompt_tokens=result.prompt_tokens,
                                 completion_tokens=result.completion_tokens)
    assert sleep.delays == []


def test_server_handles_32_concurrent_requests():
    with LoopbackTeacher(lambda request, i: Reply(content=f"answer {i}", delay=0.3)) as server:
        async def go():
            client = ChatClient(server.base_url, "toy", None, max_retries=0)
            try:
                return await asyncio.gather(*(client.complete(MESSAGES, max_tokens=8)
                                              for _ in range(32)))
            finally:
                await client.aclose()

        start = time.perf_counter()
        results = asyncio.run(go())
        elapsed = time.perf_counter() - start
    assert len(server.requests) == 32
    assert sorted(r.text for r in results) == sorted(f"answer {i}" for i in range(32))
    assert elapsed < 32 * 0.3 / 3, f"requests were not served concurrently ({elapsed:.2f} s)"


def test_image_colours_decodes_png_and_jpeg_data_urls():
    def data_url(colour, fmt):
        buf = io.BytesIO()
        Image.new("RGB", (16, 12), colour).save(buf, format=fmt)
        mime = "png" if fmt == "PNG" else "jpeg"
        return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"

    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url((200, 10, 30), "PNG")}},
        {"type": "text", "text": "and"},
        {"type": "image_url", "image_url": {"url": data_url((0, 128, 255), "JPEG")}},
    ]}]
    # Behaviour encoded in colours: the server answers with what it saw.
    with LoopbackTeacher(lambda request, i: Reply(content=repr(image_colours(request)))) as server:
        result, _, _ = ask(server, messages)
    png, jpeg = eval(result.text)
    assert png == (200, 10, 30)
    assert all(abs(a - b) <= 3 for a, b in zip(jpeg, (0, 128, 255)))
    assert estimate_prompt_tokens(server.requests[0]) == 2 * 85 + len("and") // 4


# ---------------------------------------------------------------------------------------- retries

def test_429_with_retry_after_waits_at_least_the_header_then_succeeds():
    replies = (Reply(status=429, content="slow down", headers={"Retry-After": "1"}),
               Reply(content="fine now"))
    with LoopbackTeacher(scripted(*replies)) as server:
        # backoff_base is tiny, so only the header can make the wait reach 1 s.
        result, client, sleep = ask(server, backoff_base=0.01)
    assert result.text == "fine now"
    assert len(sleep.delays) == 1 and 1.0 <= sleep.delays[0] <= 1.01
    assert client.usage.requests == 2 and client.usage.retries == 1 and client.usage.failures == 0


@pytest.mark.parametrize("headers, low, high", [
    ({"retry-after-ms": "2500"}, 2.5, 2.5),
    ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5, 1.5),  # the precise one wins
    ({"Retry-After": "100000"}, 45.0, 45.0),                      # capped at retry_after_max
    ("date+30", 25.0, 30.0),                                      # an HTTP date
])
def test_server_requested_delays_are_parsed_and_capped(headers, low, high):
    if headers == "date+30":
        headers = {"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)}
    replies = (Reply(status=503, content="overloaded", headers=headers), Reply(content="ok"))
    with LoopbackTeacher(scripted(*replies)) as server:
        result, _, sleep = ask(server, backoff_base=0.01, retry_after_max=45.0)
    assert result.text == "ok"
    assert len(sleep.delays) == 1 and low <= sleep.delays[0] <= high


def test_two_500s_then_ok_counts_two_retries_with_growing_backoff():
    replies = (Reply(status=500), Reply(status=502), Reply(content="third time lucky"))
    with LoopbackTeacher(scripted(*replies)) as server:
        result, client, sleep = ask(server, backoff_base=1.0)
    assert result.text == "third time lucky"
    assert len(server.requests) == 3
    assert client.usage.requests == 3 and client.usage.retries == 2 and client.usage.failures == 0
    # Re-send k waits backoff_base * 2**k scaled by a jitter factor in [0.5, 1].
    assert 0.5 <= sleep.delays[0] <= 1.0 and 1.0 <= sleep.delays[1] <= 2.0


def test_a_response_slower_than_the_timeout_is_retried():
    replies = (Reply(content="too late", delay=1.0), Reply(content="in time"))
    with LoopbackTeacher(scripted(*replies)) as server:
        start = time.perf_counter()
        result, client, sleep = ask(server, timeout=0.3)
        elapsed = time.perf_counter() - start
    assert result.text == "in time"
    assert len(server.requests) == 2 and client.usage.retries == 1 and len(sleep.delays) == 1
    assert elapsed < 0.9, "the client waited for the slow reply instead of timing out"


def test_persistent_500_gives_up_after_max_retries():
    with LoopbackTeacher(scripted(Reply(status=500, content="boom"))) as server:
        error, client, sleep = ask(server, max_retries=3, backoff_base=1.0, backoff_max=1.5)
    assert isinstance(error, ChatRequestError)
    assert error.reason == "server_error" and error.status == 500 and error.attempts == 4
    assert "boom" in str(error)
    assert len(server.requests) == 4
    assert client.usage == Usage(requests=4, retries=3, failures=1)
    assert len(sleep.delays) == 3 and max(sleep.delays) <= 1.5  # backoff_max caps the growth


def test_persistent_429_fails_as_rate_limited():
    with LoopbackTeacher(scripted(Reply(status=429))) as server:
        error, client, _ = ask(server, max_retries=1, backoff_base=0.01)
    assert error.reason == "rate_limited" and error.status == 429
    assert client.usage.requests == 2 and client.usage.failures == 1


def test_unreachable_server_is_a_connection_error():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go():
        client = ChatClient(f"http://127.0.0.1:{port}/v1", "toy", None, max_retries=2,
                               sleep=RecordingSleep())
        try:
            await client.complete(MESSAGES, max_tokens=8)
        finally:
            await client.aclose()

    with pytest.raises(ChatRequestError) as info:
        asyncio.run(go())
    assert info.value.reason == "connection_error" and info.value.attempts == 3


# ------------------------------------------------------------------------------- no-retry failures

@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_is_a_bad_request_without_retry(status):
    with LoopbackTeacher(scripted(Reply(status=status, content="max_tokens is too large"))) as server:
        error, client, sleep = ask(server)
    assert error.reason == "bad_request" and error.status == status
    assert "max_tokens is too large" in str(error)
    assert len(server.requests) == 1 and sleep.delays == []
    assert client.usage == Usage(requests=1, failures=1)


@pytest.mark.parametrize("reply", [
    Reply(content=""),
    Reply(content=None),
    Reply(content="  \n "),
    Reply(body=b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}'),
    Reply(body=b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "cut'),
    Reply(body=b"Internal proxy page", headers={"Content-Type": "text/html"}),
], ids=["empty", "null", "blank", "no-choices", "malformed-json", "not-json"])
def test_unusable_200_is_an_empty_response_without_retry(reply):
    with LoopbackTeacher(scripted(reply)) as server:
        error, client, sleep = ask(server)
    assert isinstance(error, ChatRequestError) and error.reason == "empty_response"
    assert len(server.requests) == 1 and sleep.delays == []
    assert client.usage.failures == 1


# ------------------------------------------------------------------------------------- the API key

def test_api_key_is_sent_but_never_shown():
    # A server that echoes the key in its error text, as some gateways do.
    echo = f"Incorrect API key provided: {SECRET}."
    with LoopbackTeacher(scripted(Reply(status=401, content=echo))) as server:
        error, client, _ = ask(server, api_key=SECRET)
    assert server.headers_seen[0]["authorization"] == f"Bearer {SECRET}"
    assert error.reason == "bad_request" and error.status == 401
    shown = [str(error), repr(error), repr(client), str(client), error.message,
             "".join(traceback.format_exception(error))]
    assert all(SECRET not in text for text in shown)
    assert "[redacted]" in str(error)


def test_without_a_key_a_placeholder_is_sent():
    with LoopbackTeacher(scripted(Reply(content="hi"))) as server:
        result, _, _ = ask(server, api_key=None)
    assert result.text == "hi"
    assert server.headers_seen[0]["authorization"] == "Bearer not-needed"


def test_teacher_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ChatRequestError("timeout", "slow", status=None, attempts=3)))
    assert (error.reason, error.message, error.attempts, str(error)) == ("timeout", "slow", 3,
                                                                          "timeout: slow")


# ------------------------------------------------------------------------------------ rate limiter

def acquire_times(limiter: RateLimiter, clock: FakeClock, token_counts, concurrent=False):
    """Acquires once per entry of `token_counts`; returns the fake time each acquire returned."""
    times: list[float] = []

    async def one(tokens):
        await limiter.acquire(tokens)
        times.append(clock.now)

    async def go():
        if concurrent:
            await asyncio.gather(*(one(t) for t in token_counts))
        else:
            for t in token_counts:
                await one(t)

    asyncio.run(go())
    return times


def limited(rpm, tpm):
    clock = FakeClock()
    sleep = RecordingSleep(clock)
    return RateLimiter(rpm, tpm, clock=clock, sleep=sleep), clock, sleep


def test_requests_per_minute_spacing():
    limiter, clock, _ = limited(60, None)
    times = acquire_times(limiter, clock, [10] * 63)
    # A minute's allowance goes out at once; the next requests wait for the window to slide.
    assert times[:60] == [0.0] * 60 and times[60:] == [60.0] * 3

    limiter, clock, _ = limited(2, None)
    assert acquire_times(limiter, clock, [1, 1, 1, 1, 1]) == [0.0, 0.0, 60.0, 60.0, 120.0]


def test_requests_spread_in_time_free_their_slot_one_by_one():
    limiter, clock, _ = limited(3, None)

    async def go():
        times = []
        for gap in [0, 10, 10, 0, 0, 0]:  # arrivals at t = 0, 10, 20, then as soon as allowed
            clock.now += gap
            await limiter.acquire(1)
            times.append(clock.now)
        return times

    assert asyncio.run(go()) == [0.0, 10.0, 20.0, 60.0, 70.0, 80.0]


def test_tokens_per_minute_limit():
    limiter, clock, _ = limited(None, 1000)
    assert acquire_times(limiter, clock, [400, 400, 400, 100, 700]) == [0.0, 0.0, 60.0, 60.0, 120.0]


def test_a_request_larger_than_the_token_limit_does_not_deadlock():
    limiter, clock, _ = limited(None, 1000)
    # Alone in the window it goes at once; the next request waits until it left the window.
    assert acquire_times(limiter, clock, [1500, 100]) == [0.0, 60.0]
    limiter, clock, _ = limited(None, 1000)
    assert acquire_times(limiter, clock, [100, 1500, 1500]) == [0.0, 60.0, 120.0]


def test_both_limits_apply_and_none_means_unlimited():
    limiter, clock, _ = limited(3, 1000)
    assert acquire_times(limiter, clock, [100] * 4) == [0.0, 0.0, 0.0, 60.0]  # rpm binds
    limiter, clock, _ = limited(100, 250)
    assert acquire_times(limiter, clock, [100] * 4) == [0.0, 0.0, 60.0, 60.0]  # tpm binds
    limiter, clock, sleep = limited(None, None)
    assert acquire_times(limiter, clock, [10**9] * 5) == [0.0] * 5 and sleep.delays == []


def test_concurrent_acquires_never_exceed_the_limits_in_any_window():
    rpm, tpm = 7, 2000
    rng = random.Random(1)
    tokens = [rng.randint(50, 600) for _ in range(60)]
    limiter, clock, _ = limited(rpm, tpm)
    times = acquire_times(limiter, clock, tokens, concurrent=True)
    assert len(times) == len(tokens)
    # Which request got which time is up to the event loop; count every window of 60 s that
    # starts at an acquire time (the worst windows start there).
    assert times == sorted(times)
    for start in times:
        inside = [i for i, t in enumerate(times) if start <= t < start + 60]
        assert len(inside) <= rpm
    # Tokens per window: FIFO order on the lock means the i-th completion is the i-th request.
    for start in times:
        assert sum(tokens[i] for i, t in enumerate(times) if start <= t < start + 60) <= tpm
    # And the limiter is not needlessly slow: 60 requests at 7/min need at least 8 windows.
    # Blocked means > 2000 - 600 tokens in the window, so at least 3 requests go per minute.
    assert times[-1] <= 60 * (len(tokens) // 3)


def test_every_http_attempt_goes_through_the_rate_limiter():
    clock = FakeClock()
    limiter_sleep = RecordingSleep(clock)
    limiter = RateLimiter(1, None, clock=clock, sleep=limiter_sleep)
    replies = (Reply(status=500), Reply(content="ok"))
    with LoopbackTeacher(scripted(*replies)) as server:
        result, client, sleep = ask(server, rate_limiter=limiter, backoff_base=0.01)
    assert result.text == "ok"
    # The retry is a second request: at 1 request/minute it had to wait for the window.
    assert limiter_sleep.delays == [pytest.approx(60.0)]
    assert client.usage.requests == 2


def test_estimated_tokens_default_to_max_tokens_plus_1000():
    clock = FakeClock()
    limiter = RateLimiter(None, 1000 + 64 + 1000, clock=clock, sleep=RecordingSleep(clock))
    with LoopbackTeacher(scripted(Reply(content="ok"))) as server:
        async def go():
            client = ChatClient(server.base_url, "toy", None, rate_limiter=limiter)
            try:
                await client.complete(MESSAGES, max_tokens=64)               # 1064 tokens
                await client.complete(MESSAGES, max_tokens=64, estimated_tokens=1000)
                stamp = clock.now
                await client.complete(MESSAGES, max_tokens=64, estimated_tokens=1)
                return stamp, clock.now
            finally:
                await client.aclose()

        before, after = asyncio.run(go())
    assert before == 0.0 and after == 60.0  # 1064 + 1000 filled the 2064-token minute


# ------------------------------------------------------------------------------------------- usage

def test_usage_add_round_trip_and_cost():
    a = Usage(requests=3, retries=1, failures=0, prompt_tokens=1000, completion_tokens=500)
    b = Usage.from_dict({"requests": 2, "failures": 1, "prompt_tokens": 1_000_000, "unknown": 9})
    assert b == Usage(requests=2, failures=1, prompt_tokens=1_000_000)
    assert a.add(b) is a
    assert a == Usage(requests=5, retries=1, failures=1, prompt_tokens=1_001_000,
                      completion_tokens=500)
    assert Usage.from_dict(a.to_dict()) == a
    assert Usage.from_dict({}) == Usage() and Usage.from_dict(None) == Usage()
    prices = {"input_per_million": 2.5, "output_per_million": 10.0}
    assert a.cost(prices) == pytest.approx(1.001 * 2.5 + 0.0005 * 10.0)
    assert a.cost(None) is None
