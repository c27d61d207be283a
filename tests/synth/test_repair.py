"""A reply that lacks one section gets one follow-up turn asking for it, in the same
conversation, against the loopback teacher: kept when the teacher supplies the section, rejected
with both replies otherwise; counted in usage.json; re-parsed by `reparse` from both replies."""
from __future__ import annotations

import json

import pytest
import yaml

from allava.synth.cli import main as synth_main
from allava.synth.prompts import PROMPT_DIR
from allava.synth.reparse import reparse_rejects
from tests.helpers.synth_jobs import (SECRET, assert_secret_absent, laion_answer, make_images,
                                      read_jsonl, synth_args)
from tests.helpers.synth_server import LoopbackTeacher, Reply

FULL = laion_answer("green")
ANSWER = FULL.split("### Answer\n")[1]
WITHOUT_ANSWER = FULL.split("### Answer")[0]
WITHOUT_TWO = FULL.split("### Chosen question")[0]


def run(tmp_path, monkeypatch, responder, *extra) -> tuple[list[dict], object]:
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    images = make_images(tmp_path / "images", {"one": (0, 200, 0)})
    with LoopbackTeacher(responder) as server:
        assert synth_main(synth_args(server, images, tmp_path / "out", *extra)) == 0
        return server.requests, tmp_path / "out"


def usage_of(out) -> dict:
    return json.loads((out / "usage.json").read_text())


@pytest.mark.parametrize("repair_reply", [ANSWER, f"### Answer\n{ANSWER}\n\nHope this helps!",
                                          f"<start of answer>\n{ANSWER}\n<end of answer>"],
                         ids=["bare", "heading-and-sign-off", "tags"])
def test_a_missing_section_is_asked_for_once_and_the_item_kept(tmp_path, monkeypatch, repair_reply):
    requests, out = run(tmp_path, monkeypatch,
                        lambda request, i: Reply(content=WITHOUT_ANSWER if i == 0 else repair_reply))
    assert len(requests) == 2
    first, follow_up = requests
    # The same conversation: the first request, the teacher's reply, then the repair turn.
    assert follow_up["messages"][:-2] == first["messages"]
    assert follow_up["messages"][-2] == {"role": "assistant", "content": WITHOUT_ANSWER}
    assert follow_up["messages"][-1]["role"] == "user"
    assert "no answer part" in follow_up["messages"][-1]["content"]
    [instruct] = read_jsonl(out / "instruct.jsonl")
    assert instruct["conversations"][1]["value"] == ANSWER
    assert len(read_jsonl(out / "caption.jsonl")) == 1 and not read_jsonl(out / "rejects.jsonl")
    usage = usage_of(out)
    assert usage["requests"] == 2 and usage["repairs"] == 1
    assert 0 < usage["repair_prompt_tokens"] < usage["prompt_tokens"]
    assert 0 < usage["repair_completion_tokens"] < usage["completion_tokens"]
    assert_secret_absent(out)


def test_a_failed_repair_is_a_reject_with_both_replies(tmp_path, monkeypatch):
    requests, out = run(tmp_path, monkeypatch,
                        lambda request, i: Reply(content=WITHOUT_ANSWER if i == 0 else "Done."))
    assert len(requests) == 2
    [reject] = read_jsonl(out / "rejects.jsonl")
    assert reject["raw_response"] == WITHOUT_ANSWER and reject["repair_response"] == "Done."
    assert reject["reason"] == "answer_too_short" and "after a repair turn" in reject["detail"]
    assert not read_jsonl(out / "instruct.jsonl") and usage_of(out)["repairs"] == 1


def test_two_missing_sections_are_not_repaired(tmp_path, monkeypatch):
    requests, out = run(tmp_path, monkeypatch, lambda request, i: Reply(content=WITHOUT_TWO))
    assert len(requests) == 1
    [reject] = read_jsonl(out / "rejects.jsonl")
    assert reject["reason"] == "missing_section" and "repair_response" not in reject
    assert usage_of(out)["repairs"] == 0


def test_prompts_without_a_repair_template_reject_at_once(tmp_path, monkeypatch):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    data = yaml.safe_load((PROMPT_DIR / "laion.yaml").read_text())
    del data["repair"]
    (prompts / "laion.yaml").write_text(yaml.safe_dump(data))
    requests, out = run(tmp_path, monkeypatch, lambda request, i: Reply(content=WITHOUT_ANSWER),
                        "--prompts", str(prompts))
    assert len(requests) == 1
    assert read_jsonl(out / "rejects.jsonl")[0]["reason"] == "missing_section"


def test_reparse_reads_a_reply_together_with_its_repair(tmp_path, monkeypatch):
    """A repair reply an older parser could not use is joined with its reply by reparse."""
    requests, out = run(tmp_path, monkeypatch,
                        lambda request, i: Reply(content=WITHOUT_ANSWER if i == 0 else "Done."))
    [reject] = read_jsonl(out / "rejects.jsonl")
    reject["repair_response"] = f"Sure!\n\n{ANSWER}"  # what the teacher said, for a newer parser
    (out / "rejects.jsonl").write_text(json.dumps(reject) + "\n")
    counts = reparse_rejects(out, progress=False)
    assert counts["reparsed"] == 1 and not read_jsonl(out / "rejects.jsonl")
    assert read_jsonl(out / "instruct.jsonl")[0]["conversations"][1]["value"] == ANSWER
