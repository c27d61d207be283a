"""Pieces of Lightning strategies that configs cannot spell themselves (configs/trainer/)."""
from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import ModelParallelStrategy
from torch import nn

# Repeated blocks of the towers and LLMs this project builds (timm ViTs: Block; HF decoders:
# *DecoderLayer; CLIP/SigLIP encoders: *EncoderLayer): the units FSDP shards and re-gathers.
BLOCK_SUFFIXES = ("DecoderLayer", "EncoderLayer", "Block")


def is_transformer_block(module: nn.Module) -> bool:
    return type(module).__name__.endswith(BLOCK_SUFFIXES)


def transformer_block_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per transformer block, the rest in the root unit."""
    return True if recurse else is_transformer_block(module)


class FSDP2Strategy(ModelParallelStrategy):
    """FSDP2 over every rank of the job (all nodes, all devices), no tensor parallelism.

    Lightning's `ModelParallelStrategy` with its sizes filled in: by default it makes one
    data-parallel group per node and splits layers within the node, which this VLM has no plan
    for. The sharding itself is `VLMTrainingModule.configure_model` (allava.training.sharding).
    Unlike `FSDPStrategy` (FSDP1) it also runs on CPUs, over gloo."""

    def __init__(self, **kwargs: Any):
        for fixed in ("data_parallel_size", "tensor_parallel_size"):
            if fixed in kwargs:
                raise TypeError(f"FSDP2Strategy sets {fixed} itself (every rank is data-parallel)")
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()
