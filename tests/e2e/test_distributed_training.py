"""train.py in two gloo processes on the CPU, under DDP and under FSDP2: both stages, one
export per stage written by rank 0 with full weights, the evaluation, W&B runs from rank 0
only, and an exact resume after the whole job is killed. FSDP2 trains the model DDP trains."""
from __future__ import annotations

import re
import signal

import pytest
import torch
from safetensors.torch import load_file

from allava.models.model_dir import load_exported
from tests.e2e.test_resume import assert_same_training, losses, train_py
from tests.helpers.wandb_offline import find_runs

# Half of test_resume.py's steps: still past the first epoch (16 batches per rank) and two
# checkpoints before the kill at step 20.
SHORT = ["stage.pretrain.max_steps=24", "stage.finetune.max_steps=6"]
DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", *SHORT]
FSDP2 = ["trainer=fsdp2", "trainer.devices=2", "trainer.accelerator=cpu", *SHORT]
STAGES = ("pretrain", "finetune")
KILL_AT_STEP_20 = ["+callbacks.kill._target_=tests.helpers.process_killer.KillProcess",
                   "+callbacks.kill.stage=pretrain", "+callbacks.kill.step=20",
                   "+callbacks.kill.whole_job=true"]


def two_process_run(toy_root, tmp_path_factory, strategy: list[str]):
    run_dir = tmp_path_factory.mktemp(strategy[0].removeprefix("trainer=")) / "run"
    done = train_py(run_dir, toy_root, *strategy, "logger=wandb", "logger.wandb.mode=offline",
                    "+logger.csv._target_=allava.training.loggers.csv_logger",
                    "eval.benchmarks=[toy_pope]", "eval.limit=8")
    return run_dir, done.stdout + done.stderr


@pytest.fixture(scope="module")
def ddp_reference(toy_root, tmp_path_factory):
    return two_process_run(toy_root, tmp_path_factory, DDP)


@pytest.fixture(scope="module")
def fsdp2_reference(toy_root, tmp_path_factory):
    return two_process_run(toy_root, tmp_path_factory, FSDP2)


def assert_trained_by_two_ranks_exported_once(run_dir, output) -> None:
    assert "2 devices" in output
    for stage in STAGES:
        # Hydra's log format (the console repeats each line in another), from rank 0 only.
        assert output.count(f"[INFO] - [{stage}] exported to") == 1
        (run,) = find_runs(run_dir / stage / "wandb")  # rank 0 only
        bundle = load_exported(run_dir / stage / "export")
        assert sum(p.numel() for p in bundle.model.parameters()) > 0
    assert (run_dir / "eval" / "results.json").is_file()


@pytest.mark.slow
def test_two_ddp_processes_train_both_stages_export_once_and_evaluate(ddp_reference):
    assert_trained_by_two_ranks_exported_once(*ddp_reference)


@pytest.mark.slow
def test_fsdp2_shards_over_two_processes_and_trains_what_ddp_trains(fsdp2_reference,
                                                                     ddp_reference):
    run_dir, output = fsdp2_reference
    assert_trained_by_two_ranks_exported_once(run_dir, output)
    for stage in STAGES:
        assert re.search(rf"\[INFO\] - \[{stage}\] FSDP2: \d+ units sharded over 2 ranks", output)
        # Sharded checkpoints: a directory with one file of weights and optimizer state per rank.
        last = run_dir / stage / "checkpoints" / "last.ckpt"
        assert last.is_dir() and len(list(last.resolve().glob("*.distcp"))) == 2
    # Same data, same seed, gradients averaged over the same two ranks: the losses and the
    # exported weights are DDP's, up to the order of floating-point sums.
    ddp_dir, _ = ddp_reference
    for stage in STAGES:
        expected, got = losses(ddp_dir, stage), losses(run_dir, stage)
        assert expected.keys() == got.keys()
        for step, loss in expected.items():
            assert got[step] == pytest.approx(loss, rel=1e-5), (stage, step)
        a = load_file(ddp_dir / stage / "export" / "model.safetensors")
        b = load_file(run_dir / stage / "export" / "model.safetensors")
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_a_killed_two_process_job_resumes_exactly(strategy, request, toy_root, tmp_path):
    reference, _ = request.getfixturevalue(f"{strategy}_reference")
    overrides = DDP if strategy == "ddp" else FSDP2
    run_dir = tmp_path / "run"
    killed = train_py(run_dir, toy_root, *overrides, "logger=csv", *KILL_AT_STEP_20, check=False)
    assert killed.returncode == -signal.SIGKILL
    train_py(run_dir.parent / "resumed-attempt", toy_root, *overrides, "logger=csv",
             f"resume={run_dir}")
    assert_same_training(run_dir, reference, {"pretrain": 15, "finetune": 1})


@pytest.mark.slow
def test_processes_started_by_torchrun_agree_on_one_run_and_export_once(toy_root, tmp_path):
    """How several nodes run: the launcher starts every process (here torchrun, 2 on one node)
    and each composes its config alone; all must write to one run directory."""
    import subprocess
    import sys

    from tests.e2e.test_resume import ENV, ROOT, command_line

    arguments = [a for a in command_line(tmp_path, toy_root, *DDP, "stage.pretrain.max_steps=6",
                                         "stage.finetune.max_steps=4", f"paths.log_dir={tmp_path}")
                 if not a.startswith("hydra.run.dir=")][1:]  # the run dir is the job's to name
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc-per-node=2", *arguments], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600, start_new_session=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    assert run_dir.name.startswith("torchrun-")
    assert "batch 4 x 2 devices" in output
    for stage in STAGES:
        assert output.count(f"[INFO] - [{stage}] exported to {run_dir}") == 1
        assert (run_dir / stage / "export" / "model.safetensors").is_file()
