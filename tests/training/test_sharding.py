"""FSDP2 pieces, run for real in a one-rank gloo group: which blocks become units, the sharded
copy's weights written back into the plain model, and the strategy's fixed sizes."""
from __future__ import annotations

import copy
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from allava.training.sharding import (ENTRY_POINTS, copy_full_weights, data_parallel_mesh,
                                      shard, transformer_blocks)
from allava.training.strategies import FSDP2Strategy


@pytest.fixture(scope="module")
def one_rank_mesh():
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from torch.distributed.device_mesh import init_device_mesh

    with pytest.MonkeyPatch.context() as patch:  # later tests' subprocesses must not see them
        patch.setenv("MASTER_ADDR", "127.0.0.1")
        patch.setenv("MASTER_PORT", str(port))
        dist.init_process_group("gloo", rank=0, world_size=1)
        try:
            yield init_device_mesh("cpu", (1, 1),
                                   mesh_dim_names=("data_parallel", "tensor_parallel"))
        finally:
            dist.destroy_process_group()


def is_sharded(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in module.modules())


class ToyDecoderLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(4, 4)
        self.nested = type("InnerBlock", (nn.Module,), {})()  # part of its parent's unit

    def forward(self, x):
        return x + self.inner(x)


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 4)
        self.layers = nn.ModuleList([ToyDecoderLayer(), ToyDecoderLayer()])
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x):
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def supervised_loss(self, x):  # an entry point that bypasses forward, as the VLM's does
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.norm(h).square().mean()

    def generate(self, x):
        return self(x)


def test_the_outermost_blocks_are_the_units():
    model = ToyModel()
    assert transformer_blocks(model) == list(model.layers)


def test_the_units_of_allavas_phi3_and_clip_l336_are_their_layers():
    import timm
    from transformers import Phi3Config, Phi3ForCausalLM

    with torch.device("meta"):  # full size, no memory
        llm = Phi3ForCausalLM(Phi3Config())  # Phi-3-mini's shape: 32 decoder layers
        tower = timm.create_model("vit_large_patch14_clip_336", pretrained=False)
    assert [type(b).__name__ for b in transformer_blocks(llm)] == ["Phi3DecoderLayer"] * 32
    assert [type(b).__name__ for b in transformer_blocks(tower)] == ["Block"] * 24


def test_a_sharded_copy_trains_and_its_weights_come_back_to_the_plain_model(one_rank_mesh):
    torch.manual_seed(0)
    plain = ToyModel()
    before = copy.deepcopy(plain.state_dict())
    sharded = shard(copy.deepcopy(plain), data_parallel_mesh(one_rank_mesh), ENTRY_POINTS)
    assert is_sharded(sharded) and not is_sharded(plain)
    optimizer = torch.optim.SGD(sharded.parameters(), lr=0.5)
    sharded.train()
    for _ in range(3):  # through the registered entry point, which gathers the root unit
        sharded.supervised_loss(torch.randn(8, 3)).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.equal(before[k], v) for k, v in plain.state_dict().items())  # untouched
    copy_full_weights(sharded, plain)
    after = plain.state_dict()
    assert not torch.equal(after["embed.weight"], before["embed.weight"])
    assert after["norm.num_batches_tracked"] == 3  # buffers come back too
    for name, tensor in sharded.state_dict().items():
        assert torch.equal(tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor,
                           after[name]), name


def test_copying_into_a_different_model_names_the_difference(one_rank_mesh):
    sharded = shard(ToyModel(), data_parallel_mesh(one_rank_mesh))
    other = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(KeyError, match="missing.*0.weight"):
        copy_full_weights(sharded, other)


def test_the_fsdp2_strategy_sets_its_own_sizes():
    strategy = FSDP2Strategy()
    assert strategy._tensor_parallel_size == 1
    with pytest.raises(TypeError, match="tensor_parallel_size"):
        FSDP2Strategy(tensor_parallel_size=2)


def test_the_fsdp2_preset_builds_the_strategy(tiny_train_config):
    import hydra

    cfg = tiny_train_config("trainer=fsdp2", "trainer.accelerator=cpu")
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDP2Strategy) and strategy._save_distributed_checkpoint
    assert cfg.trainer.devices == 2
