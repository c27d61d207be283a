"""The real tower presets, built at full size on the meta device (no weights, no download)."""
from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers.configs import compose_config

# preset: (parameters before pruning, after, patch tokens, width)
PRESETS = {
    "clip_l336": (303_507_456, 290_909_184, 576, 1024),
    "siglip_so400m": (None, None, 729, 1152),
    "siglip_b16": (None, None, 196, 768),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_tower_preset_builds_on_meta_with_its_token_count(name, tmp_path):
    full, pruned, tokens, width = PRESETS[name]
    cfg = compose_config("train", [f"model/vision={name}", "model.vision.weights=none"],
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


def _meta_tower(tmp_path, *overrides, preset="clip_l336"):
    cfg = compose_config("train", [f"model/vision={preset}", "model.vision.weights=none",
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
    from allava.training.trainable import ADAPTER_MARK, add_lora

    tower = _meta_tower(tmp_path)
    add_lora(tower, {"r": 8})
    adapters = sum(p.numel() for n, p in tower.named_parameters() if ADAPTER_MARK in n)
    # 23 blocks after pruning; per block r x (in + out) of qkv, proj, fc1 and fc2.
    per_block = 8 * ((1024 + 3072) + (1024 + 1024) + (1024 + 4096) + (4096 + 1024))
    assert adapters == 23 * per_block == 3_014_656


def test_tower_weights_from_a_local_checkpoint_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    from allava.models.vision_tower import TimmVisionTower

    torch.manual_seed(3)
    source = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    path = tmp_path / "tower.safetensors"
    save_file(source.state_dict(), str(path))
    tower = TimmVisionTower("resnet10t", weights=str(path), feature_layer=3, image_size=64)
    loaded = tower.model.state_dict()
    expected = source.state_dict()
    assert "layer1.0.conv1.weight" in loaded  # the kept stages carry the file's weights
    assert all(torch.equal(loaded[k], expected[k]) for k in loaded)
    fresh = TimmVisionTower("resnet10t", feature_layer=3, image_size=64).model.state_dict()
    assert not torch.equal(fresh["conv1.0.weight"], expected["conv1.0.weight"])


@pytest.mark.parametrize("mode", ["pad", "resize", "crop"])
def test_image_modes_on_a_wide_image(mode):
    from PIL import Image

    from allava.models.vision_tower import TimmVisionTower

    tower = TimmVisionTower("resnet10t", feature_layer=3, image_size=32, image_mode=mode)
    image = Image.new("RGB", (128, 32), (255, 0, 0))  # 4:1, all red
    image.paste((0, 0, 255), (0, 0, 16, 32))           # a blue strip at the far left
    pixels = tower.image_transform()(image)
    assert pixels.shape == (3, 32, 32)
    mean = torch.tensor(tower.data_config["mean"]).view(3, 1)
    std = torch.tensor(tower.data_config["std"]).view(3, 1)
    rgb = pixels.flatten(1) * std + mean  # back to [0, 1]
    top_row, middle_row = rgb.view(3, 32, 32)[:, 0, 16], rgb.view(3, 32, 32)[:, 16, 16]
    left_column = rgb.view(3, 32, 32)[:, 16, 0]
    if mode == "pad":  # letterboxed: mean-coloured bands above and below, the blue strip kept
        torch.testing.assert_close(top_row, mean.view(3), atol=0.02, rtol=0)
        assert left_column[2] > 0.9
    elif mode == "resize":  # squeezed: no band, the blue strip kept
        assert top_row[0] > 0.9 and left_column[2] > 0.9
    else:  # center crop: the blue strip is cut away
        assert top_row[0] > 0.9 and left_column[0] > 0.9
    assert middle_row[0] > 0.9


# What each checkpoint was trained with, from its published transformers config.json
# (openai/clip-vit-large-patch14-336; google/siglip-so400m-patch14-384,
# google/siglip-base-patch16-224): activation, LayerNorm epsilon, a LayerNorm before the blocks
# (CLIP's ln_pre), the image normalisation, and the feature layer LLaVA/ALLaVA take (-2).
PUBLISHED = {
    "clip_l336": ("QuickGELU", 1e-5, True, (0.48145466, 0.4578275, 0.40821073)),
    "siglip_so400m": ("GELUTanh", 1e-6, False, (0.5, 0.5, 0.5)),
    "siglip_b16": ("GELUTanh", 1e-6, False, (0.5, 0.5, 0.5)),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_tower_preset_matches_its_checkpoints_published_config(name, tmp_path):
    activation, eps, norm_before_blocks, mean = PUBLISHED[name]
    tower = _meta_tower(tmp_path, preset=name)
    blocks = tower.model.blocks
    assert {type(block.mlp.act).__name__ for block in blocks} == {activation}
    norms = [m for m in tower.model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and {m.eps for m in norms} == {eps}
    assert isinstance(tower.model.norm_pre, torch.nn.LayerNorm) == norm_before_blocks
    assert tuple(tower.data_config["mean"]) == pytest.approx(mean)
    assert tower.feature_layer == -2
