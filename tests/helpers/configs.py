"""Hydra configs composed the way train.py and eval.py compose them, and the tiny sizes tests use."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import allava  # noqa: F401  (registers the config resolvers)

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

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
