"""Checkpoint files: written so that a crash never leaves half a file, read so that a file
can never run code.

`torch.load(weights_only=False)` unpickles arbitrary objects, so a checkpoint from a stranger
(or a corrupted one) could execute whatever its pickle asks for. Every checkpoint this project
reads goes through `load_checkpoint`, which only accepts tensors and plain containers.
"""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO


class UnsafeCheckpointError(ValueError):
    """A checkpoint that holds more than tensors and plain Python values."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at `path`, loaded with `weights_only=True` on the CPU."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"{path} was refused: it holds objects other than tensors and plain Python values, "
            "and unpickling them could run code. Only load checkpoints from sources you trust; "
            "to use this one, load it yourself and save its state_dict with torch.save, or "
            f"export the model as safetensors. Unpickler said: {error}") from error


def fsync_directory(directory: Path) -> None:
    """Makes a rename inside `directory` durable (POSIX; a no-op where dirs cannot be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def atomic_save(obj: Any, path: str | Path) -> None:
    """`torch.save` to a temporary file beside `path`, flushed to disk, then renamed over it:
    readers see the old file or the new one, never a torn one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(target.parent)


def atomic_link(source: str | Path, link: str | Path) -> None:
    """`link` becomes another name of `source` (a hard link, a copy where links fail; a
    symbolic link for a checkpoint directory, as sharded strategies write), swapped in
    atomically."""
    source, link = Path(source), Path(link)
    temporary = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    if source.is_dir():
        os.symlink(source.name, temporary)  # relative: the folder can move
    else:
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copyfile(source, temporary)
    os.replace(temporary, link)
    fsync_directory(link.parent)


def atomic_rename(source: str | Path, target: str | Path) -> None:
    """Moves a finished checkpoint (file or directory) to its name, replacing one there."""
    source, target = Path(source), Path(target)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)  # os.replace cannot replace a non-empty directory
    os.replace(source, target)
    fsync_directory(target.parent)


def remove_checkpoint(path: Path) -> None:
    """Deletes a checkpoint file or a sharded checkpoint's directory."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with local files written by `atomic_save`, and loads that
    refuse anything but tensors and plain values."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return load_checkpoint(path)
