"""LoRA / DoRA adapters (peft) on the LLM and the tower, merged back into plain weights.

Adapters are injected in place, so the VLM keeps its structure and its code paths; `merge_lora`
folds every adapter into its base layer and puts the base layer back, which leaves a model
with exactly the parameter names it had before (what export and the next stage expect)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from allava.training.freezing import ADAPTER_MARK
_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear", "use_dora": False}


def lora_config(spec: Mapping[str, Any]):
    from peft import LoraConfig

    unknown = set(spec) - set(_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown LoRA options {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
    options = {**_DEFAULTS, **spec}
    targets = options["target_modules"]
    return LoraConfig(r=int(options["r"]), lora_alpha=float(options["alpha"]),
                      lora_dropout=float(options["dropout"]), use_dora=bool(options["use_dora"]),
                      target_modules=targets if isinstance(targets, str) else list(targets))


def add_lora(module: nn.Module, spec: Mapping[str, Any]) -> nn.Module:
    """Injects adapters into `module`'s linear layers (all but an LM head for "all-linear")."""
    from peft import inject_adapter_in_model

    config = lora_config(spec)
    if config.target_modules == "all-linear":
        config.target_modules = _linear_layer_names(module)
    return inject_adapter_in_model(config, module)


def add_stage_adapters(model: nn.Module, specs: Mapping[str, Any] | None, stage: str) -> list[str]:
    """A stage's `lora` entry (`{llm: spec, vision: spec}`, null = none): the modules adapted."""
    adapted = []
    for name, spec in (specs or {}).items():
        if not spec:
            continue
        if name not in ("llm", "vision"):
            raise ValueError(f"stage.{stage}.lora.{name}: LoRA applies to llm or vision")
        add_lora(getattr(model, name), spec)
        adapted.append(name)
    return adapted


def has_lora(module: nn.Module) -> bool:
    return any(ADAPTER_MARK in name for name, _ in module.named_parameters())


def merge_lora(module: nn.Module) -> int:
    """Folds every adapter into its base layer and swaps the base layer back in; returns how many."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = 0
    for name, layer in list(module.named_modules()):
        if not isinstance(layer, BaseTunerLayer):
            continue
        layer.merge(safe_merge=True)
        parent_name, _, attribute = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attribute, layer.get_base_layer())
        merged += 1
    return merged


def _linear_layer_names(module: nn.Module) -> list[str]:
    """Full names of every nn.Linear except an output head (whose width is the vocabulary).
    Full names, not suffixes: a ViT's `attn.proj` is a Linear but `patch_embed.proj` a conv."""
    head = getattr(module, "get_output_embeddings", lambda: None)()
    names = {name for name, layer in module.named_modules()
             if isinstance(layer, nn.Linear) and layer is not head}
    if not names:
        raise ValueError(f"no linear layers to adapt in {type(module).__name__} (a CNN?); name "
                         "the layers in the lora spec's target_modules (a list, or a regex)")
    return sorted(names)
