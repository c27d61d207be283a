"""The benchmark suite end to end: every benchmark of allava.evaluation.benchmarks on its real file
layout, scored by its reference scorer; MM-Vet and LLaVA-Bench graded by a judge on loopback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from allava.evaluation import evaluate_benchmarks
from allava.evaluation.pipeline import benchmark_resolver, comparison_markdown, report_columns
from allava.evaluation.judge import JudgeSettings
from allava.evaluation.registry import known_benchmarks
from tests.helpers.configs import compose_config
from tests.helpers.eval_suite_files import write_suite
from tests.helpers.synth_server import LoopbackTeacher, Reply

ROOT = Path(__file__).resolve().parents[2]
SUITE = ["pope", "mme", "mmbench_en", "mmbench_cn", "scienceqa_img", "mmmu_val", "textvqa_val", "gqa",
         "seed_img", "mmstar", "vizwiz_val", "mmvet", "llava_bench"]


def test_the_suite_is_every_benchmark_but_the_toy_ones():
    assert sorted(SUITE) == [name for name in known_benchmarks() if not name.startswith("toy_")]


def judge_reply(request: dict, index: int) -> Reply:
    """MM-Vet asks for one number; LLaVA-Bench (the request with a system message) for two."""
    if any(message["role"] == "system" for message in request["messages"]):
        return Reply(content="8 8\nBoth answers are helpful.")
    return Reply(content="1.0")


@pytest.fixture
def judge_server():
    with LoopbackTeacher(judge_reply) as server:
        yield server


def test_an_oracle_scores_full_marks_on_every_benchmark(tmp_path, judge_server):
    oracle = write_suite(tmp_path / "eval_data")
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path / 'eval_data'}",
                                  f"judge.base_url={judge_server.base_url}", "judge.model=judge"], tmp_path / "out")
    judge = JudgeSettings(base_url=judge_server.base_url, model="judge")
    results = evaluate_benchmarks(oracle, SUITE, tmp_path / "out", resolve=benchmark_resolver(cfg),
                                  judge=judge, progress=False)
    assert set(results) == set(SUITE)
    scores = {name: entry["score"] for name, entry in results.items()}
    assert scores == {"pope": 100.0, "mme": 400.0, "mmbench_en": 100.0, "mmbench_cn": 100.0,
                      "scienceqa_img": 100.0, "mmmu_val": 100.0, "textvqa_val": 100.0, "gqa": 100.0,
                      "seed_img": 100.0, "mmstar": 100.0, "vizwiz_val": 100.0, "mmvet": 100.0,
                      "llava_bench": 100.0}
    # What each reference reports besides the headline.
    pope = results["pope"]["per_category"]
    assert set(pope) == {"adversarial", "popular", "random"}  # the shared row counts in two splits
    assert [pope[split]["f1"] for split in sorted(pope)] == [1.0, 1.0, 1.0]
    mme = results["mme"]
    assert (mme["perception"], mme["cognition"]) == (200.0, 200.0)
    assert results["mmbench_en"]["num_groups"] == 2  # the rotation joined its question
    assert results["scienceqa_img"]["num_img_items"] == 1  # the text-only question is not IMG
    mmmu = results["mmmu_val"]
    assert (mmmu["num_items"], mmmu["skipped"], mmmu["excluded_by_split"]) == (2, 0, 1)  # the dev row
    assert results["vizwiz_val"]["num_items"] == 2
    assert results["mmvet"]["per_capability"]["ocr"] == 100.0
    assert results["llava_bench"]["relative"] == {"detail": 100.0, "conv": 100.0, "overall": 100.0}
    assert len(judge_server.requests) == 4  # two MM-Vet, two LLaVA-Bench

    # The prompts follow LLaVA-1.5's conventions per benchmark.
    prompts = oracle.prompts
    assert "Is there a dog in the image?\nAnswer the question using a single word or phrase." in prompts
    assert any(p.startswith("Look closely.\nWhich colour fills the picture?\nA. red") for p in prompts)
    assert any(p.endswith("\n请直接回答选项字母。") for p in prompts)
    assert "Context: Sea animals.\nWhich animal is a mammal?\nA. shark\nB. whale\n" \
           "Answer with the option's letter from the given choices directly." in prompts
    assert "What is in this can?\nWhen the provided information is insufficient, respond with " \
           "'Unanswerable'.\nAnswer the question using a single word or phrase." in prompts
    assert "What is the total price?" in prompts  # MM-Vet: no instruction
    assert "Is this a painting by Monet?\nAnswer the question using a single word or phrase." in prompts

    table = comparison_markdown(results, report_columns(results, SUITE, benchmark_resolver(cfg)))
    ours = table.splitlines()[2]
    assert ours.startswith("| this model") and "200.0" in ours and "100.0" in ours
    assert any(line.startswith("| ALLaVA-StableLM2") and "1311.7" in line for line in table.splitlines())


def test_llava_layout_is_one_override_away(tmp_path):
    oracle = write_suite(tmp_path / "eval_data")
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path / 'eval_data'}",
                                  "benchmark_layouts.pope=llava"], tmp_path / "out")
    results = evaluate_benchmarks(oracle, ["pope"], tmp_path / "out", resolve=benchmark_resolver(cfg),
                                  progress=False)
    assert results["pope"]["num_items"] == 4 and results["pope"]["score"] == 100.0
    assert set(results["pope"]["per_category"]) == {"popular", "random"}
    # LLaVA's own prompt text, instruction included once.
    assert oracle.prompts[0] == "Is there a kite in the image?\nAnswer the question using a single word or phrase."


def test_a_missing_benchmark_file_is_reported_before_any_generation(tmp_path):
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path / 'nothing'}"], tmp_path / "out")

    class NeverCalled:
        def answer(self, *args, **kwargs):
            raise AssertionError("generation started")

    with pytest.raises(FileNotFoundError, match=r"benchmark 'gqa' \(tsv layout\): path .*GQA_TestDev_Balanced.tsv"):
        evaluate_benchmarks(NeverCalled(), ["gqa"], tmp_path / "out", resolve=benchmark_resolver(cfg))


@pytest.mark.slow
def test_a_tiny_model_through_eval_py_on_every_benchmark(tmp_path, judge_server, toy_root):
    """eval.py as a user runs it: a real (tiny, untrained) exported model, every benchmark."""
    write_suite(tmp_path / "eval_data")
    export = _tiny_export(tmp_path, toy_root)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "OPENAI_API_KEY": "sk-test-key"}
    command = [sys.executable, "eval.py", f"model_dir={export}", f"benchmarks=[{','.join(SUITE)}]",
               f"benchmark_data_dir={tmp_path / 'eval_data'}", f"judge.base_url={judge_server.base_url}",
               "judge.model=judge", f"hydra.run.dir={tmp_path / 'run'}", "run_group=tiny-group",
               "+benchmark_overrides={mmvet: {max_new_tokens: 8}, llava_bench: {max_new_tokens: 8}}",
               "max_new_tokens=4", "progress=false"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results) == SUITE
    for name, entry in results.items():
        assert isinstance(entry["score"], float), name
        lines = (tmp_path / "run" / name / "predictions.jsonl").read_text().splitlines()
        assert len(lines) == entry["num_items"] + entry.get("unpaired", 0), name
    assert "ALLaVA-Phi3" in done.stdout and "MME-P" in done.stdout
    assert (tmp_path / "run" / "results.md").read_text().count("| ALLaVA-") == 3
    assert "sk-test-key" not in done.stdout + done.stderr
    from tests.helpers.wandb_offline import find_runs, read_run

    (run_dir,) = find_runs(tmp_path / "run")
    run, summary = read_run(run_dir)
    assert (run["job_type"], run["group"]) == ("eval", "tiny-group")
    assert summary["eval/mme/perception"] == results["mme"]["perception"]
    assert "| ALLaVA-Phi2" in summary["eval/comparison_markdown"]


def _tiny_export(tmp_path: Path, toy_root: Path) -> Path:
    from allava.models.build import build_vlm
    from allava.models.model_dir import export_model
    from tests.helpers.configs import TINY_MODEL, TINY_WORLD

    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    cfg = compose_config("train", [f"data.root={toy_root}", *world, *TINY_MODEL], tmp_path / "model")
    export_model(build_vlm(cfg.model), tmp_path / "export")
    return tmp_path / "export"


def test_the_optional_choice_matcher_reads_what_the_rules_cannot(tmp_path):
    """MMBench with answers no rule can read: wrong by default (exact matching); with the
    matcher, the judge maps each answer to a letter (its first reply has none: asked again)."""
    from allava.evaluation.judge.choice_matcher import ChoiceMatcher

    write_suite(tmp_path / "eval_data")
    cfg = compose_config("eval", [f"benchmark_data_dir={tmp_path / 'eval_data'}"], tmp_path / "out")

    class Vague:
        def answer(self, questions, images, max_new_tokens=32):
            return ["It is the colour of a fire engine."] * len(questions)

    plain = evaluate_benchmarks(Vague(), ["mmbench_en"], tmp_path / "plain", resolve=benchmark_resolver(cfg),
                                progress=False)
    assert plain["mmbench_en"]["score"] == 0.0 and plain["mmbench_en"]["unparsed"] == 3

    def judge(request: dict, index: int) -> Reply:
        prompt = request["messages"][0]["content"]
        if index == 0:
            return Reply(content="Hmm.")  # no letter: the matcher asks again
        red = next(line[0] for line in prompt.splitlines() if line[1:] == ". red")
        return Reply(content=red)

    with LoopbackTeacher(judge) as server:
        matcher = ChoiceMatcher(JudgeSettings(base_url=server.base_url, model="judge"))
        matched = evaluate_benchmarks(Vague(), ["mmbench_en"], tmp_path / "matched",
                                      resolve=benchmark_resolver(cfg), matcher=matcher, progress=False)
        assert len(server.requests) == 4  # three answers, one of them asked twice
    assert matched["mmbench_en"]["score"] == 100.0
