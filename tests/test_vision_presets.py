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
