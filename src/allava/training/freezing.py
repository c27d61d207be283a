"""Which modules of the VLM train in a stage, and their parameter counts."""
from __future__ import annotations

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
