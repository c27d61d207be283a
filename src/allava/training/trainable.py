"""What trains in a stage: the policy that names the modules, freezing the rest, and LoRA.

- A named policy (`stage.policy`) gives each stage role (pretrain, finetune) its modules; a
  stage's own `train` list overrides it (e.g. `stage.finetune.train=[connector]`).
- `apply_trainable` sets requires_grad module by module; frozen modules stay in eval mode.
- LoRA / DoRA adapters (peft) are injected in place, so the VLM keeps its structure and its code
  paths; `merge_lora` folds every adapter into its base layer and puts the base layer back,
  which leaves a model with exactly the parameter names it had before (what export and the next
  stage expect).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

MODULES = ("vision", "connector", "llm")
# In the name of every LoRA/DoRA adapter parameter (lora_A, lora_B, lora_magnitude_vector).
ADAPTER_MARK = "lora_"


def apply_trainable(model: nn.Module, trainable: list[str]) -> None:
    """Sets requires_grad module by module. A module that carries LoRA adapters trains its
    adapters only; adapters on a module that does not train are an error (they would sit idle)."""
    unknown = set(trainable) - set(MODULES)
    if unknown:
        raise ValueError(f"stage.train names unknown modules {sorted(unknown)}; "
                         f"choose among {list(MODULES)}")
    if not trainable:
        raise ValueError("stage.train is empty: nothing would train in this stage")
    for name in MODULES:
        params = list(getattr(model, name).named_parameters())
        adapted = any(ADAPTER_MARK in key for key, _ in params)
        if adapted and name not in trainable:
            raise ValueError(f"LoRA adapters on {name!r}, which does not train in this stage; "
                             f"add {name!r} to the stage's train list or drop its lora entry")
        for key, param in params:
            param.requires_grad_(name in trainable and (not adapted or ADAPTER_MARK in key))


def keep_frozen_in_eval_mode(model: nn.Module) -> None:
    """Puts every module of MODULES that has no trainable parameter in eval mode.

    A frozen tower must stay what it was when it froze: in train mode its BatchNorm layers
    would keep updating their running statistics (and dropout would keep firing), although no
    optimizer touches it. Call after anything that switches the whole model to train mode."""
    for name in MODULES:
        module = getattr(model, name)
        if not any(p.requires_grad for p in module.parameters()):
            module.eval()


def parameter_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    counts = {}
    for name in MODULES:
        params = list(getattr(model, name).parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        counts[name] = {"trainable": trainable, "frozen": sum(p.numel() for p in params) - trainable}
    return counts


POLICIES: dict[str, dict[str, list[str]]] = {
    # ALLaVA: the connector and the LLM learn in both stages; the CLIP tower stays frozen.
    "allava": {"pretrain": ["connector", "llm"], "finetune": ["connector", "llm"]},
    # LLaVA-1.5: only the connector aligns in pretraining; the LLM joins in finetuning.
    "llava": {"pretrain": ["connector"], "finetune": ["connector", "llm"]},
    # Everything, the tower included (e.g. a tower that never saw this kind of image).
    "full": {"pretrain": list(MODULES), "finetune": list(MODULES)},
}


def trainable_modules(stage: Mapping[str, Any], policy: str | None) -> list[str]:
    """The modules that learn in `stage`: its explicit `train` list, else the policy's row."""
    if stage.get("train"):
        return list(stage["train"])
    name = stage.get("name", "?")
    if policy not in POLICIES:
        raise ValueError(f"stage.policy={policy!r}; choose among {sorted(POLICIES)} "
                         f"(or give stage.{name}.train a list of modules)")
    role = stage.get("role")
    if role not in POLICIES[policy]:
        raise ValueError(f"stage {name!r} has role {role!r}; a policy covers the roles "
                         f"{sorted(POLICIES[policy])}: set stage.{name}.role or stage.{name}.train")
    return list(POLICIES[policy][role])


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
    """Injects adapters into `module`'s linear layers (all but an LM head for "all-linear").
    The new layers take `module`'s mode: adapters added to a model in eval mode must not run
    their dropout."""
    from peft import inject_adapter_in_model

    config = lora_config(spec)
    if config.target_modules == "all-linear":
        config.target_modules = _linear_layer_names(module)
    adapted = inject_adapter_in_model(config, module)
    if not module.training:
        adapted.eval()
    return adapted


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
