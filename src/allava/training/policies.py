"""What trains in each stage: a named policy (`stage.policy`), or a stage's own `train` list.

A stage's `role` (pretrain or finetune) picks its row of the policy; a stage that sets `train`
explicitly overrides the policy (e.g. `stage.finetune.train=[connector]`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from allava.training.freezing import MODULES

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
