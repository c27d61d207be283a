"""A real (tiny, untrained) model through the runner: resume after a crash, refusal to mix
settings, score-only mode from eval.py's command line, and the judge checked before generating."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from allava.evaluation import evaluate_benchmarks
from allava.evaluation.judge import JudgeNotConfigured, JudgeSettings
from allava.evaluation.benchmarks.mmvet import load_mmvet_tsv
from allava.evaluation.registry import BenchmarkSpec
from allava.models.predictor import load_model
from tests.helpers.configs import TINY_MODEL, TINY_WORLD, compose_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory, toy_root) -> Path:
    """A tiny model with random weights, exported as train.py exports one."""
    from allava.models.build import build_vlm
    from allava.models.model_dir import export_model

    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    out = tmp_path_factory.mktemp("export")
    cfg = compose_config("train", [f"data.root={toy_root}", *world, *TINY_MODEL], out / "run")
    export_model(build_vlm(cfg.model), out / "export")
    return out / "export"


class CountingPredictor:
    """The real predictor, counting the questions it is asked; optionally dies after N batches."""

    def __init__(self, model_dir: Path, die_after: int | None = None):
        self.inner = load_model(model_dir)
        self.asked: list[str] = []
        self.die_after = die_after
        self.batches = 0

    def answer(self, questions, images, max_new_tokens=32):
        if self.die_after is not None and self.batches == self.die_after:
            raise KeyboardInterrupt("killed mid-run")
        self.batches += 1
        self.asked.extend(questions)
        return self.inner.answer(questions, images, max_new_tokens=max_new_tokens)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_interrupted_run_resumes_without_redoing_or_duplicating(tiny_export, toy_root, tmp_path):
    tsv = str(toy_root / "benchmarks" / "toy_pope.tsv")
    reference = evaluate_benchmarks(CountingPredictor(tiny_export), [tsv], tmp_path / "fresh",
                                    batch_size=4, max_new_tokens=4, progress=False)

    out = tmp_path / "resumed"
    crashing = CountingPredictor(tiny_export, die_after=2)
    with pytest.raises(KeyboardInterrupt):
        evaluate_benchmarks(crashing, [tsv], out, batch_size=4, max_new_tokens=4, progress=False)
    predictions = out / "toy_pope" / "predictions.jsonl"
    assert len(_lines(predictions)) == 8  # two batches made it to disk
    with predictions.open("a") as handle:
        handle.write('{"index": 9, "predic')  # a write torn by kill -9

    again = CountingPredictor(tiny_export)
    resumed = evaluate_benchmarks(again, [tsv], out, batch_size=4, max_new_tokens=4, progress=False)
    items = reference["toy_pope"]["num_items"]
    assert len(again.asked) == items - 8  # only what was missing was generated
    indices = [line["index"] for line in _lines(predictions)]
    assert len(indices) == len(set(indices)) == items
    assert resumed == reference  # greedy decoding: the same answers, the same scores
    fresh = {line["index"]: line["prediction"] for line in _lines(tmp_path / "fresh" / "toy_pope" / "predictions.jsonl")}
    assert {line["index"]: line["prediction"] for line in _lines(predictions)} == fresh

    with pytest.raises(FileExistsError, match="max_new_tokens"):
        evaluate_benchmarks(again, [tsv], out, batch_size=4, max_new_tokens=5, progress=False)


def test_score_only_mode_from_the_command_line(tiny_export, toy_root, tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    tsv = toy_root / "benchmarks" / "toy_mcq.tsv"
    first = tmp_path / "first"
    common = [f"benchmarks=[{tsv},toy_pope]", f"+data.root={toy_root}", "limit=10", "progress=false"]
    done = subprocess.run([sys.executable, "eval.py", f"model_dir={tiny_export}", *common,
                           f"hydra.run.dir={first}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    generated = json.loads((first / "results.json").read_text())

    # Re-scoring needs no model: it reads <dir>/<benchmark>/predictions.jsonl.
    second = tmp_path / "second"
    done = subprocess.run([sys.executable, "eval.py", f"predictions_dir={first}", *common,
                           f"hydra.run.dir={second}", "wandb.enabled=false"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rescored = json.loads((second / "results.json").read_text())
    for name in ("toy_mcq", "toy_pope"):
        generated[name].pop("skipped"), rescored[name].pop("skipped")
        assert {k: v for k, v in rescored[name].items() if "predictions" not in k} == generated[name]
        assert rescored[name]["missing_predictions"] == 0
    assert not (second / "toy_mcq" / "predictions.jsonl").exists()  # nothing was generated
    # The W&B run of the first call: job_type eval.
    assert list((first / "wandb").glob("offline-run-*"))


def test_hand_written_llava_style_answers_are_scored(toy_root, tmp_path):
    """Score-only also reads answer files written elsewhere: `question_id` and `text` keys."""
    from allava.evaluation import load_tsv_benchmark

    tsv = toy_root / "benchmarks" / "toy_pope.tsv"
    items = load_tsv_benchmark(tsv).items
    folder = tmp_path / "answers" / "toy_pope"
    folder.mkdir(parents=True)
    with (folder / "predictions.jsonl").open("w") as handle:
        for item in items[:-2]:  # two items left unanswered
            handle.write(json.dumps({"question_id": item.index, "text": item.answer.capitalize()}) + "\n")
    results = evaluate_benchmarks(None, [str(tsv)], tmp_path / "out", predictions_dir=tmp_path / "answers",
                                  progress=False)
    entry = results["toy_pope"]
    assert entry["accuracy"] == 1.0 and entry["num_items"] == len(items) - 2
    assert entry["missing_predictions"] == 2


def test_a_judged_benchmark_without_a_judge_fails_before_any_generation(tmp_path):
    from tests.helpers.eval_tsv_helpers import RED, png_base64, write_tsv

    path = write_tsv(tmp_path / "MMVet.tsv", ["index", "image", "question", "answer", "category"],
                     [[0, png_base64(RED), "What colour is it?", "red", "rec"]])
    spec = BenchmarkSpec(name="mmvet", load=lambda: load_mmvet_tsv(path), scorer="mmvet",
                         files={"path": path})

    class NeverCalled:
        def answer(self, *args, **kwargs):
            raise AssertionError("generation started although the judge is missing")

    with pytest.raises(JudgeNotConfigured, match="judge.base_url"):
        evaluate_benchmarks(NeverCalled(), [spec], tmp_path / "out", judge=JudgeSettings(), progress=False)
