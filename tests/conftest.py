"""Shared fixtures: a tiny toy world on disk and a tiny train config pointed at it."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers.configs import TINY_MODEL, TINY_WORLD, compose_config


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    from allava.toy.setup import ensure_toy_world

    root = tmp_path_factory.mktemp("toy")
    ensure_toy_world(root, dict(TINY_WORLD), progress=False)
    return root


@pytest.fixture
def tiny_train_config(toy_root, tmp_path):
    """`train.yaml` pointed at the tiny toy world with a tiny model and a few steps."""

    def make(*overrides: str) -> DictConfig:
        world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
        base = [f"data.root={toy_root}", *world, *TINY_MODEL,
                "data.batch_size=4", "data.val_max_samples=8", "data.shuffle_buffer=16",
                "stage.tower.max_steps=3", "stage.pretrain.max_steps=3",
                "stage.finetune.max_steps=3", "stage.tower.val_every_n_steps=3",
                "stage.pretrain.val_every_n_steps=3", "stage.finetune.val_every_n_steps=3",
                "callbacks.progress_bar.refresh_rate=0",
                "eval.limit=8", "eval.batch_size=8", "logger=csv",
                "trainer.log_every_n_steps=1"]
        return compose_config("train", [*base, *overrides], tmp_path / "run")

    return make
