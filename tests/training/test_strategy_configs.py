"""The trainer presets compose into the strategies they document."""
from __future__ import annotations

import datetime

import hydra
import pytest
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from allava.training.strategies import transformer_block_policy


def test_ddp_preset_builds_lightnings_ddp_strategy(tiny_train_config):
    cfg = tiny_train_config("trainer=ddp", "trainer.accelerator=cpu")
    strategy = hydra.utils.instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, DDPStrategy)
    assert strategy._timeout == datetime.timedelta(minutes=10)
    assert cfg.trainer.devices == 2 and cfg.trainer.gradient_clip_val == 1.0  # default's keys kept


def test_fsdp_preset_wraps_each_transformer_block(tiny_train_config):
    cfg = tiny_train_config("trainer=fsdp")
    assert cfg.trainer.strategy._target_ == "lightning.pytorch.strategies.FSDPStrategy"
    policy = hydra.utils.instantiate(cfg.trainer.strategy.auto_wrap_policy)
    assert policy is transformer_block_policy
    LlamaDecoderLayer = type("LlamaDecoderLayer", (nn.Module,), {})
    Block = type("Block", (nn.Module,), {})
    assert policy(LlamaDecoderLayer(), recurse=False, nonwrapped_numel=0)
    assert policy(Block(), recurse=False, nonwrapped_numel=0)
    assert not policy(nn.Linear(2, 2), recurse=False, nonwrapped_numel=0)
    assert policy(nn.Linear(2, 2), recurse=True, nonwrapped_numel=0)  # keep descending


@pytest.mark.parametrize("preset, strategy", [("deepspeed_zero2", "deepspeed_stage_2"),
                                              ("deepspeed_zero3", "deepspeed_stage_3")])
def test_deepspeed_presets_name_lightnings_registered_strategies(tiny_train_config, preset, strategy):
    from lightning.pytorch.strategies import StrategyRegistry

    cfg = tiny_train_config(f"trainer={preset}")
    assert cfg.trainer.strategy == strategy and strategy in StrategyRegistry
    assert cfg.trainer.precision == "bf16-mixed"
