"""Pieces of Lightning strategies that configs cannot spell themselves (configs/trainer/)."""
from __future__ import annotations

from torch import nn

# Repeated blocks of the towers and LLMs this project builds (timm ViTs: Block; HF decoders:
# *DecoderLayer; CLIP/SigLIP encoders: *EncoderLayer): the units FSDP shards and re-gathers.
BLOCK_SUFFIXES = ("DecoderLayer", "EncoderLayer", "Block")


def transformer_block_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per transformer block, the rest in the root unit."""
    return True if recurse else type(module).__name__.endswith(BLOCK_SUFFIXES)
