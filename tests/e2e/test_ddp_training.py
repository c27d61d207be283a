"""train.py under DDP with two gloo processes on the CPU: both stages, one export per stage
written by rank 0 with full weights, the evaluation, W&B runs from rank 0 only, and an exact
resume after the whole job is killed."""
from __future__ import annotations

import signal

import pytest

from allava.models.model_dir import load_exported
from tests.e2e.test_resume import assert_same_training, train_py
from tests.helpers.wandb_offline import find_runs

DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]


@pytest.fixture(scope="module")
def ddp_reference(toy_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    done = train_py(run_dir, toy_root, *DDP, "logger=wandb", "logger.wandb.mode=offline",
                    "+logger.csv._target_=allava.training.loggers.csv_logger",
                    "eval.benchmarks=[toy_pope]", "eval.limit=8")
    return run_dir, done.stdout + done.stderr


@pytest.mark.slow
def test_two_ddp_processes_train_both_stages_export_once_and_evaluate(ddp_reference):
    run_dir, output = ddp_reference
    assert "2 devices" in output
    for stage in ("pretrain", "finetune"):
        # Hydra's log format (the console repeats each line in another), from rank 0 only.
        assert output.count(f"[INFO] - [{stage}] exported to") == 1
        (run,) = find_runs(run_dir / stage / "wandb")  # rank 0 only
        bundle = load_exported(run_dir / stage / "export")
        assert sum(p.numel() for p in bundle.model.parameters()) > 0
    assert (run_dir / "eval" / "results.json").is_file()


@pytest.mark.slow
def test_a_killed_ddp_job_resumes_exactly(ddp_reference, toy_root, tmp_path):
    reference, _ = ddp_reference
    run_dir = tmp_path / "run"
    kill = ["+callbacks.kill._target_=tests.helpers.process_killer.KillProcess",
            "+callbacks.kill.stage=pretrain", "+callbacks.kill.step=20",
            "+callbacks.kill.whole_job=true"]
    killed = train_py(run_dir, toy_root, *DDP, "logger=csv", *kill, check=False)
    assert killed.returncode == -signal.SIGKILL
    train_py(run_dir.parent / "resumed-attempt", toy_root, *DDP, "logger=csv", f"resume={run_dir}")
    assert_same_training(run_dir, reference, {"pretrain": 15, "finetune": 1})
