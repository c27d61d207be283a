"""Frozen modules stay frozen: no gradients, and no BatchNorm statistics drifting in train mode."""
from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from allava.models.build import build_vlm
from allava.training.module import VLMTrainingModule
from allava.training.trainable import apply_trainable, trainable_modules


def batchnorm_statistics(module: torch.nn.Module) -> list[torch.Tensor]:
    return [m.running_mean.clone() for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@pytest.fixture
def bundle(tiny_train_config):
    torch.manual_seed(0)
    return build_vlm(tiny_train_config().model)


def stage(cfg, name: str) -> dict:
    settings = OmegaConf.to_container(cfg.stage[name], resolve=True)
    settings["train"] = trainable_modules(settings, cfg.stage.policy)
    return settings


def test_a_frozen_tower_keeps_its_batchnorm_statistics(bundle, tiny_train_config):
    cfg = tiny_train_config()
    assert batchnorm_statistics(bundle.model.vision), "the toy tower should have BatchNorm"
    module = VLMTrainingModule(bundle, stage(cfg, "finetune"))  # trains connector + llm
    module.on_fit_start()  # the hook that sets the modes when Lightning starts fitting
    assert not module.model.vision.training
    assert module.model.connector.training and module.model.llm.training
    before = batchnorm_statistics(module.model.vision)
    module.model.encode_images(torch.randn(4, 3, 32, 32) * 3 + 1)
    after = batchnorm_statistics(module.model.vision)
    assert all(torch.equal(b, a) for b, a in zip(before, after))


def test_a_training_tower_updates_its_batchnorm_statistics(bundle, tiny_train_config):
    module = VLMTrainingModule(bundle, stage(tiny_train_config(), "tower"))
    module.train()
    assert module.model.vision.training
    before = batchnorm_statistics(module.model.vision)
    module.model.encode_images(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert not all(torch.equal(b, a)
                   for b, a in zip(before, batchnorm_statistics(module.model.vision)))


def test_stage_train_lists_are_checked(bundle):
    with pytest.raises(ValueError, match="unknown modules"):
        apply_trainable(bundle.model, ["vision", "projector"])
    with pytest.raises(ValueError, match="empty"):
        apply_trainable(bundle.model, [])
