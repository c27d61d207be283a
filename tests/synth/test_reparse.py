"""`allava synth reparse OUT` on real job folders written by the real engine against the loopback
teacher. An older parser's verdict is simulated by giving a reject a well-formed reply (one the
current parser accepts) while its reason still says `missing_section`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from allava.cli.main import main as allava_main
from allava.synth.cli import main as synth_main
from allava.synth.prompts import load_caption_instructions
from allava.synth.records import pick_caption_instruction
from allava.synth.reparse import reparse_rejects
from tests.helpers.synth_jobs import (BLUE, CYAN, GREEN, MAGENTA, RED, YELLOW, laion_answer,
                                      make_images, nearest_colour, read_jsonl, synth_args)
from tests.helpers.synth_server import LoopbackTeacher, Reply, image_colours

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
COLOURS = {"g0": GREEN, "g1": GREEN, "y0": YELLOW, "y1": YELLOW, "y2": YELLOW, "red": RED,
           "blue": BLUE, "magenta": MAGENTA, "cyan": CYAN}
OLD_VERDICTS = {"y0", "y1", "y2"}  # good replies that an "older parser" rejected
STILL_BAD = {"red", "blue"}  # replies no parser should accept
UNTOUCHED = {"magenta", "cyan", "broken"}  # no reply, a truncated reply, an unreadable image


def without_answer(tag: str) -> str:
    return laion_answer(tag).split("### Answer")[0]


def truncated_body(request: dict, content: str) -> bytes:
    """A chat completion cut at max_tokens (finish_reason "length")."""
    return json.dumps({
        "id": "chatcmpl-truncated", "object": "chat.completion", "created": int(time.time()),
        "model": request.get("model", "loopback"),
        "choices": [{"index": 0, "finish_reason": "length",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}).encode()


def colour_teacher(yellow_reply: str):
    """Green answers well, yellow with `yellow_reply`, red leaves out the answer, blue refuses,
    magenta is a server error, cyan a complete-looking reply cut at max_tokens."""

    def answer(request: dict, index: int) -> Reply:
        colour = nearest_colour(image_colours(request)[0])
        if colour == MAGENTA:
            return Reply(status=500, content="server down")
        if colour == CYAN:
            return Reply(body=truncated_body(request, laion_answer("cyan")))
        replies = {GREEN: laion_answer("green"), YELLOW: yellow_reply, RED: without_answer("red"),
                   BLUE: "I'm sorry, but I can't help with describing this image."}
        return Reply(content=replies[colour])

    return answer


def run_job(tmp_path: Path, out: Path, yellow_reply: str) -> None:
    images = make_images(tmp_path / "images", COLOURS)
    (images / "broken.jpg").write_bytes(b"this is not a JPEG")
    with LoopbackTeacher(colour_teacher(yellow_reply)) as server:
        args = synth_args(server, images, out, "--seed", str(SEED), "--max-retries", "0")
        assert synth_main(args) == 0


def edit_rejects(out: Path, change) -> None:
    """Rewrites rejects.jsonl with change(entry) for every entry (what an older run left)."""
    entries = [change(entry) for entry in read_jsonl(out / "rejects.jsonl")]
    (out / "rejects.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def as_older_parser_left_it(entry: dict) -> dict:
    if entry["id"] in OLD_VERDICTS:  # the teacher's reply was fine: an older parser refused it
        return {**entry, "raw_response": laion_answer("yellow")}
    if entry["id"] == "red":  # an older parser gave another reason
        return {**entry, "reason": "answer_too_short", "detail": "an older parser's verdict"}
    return entry


@pytest.fixture
def job(tmp_path) -> Path:
    """A laion job folder: records for g0, g1; rejects for everything else."""
    out = tmp_path / "out"
    run_job(tmp_path, out, yellow_reply=without_answer("yellow"))
    edit_rejects(out, as_older_parser_left_it)
    return out


def record_ids(out: Path, name: str) -> list[str]:
    return sorted(r["id"] for r in read_jsonl(out / name))


def assert_each_item_once(out: Path, with_records: set[str], rejected: set[str]) -> None:
    assert record_ids(out, "caption.jsonl") == sorted(f"synth_laion_cap_{i}" for i in with_records)
    assert record_ids(out, "instruct.jsonl") == sorted(f"synth_laion_inst_{i}" for i in with_records)
    assert sorted(r["id"] for r in read_jsonl(out / "rejects.jsonl")) == sorted(rejected)


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_replies_the_parser_now_accepts_become_the_records_the_engine_writes(job, tmp_path):
    before = {r["id"]: r for r in read_jsonl(job / "rejects.jsonl")}
    counts = reparse_rejects(job, progress=False)

    assert counts == {"rejects": 8, "reparsed": 3, "already_written": 0,
                      "still_rejected": {"missing_section": 1, "refusal": 1}, "missing_item": 0,
                      "not_retried": {"teacher_server_error": 1, "truncated_response": 1,
                                      "unreadable_image": 1}}
    assert_each_item_once(job, {"g0", "g1"} | OLD_VERDICTS, STILL_BAD | UNTOUCHED)
    # The same records as an online run whose teacher gave those replies, caption instruction
    # included (picked with the job's seed).
    online = tmp_path / "online"
    run_job(tmp_path, online, yellow_reply=laion_answer("yellow"))
    for name in ("caption.jsonl", "instruct.jsonl"):
        expected = {r["id"]: r for r in read_jsonl(online / name)}
        for record in read_jsonl(job / name):
            assert record == expected[record["id"]]
    instruct = next(r for r in read_jsonl(job / "instruct.jsonl") if r["id"].endswith("_y1"))
    assert instruct["image"] == "y1.png"
    assert instruct["conversations"][0]["value"] == \
        "<image>\nWhat does detail number 2 of the yellow scene suggest?"
    caption = next(r for r in read_jsonl(job / "caption.jsonl") if r["id"].endswith("_y1"))
    instruction = pick_caption_instruction(load_caption_instructions(), "y1", SEED)
    assert caption["conversations"][0]["value"] == f"<image>\n{instruction}"

    after = {r["id"]: r for r in read_jsonl(job / "rejects.jsonl")}
    for item in UNTOUCHED | {"blue"}:
        assert after[item] == before[item]
    assert after["cyan"]["reason"] == "truncated_response"  # it parses, but is incomplete
    assert after["red"]["reason"] == "missing_section"  # the current parser's verdict
    assert after["red"]["detail"] != before["red"]["detail"]
    assert after["red"]["raw_response"] == before["red"]["raw_response"]


def test_a_second_reparse_changes_nothing(job):
    reparse_rejects(job, progress=False)
    files = snapshot(job)
    counts = reparse_rejects(job, progress=False)
    assert counts["reparsed"] == 0 and counts["already_written"] == 0
    assert counts["still_rejected"] == {"missing_section": 1, "refusal": 1}
    assert snapshot(job) == files


@pytest.mark.parametrize("killed", ["before rejects.jsonl was rewritten",
                                    "inside the last item's records"])
def test_a_reparse_killed_midway_is_finished_by_the_next_one(killed, job):
    """The states a kill leaves, rebuilt exactly: every record appended and flushed but the old
    rejects.jsonl (and a stale temporary file of its rewrite) still there; or the last item's
    Instruct line torn in two."""
    rejects = (job / "rejects.jsonl").read_bytes()
    reparse_rejects(job, progress=False)
    (job / "rejects.jsonl").write_bytes(rejects)
    if killed == "before rejects.jsonl was rewritten":
        (job / "rejects.jsonl.tmp").write_text('{"id": "half a rewr')
        redone = 0
    else:
        lines = (job / "instruct.jsonl").read_text().splitlines(keepends=True)
        (job / "instruct.jsonl").write_text("".join(lines[:-1]) + lines[-1][:25])
        redone = 1

    counts = reparse_rejects(job, progress=False)

    assert counts["reparsed"] == redone
    assert counts["already_written"] == len(OLD_VERDICTS) - redone
    assert_each_item_once(job, {"g0", "g1"} | OLD_VERDICTS, STILL_BAD | UNTOUCHED)
    assert reparse_rejects(job, progress=False)["reparsed"] == 0


def test_kill_9_at_any_moment_loses_and_repeats_nothing(tmp_path):
    """A real kill -9 of `allava-synth reparse` part way through thousands of rejects, then a
    rerun: every item ends with exactly one Caption and one Instruct record and no reject."""
    count = 4000
    listing = tmp_path / "list.jsonl"
    listing.write_text("".join(json.dumps({"id": f"m{n:04d}", "image": f"gone/{n}.png"}) + "\n"
                               for n in range(count)))
    out = tmp_path / "out"
    with LoopbackTeacher(colour_teacher(laion_answer("yellow"))) as server:
        assert synth_main(synth_args(server, listing, out)) == 0  # every image is missing
    edit_rejects(out, lambda e: {**e, "reason": "missing_section",
                                 "raw_response": laion_answer("yellow")})
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "allava.synth.cli", "reparse", str(out),
                                "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _has_lines(out / "instruct.jsonl", 50) and process.poll() is None:
        assert time.monotonic() < deadline, "reparse wrote no record in two minutes"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -9, "reparse finished before the kill: raise `count`"
    assert len(read_jsonl(out / "rejects.jsonl")) == count  # killed before the rewrite

    counts = reparse_rejects(out, progress=False)

    assert counts["already_written"] + counts["reparsed"] == count and counts["reparsed"] > 0
    ids = {f"m{n:04d}" for n in range(count)}
    assert_each_item_once(out, ids, set())


def _has_lines(path: Path, count: int) -> bool:
    return path.is_file() and path.read_bytes().count(b"\n") >= count


def test_items_are_rebuilt_from_the_jobs_input(tmp_path):
    """vflan: image and question come from the input list (read with the run's --image-root);
    text: the instruction does; a reject whose id left the input stays a reject."""
    pictures = make_images(tmp_path / "pictures", {"a": GREEN, "b": GREEN})
    questions = tmp_path / "lists" / "questions.jsonl"
    questions.parent.mkdir()
    questions.write_text(
        json.dumps({"id": "q1", "image": "a.png", "question": "Which colour dominates?"}) + "\n"
        + json.dumps({"id": "q2", "image": "b.png", "question": "Is there any text?"}) + "\n")
    instructions = tmp_path / "instructions.txt"
    instructions.write_text("Explain why the sky is blue.\nWrite a haiku about rain.\n")
    vflan_reply = ("### Description\nA flat green field of colour with nothing else in view.\n"
                   "### Answer\nGreen dominates the whole picture, from edge to edge, without "
                   "any other hue.")
    text_reply = ("Sunlight scatters off air molecules, and shorter blue wavelengths scatter far "
                  "more than red ones, so blue light reaches us from all over the sky.")

    def short_answers(request, index):  # rejected by the current parser as well
        return Reply(content=vflan_reply.split("### Answer")[0] if "image_url" in
                     json.dumps(request) else "Too short.")

    vflan, text = tmp_path / "vflan", tmp_path / "text"
    with LoopbackTeacher(short_answers) as server:
        base = ["--base-url", server.base_url, "--model", "local-vlm", "--no-progress"]
        assert synth_main(["--input", str(questions), "--out", str(vflan), "--mode", "vflan",
                           "--image-root", str(pictures), *base]) == 0
        assert synth_main(["--input", str(instructions), "--out", str(text), "--mode", "text",
                           *base]) == 0
    edit_rejects(vflan, lambda e: {**e, "raw_response": vflan_reply} if e["id"] == "q1" else e)
    with open(vflan / "rejects.jsonl", "a") as handle:
        handle.write(json.dumps({"id": "gone", "reason": "missing_section", "detail": "",
                                 "raw_response": vflan_reply}) + "\n")
    edit_rejects(text, lambda e: {**e, "raw_response": text_reply}
                 if e["id"] == "instructions_0" else e)

    counts = reparse_rejects(vflan, image_root=pictures, progress=False)
    assert (counts["reparsed"], counts["missing_item"]) == (1, 1)
    (record,) = read_jsonl(vflan / "instruct.jsonl")
    assert record["id"] == "synth_vflan_inst_q1" and record["image"] == "a.png"
    assert record["conversations"][0]["value"] == "<image>\nWhich colour dominates?"
    assert [r["id"] for r in read_jsonl(vflan / "caption.jsonl")] == ["synth_vflan_cap_q1"]
    assert sorted(r["id"] for r in read_jsonl(vflan / "rejects.jsonl")) == ["gone", "q2"]

    assert reparse_rejects(text, progress=False)["reparsed"] == 1
    (record,) = read_jsonl(text / "text.jsonl")
    assert record["id"] == "synth_text_text_instructions_0" and "image" not in record
    assert record["conversations"] == [{"from": "human", "value": "Explain why the sky is blue."},
                                       {"from": "gpt", "value": text_reply}]
    assert [r["reason"] for r in read_jsonl(text / "rejects.jsonl")] == ["answer_too_short"]


def test_the_command_line(job, capsys):
    assert synth_main(["reparse", str(job)]) == 0
    assert json.loads(capsys.readouterr().out)["reparsed"] == 3
    assert allava_main(["synth", "reparse", str(job), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["reparsed"] == 0 and summary["rejects"] == len(STILL_BAD | UNTOUCHED)

    with pytest.raises(SystemExit) as done:
        allava_main(["synth", "--help"])
    assert done.value.code == 0 and "allava synth reparse" in capsys.readouterr().out


def test_a_folder_that_is_not_a_job_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert allava_main(["synth", "reparse", str(missing)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("allava synth reparse: error:")
    assert f"{missing / 'job.json'} not found" in error
    tmp_path.joinpath("job.json").write_text("{not json")
    assert synth_main(["reparse", str(tmp_path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    tmp_path.joinpath("job.json").write_text(json.dumps({"mode": "laion"}))
    assert synth_main(["reparse", str(tmp_path)]) == 2
    assert "lacks source, input, seed" in capsys.readouterr().err
