"""FSDP2 for the VLM: torch's `fully_shard` over the data-parallel ranks, as Lightning's
`ModelParallelStrategy` asks a LightningModule to apply it (configs/trainer/fsdp2.yaml).

Each transformer block of the tower and the LLM is one unit (gathered for its forward and
backward, then freed); everything else (patch embedding, connector, token embeddings, final
norm, LM head) is the root unit. The root is gathered whenever one of the model's entry points
runs: `forward`, `supervised_loss` and `generate`, which call the LLM's parts directly rather
than through the model's `forward`.

The stage trains a sharded copy of the bundle's model; the bundle keeps the plain model, into
which `copy_full_weights` writes the trained weights at the end of the stage, so that export,
evaluation and the next stage see an ordinary module.
"""
from __future__ import annotations

import torch
from torch import nn

from allava.training.strategies import is_transformer_block

# The model's methods that run the root unit's parameters (see the module docstring).
ENTRY_POINTS = ("supervised_loss", "generate")


def transformer_blocks(module: nn.Module) -> list[nn.Module]:
    """The repeated blocks of `module`, outermost first found (a block's own sub-blocks are
    part of its unit)."""
    found: list[nn.Module] = []

    def walk(parent: nn.Module) -> None:
        for child in parent.children():
            if is_transformer_block(child):
                found.append(child)
            else:
                walk(child)

    walk(module)
    return found


def data_parallel_mesh(device_mesh):
    """The mesh FSDP shards over; this project does not split layers (tensor parallelism)."""
    if device_mesh.ndim > 1:
        tensor_parallel = device_mesh["tensor_parallel"].size()
        if tensor_parallel != 1:
            raise ValueError(f"tensor_parallel_size={tensor_parallel}: the VLM has no tensor-"
                             "parallel plan; set trainer.strategy.tensor_parallel_size=1 (FSDP "
                             "over all ranks)")
        return device_mesh["data_parallel"]
    return device_mesh


def shard(module: nn.Module, mesh, entry_points: tuple[str, ...] = ()) -> nn.Module:
    """`fully_shard` on each transformer block of `module`, then on `module` itself, whose
    `entry_points` then gather the root unit as its `forward` does."""
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    for block in transformer_blocks(module):
        fully_shard(block, mesh=mesh)
    fully_shard(module, mesh=mesh)
    for name in entry_points:
        register_fsdp_forward_method(module, name)
    return module


@torch.no_grad()
def copy_full_weights(sharded: nn.Module, plain: nn.Module) -> None:
    """Writes the weights of `sharded` (a sharded copy of `plain`) into `plain`, on every
    rank. One tensor is gathered at a time, so the peak is the plain model plus one tensor.
    A collective: every rank calls it."""
    from torch.distributed.tensor import DTensor

    source = sharded.state_dict()
    target = plain.state_dict(keep_vars=True)
    if source.keys() != target.keys():
        missing, extra = sorted(target.keys() - source.keys()), sorted(source.keys() - target.keys())
        raise KeyError(f"sharded and plain models differ: missing {missing[:5]}, extra {extra[:5]}")
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    for name, tensor in source.items():  # the same order on every rank
        if isinstance(tensor, DTensor):
            full = tensor.full_tensor()
        else:
            # Not sharded: buffers such as BatchNorm's running statistics, which each rank
            # updated from its own batches. Rank 0's win on every rank (as DDP's broadcast
            # does), or the ranks would start the next stage with different models.
            full = tensor.detach().clone()
            if distributed:
                torch.distributed.broadcast(full, src=0)
        target[name].copy_(full.to(target[name].device))
