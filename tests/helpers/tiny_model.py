"""A tiny exported model with random weights (1-layer, 32-wide Llama on the toy tokenizer): what
the tests of `allava chat` and `allava serve` load. Its answers are gibberish; its shapes and
plumbing are the real ones."""
from __future__ import annotations

from pathlib import Path

import torch

from allava.models.build import build_vlm
from allava.models.model_dir import export_model
from tests.helpers.configs import TINY_MODEL, TINY_WORLD, compose_config


def export_tiny_model(toy_root: Path, root: Path) -> Path:
    """Exports the model under `root / "export"`, built from seed 0."""
    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    cfg = compose_config("train", [f"data.root={toy_root}", *world, *TINY_MODEL], root / "run")
    torch.manual_seed(0)
    return export_model(build_vlm(cfg.model), root / "export")
