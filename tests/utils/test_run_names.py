"""A new run directory's name: the same in every process of a multi-process cluster job."""
from __future__ import annotations

import re

import pytest

from allava.utils.run_names import run_name

LAUNCHER_VARIABLES = ("ALLAVA_RUN_ID", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS",
                      "TORCHELASTIC_RUN_ID", "WORLD_SIZE")


@pytest.fixture
def environment(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_plain_run_is_named_by_the_time(environment):
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", run_name())


def test_a_multi_task_slurm_step_is_named_by_its_job_and_step(environment):
    environment.setenv("SLURM_JOB_ID", "4242")
    environment.setenv("SLURM_STEP_ID", "0")
    environment.setenv("SLURM_NTASKS", "16")
    assert run_name() == "slurm-4242.0"
    environment.setenv("SLURM_NTASKS", "1")  # one task: nothing to agree on, and an
    assert run_name() != "slurm-4242.0"      # allocation's successive runs stay apart


def test_a_torchrun_job_is_named_by_its_rendezvous(environment):
    environment.setenv("TORCHELASTIC_RUN_ID", "abc")
    environment.setenv("WORLD_SIZE", "2")
    assert run_name() == "torchrun-abc"
    environment.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun's default without an id
    assert run_name().startswith("20")


def test_an_explicit_id_wins(environment):
    environment.setenv("ALLAVA_RUN_ID", "my-run")
    environment.setenv("SLURM_JOB_ID", "4242")
    assert run_name() == "my-run"


def test_the_train_config_names_its_run_directory_with_it(environment):
    environment.setenv("ALLAVA_RUN_ID", "named-by-env")
    from hydra import compose, initialize_config_dir

    from tests.helpers.configs import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert cfg.hydra.run.dir.endswith("/train/runs/named-by-env")
