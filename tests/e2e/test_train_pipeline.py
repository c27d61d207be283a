"""Two-stage training composed through Hydra, W&B offline runs, exports, and eval.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from allava.models.model_dir import load_exported
from allava.training.run import train
from tests.helpers.wandb_offline import find_runs, read_history

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wandb_without_network(monkeypatch, tmp_path):
    """No API key and an unreachable host: `mode=auto` must fall back to offline by itself."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))


@pytest.mark.slow
def test_two_stages_with_wandb_offline_runs(tiny_train_config, wandb_without_network):
    """The toy default: the tower stage, then ALLaVA's two stages, each with its W&B run."""
    cfg = tiny_train_config("logger=wandb", "run_group=test-group")
    assert list(cfg.stages) == ["tower", "pretrain", "finetune"]
    outcome = train(cfg)
    run_dir = Path(outcome["run_dir"])
    learning_rates = {"tower": {"lr/vision", "lr/caption_words_head"},
                      "pretrain": {"lr/connector", "lr/llm"}, "finetune": {"lr/connector", "lr/llm"}}
    for stage in ("tower", "pretrain", "finetune"):
        (run,) = find_runs(run_dir / stage / "wandb")
        history = read_history(run)
        losses = [row["train/loss"] for row in history if "train/loss" in row]
        assert losses and all(l > 0 for l in losses)
        assert any("train/grad_norm" in row for row in history)
        logged = {key for row in history for key in row}
        assert learning_rates[stage] | {"train/tokens_per_s", "val/loss"} <= logged
        if stage != "tower":  # the table of sample predictions (the tower stage has no LLM output)
            assert f"{stage}/val_samples/nrows" in logged
        assert (run_dir / stage / "checkpoints" / "last.ckpt").is_file()
        assert (run_dir / stage / "export" / "model.safetensors").is_file()
    weights = {stage: load_exported(run_dir / stage / "export").model.state_dict()
               for stage in ("tower", "pretrain", "finetune")}
    tower, pre, fin = weights["tower"], weights["pretrain"], weights["finetune"]
    # The tower stage trained the tower only; the next stages kept it frozen, BatchNorm
    # statistics included (a frozen tower runs in eval mode).
    vision = [k for k in tower if k.startswith("vision.")]
    assert any("running_mean" in k for k in vision)
    assert vision and all(torch.equal(tower[k], pre[k]) and torch.equal(pre[k], fin[k])
                          for k in vision)
    # Each stage started from the previous one's weights and changed the LLM.
    llm = [k for k in pre if k.startswith("llm.")]
    assert any(not torch.equal(tower[k], pre[k]) for k in llm)
    assert any(not torch.equal(pre[k], fin[k]) for k in llm)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert set(results) == {"toy_pope", "toy_mcq"}
    assert 0.0 <= results["toy_pope"]["accuracy"] <= 1.0
    assert {"precision", "recall", "f1", "yes_ratio"} <= set(results["toy_pope"])


@pytest.mark.slow
def test_single_stage_from_an_exported_model(tiny_train_config, tmp_path):
    first = train(tiny_train_config("stages=[pretrain]", "eval.benchmarks=[]"))
    export = first["exports"]["pretrain"]
    cfg = tiny_train_config("stages=[finetune]", f"init_from={export}", "eval.benchmarks=[]")
    cfg.paths.output_dir = str(tmp_path / "second")
    second = train(cfg)
    assert list(second["exports"]) == ["finetune"]
    assert not (Path(second["run_dir"]) / "pretrain").exists()


def test_stage_length_follows_trainer_max_steps(tiny_train_config):
    from allava.training.run import _stage_length

    cfg = tiny_train_config("trainer.max_steps=7")
    assert _stage_length(cfg, cfg.stage.pretrain)["max_steps"] == 7
    cfg = tiny_train_config()
    assert _stage_length(cfg, cfg.stage.finetune)["max_steps"] == 3


def test_unknown_stage_is_a_clear_error(tiny_train_config):
    with pytest.raises(KeyError, match="no stage.polish config"):
        train(tiny_train_config("stages=[polish]", "eval.benchmarks=[]"))


@pytest.mark.slow
def test_train_py_and_eval_py_from_the_command_line(toy_root, tmp_path):
    """The real entry points, as a user types them; eval.py on a TSV given by path."""
    from tests.helpers.configs import TINY_MODEL, TINY_WORLD

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    train_cmd = [sys.executable, "train.py", f"data.root={toy_root}", *world, *TINY_MODEL,
                 "trainer.max_steps=2", "data.batch_size=4", "eval.benchmarks=[]",
                 "logger=none", f"paths.log_dir={tmp_path}/logs", "model/connector=linear"]
    done = subprocess.run(train_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (export,) = list((tmp_path / "logs" / "train" / "runs").glob("*/finetune/export"))
    tsv = toy_root / "benchmarks" / "toy_mcq.tsv"
    eval_cmd = [sys.executable, "eval.py", f"model_dir={export}", f"benchmarks=[{tsv}]",
                f"paths.log_dir={tmp_path}/logs", "limit=6"]
    done = subprocess.run(eval_cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "toy_mcq" in done.stdout
    (results_file,) = list((tmp_path / "logs" / "eval" / "runs").glob("*/results.json"))
    results = json.loads(results_file.read_text())
    assert results["toy_mcq"]["num_items"] == 6
    predictions = (results_file.parent / "toy_mcq" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 6 and {"index", "prediction"} <= set(json.loads(predictions[0]))


@pytest.mark.slow
def test_curriculum_experiment_runs_three_stages_on_selected_records(tiny_train_config):
    """`experiment=toy_curriculum`: a POPE-only stage between captions and all QA."""
    cfg = tiny_train_config("experiment=toy_curriculum", "stage.tower.max_steps=2",
                            "stage.tower.val_every_n_steps=2", "stage.pretrain.max_steps=2",
                            "stage.qa_pope.max_steps=2", "stage.finetune.max_steps=2",
                            "stage.qa_pope.val_every_n_steps=2",
                            "stage.finetune.val_every_n_steps=2", "eval.benchmarks=[]")
    assert list(cfg.stages) == ["tower", "pretrain", "qa_pope", "finetune"]
    outcome = train(cfg)
    assert set(outcome["exports"]) == {"tower", "pretrain", "qa_pope", "finetune"}
    for stage in ("pretrain", "qa_pope", "finetune"):
        assert (Path(outcome["run_dir"]) / stage / "export" / "model.safetensors").is_file()


def test_the_toy_clip_tower_learns_in_its_stage_and_stays_frozen_after(tiny_train_config):
    """`model/vision=toy_clip`: CLIP's architecture at toy widths, trained from scratch by the
    tower stage like the CNN default, then frozen as ALLaVA freezes CLIP-L/336."""
    import lightning as L
    from safetensors.torch import load_file

    from allava.models.build import build_vlm

    cfg = tiny_train_config("model/vision=toy_clip", "stages=[tower,pretrain]",
                            "eval.benchmarks=[]")
    outcome = train(cfg)
    run_dir = Path(outcome["run_dir"])
    assert outcome["image_tokens"] == (32 // 8) ** 2  # 8 px patches, class token dropped
    bundle = load_exported(run_dir / "pretrain" / "export")
    tower = bundle.model.vision
    assert type(tower.model).__name__ == "VisionTransformer" and len(tower.model.blocks) == 3
    assert type(tower.model.blocks[0].mlp.act).__name__ == "QuickGELU"  # OpenAI CLIP's
    weights = {stage: {k: v for k, v in load_file(run_dir / stage / "export" /
                                                  "model.safetensors").items()
                       if k.startswith("vision.")} for stage in ("tower", "pretrain")}
    L.seed_everything(cfg.seed, workers=True)  # as train() does before building
    model = build_vlm(cfg.model).model
    initial = {f"vision.{k}": v for k, v in model.vision.state_dict().items()}
    # The rebuilt model is the run's start: the LLM, frozen in the tower stage, is unchanged.
    tower_export = load_file(run_dir / "tower" / "export" / "model.safetensors")
    llm = {k: v for k, v in model.llm.state_dict().items() if f"llm.{k}" in tower_export}
    assert llm and all(torch.equal(tower_export[f"llm.{k}"], v) for k, v in llm.items())
    assert weights["tower"].keys() == weights["pretrain"].keys() == initial.keys()
    assert not torch.equal(weights["tower"]["vision.model.blocks.0.attn.qkv.weight"],
                           initial["vision.model.blocks.0.attn.qkv.weight"])  # it learnt
    assert all(torch.equal(weights["tower"][k], weights["pretrain"][k]) for k in weights["tower"])
    assert outcome["parameters"]["vision"]["trainable"] == 0  # frozen after its stage
