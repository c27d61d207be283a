"""allava-synth end to end against a real HTTP server on loopback (tests/helpers/synth_server.py,
scripted in tests/helpers/synth_jobs.py): the records, the rejects and their reasons, retries,
resuming after kill -9 and Ctrl-C, shard inputs and outputs, the dry run, and an API key that
never reaches a file."""
from __future__ import annotations

import io
import json
import re
import signal
import tarfile

import pytest
from PIL import Image

from allava.synth.cli import main as synth_main
from allava.synth.prompts import PROMPT_DIR
from tests.helpers.synth_jobs import (BLUE, GREEN, MAGENTA, RED, SECRET, YELLOW,
                                      ScriptedTeacher, assert_secret_absent, make_images,
                                      read_jsonl, run_cli, synth_args, wait_for_lines)
from tests.helpers.synth_server import LoopbackTeacher, Reply

def test_every_image_ends_as_records_or_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    colours = {f"g{n}": GREEN for n in range(6)} | {"red": RED, "blue": BLUE, "yellow": YELLOW,
                                                     "magenta": MAGENTA}
    images = make_images(tmp_path / "images", colours)
    (images / "broken.jpg").write_bytes(b"this is not a JPEG")
    out = tmp_path / "out"
    with LoopbackTeacher(ScriptedTeacher()) as server:
        assert synth_main(synth_args(server, images, out, "--concurrency", "4")) == 0
        served = len(server.requests)
        auth = {h.get("authorization") for h in server.headers_seen}
    captions, instructs = read_jsonl(out / "caption.jsonl"), read_jsonl(out / "instruct.jsonl")
    good = {f"g{n}" for n in range(6)} | {"yellow", "magenta"}
    assert {r["id"] for r in captions} == {f"synth_laion_cap_{i}" for i in good}
    assert {r["id"] for r in instructs} == {f"synth_laion_inst_{i}" for i in good}
    assert len(captions) == len(instructs) == len(good)
    record = next(r for r in instructs if r["id"].endswith("_g0"))
    assert record["image"] == "g0.png"
    assert record["conversations"][0] == {"from": "human", "value": "<image>\nWhat does detail "
                                          "number 2 of the green scene suggest?"}
    assert record["conversations"][1]["value"].startswith("The evenly lit green surface")
    caption = next(r for r in captions if r["id"].endswith("_g0"))
    assert caption["conversations"][0]["value"].startswith("<image>\n")
    assert caption["conversations"][1]["value"].startswith("A plain green square")
    rejects = {r["id"]: r for r in read_jsonl(out / "rejects.jsonl")}
    assert set(rejects) == {"red", "blue", "broken"}
    # red lacks its answer twice: in its reply and in the reply to the repair turn
    assert rejects["red"]["reason"] == "missing_section" and rejects["red"]["raw_response"]
    assert "after a repair turn" in rejects["red"]["detail"] and rejects["red"]["repair_response"]
    assert rejects["blue"]["reason"] == "refusal"
    assert rejects["broken"]["reason"] == "unreadable_image"
    usage = json.loads((out / "usage.json").read_text())
    # one retry each for yellow and magenta, one repair turn for red
    assert usage["requests"] == served == len(colours) + 3 and usage["repairs"] == 1
    assert usage["retries"] == 2 and usage["completion_tokens"] > 0
    assert usage["estimated_cost_usd"] > 0
    assert auth == {f"Bearer {SECRET}"}
    assert_secret_absent(out)


@pytest.mark.parametrize("stop", ["kill -9", "ctrl-c"])
def test_an_interrupted_run_resumes_without_duplicates_or_gaps(stop, tmp_path):
    colours = {f"img{n:02d}": GREEN for n in range(40)} | {"blue": BLUE}
    images = make_images(tmp_path / "images", colours)
    out = tmp_path / "out"
    with LoopbackTeacher(ScriptedTeacher(delay=0.15)) as server:
        process = run_cli(server, images, out, "--concurrency", "4")
        wait_for_lines(out / "instruct.jsonl", 10, process)
        process.send_signal(signal.SIGKILL if stop == "kill -9" else signal.SIGINT)
        process.wait(timeout=30)
        assert process.returncode == (-9 if stop == "kill -9" else 130)
        if stop == "kill -9":  # a write torn by the kill, and a Caption without its Instruct
            with open(out / "caption.jsonl", "a") as handle:
                handle.write(json.dumps({"id": "synth_laion_cap_img39", "image": "img39.png",
                                         "conversations": []}) + "\n")
            with open(out / "instruct.jsonl", "a") as handle:
                handle.write('{"id": "synth_laion_inst_img3')
        first_run = len(server.requests)
        rerun = run_cli(server, images, out, "--concurrency", "4")
        stdout, stderr = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, stderr.decode()[-2000:]
        assert b"resuming" in stdout
        total = len(server.requests)
    captions = [r["id"] for r in read_jsonl(out / "caption.jsonl")]
    instructs = [r["id"] for r in read_jsonl(out / "instruct.jsonl")]
    expected = {f"img{n:02d}" for n in range(40)}
    assert sorted(captions) == sorted(f"synth_laion_cap_{i}" for i in expected)  # no duplicate
    assert sorted(instructs) == sorted(f"synth_laion_inst_{i}" for i in expected)  # no gap
    assert [r["id"] for r in read_jsonl(out / "rejects.jsonl")] == ["blue"]
    # Work done before the interruption was not redone (at most the requests in flight were).
    assert total <= len(colours) + 4 and first_run >= 10
    assert_secret_absent(out)


def test_shard_input_and_shard_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    tar_path = tmp_path / "images-000000.tar"
    with tarfile.open(tar_path, "w") as tar:
        for n in range(5):
            buffer = io.BytesIO()
            Image.new("RGB", (40, 40), GREEN).save(buffer, "JPEG")
            for name, data in ((f"s{n}.jpg", buffer.getvalue()),
                               (f"s{n}.json", json.dumps({"id": f"laion{n}"}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    out, shards = tmp_path / "out", tmp_path / "shards"
    with LoopbackTeacher(ScriptedTeacher()) as server:
        args = synth_args(server, tar_path, out, "--shards", str(shards))
        assert synth_main(args) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"laion{n}.jpg" for n in range(5)]
    for kind in ("caption", "instruct"):
        manifest = json.loads((shards / kind / "manifest.json").read_text())
        assert manifest["totals"]["samples_written"] == 5 and manifest["totals"]["rejected"] == 0


def test_vflan_and_text_modes(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    make_images(tmp_path / "images", {"a": GREEN, "b": GREEN})  # the files vflan.jsonl names
    questions = tmp_path / "vflan.jsonl"
    questions.write_text("\n".join([
        json.dumps({"id": "q1", "image": "images/a.png", "question": "Which colour dominates?"}),
        json.dumps({"id": "q2", "image": "images/b.png"}),  # no question: a reject
        "{not json"]) + "\n")
    instructions = tmp_path / "instructions.txt"
    instructions.write_text("Explain why the sky is blue.\nWrite a haiku about rain.\n")

    def answer(request, index):
        text = json.dumps(request["messages"])
        if "image_url" in text:
            return Reply(content="### Description\nA flat green field of colour with nothing "
                         "else in view.\n### Answer\nGreen dominates the whole picture, from edge "
                         "to edge, without any other hue.")
        return Reply(content="Sunlight scatters off air molecules, and shorter blue wavelengths "
                     "scatter far more than red ones, so blue light reaches us from all over.")

    with LoopbackTeacher(answer) as server:
        base = ["--base-url", server.base_url, "--model", "local-vlm", "--no-progress"]
        assert synth_main(["--input", str(questions), "--out", str(tmp_path / "v"),
                           "--mode", "vflan", *base]) == 0
        assert synth_main(["--input", str(instructions), "--out", str(tmp_path / "t"),
                           "--mode", "text", *base]) == 0
    (inst,) = read_jsonl(tmp_path / "v" / "instruct.jsonl")
    assert inst["id"] == "synth_vflan_inst_q1" and inst["image"] == "images/a.png"
    assert inst["conversations"][0]["value"] == "<image>\nWhich colour dominates?"
    assert {r["reason"] for r in read_jsonl(tmp_path / "v" / "rejects.jsonl")} == \
        {"missing_question", "malformed_input"}
    texts = read_jsonl(tmp_path / "t" / "text.jsonl")
    assert [r["conversations"][0]["value"] for r in sorted(texts, key=lambda r: r["id"])] == \
        ["Explain why the sky is blue.", "Write a haiku about rain."]
    assert all("image" not in r for r in texts)


def test_dry_run_shows_one_request_and_the_cost_without_calling(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    images = make_images(tmp_path / "images", {f"i{n}": GREEN for n in range(3)})
    with LoopbackTeacher(ScriptedTeacher()) as server:
        assert synth_main(synth_args(server, images, tmp_path / "out", "--dry-run")) == 0
        assert server.requests == []
    printed = capsys.readouterr().out
    assert "base64 characters>" in printed and "### Description" in printed
    assert "items: 3 usable of 3" in printed and "estimated cost" in printed and "$" in printed
    assert SECRET not in printed and not (tmp_path / "out").exists()


def test_dry_run_reads_the_users_own_prompts_and_prices(tmp_path, capsys, monkeypatch):
    """--prompts DIR and --prices FILE replace the defaults shipped inside the package."""
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    images = make_images(tmp_path / "images", {"i0": GREEN})
    prompts = tmp_path / "my_prompts"
    prompts.mkdir()
    laion = (PROMPT_DIR / "laion.yaml").read_text(encoding="utf-8")
    (prompts / "laion.yaml").write_text(
        re.sub(r"(?m)^max_tokens: .*$", "max_tokens: 1234", laion), encoding="utf-8")
    prices = tmp_path / "my_prices.yaml"
    prices.write_text("gpt-4o: {input_per_million: 0, output_per_million: 1000000}\n")
    with LoopbackTeacher(ScriptedTeacher()) as server:
        args = synth_args(server, images, tmp_path / "out", "--dry-run",
                          "--prompts", str(prompts), "--prices", str(prices))
        assert synth_main(args) == 0
        assert server.requests == []
        printed = capsys.readouterr().out
        assert "at most 1234 completion tokens" in printed and "$1,234.00" in printed

        missing = tmp_path / "nowhere"
        assert synth_main(synth_args(server, images, tmp_path / "out", "--dry-run",
                                     "--prompts", str(missing))) == 2
        assert str(missing / "laion.yaml") in capsys.readouterr().err
        assert synth_main(synth_args(server, images, tmp_path / "out", "--dry-run",
                                     "--prices", str(missing / "prices.yaml"))) == 2
        assert str(missing / "prices.yaml") in capsys.readouterr().err


def test_another_job_in_the_same_directory_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    images = make_images(tmp_path / "images", {"i0": GREEN})
    with LoopbackTeacher(ScriptedTeacher()) as server:
        assert synth_main(synth_args(server, images, tmp_path / "out")) == 0
        args = synth_args(server, images, tmp_path / "out")
        args[args.index("gpt-4o")] = "gpt-4o-mini"
        assert synth_main(args) == 2
    assert "another job" in capsys.readouterr().err


def test_a_dead_teacher_stops_the_run_and_a_rerun_retries_its_items(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNTH_TEST_KEY", SECRET)
    images = make_images(tmp_path / "images", {f"i{n:02d}": GREEN for n in range(30)})
    out = tmp_path / "out"
    with LoopbackTeacher(lambda request, index: Reply(status=503, content="down")) as server:
        args = synth_args(server, images, out, "--max-retries", "0", "--concurrency", "1")
        assert synth_main(args) == 3
        assert "20 items in a row" in capsys.readouterr().err
        assert len(server.requests) == 20  # it stopped instead of rejecting all 30
    assert {r["reason"] for r in read_jsonl(out / "rejects.jsonl")} == {"teacher_server_error"}
    with LoopbackTeacher(ScriptedTeacher()) as server:
        assert synth_main(synth_args(server, images, out)) == 0
    assert len(read_jsonl(out / "instruct.jsonl")) == 30 and read_jsonl(out / "rejects.jsonl") == []
