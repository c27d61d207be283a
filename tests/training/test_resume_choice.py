"""Which run `resume=` continues, and which config changes it refuses."""
from __future__ import annotations

import pytest
from omegaconf import open_dict

from allava.training.resume import RunState, open_run


def config_in(tiny_train_config, directory, *overrides):
    cfg = tiny_train_config(*overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(directory)
    return cfg


def started_run(tiny_train_config, directory, *overrides, finished=False) -> RunState:
    state, resuming = open_run(config_in(tiny_train_config, directory, *overrides))
    assert not resuming
    state.finished = finished
    state.write()
    return state


def test_a_resume_with_another_model_is_refused_with_the_differences(tiny_train_config, tmp_path):
    started_run(tiny_train_config, tmp_path / "runs" / "a")
    cfg = config_in(tiny_train_config, tmp_path / "runs" / "b", f"resume={tmp_path / 'runs' / 'a'}",
                    "model.llm.model.config.num_hidden_layers=2", "data.batch_size=8")
    with pytest.raises(ValueError) as refused:
        open_run(cfg)
    message = str(refused.value)
    assert "model.llm.model.config.num_hidden_layers: 1 -> 2" in message
    assert "data.batch_size: 4 -> 8" in message and "resume_force=true" in message
    with open_dict(cfg):
        cfg.resume_force = True
    state, resuming = open_run(cfg)
    assert resuming and state.directory == tmp_path / "runs" / "a"


def test_what_does_not_shape_the_weights_may_change(tiny_train_config, tmp_path):
    started_run(tiny_train_config, tmp_path / "runs" / "a")
    cfg = config_in(tiny_train_config, tmp_path / "runs" / "b", f"resume={tmp_path / 'runs' / 'a'}",
                    "logger=none", "eval.batch_size=2", "callbacks.checkpoint.every_n_minutes=5")
    state, resuming = open_run(cfg)
    assert resuming and state.directory == tmp_path / "runs" / "a"


def test_auto_takes_the_newest_unfinished_run_of_the_same_config(tiny_train_config, tmp_path):
    runs = tmp_path / "runs"
    started_run(tiny_train_config, runs / "1-old")
    started_run(tiny_train_config, runs / "2-newer")
    started_run(tiny_train_config, runs / "3-finished", finished=True)
    started_run(tiny_train_config, runs / "4-other-config", "seed=5")
    state, resuming = open_run(config_in(tiny_train_config, runs / "5-now", "resume=auto"))
    assert resuming and state.directory == runs / "2-newer"
    state, resuming = open_run(config_in(tiny_train_config, runs / "6-now", "resume=auto", "seed=9"))
    assert not resuming and state.directory == runs / "6-now"


def test_resume_of_a_missing_dir_says_so(tiny_train_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        open_run(config_in(tiny_train_config, tmp_path / "b", f"resume={tmp_path / 'nope'}"))
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(FileNotFoundError, match="run_state.json"):
        open_run(config_in(tiny_train_config, tmp_path / "b", f"resume={tmp_path / 'not-a-run'}"))


def test_auto_continues_its_own_directory_when_a_requeued_job_gets_it_back(tiny_train_config,
                                                                           tmp_path):
    runs = tmp_path / "runs"
    started_run(tiny_train_config, runs / "slurm-4242.0")
    started_run(tiny_train_config, runs / "older")
    (runs / "slurm-4242.0" / "run_state.json").touch()  # the requeued job's run is the newest
    state, resuming = open_run(config_in(tiny_train_config, runs / "slurm-4242.0", "resume=auto"))
    assert resuming and state.directory == runs / "slurm-4242.0"
