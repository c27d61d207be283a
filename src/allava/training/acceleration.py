"""Memory and speed options of the model config: gradient checkpointing and torch.compile."""
from __future__ import annotations

from torch import nn


def enable_gradient_checkpointing(model: nn.Module) -> None:
    """Recomputes activations in the backward pass instead of storing them: the LLM's decoder
    layers (non-reentrant, so frozen inputs need no tricks) and the tower's blocks."""
    non_reentrant = {"use_reentrant": False}
    if hasattr(model.llm, "activation_checkpointing_enable"):  # transformers >= 5 names it so
        model.llm.activation_checkpointing_enable(activation_checkpointing_kwargs=non_reentrant)
    else:
        model.llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=non_reentrant)
    set_tower_checkpointing = getattr(model.vision.model, "set_grad_checkpointing", None)
    if set_tower_checkpointing is not None:
        set_tower_checkpointing(True)


def compile_model(model: nn.Module) -> None:
    """Compiles the tower, the connector and the LLM's decoder in place (`nn.Module.compile`:
    parameter names, and so checkpoints and exports, stay the same)."""
    model.vision.compile()
    model.connector.compile()
    model.llm.get_decoder().compile()
