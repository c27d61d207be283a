"""LLM-judged MM-Vet and LLaVA-Bench scoring against a real OpenAI-style server on loopback.

The judge replies are scripted per item (the item is found from a marker in its prediction), so
every aggregate below is computed by hand from the scripted replies.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time

import numpy as np
import pytest

from allava.evaluation.judge import (
    JudgeNotConfigured,
    JudgeSettings,
    MMVetItem,
    grade_llava_bench,
    grade_mmvet,
    load_judge_prompts,
    parse_mmvet_score,
    parse_pair_scores,
)
from allava.utils.chat_client import ChatClient
from tests.helpers.synth_server import LoopbackTeacher, Reply

PROMPTS = load_judge_prompts()
SECRET = "sk-judge-SECRET-4242"


async def no_sleep(delay: float) -> None:  # the client's backoff, without the wait
    await asyncio.sleep(0)


def user_text(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


class Script:
    """Responder: replies[item_id][k] answers the k-th request about that item (last one repeats)."""

    def __init__(self, replies: dict[str, list[Reply | str]], marker: str):
        self.replies = replies
        self.pattern = re.compile(marker + r"-(\w+)")
        self.asked: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict, index: int) -> Reply:
        item = self.pattern.search(user_text(request)).group(1)
        with self.lock:
            k = self.asked.get(item, 0)
            self.asked[item] = k + 1
        script = self.replies[item]
        reply = script[min(k, len(script) - 1)]
        return Reply(content=reply) if isinstance(reply, str) else reply


def run_grading(server: LoopbackTeacher, grade, items, predictions, **kwargs):
    """Runs `grade` with a fresh client on the server; returns (result, client)."""
    async def go():
        client = ChatClient(server.base_url, "judge-model", None, sleep=no_sleep,
                               rng=random.Random(0), max_retries=3)
        try:
            return await grade(items, predictions, client, **kwargs), client
        finally:
            await client.aclose()
    return asyncio.run(go())


# ------------------------------------------------------------------------------------ parsing

@pytest.mark.parametrize("text, expected", [
    ("0.5", 0.5), ("1.0", 1.0), ("0", 0.0), ("  0.7\n", 0.7), ("0.3 because it misses", 0.3),
    ("0.6\nthe prediction", 0.6), ("1.1", None), ("-0.1", None), ("nan", None), ("inf", None),
    ("Correctness: 0.5", None), ("0.5.", None), ("", None), ("   ", None), (None, None),
])
def test_parse_mmvet_score(text, expected):
    assert parse_mmvet_score(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("8 6", (8.0, 6.0)), ("8,6", (8.0, 6.0)), ("7.5 9\nAssistant 2 is better", (7.5, 9.0)),
    ("8 9\r\nwhy", (8.0, 9.0)),
    # LLaVA's parse_score quirks, kept: single-space split, exactly two fields.
    ("8, 6", None), ("8 6 ", None), ("8  6", None), ("7\t8", None), ("Assistant 1: 8", None),
    ("8\n6", None), ("", None), ("nan 3", None), (None, None),
])
def test_parse_pair_scores(text, expected):
    assert parse_pair_scores(text) == expected


# ------------------------------------------------------------------------------------- MM-Vet

def mmvet_item(name: str, caps, answer: str = "x") -> MMVetItem:
    return MMVetItem(id=name, question=f"Question {name}?", answer=answer, capabilities=caps)


def test_mmvet_per_capability_with_multi_capability_items():
    items = [
        mmvet_item("a", ["rec"]),
        mmvet_item("b", ["rec", "ocr"], answer="12<AND>15"),
        {"id": "c", "question": "Question c?", "answer": "x", "capability": "ocr,spat"},
        mmvet_item("d", ["math", "ocr", "rec"]),
    ]
    predictions = {name: f"PRED-{name}" for name in "abcd"}
    script = Script({"a": ["0.5"], "b": ["1.0"], "c": ["0.0"], "d": ["0.8"]}, "PRED")
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_mmvet, items, predictions)

    # rec: a, b, d; ocr: b, c, d; spat: c; math: d.
    assert result["per_capability"] == pytest.approx(
        {"rec": (0.5 + 1.0 + 0.8) / 3 * 100, "ocr": (1.0 + 0.0 + 0.8) / 3 * 100,
         "spat": 0.0, "math": 80.0})
    assert list(result["per_capability"]) == ["rec", "ocr", "spat", "math"]
    assert result["per_capability_count"] == {"rec": 3, "ocr": 3, "spat": 1, "math": 1}
    assert result["total"] == pytest.approx((0.5 + 1.0 + 0.0 + 0.8) / 4 * 100)  # 57.5
    assert result["per_integration"] == pytest.approx(
        {"rec": 50.0, "rec_ocr": 100.0, "ocr_spat": 0.0, "rec_ocr_math": 80.0})
    assert result["total_runs"] == pytest.approx([57.5]) and result["total_std"] == 0.0
    assert (result["unparsed"], result["reasks"], result["errors"]) == (0, 0, 0)
    assert result["complete"] and result["num_graded"] == 4
    assert [row["score"] for row in result["items"]] == [0.5, 1.0, 0.0, 0.8]

    # What the judge was sent: one user message ending with the row to complete, at the
    # reference's settings, with spaces put around <AND>.
    assert len(server.requests) == 4
    for request in server.requests:
        assert request["max_tokens"] == 3 and request["temperature"] == 0.0
        assert request["model"] == "judge-model"
        assert [m["role"] for m in request["messages"]] == ["user"]
    sent_b = next(user_text(r) for r in server.requests if "PRED-b" in user_text(r))
    assert sent_b.startswith(PROMPTS.mmvet.instructions + "\n")
    assert sent_b.endswith("\nQuestion b? | 12 <AND> 15 | PRED-b | ")


def test_mmvet_unparseable_replies_are_asked_again_then_score_zero():
    items = [mmvet_item("x", ["rec"]), mmvet_item("y", ["rec", "know"]), mmvet_item("z", ["know"])]
    script = Script({
        "x": ["I cannot tell"],              # never a score: 5 asks, then 0.0
        "y": ["Score: high", "1.5", "0.7"],  # out of range counts as unparseable too
        "z": [Reply(content=""), "0.4"],     # an empty reply is an unparseable reply
    }, "PRED")
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_mmvet, items, ["PRED-x", "PRED-y", "PRED-z"])

    by_id = {row["id"]: row for row in result["items"]}
    assert by_id["x"]["score"] == 0.0 and by_id["x"]["unparsed_runs"] == 1
    assert by_id["x"]["replies"] == [["I cannot tell"] * 5]
    assert by_id["y"]["score"] == 0.7 and by_id["y"]["unparsed_runs"] == 0
    assert by_id["z"]["score"] == 0.4 and by_id["z"]["replies"] == [[None, "0.4"]]
    assert script.asked == {"x": 5, "y": 3, "z": 2}
    assert result["unparsed"] == 1 and result["reasks"] == 4 + 2 + 1
    assert result["total"] == pytest.approx((0.0 + 0.7 + 0.4) / 3 * 100)
    assert result["per_capability"] == pytest.approx({"rec": 35.0, "know": 55.0})
    assert result["complete"]

    # The official schedule: asks 1 and 2 at the base temperature, then +0.5 each; every re-ask
    # carries the nudge, the first ask does not.
    asks_x = [r for r in server.requests if "PRED-x" in user_text(r)]
    assert [r["temperature"] for r in asks_x] == [0.0, 0.0, 0.5, 1.0, 1.5]
    nudge = "\n" + PROMPTS.mmvet.reask
    assert [user_text(r).endswith(nudge) for r in asks_x] == [False, True, True, True, True]


def test_mmvet_runs_are_averaged_and_attempts_configurable():
    items = [mmvet_item("a", ["gen"]), mmvet_item("b", ["gen"])]
    script = Script({"a": ["0.4", "0.8", "0.6"], "b": ["oops"]}, "PRED")
    settings = JudgeSettings(runs=3, attempts=2)
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_mmvet, items, {"a": "PRED-a", "b": "PRED-b"},
                                settings=settings, concurrency=1)
    row_a = result["items"][0]
    assert sorted(row_a["run_scores"]) == [0.4, 0.6, 0.8]
    assert row_a["score"] == pytest.approx(0.6)
    assert result["items"][1]["run_scores"] == [0.0, 0.0, 0.0]
    assert script.asked == {"a": 3, "b": 6}  # b: 3 runs x 2 attempts
    assert result["unparsed"] == 3 and result["runs"] == 3
    assert result["total"] == pytest.approx(30.0)
    assert sorted(result["total_runs"]) == pytest.approx([20.0, 30.0, 40.0])
    assert result["total_std"] == pytest.approx(float(np.std([20.0, 30.0, 40.0])))


def test_mmvet_server_error_once_is_retried_by_the_client():
    script = Script({"a": [Reply(status=500, content="boom"), "0.9"]}, "PRED")
    with LoopbackTeacher(script) as server:
        result, client = run_grading(server, grade_mmvet, [mmvet_item("a", ["ocr"])], ["PRED-a"])
    assert result["total"] == pytest.approx(90.0)
    assert result["unparsed"] == 0 and result["reasks"] == 0 and result["complete"]
    assert len(server.requests) == 2 and client.usage.retries == 1


def test_mmvet_judge_failure_is_an_error_not_a_zero():
    items = [mmvet_item("a", ["rec"]), mmvet_item("b", ["rec", "ocr"])]
    script = Script({"a": ["0.6"], "b": [Reply(status=400, content="context too long")]}, "PRED")
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_mmvet, items, ["PRED-a", "PRED-b"])
    assert result["errors"] == 1 and not result["complete"] and result["num_graded"] == 1
    assert result["items"][1]["error"] == "bad_request" and result["items"][1]["score"] is None
    assert result["total"] == pytest.approx(60.0)
    assert result["per_capability"] == pytest.approx({"rec": 60.0})  # b left out everywhere


def test_mmvet_inputs_are_checked_before_any_request():
    with LoopbackTeacher(Script({}, "PRED")) as server:
        with pytest.raises(ValueError, match="no prediction"):
            run_grading(server, grade_mmvet, [mmvet_item("a", ["rec"])], {"b": "PRED-b"})
        with pytest.raises(ValueError, match="duplicate"):
            run_grading(server, grade_mmvet, [mmvet_item("a", ["rec"])] * 2, ["p", "q"])
        with pytest.raises(ValueError, match="no capability"):
            run_grading(server, grade_mmvet, [mmvet_item("a", [])], ["p"])
        with pytest.raises(ValueError, match="concurrency"):
            run_grading(server, grade_mmvet, [mmvet_item("a", ["rec"])], ["p"], concurrency=0)
    assert server.requests == []


# -------------------------------------------------------------------------------- LLaVA-Bench

def llava_item(name: str, category: str) -> dict:
    return {"id": name, "question": f"What about {name}?", "reference": f"GPT4-answer-{name}",
            "category": category, "caption": [f"Line one of {name}.", "Line two."]}


LLAVA_ITEMS = [llava_item("c1", "conv"), llava_item("c2", "conv"), llava_item("d1", "detail"),
               llava_item("x1", "complex"), llava_item("x2", "complex")]
LLAVA_REPLIES = {
    "c1": ["8 6\nAssistant 1 is more precise."],
    "c2": ["9,7\nBoth are fine."],
    "d1": ["9 4\nAssistant 2 misses the details."],
    "x1": ["6 6\nEqual."],
    "x2": ["I would rate them 7 and 8."],  # unparseable: recorded as (-1, -1)
}


def test_llava_bench_relative_scores_per_category():
    script = Script(LLAVA_REPLIES, "ANS")
    predictions = {item["id"]: f"ANS-{item['id']}" for item in LLAVA_ITEMS}
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_llava_bench, LLAVA_ITEMS, predictions)

    # conv: means 8.5 / 6.5; detail 9 / 4; complex (6 + -1)/2 = 2.5 for both;
    # overall: (8+9+9+6-1)/5 = 6.2 and (6+7+4+6-1)/5 = 4.4.
    assert result["relative"] == {"conv": 76.5, "detail": 44.4, "complex": 100.0, "overall": 71.0}
    assert result["mean_reference"] == pytest.approx(
        {"conv": 8.5, "detail": 9.0, "complex": 2.5, "overall": 6.2})
    assert result["mean_model"] == pytest.approx(
        {"conv": 6.5, "detail": 4.0, "complex": 2.5, "overall": 4.4})
    assert result["count"] == {"conv": 2, "detail": 1, "complex": 2, "overall": 5}
    assert result["unparsed"] == 1 and result["errors"] == 0 and result["complete"]
    by_id = {row["id"]: row for row in result["items"]}
    assert by_id["x2"]["scores"] == [-1.0, -1.0] and by_id["x2"]["parsed"] is False
    assert by_id["x2"]["review"] == "I would rate them 7 and 8."
    assert by_id["c2"]["scores"] == [9.0, 7.0] and by_id["c2"]["parsed"] is True
    assert script.asked == {name: 1 for name in LLAVA_REPLIES}  # no re-ask, as in LLaVA

    request = next(r for r in server.requests if "ANS-d1" in user_text(r))
    assert request["temperature"] == 0.2 and request["max_tokens"] == 1024
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][0]["content"] == PROMPTS.llava_bench.system
    text = user_text(request)
    assert text.startswith("[Context]\nLine one of d1.\nLine two.\n\n[Question]\nWhat about d1?\n\n")
    assert "[Assistant 1]\nGPT4-answer-d1\n\n[End of Assistant 1]\n\n" in text
    assert "[Assistant 2]\nANS-d1\n\n[End of Assistant 2]\n\n[System]\n" in text
    assert text.endswith(PROMPTS.llava_bench.rules["detail"] + "\n\n")


def test_llava_bench_relative_score_uses_means_rounded_to_three_decimals():
    # Means 2.0 and 1.6667: summarize_gpt_review divides the rounded means, 1.667 / 2.0 -> 83.35
    # -> 83.4, where the unrounded ratio would print 83.3.
    items = [llava_item(f"c{k}", "conv") for k in range(3)]
    script = Script({"c0": ["1 1"], "c1": ["1 1"], "c2": ["4 3"]}, "ANS")
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_llava_bench, items, ["ANS-c0", "ANS-c1", "ANS-c2"])
    assert result["relative"] == {"conv": 83.4, "overall": 83.4}
    assert result["mean_model"]["conv"] == pytest.approx(5 / 3)


def test_llava_bench_settings_override_and_retry_after_500():
    items = [llava_item("c1", "conv")]
    script = Script({"c1": [Reply(status=503, content="overloaded"), "7 7\nsame"]}, "ANS")
    settings = JudgeSettings(temperature=0.0, max_tokens=50)
    with LoopbackTeacher(script) as server:
        result, client = run_grading(server, grade_llava_bench, items, ["ANS-c1"], settings=settings)
    assert result["relative"] == {"conv": 100.0, "overall": 100.0}
    assert len(server.requests) == 2 and client.usage.retries == 1
    assert all(r["temperature"] == 0.0 and r["max_tokens"] == 50 for r in server.requests)


def test_llava_bench_empty_reply_and_failures():
    items = [llava_item("c1", "conv"), llava_item("c2", "conv"), llava_item("d1", "detail")]
    script = Script({"c1": [Reply(content="")], "c2": ["5 10"],
                     "d1": [Reply(status=500, content="down")]}, "ANS")
    with LoopbackTeacher(script) as server:
        result, _ = run_grading(server, grade_llava_bench, items, ["ANS-c1", "ANS-c2", "ANS-d1"])
    # c1: no text -> (-1, -1); d1: the server stayed down -> error, left out.
    assert result["unparsed"] == 1 and result["errors"] == 1 and not result["complete"]
    assert result["items"][2]["error"] == "server_error" and result["items"][2]["scores"] is None
    assert result["mean_reference"] == pytest.approx({"conv": 2.0, "overall": 2.0})
    assert result["mean_model"] == pytest.approx({"conv": 4.5, "overall": 4.5})
    assert result["relative"] == {"conv": 225.0, "overall": 225.0}
    assert script.asked["d1"] == 4  # the first try and the client's 3 retries


def test_llava_bench_unknown_category_fails_before_any_request():
    with LoopbackTeacher(Script({}, "ANS")) as server:
        with pytest.raises(ValueError, match="'chat'"):
            run_grading(server, grade_llava_bench, [llava_item("a", "chat")], ["ANS-a"])
    assert server.requests == []


def test_concurrency_is_bounded():
    state = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def responder(request, index):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return Reply(content="5 5")

    items = [llava_item(f"i{k}", "conv") for k in range(6)]
    with LoopbackTeacher(responder) as server:
        result, _ = run_grading(server, grade_llava_bench, items, ["p"] * 6, concurrency=2)
    assert result["num_graded"] == 6
    assert state["peak"] == 2


# ------------------------------------------------------------------------- settings and keys

def test_judge_not_configured_says_how_to_configure():
    with pytest.raises(JudgeNotConfigured) as info:
        JudgeSettings(model="gpt-4-0613").make_client()
    message = str(info.value)
    assert "missing base_url" in message
    assert "judge.base_url=" in message and "judge.model=" in message and "OPENAI_API_KEY" in message
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(JudgeNotConfigured, match="MY_JUDGE_KEY") as info:
        JudgeSettings.from_config({"api_key_env": "MY_JUDGE_KEY"}).require()
    assert "missing base_url and model" in str(info.value)
    with pytest.raises(ValueError, match="unknown judge setting"):
        JudgeSettings.from_config({"base_url": "http://x/v1", "modle": "m"})


def test_api_key_comes_from_the_environment_and_is_never_returned(monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", SECRET)

    def responder(request, index):
        if "PRED-bad" in user_text(request) or "ANS-bad" in user_text(request):
            # Real servers echo the key they were given in 401 messages.
            return Reply(status=401, content=f"Incorrect API key provided: {SECRET}")
        return Reply(content="0.5" if "PRED-" in user_text(request) else "6 3\nok")

    with LoopbackTeacher(responder) as server:
        settings = JudgeSettings(base_url=server.base_url, model="judge", api_key_env="MY_JUDGE_KEY")

        async def go():
            client = settings.make_client(sleep=no_sleep)
            try:
                mm = await grade_mmvet([mmvet_item("ok", ["rec"]), mmvet_item("bad", ["rec"])],
                                       ["PRED-ok", "PRED-bad"], client, settings=settings)
                lb = await grade_llava_bench([llava_item("ok", "conv"), llava_item("bad", "conv")],
                                             ["ANS-ok", "ANS-bad"], client, settings=settings)
                return mm, lb, repr(client)
            finally:
                await client.aclose()

        mmvet, llava, client_repr = asyncio.run(go())

    # The key was used...
    assert {h["authorization"] for h in server.headers_seen} == {f"Bearer {SECRET}"}
    # ...and is nowhere in what comes back, even though the server echoed it.
    assert mmvet["total"] == pytest.approx(50.0) and mmvet["items"][1]["error"] == "bad_request"
    assert llava["relative"] == {"conv": 50.0, "overall": 50.0}
    for blob in (json.dumps(mmvet), json.dumps(llava), repr(settings), client_repr):
        assert SECRET not in blob
