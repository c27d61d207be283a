"""Shared fixtures: a tiny toy world on disk and Hydra configs composed the way train.py does."""
from __future__ import annotations

from pathlib import Path

import pytest
import allava  # noqa: F401  (registers the config resolvers)
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

# Small enough to train for a few steps in seconds; same generator as the default.
TINY_WORLD = dict(num_images=96, num_text=32, num_val_images=16, num_benchmark_items=24,
                  image_size=32, seed=3, tokenizer_vocab_size=400)

# A 1-layer, 32-wide Llama: shapes and plumbing, not quality.
TINY_MODEL = [
    "model.llm.model.config.hidden_size=32",
    "model.llm.model.config.intermediate_size=64",
    "model.llm.model.config.num_hidden_layers=1",
    "model.llm.model.config.num_attention_heads=2",
    "model.llm.model.config.num_key_value_heads=2",
]


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    from allava.data.toy_setup import ensure_toy_world

    root = tmp_path_factory.mktemp("toy")
    ensure_toy_world(root, dict(TINY_WORLD), progress=False)
    return root


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Composes `configs/<name>.yaml` as `@hydra.main` would, with the run dir in `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.root_dir = str(output_dir)
        del cfg.hydra
    return cfg


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
