"""The loop closes: a model trained here, served by `allava serve`, is the teacher of
`allava synth` and the judge of eval.py's MM-Vet grading.

The served model is the tiny random one, so its replies are gibberish: what is checked is what
each tool then does with a real OpenAI-compatible endpoint that answers badly. Synthesis asks
for structured output, is refused (400 naming response_format) and goes on in free text; every
reply runs into max_tokens and is rejected for it, with the reply kept. The judge's replies are
no score: each item is asked `attempts` times, then scored 0.0 as the reference does; with the
packaged prompt (too long for this model's context) every item is an error, recorded, not a
crash.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from allava.evaluation.judge import JudgeSettings, grade_mmvet, load_judge_prompts
from allava.evaluation.scorers import grade_with_judge
from tests.helpers.configs import compose_config
from tests.helpers.serve_process import ROOT, ServeProcess
from tests.helpers.tiny_model import export_tiny_model

TEACHER = "teacher"

SHORT_LAION_PROMPT = """\
system: You describe pictures.
user: |-
  Describe the picture, ask five questions, choose one and answer it, under the headings
  ### Description, ### Questions, ### Chosen question, ### Answer.
max_tokens: 24
temperature: 0.0  # greedy: the same replies every run (sampling could end one at once)
"""

SHORT_JUDGE_PROMPTS = """\
mmvet:
  instructions: Score the prediction from 0 to 1 against the ground truth.
  reask: "A number only:"
  max_tokens: 3
  temperature: 0.0
  temperature_step: 0.5
llava_bench:
  system: You rate answers.
  role: Assistant
  rules: {conv: Rate both answers from 1 to 10.}
  max_tokens: 8
  temperature: 0.2
"""

ITEMS = [{"id": "v1_0", "question": "What colour is the square?", "answer": "red",
          "capabilities": "rec"},
         {"id": "v1_1", "question": "How many circles are there?", "answer": "2",
          "capabilities": ["rec", "math"]}]


@pytest.fixture(scope="module")
def server(toy_root, tmp_path_factory):
    model_dir = export_tiny_model(toy_root, tmp_path_factory.mktemp("served"))
    with ServeProcess(model_dir, "--model-name", TEACHER) as process:
        yield process


@pytest.mark.slow
def test_synth_with_the_served_model_as_teacher_rejects_its_replies_with_reasons(
        server, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for n, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]):
        Image.new("RGB", (64, 64), colour).save(images / f"img{n}.png")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "laion.yaml").write_text(SHORT_LAION_PROMPT)
    out = tmp_path / "out"
    before = server.stats()["requests"]

    run = subprocess.run(
        [sys.executable, "-m", "allava.synth.cli", "--input", str(images), "--out", str(out),
         "--mode", "laion", "--base-url", server.base_url, "--model", TEACHER, "--limit", "3",
         "--prompts", str(prompts), "--max-retries", "0", "--no-progress"],
        capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout[run.stdout.index("{"):])
    assert summary["items"] == 3 and summary["written"] == 0
    assert summary["rejected_by_reason"] == {"truncated_response": 3}
    assert summary["structured_output"] == "refused by the endpoint: free text"
    assert "response_format" in run.stderr  # the server's refusal, quoted
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rejects) == ["img0", "img1", "img2"]
    assert all(r["reason"] == "truncated_response" and r["raw_response"] for r in rejects)
    usage = json.loads((out / "usage.json").read_text())
    assert usage["completion_tokens"] == 3 * 24  # every reply ran to max_tokens
    # Each item was asked twice (structured, refused before generating; then free text): the
    # free-text requests reached the model.
    assert usage["requests"] == summary["requests"] == 6
    assert server.stats()["requests"] - before == 3


@pytest.mark.slow
def test_the_judge_of_eval_py_grades_through_the_served_model(server, tmp_path):
    cfg = compose_config("eval", [f"judge.base_url={server.base_url}", f"judge.model={TEACHER}"],
                         tmp_path / "eval")
    settings = JudgeSettings.from_config(cfg.judge)
    prompts_file = tmp_path / "judge_prompts.yaml"
    prompts_file.write_text(SHORT_JUDGE_PROMPTS)
    predictions = {"v1_0": "It is red.", "v1_1": "Two."}
    before = server.stats()["requests"]

    graded = grade_with_judge(settings, lambda judge: grade_mmvet(
        ITEMS, predictions, judge, settings=settings,
        prompts=load_judge_prompts(prompts_file)))

    assert graded["num_items"] == graded["num_graded"] == 2 and graded["errors"] == 0
    # No reply parsed as a score: every item was asked `attempts` times, then scored 0.0.
    assert graded["unparsed"] == 2 and graded["reasks"] == 2 * (settings.attempts - 1)
    assert graded["total"] == 0.0
    assert all(len(item["replies"][0]) == settings.attempts for item in graded["items"])
    assert server.stats()["requests"] - before == 2 * settings.attempts

    too_long = grade_with_judge(settings, lambda judge: grade_mmvet(
        ITEMS, predictions, judge, settings=settings))  # the packaged prompt
    assert too_long["errors"] == 2 and not too_long["complete"]
    assert {item["error"] for item in too_long["items"]} == {"bad_request"}
