"""`--structured auto|on|off` against the loopback teacher: a JSON schema of the sections where
the endpoint accepts response_format, a switch to free text (once, logged, no item lost) where it
answers HTTP 400 naming the field."""
from __future__ import annotations

import json

import pytest

from allava.synth.cli import main as synth_main
from allava.synth.parsing import SECTIONS
from allava.synth.structured import response_format
from tests.helpers.synth_jobs import (SECRET, laion_answer, make_images, read_jsonl,
                                      synth_args)
from tests.helpers.synth_server import LoopbackTeacher, Reply

FIELDS = {"description": "A plain green square fills the frame, evenly lit, with nothing else.",
          "questions": [f"What does detail number {n} suggest?" for n in range(1, 6)],
          "chosen_question": "What does detail number 2 suggest?",
          "answer": "The evenly lit surface suggests a synthetic test pattern rather than a photo."}
REFUSAL = "Unrecognized request argument supplied: response_format"


def json_teacher(request: dict, index: int) -> Reply:
    """Answers in JSON when asked for it, else in headings."""
    if request.get("response_format"):
        return Reply(content=json.dumps(FIELDS))
    return Reply(content=laion_answer("green"))


def refusing_teacher(request: dict, index: int) -> Reply:
    if "response_format" in request:
        return Reply(status=400, content=REFUSAL)
    return Reply(content=laion_answer("green"))


def run(tmp_path, monkeypatch, responder, *extra, images=4) -> tuple[int, list[dict], object]:
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    folder = make_images(tmp_path / "images", {f"i{n}": (0, 200, 0) for n in range(images)})
    out = tmp_path / "out"
    with LoopbackTeacher(responder) as server:
        code = synth_main(synth_args(server, folder, out, *extra))
        return code, list(server.requests), out


def test_the_schema_names_every_section_of_the_mode():
    for mode in ("laion", "vflan"):
        schema = response_format(mode)["json_schema"]["schema"]
        assert schema["required"] == list(SECTIONS[mode])
        assert set(schema["properties"]) == set(SECTIONS[mode])
    assert response_format("laion")["json_schema"]["schema"]["properties"]["questions"]["minItems"] == 5
    assert response_format("text") is None  # a free answer


def test_an_endpoint_with_structured_output_gets_the_schema(tmp_path, monkeypatch, capsys):
    code, requests, out = run(tmp_path, monkeypatch, json_teacher)
    assert code == 0
    assert all(r["response_format"] == response_format("laion") for r in requests)
    instructs = read_jsonl(out / "instruct.jsonl")
    assert len(instructs) == 4 and not read_jsonl(out / "rejects.jsonl")
    assert instructs[0]["conversations"][1]["value"] == FIELDS["answer"]
    assert json.loads(capsys.readouterr().out)["structured_output"] == "json_schema"


def test_auto_falls_back_to_free_text_once_and_loses_no_item(tmp_path, monkeypatch, capsys, caplog):
    code, requests, out = run(tmp_path, monkeypatch, refusing_teacher, "--concurrency", "2",
                              images=6)
    assert code == 0
    refused = [r for r in requests if "response_format" in r]
    assert 1 <= len(refused) <= 2  # the requests in flight when the first refusal came
    assert len(requests) == 6 + len(refused)
    assert len(read_jsonl(out / "instruct.jsonl")) == 6 and not read_jsonl(out / "rejects.jsonl")
    summary = json.loads(capsys.readouterr().out)
    assert summary["structured_output"] == "refused by the endpoint: free text"
    assert [r.message for r in caplog.records].count(
        f"the endpoint refuses structured output (HTTP 400: {REFUSAL}); the run goes on in "
        "free text") == 1


def test_off_sends_no_response_format(tmp_path, monkeypatch):
    code, requests, out = run(tmp_path, monkeypatch, refusing_teacher, "--structured", "off")
    assert code == 0 and requests and all("response_format" not in r for r in requests)
    assert len(read_jsonl(out / "instruct.jsonl")) == 4


def test_on_stops_at_a_refusal_and_a_rerun_with_auto_finishes(tmp_path, monkeypatch, capsys):
    code, _, out = run(tmp_path, monkeypatch, refusing_teacher, "--structured", "on")
    assert code == 3
    assert "refuses structured output" in capsys.readouterr().err
    assert not read_jsonl(out / "rejects.jsonl")  # nothing was given up on
    code, _, out = run(tmp_path, monkeypatch, refusing_teacher)
    assert code == 0 and len(read_jsonl(out / "instruct.jsonl")) == 4


@pytest.mark.parametrize("mode_flag", ["auto", "off"])
def test_the_dry_run_shows_the_response_format_it_would_send(tmp_path, monkeypatch, capsys,
                                                             mode_flag):
    code, requests, _ = run(tmp_path, monkeypatch, json_teacher, "--dry-run",
                            "--structured", mode_flag)
    assert code == 0 and not requests
    assert ('"response_format"' in capsys.readouterr().out) == (mode_flag == "auto")
