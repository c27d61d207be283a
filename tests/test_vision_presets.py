"""The real tower presets, built at full size on the meta device (no weights, no download)."""
from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import compose_config

# preset: (parameters before pruning, after, patch tokens, width)
PRESETS = {
    "clip_l336": (303_507_456, 290_909_184, 576, 1024),
    "siglip_so400m": (None, None, 729, 1152),
    "siglip_b16": (None, None, 196, 768),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tower_preset_builds_on_meta_with_its_token_count(name, tmp_path):
    full, pruned, tokens, width = PRESETS[name]
    cfg = compose_config("train", [f"model/vision={name}", "model.vision.pretrained=false"],
                         tmp_path)
    node = OmegaConf.to_container(cfg.model.vision, resolve=True)
    with torch.device("meta"):
        tower = hydra.utils.instantiate(node)
        size = tower.image_size
        features = tower(torch.empty(2, 3, size, size))
    assert tower.num_patches() == tokens
    assert features.shape == (2, tokens, width) and tower.feature_dim == width
    if full is not None:
        import timm

        with torch.device("meta"):
            whole = timm.create_model(node["model_name"], pretrained=False, num_classes=0)
        assert sum(p.numel() for p in whole.parameters()) == full  # CLIP-L/14: ~304M
        assert sum(p.numel() for p in tower.parameters()) == pruned  # last block and norm gone


def _meta_tower(tmp_path, *overrides):
    cfg = compose_config("train", ["model/vision=clip_l336", "model.vision.pretrained=false",
                                   *overrides], tmp_path)
    with torch.device("meta"):
        return hydra.utils.instantiate(OmegaConf.to_container(cfg.model.vision, resolve=True))


def test_clip_tower_keeps_its_class_token_when_asked(tmp_path):
    tower = _meta_tower(tmp_path, "model.vision.prefix_tokens=keep")
    with torch.device("meta"):
        features = tower(torch.empty(2, 3, 336, 336))
    assert tower.num_patches() == 577 and features.shape == (2, 577, 1024)


def test_grid_connectors_refuse_kept_prefix_tokens_at_build_time(tmp_path):
    from allava.models.connectors import LDPv2Connector, MLPConnector

    tower = _meta_tower(tmp_path, "model.vision.prefix_tokens=keep")
    assert MLPConnector(1024, 2048).num_tokens(tower.num_patches()) == 577
    with pytest.raises(ValueError, match="prefix_tokens=drop"):
        LDPv2Connector(1024, 2048).num_tokens(tower.num_patches())


def test_keeping_prefix_tokens_of_a_tower_without_them_is_an_error():
    from allava.models.vision_tower import TimmVisionTower

    with pytest.raises(ValueError, match="no prefix"):
        with torch.device("meta"):
            TimmVisionTower("vit_so400m_patch14_siglip_384", prefix_tokens="keep")


def test_clip_tower_lora_adapts_every_linear_layer_of_the_kept_blocks(tmp_path):
    from allava.training.adapters import add_lora
    from allava.training.freezing import ADAPTER_MARK

    tower = _meta_tower(tmp_path)
    add_lora(tower, {"r": 8})
    adapters = sum(p.numel() for n, p in tower.named_parameters() if ADAPTER_MARK in n)
    # 23 blocks after pruning; per block r x (in + out) of qkv, proj, fc1 and fc2.
    per_block = 8 * ((1024 + 3072) + (1024 + 1024) + (1024 + 4096) + (4096 + 1024))
    assert adapters == 23 * per_block == 3_014_656
