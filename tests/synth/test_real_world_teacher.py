"""`allava synth` against a teacher that writes the way real teachers do: every reply in one of
the layouts of tests/synth/teacher_styles.py (headings, labels, ALLaVA's tags, JSON, ...), with
30 % transient faults, 10 % malformed replies and 5 % refusals, killed with SIGKILL mid-run and
rerun. Every image must end as exactly one Caption and one Instruct record, or one reject with
the malformation's reason; every well-formed reply is kept, word for word."""
from __future__ import annotations

import random
import signal
import threading

from PIL import Image

from tests.helpers.synth_jobs import (assert_secret_absent, read_jsonl, run_cli,
                                      wait_for_lines)
from tests.helpers.synth_server import LoopbackTeacher, Reply, image_colours
from tests.synth.teacher_styles import generate_cases

NUM_IMAGES = 60


def image_number(request: dict) -> int:
    """Image n is filled with red level 4n (PNG, sent as is): the request says which it is."""
    return round(image_colours(request)[0][0] / 4)


def plan_replies(seed: int = 11) -> dict[int, object]:
    """Image number -> the teacher-style case it is answered with: 5 % refusals, 10 % other
    malformations, the rest well formed, in layouts drawn from every laion style."""
    cases = [c for c in generate_cases(seed=seed, per_combination=1, well_formed=1)
             if c.mode == "laion"]
    refusals = [c for c in cases if c.malformation == "refusal"]
    malformed = [c for c in cases if c.malformation not in (None, "refusal")]
    well_formed = [c for c in cases if c.malformation is None]
    rng = random.Random(seed)
    plan = {}
    for n in range(NUM_IMAGES):
        roll = rng.random()
        pool = refusals if roll < 0.05 else malformed if roll < 0.15 else well_formed
        plan[n] = rng.choice(pool)
    return plan


class RealWorldTeacher:
    """Answers image n with its planned case; the first request for 30 % of the images fails
    with a 429 or a 500 first."""

    def __init__(self, plan: dict[int, object], seed: int = 5):
        self.plan = plan
        rng = random.Random(seed)
        self.faulty = {n: rng.choice((429, 500)) for n in plan if rng.random() < 0.3}
        self.seen: dict[int, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict, index: int) -> Reply:
        n = image_number(request)
        with self.lock:
            count = self.seen[n] = self.seen.get(n, 0) + 1
        if count == 1 and n in self.faulty:
            return Reply(status=self.faulty[n], headers={"Retry-After": "0"}, content="busy")
        return Reply(content=self.plan[n].text, delay=0.1)


def test_every_well_formed_reply_is_kept_through_faults_and_a_kill(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for n in range(NUM_IMAGES):
        Image.new("RGB", (48, 40), (4 * n, 90, 170)).save(images / f"img{n:02d}.png")
    plan = plan_replies()
    assert {c.malformation for c in plan.values()} >= {None, "refusal", "missing_section"}
    out = tmp_path / "out"
    with LoopbackTeacher(RealWorldTeacher(plan)) as server:
        process = run_cli(server, images, out, "--concurrency", "4")
        wait_for_lines(out / "instruct.jsonl", 12, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        rerun = run_cli(server, images, out, "--concurrency", "4")
        stdout, stderr = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, stderr.decode()[-2000:]
        assert b"resuming" in stdout

    captions = {r["id"].removeprefix("synth_laion_cap_"): r for r in read_jsonl(out / "caption.jsonl")}
    instructs = {r["id"].removeprefix("synth_laion_inst_"): r for r in read_jsonl(out / "instruct.jsonl")}
    rejects = {r["id"]: r for r in read_jsonl(out / "rejects.jsonl")}
    assert len(captions) == len(read_jsonl(out / "caption.jsonl"))  # no duplicate
    assert len(instructs) == len(read_jsonl(out / "instruct.jsonl"))
    assert len(rejects) == len(read_jsonl(out / "rejects.jsonl"))
    for n, case in plan.items():
        name = f"img{n:02d}"
        if case.malformation is None:  # kept, with exactly the fields the teacher wrote
            assert name in captions and name in instructs and name not in rejects, case.style
            assert captions[name]["conversations"][1]["value"] == case.expected["description"]
            question, answer = instructs[name]["conversations"]
            assert question["value"] == f"<image>\n{case.expected['question']}"
            assert answer["value"] == case.expected["answer"], case.style
        else:
            assert name not in captions and name not in instructs, (case.style, case.malformation)
            # A blank completion is already refused by the client (a retryable teacher_ reason).
            expected = ({"empty_response", "teacher_empty_response"}
                        if case.expected_reason == "empty_response" else {case.expected_reason})
            assert rejects[name]["reason"] in expected, case.style
    assert_secret_absent(out)
