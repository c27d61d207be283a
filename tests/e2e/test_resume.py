"""A killed train.py run, resumed, trains on exactly as the uninterrupted run did."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers.configs import TINY_MODEL, TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]
# The tiny pretrain epoch is 32 batches; checkpoints every 7 steps: the one a kill at step 40
# resumes from, 35, is 3 batches into the second epoch (odd: the 2 workers' turns shift).
PRETRAIN_STEPS, FINETUNE_STEPS, EVERY = 48, 12, 7


def command_line(run_dir: Path, toy_root: Path, *overrides: str) -> list[str]:
    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    return [sys.executable, "train.py", f"data.root={toy_root}", *world, *TINY_MODEL,
               "stages=[pretrain,finetune]", "data.batch_size=4", "data.val_max_samples=8",
               "data.shuffle_buffer=16", f"stage.pretrain.max_steps={PRETRAIN_STEPS}",
               f"stage.finetune.max_steps={FINETUNE_STEPS}", "stage.pretrain.val_every_n_steps=10",
               "stage.finetune.val_every_n_steps=10", "callbacks.progress_bar.refresh_rate=0",
               f"callbacks.checkpoint.every_n_train_steps={EVERY}", "eval.benchmarks=[]",
               "logger=csv", "trainer.log_every_n_steps=1", "trainer.deterministic=true",
               f"hydra.run.dir={run_dir}", *overrides]


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def train_py_started(run_dir: Path, toy_root: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(command_line(run_dir, toy_root, *overrides), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def train_py(run_dir: Path, toy_root: Path, *overrides: str, check: bool = True):
    # In its own session: a test may kill the job's whole process group (every DDP rank).
    done = subprocess.run(command_line(run_dir, toy_root, *overrides), cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600, start_new_session=True)
    if check and done.returncode != 0:
        raise AssertionError(f"train.py failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def losses(run_dir: Path, stage: str) -> dict[int, float]:
    """step -> train/loss, the last value logged for each step (a resumed stage logs the
    steps after its checkpoint again)."""
    by_step: dict[int, float] = {}
    with open(run_dir / stage / "csv" / stage / "metrics.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("train/loss"):
                by_step[int(row["step"])] = float(row["train/loss"])
    return by_step


def assert_same_training(resumed: Path, reference: Path, from_step: dict[str, int]) -> None:
    for stage, first in from_step.items():
        expected, got = losses(reference, stage), losses(resumed, stage)
        steps = [s for s in expected if s >= first]
        assert steps and all(s in got for s in steps), (stage, sorted(got))
        for s in steps:
            assert got[s] == pytest.approx(expected[s], rel=1e-6), (stage, s, got[s], expected[s])
    for stage in ("pretrain", "finetune"):
        a = load_file(reference / stage / "export" / "model.safetensors")
        b = load_file(resumed / stage / "export" / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), stage


@pytest.fixture(scope="module")
def references(toy_root, tmp_path_factory):
    """The uninterrupted runs, with the data read in the main process and by 2 workers."""
    made = {}
    for workers in (0, 2):
        run_dir = tmp_path_factory.mktemp(f"reference{workers}") / "run"
        train_py(run_dir, toy_root, f"data.num_workers={workers}")
        made[workers] = run_dir
    return made


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_sigkill_mid_stage_then_resume_gives_the_same_steps_and_weights(
        workers, references, toy_root, tmp_path):
    run_dir = tmp_path / "run"
    kill = ["+callbacks.kill._target_=tests.helpers.process_killer.KillProcess",
            "+callbacks.kill.stage=pretrain", "+callbacks.kill.step=40"]
    killed = train_py(run_dir, toy_root, f"data.num_workers={workers}", *kill, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "pretrain" / "export").exists()
    assert (run_dir / "pretrain" / "checkpoints" / "step=0000035.ckpt").is_file()
    train_py(run_dir.parent / "resumed-attempt", toy_root, f"data.num_workers={workers}",
             f"resume={run_dir}")
    # Steps 36.. of the epoch that began at step 33 came from the replayed stream.
    assert_same_training(run_dir, references[workers], {"pretrain": 36, "finetune": 1})


@pytest.mark.slow
def test_sigterm_then_a_kill_between_stages_both_resume_exactly(references, toy_root, tmp_path):
    """A cluster's pre-emption: SIGTERM lets the step finish, checkpoints it, and exits 143.
    The resumed run is then killed as the next stage starts; resume=auto finds the run again
    and reuses the stage that finished."""
    import time

    run_dir = tmp_path / "run"
    first = run_dir / "pretrain" / "checkpoints" / f"step={EVERY:07d}.ckpt"
    process = train_py_started(run_dir, toy_root)
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "received SIGTERM" in stderr and "resume=" in stderr
    saved = sorted((run_dir / "pretrain" / "checkpoints").glob("step=*.ckpt"))
    stopped_at = int(saved[-1].stem.split("=")[1])
    assert EVERY <= stopped_at < PRETRAIN_STEPS
    assert not (run_dir / "pretrain" / "export").exists()

    kill = ["+callbacks.kill._target_=tests.helpers.process_killer.KillProcess",
            "+callbacks.kill.stage=finetune", "+callbacks.kill.step=0"]
    killed = train_py(run_dir.parent / "resumed-attempt", toy_root, f"resume={run_dir}", *kill,
                      check=False)
    assert killed.returncode == -signal.SIGKILL
    export = run_dir / "pretrain" / "export" / "model.safetensors"
    finished_at = export.stat().st_mtime_ns
    train_py(run_dir.parent / "second-attempt", toy_root, "resume=auto",
             f"hydra.run.dir={run_dir.parent / 'second-attempt'}")
    assert export.stat().st_mtime_ns == finished_at  # pretrain was not run again
    assert_same_training(run_dir, references[0], {"pretrain": stopped_at + 1, "finetune": 1})


@pytest.mark.slow
def test_shards_over_http_train_and_resume_as_the_local_ones(references, toy_root, tmp_path):
    """The mixtures read from a loopback HTTP server: the same batches as from the disk, and a
    SIGKILL + resume that still replays the stream exactly."""
    from tests.helpers.shard_server import serve_directory

    run_dir = tmp_path / "run"
    kill = ["+callbacks.kill._target_=tests.helpers.process_killer.KillProcess",
            "+callbacks.kill.stage=pretrain", "+callbacks.kill.step=40"]
    with serve_directory(toy_root) as (base, requests):
        def source(name: str) -> str:
            return f'{{name:{name},path:"{base}/{name}",repeat:1}}'

        remote = [f"data.mixtures.pretrain=[{source('caption')},{source('text')}]",
                  f"data.mixtures.finetune=[{source('instruct')},{source('text')}]",
                  f'data.val=[{{name:val,path:"{base}/val"}}]']
        killed = train_py(run_dir, toy_root, *remote, *kill, check=False)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        train_py(run_dir.parent / "resumed-attempt", toy_root, *remote, f"resume={run_dir}")
    assert requests["/caption/manifest.json"] >= 2
    assert_same_training(run_dir, references[0], {"pretrain": 36, "finetune": 1})
