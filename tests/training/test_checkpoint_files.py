"""Checkpoint files: atomic writes, and loads that refuse to run code."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from allava.training.checkpoint_files import (AtomicCheckpointIO, UnsafeCheckpointError,
                                              atomic_link, atomic_save, load_checkpoint)


class RunsCodeWhenUnpickled:
    """What a malicious checkpoint holds: unpickling it calls os.mkdir(marker)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def malicious(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCodeWhenUnpickled(marker)}, path)
    return path, marker


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(malicious):
    path, marker = malicious
    with pytest.raises(UnsafeCheckpointError, match="refused.*could run code"):
        load_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        AtomicCheckpointIO().load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: the file does run code when trusted
    assert marker.is_dir()


def test_init_from_a_malicious_checkpoint_is_refused(malicious, tiny_train_config):
    from allava.models.build import build_vlm
    from allava.training.run import load_initial_weights

    path, marker = malicious
    bundle = build_vlm(tiny_train_config().model)
    with pytest.raises(UnsafeCheckpointError):
        load_initial_weights(bundle, path)
    assert not marker.exists()


def test_atomic_save_leaves_only_the_finished_file(tmp_path):
    target = tmp_path / "sub" / "step=1.ckpt"
    atomic_save({"w": torch.arange(3)}, target)
    atomic_save({"w": torch.arange(4)}, target)  # replaces it whole
    assert torch.equal(load_checkpoint(target)["w"], torch.arange(4))
    assert [p.name for p in target.parent.iterdir()] == ["step=1.ckpt"]
    atomic_link(target, tmp_path / "sub" / "last.ckpt")
    assert torch.equal(load_checkpoint(tmp_path / "sub" / "last.ckpt")["w"], torch.arange(4))
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt", "step=1.ckpt"]


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_save({"w": torch.ones(2)}, target)
    with pytest.raises(Exception):
        atomic_save({"w": lambda: None}, target)  # cannot be pickled: fails mid-write
    assert torch.equal(load_checkpoint(target)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
