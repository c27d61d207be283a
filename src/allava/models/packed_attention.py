"""Attention that stays inside each sample of a packed row.

A packed row holds several samples back to back; each sample's position ids restart at 0 and
the row goes to the LLM with position ids and no attention mask. Hugging Face models then keep
the samples apart by themselves:
- sdpa, eager and flex attention: `transformers.masking_utils.create_causal_mask` reads the
  restarts (`find_packed_sequence_indices`) and builds a block-diagonal causal mask;
- flash attention: the variable-length kernel, with sequence boundaries taken from the position
  ids; transformers only looks for them in a batch of one row, so the rows are laid end to end
  first (`as_one_row`).

An LLM whose code builds its own mask (remote code, older ports) would let samples see each
other; `packing_problem` finds that before training starts.
"""
from __future__ import annotations

import sys

import torch
from transformers import PreTrainedModel, masking_utils

# The mask builders of transformers that honour packed position ids.
_PACKING_AWARE_MASKS = tuple(
    getattr(masking_utils, name) for name in
    ("create_causal_mask", "create_sliding_window_causal_mask", "create_chunked_causal_mask",
     "create_masks_for_generate") if hasattr(masking_utils, name))
_MASKED_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention")


def is_flash(attn_implementation: str | None) -> bool:
    """Flash-attention kernels (`flash_attention_2`, `flash_attention_3`, hub kernels)."""
    return bool(attn_implementation) and "flash" in attn_implementation


def packing_problem(llm: PreTrainedModel) -> str | None:
    """Why packed rows would let samples attend to each other in `llm`, or None if they won't."""
    implementation = getattr(llm.config, "_attn_implementation", None)
    if implementation not in _MASKED_IMPLEMENTATIONS and not is_flash(implementation):
        return (f"the LLM's attention implementation {implementation!r} is not one that keeps "
                f"packed samples apart; use model.llm.model.attn_implementation=sdpa (or "
                f"flash_attention_2 on a GPU), or data.packing=false")
    module = sys.modules.get(type(llm.get_decoder()).__module__)
    helpers = vars(module).values() if module is not None else ()
    if not any(any(helper is mask for mask in _PACKING_AWARE_MASKS) for helper in helpers):
        return (f"{type(llm).__name__} (module {type(llm).__module__}) builds its attention mask "
                "without transformers.masking_utils, so samples packed in one row would attend "
                "to each other; set data.packing=false, or load the model with transformers' "
                "own code (model.llm.model.trust_remote_code=false)")
    return None


def as_one_row(embeds: torch.Tensor, position_ids: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """`[R, L, D]`, `[R, L]` -> `[1, R*L, D]`, `[1, R*L]`: a row starts with position 0, so the
    rows stay separate sequences."""
    return embeds.reshape(1, -1, embeds.shape[-1]), position_ids.reshape(1, -1)
