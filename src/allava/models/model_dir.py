"""Self-contained model directories: weights (safetensors), resolved config, tokenizer.

An exported directory needs no download and no training config to load: the LLM is rebuilt
from its own saved `config.json`, the tower from its timm name with weights off, and then
every weight comes from `model.safetensors`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_model, save_model

from allava.models.build import VLMBundle, build_vlm

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"


def export_model(bundle: VLMBundle, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bundle.tokenizer.save_pretrained(str(out / "tokenizer"))
    bundle.model.llm.config.save_pretrained(str(out / "llm"))
    cfg = OmegaConf.create(OmegaConf.to_container(bundle.config, resolve=True))
    cfg.vision = _without_vision_weights(cfg.vision)
    llm_model = {k: v for k, v in cfg.llm.model.items()
                 if k not in ("config", "name_or_path", "packaged")}
    llm_model.update(name_or_path="llm", weights="none", config=None)
    cfg.llm.model = llm_model
    cfg.llm.tokenizer = "tokenizer"
    cfg.llm.chat_template = None  # saved with the tokenizer
    OmegaConf.save(cfg, out / CONFIG)
    save_model(bundle.model, str(out / WEIGHTS))
    return out


# The tower's weight keys before `weights`/`packaged` replaced them.
OLD_VISION_WEIGHT_KEYS = ("pretrained", "checkpoint_path", "checkpoint_keys")


def _without_vision_weights(vision: DictConfig) -> DictConfig:
    """The tower node with its weight source off: every weight comes from model.safetensors."""
    node = {k: v for k, v in vision.items() if k not in ("packaged", *OLD_VISION_WEIGHT_KEYS)}
    node["weights"] = "none"
    return OmegaConf.create(node)


def load_exported(model_dir: str | Path, device: str | torch.device = "cpu") -> VLMBundle:
    root = Path(model_dir)
    if not (root / CONFIG).is_file() or not (root / WEIGHTS).is_file():
        raise FileNotFoundError(
            f"{root} is not an exported model directory (needs {CONFIG} and {WEIGHTS}); "
            "train.py writes one per stage under <run dir>/<stage>/export"
        )
    cfg = OmegaConf.load(root / CONFIG)
    if "pretrained" in cfg.llm.model:  # written before `weights` replaced it
        cfg.llm.model.weights = "none"
        del cfg.llm.model["pretrained"]
    # Exports written before `weights` carry the tower's old keys (`pretrained`, ...): drop them.
    cfg.vision = _without_vision_weights(cfg.vision)
    cfg.llm.tokenizer = str(root / cfg.llm.tokenizer)
    cfg.llm.model.name_or_path = str(root / cfg.llm.model.name_or_path)
    bundle = build_vlm(cfg)
    load_model(bundle.model, str(root / WEIGHTS), device=str(device))
    bundle.model.to(device).eval()
    return bundle
