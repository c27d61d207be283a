"""`allava synth --batch` end to end against a real Batch API on loopback
(tests/helpers/batch_server.py): the same records as online at batch prices, input files split
to the limits, repair turns in a second round, expired and failed batches, per-request errors,
and resuming after kill -9 without ever submitting the same requests twice."""
from __future__ import annotations

import json
import signal
import time

import pytest

from allava.synth.cli import main as synth_main
from allava.utils.usage import Usage
from tests.helpers.batch_server import NO_LINE, Fate, LoopbackBatchAPI
from tests.helpers.synth_jobs import (BLUE, CYAN, GREEN, MAGENTA, RED, SECRET, YELLOW,
                                      assert_secret_absent, laion_answer, make_images,
                                      nearest_colour, read_jsonl, run_cli, synth_args)
from tests.helpers.synth_server import LoopbackTeacher, Reply, image_colours

BATCH = ("--batch", "--batch-poll-seconds", "0.05")
FULL = laion_answer("green")
ANSWER = FULL.split("### Answer\n")[1]
WITHOUT_ANSWER = FULL.split("### Answer")[0]


def by_colour(replies: dict[tuple, Reply]):
    """A responder answering each request by its image's colour (default: a good reply); a
    request that continues a conversation (a repair turn) is answered with the missing answer."""
    def respond(request: dict, index: int) -> Reply:
        if any(m["role"] == "assistant" for m in request["messages"]):
            return Reply(content=ANSWER)
        return replies.get(nearest_colour(image_colours(request)[0]), Reply(content=FULL))
    return respond


def run_batch(server, images, out, *extra) -> int:
    return synth_main(synth_args(server, images, out, *BATCH, *extra))


def state_of(out) -> dict:
    return json.loads((out / "batches.json").read_text())


def sorted_lines(path) -> list[dict]:
    return sorted(read_jsonl(path), key=lambda r: r["id"])


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)


def test_a_batch_run_writes_what_an_online_run_writes_at_batch_prices(tmp_path, capsys):
    colours = {f"g{n}": GREEN for n in range(6)} | {"blue": BLUE, "cyan": CYAN}
    images = make_images(tmp_path / "images", colours)
    replies = {BLUE: Reply(content="I'm sorry, but I can't help with describing this image."),
               CYAN: Reply(content=FULL, finish_reason="length")}
    with LoopbackTeacher(by_colour(replies)) as online:
        assert synth_main(synth_args(online, images, tmp_path / "online", "--structured", "off")) == 0
    capsys.readouterr()
    with LoopbackBatchAPI(by_colour(replies)) as server:
        assert run_batch(server, images, tmp_path / "batch") == 0
        summary = capsys.readouterr().out
    for name in ("caption.jsonl", "instruct.jsonl"):
        assert sorted_lines(tmp_path / "batch" / name) == sorted_lines(tmp_path / "online" / name)
    assert sorted_lines(tmp_path / "batch" / "rejects.jsonl") == \
        sorted_lines(tmp_path / "online" / "rejects.jsonl")
    assert {r["reason"] for r in read_jsonl(tmp_path / "batch" / "rejects.jsonl")} == \
        {"refusal", "truncated_response"}
    # The same request bodies (`--structured auto` sends free text in batch mode).
    dump = lambda requests: sorted(json.dumps(r, sort_keys=True) for r in requests)  # noqa: E731
    assert dump(server.requests) == dump(online.requests)
    assert len(server.created) == 1 and len(server.calls) < len(colours)
    usage = json.loads((tmp_path / "batch" / "usage.json").read_text())
    assert usage["batches"] == 1 and usage["batch_requests"] == len(colours)
    assert usage["requests"] == usage["prompt_tokens"] == 0 and usage["batch_prompt_tokens"] > 0
    batch_cost = (usage["batch_prompt_tokens"] * 1.25 + usage["batch_completion_tokens"] * 5.0) / 1e6
    assert usage["estimated_cost_usd"] == pytest.approx(batch_cost)
    printed = json.loads(summary[summary.index("{"):])
    assert printed["batches"] == 1 and printed["batch_cost_usd"] == pytest.approx(batch_cost)
    assert all(batch["applied"] for batch in state_of(tmp_path / "batch")["batches"])
    assert_secret_absent(tmp_path / "batch")


def test_input_files_are_split_by_the_request_limit(tmp_path):
    images = make_images(tmp_path / "images", {f"g{n}": GREEN for n in range(5)})
    out = tmp_path / "out"
    with LoopbackBatchAPI(by_colour({})) as server:
        assert run_batch(server, images, out, "--batch-max-requests", "2",
                         "--structured", "on") == 0
        sizes = [len(server.input_lines(batch_id)) for batch_id in server.created]
        bodies = [line["body"] for b in server.created for line in server.input_lines(b)]
    assert sizes == [2, 2, 1]
    assert all(body["response_format"]["type"] == "json_schema" for body in bodies)
    assert len(read_jsonl(out / "instruct.jsonl")) == 5
    assert [b["name"] for b in state_of(out)["batches"]] == ["b0000", "b0001", "b0002"]


def test_a_repair_turn_goes_into_a_second_batch(tmp_path):
    images = make_images(tmp_path / "images", {"g0": GREEN, "red": RED})
    out = tmp_path / "out"
    with LoopbackBatchAPI(by_colour({RED: Reply(content=WITHOUT_ANSWER)})) as server:
        assert run_batch(server, images, out) == 0
        first, second = (server.input_lines(b) for b in server.created)
    assert [line["custom_id"] for line in second] == ["red"]
    follow_up = second[0]["body"]["messages"]
    red_first = next(line for line in first if line["custom_id"] == "red")["body"]["messages"]
    assert follow_up[:-2] == red_first
    assert follow_up[-2] == {"role": "assistant", "content": WITHOUT_ANSWER}
    instruct = {r["id"]: r for r in read_jsonl(out / "instruct.jsonl")}
    assert instruct["synth_laion_inst_red"]["conversations"][1]["value"] == ANSWER
    assert len(instruct) == 2 and not read_jsonl(out / "rejects.jsonl")
    usage = json.loads((out / "usage.json").read_text())
    assert usage["repairs"] == 1 and usage["batch_requests"] == 3 and usage["batches"] == 2
    assert [b["round"] for b in state_of(out)["batches"]] == [1, 2]


def test_an_expired_batch_applies_what_finished_and_sends_the_rest_once_more(tmp_path):
    images = make_images(tmp_path / "images", {f"g{n}": GREEN for n in range(5)})
    out = tmp_path / "out"
    # Every batch expires after its first two requests: 5 -> 2 done, 3 sent again -> 2 done,
    # the last one rejected (a rerun retries it).
    with LoopbackBatchAPI(by_colour({}), fate=lambda i, lines: Fate("expired", finished=2)) as server:
        assert run_batch(server, images, out) == 0
        sizes = [len(server.input_lines(batch_id)) for batch_id in server.created]
    assert sizes == [5, 3]
    assert len(read_jsonl(out / "instruct.jsonl")) == 4
    [reject] = read_jsonl(out / "rejects.jsonl")
    assert reject["id"] == "g4" and reject["reason"] == "teacher_batch_expired"
    assert [b["attempt"] for b in state_of(out)["batches"]] == [1, 2]


def test_a_failed_batch_rejects_its_items_and_a_rerun_retries_them(tmp_path):
    images = make_images(tmp_path / "images", {f"g{n}": GREEN for n in range(3)})
    out = tmp_path / "out"
    fate = lambda i, lines: Fate("failed", message="bad line 1") if i == 0 else Fate()  # noqa: E731
    with LoopbackBatchAPI(by_colour({}), fate=fate) as server:
        assert run_batch(server, images, out) == 0
        rejects = read_jsonl(out / "rejects.jsonl")
        assert {r["reason"] for r in rejects} == {"teacher_batch_failed"} and len(rejects) == 3
        assert "bad line 1" in rejects[0]["detail"] and not read_jsonl(out / "instruct.jsonl")
        assert run_batch(server, images, out) == 0
        assert len(server.created) == 2
    assert len(read_jsonl(out / "instruct.jsonl")) == 3 and not read_jsonl(out / "rejects.jsonl")


def test_per_request_errors_are_teacher_rejects(tmp_path):
    colours = {"g0": GREEN, "blue": BLUE, "yellow": YELLOW, "magenta": MAGENTA, "cyan": CYAN}
    images = make_images(tmp_path / "images", colours)
    out = tmp_path / "out"
    replies = {BLUE: Reply(status=429, content="slow down"),
               YELLOW: Reply(status=500, content="server hiccup"),
               MAGENTA: NO_LINE, CYAN: Reply(status=400, content="bad image")}
    with LoopbackBatchAPI(by_colour(replies)) as server:
        assert run_batch(server, images, out) == 0
    reasons = {r["id"]: r["reason"] for r in read_jsonl(out / "rejects.jsonl")}
    assert reasons == {"blue": "teacher_rate_limited", "yellow": "teacher_server_error",
                       "magenta": "teacher_missing_result", "cyan": "teacher_bad_request"}
    assert [r["id"] for r in read_jsonl(out / "instruct.jsonl")] == ["synth_laion_inst_g0"]


@pytest.mark.parametrize("lost_id", [False, True], ids=["id-recorded", "id-lost"])
def test_a_killed_run_resumes_its_batch_without_submitting_it_again(tmp_path, lost_id):
    """kill -9 while the batch runs; the rerun polls the same batch: by its recorded id, or
    (a kill between create and record, simulated by deleting the id) found by its metadata."""
    images = make_images(tmp_path / "images", {f"g{n}": GREEN for n in range(4)})
    out = tmp_path / "out"
    with LoopbackBatchAPI(by_colour({})) as server:
        server.release.clear()  # the batch stays in_progress
        process = run_cli(server, images, out, *BATCH)
        deadline = time.monotonic() + 60
        while not any("GET /v1/batches/" in call for call in server.calls):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the batch was never polled"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        state = state_of(out)
        assert state["batches"][0]["batch_id"] == "batch_0" and not read_jsonl(out / "instruct.jsonl")
        if lost_id:
            del state["batches"][0]["batch_id"]
            (out / "batches.json").write_text(json.dumps(state))
        server.release.set()
        calls_before = len(server.calls)
        assert run_batch(server, images, out) == 0
        rerun_calls = server.calls[calls_before:]
        assert server.created == ["batch_0"]  # never submitted twice
        assert ("GET /v1/batches" in rerun_calls) == lost_id  # the metadata lookup
        assert "POST /v1/files" not in rerun_calls  # the uploaded file was reused
    assert len(read_jsonl(out / "instruct.jsonl")) == 4 and not read_jsonl(out / "rejects.jsonl")
    assert state_of(out)["batches"][0]["batch_id"] == "batch_0"
    assert json.loads((out / "usage.json").read_text())["batches"] == 1


def test_usage_from_before_batches_loads_and_batch_tokens_fall_back_to_online_prices():
    old = Usage.from_dict({"requests": 2, "prompt_tokens": 1_000_000, "completion_tokens": 0})
    assert old.batch_prompt_tokens == old.batches == 0
    old.batch_prompt_tokens = 1_000_000
    online_only = {"input_per_million": 2.0, "output_per_million": 8.0}
    assert old.cost(online_only) == pytest.approx(4.0)  # no batch price: charged online prices
    assert old.cost(online_only | {"batch_input_per_million": 1.0,
                                   "batch_output_per_million": 4.0}) == pytest.approx(3.0)
