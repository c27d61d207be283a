"""The NaN/inf guard: a non-finite step is skipped, too many in a row stop the run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from allava.training.nonfinite_guard import NonFiniteGuard, NonFiniteTraining
from allava.training.run import train
from tests.helpers.nan_injection import InjectNaN

INJECT = "+callbacks.inject._target_=tests.helpers.nan_injection.InjectNaN"


def test_guard_counts_and_stops_on_the_nth_bad_step_in_a_row():
    guard = NonFiniteGuard(max_bad_steps=3)
    assert guard.record(0, True) and not guard.record(1, False) and not guard.record(2, False)
    assert guard.record(3, True)  # a good step resets the streak
    assert not guard.record(4, False) and not guard.record(5, False)
    with pytest.raises(NonFiniteTraining, match=r"stopped at step 6: 3 optimizer steps in a row.*"
                                                r"ckpts/step=0000004.ckpt"):
        guard.record(6, False, last_checkpoint="ckpts/step=0000004.ckpt")
    assert guard.skipped_total == 5
    with pytest.raises(ValueError):
        NonFiniteGuard(max_bad_steps=0)


@pytest.mark.slow
def test_nan_steps_are_skipped_and_logged(tiny_train_config):
    InjectNaN.observed.clear()
    cfg = tiny_train_config("stages=[pretrain]", "stage.pretrain.max_steps=6", "eval.benchmarks=[]",
                            INJECT, "+callbacks.inject.first=2", "+callbacks.inject.last=3")
    outcome = train(cfg)
    assert [o["step"] for o in InjectNaN.observed] == [3, 4]  # global_step after steps 2 and 3
    assert all(o["unchanged"] and o["finite"] for o in InjectNaN.observed), InjectNaN.observed
    weights = load_file(Path(outcome["exports"]["pretrain"]) / "model.safetensors")
    assert all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point())
    metrics = Path(outcome["run_dir"]) / "pretrain" / "csv" / "pretrain" / "metrics.csv"
    skipped = [float(r["train/skipped_steps"]) for r in csv.DictReader(open(metrics, newline=""))
               if r.get("train/skipped_steps")]
    assert skipped and max(skipped) == 2.0


@pytest.mark.slow
def test_a_run_of_nan_steps_stops_with_the_step_and_the_last_checkpoint(tiny_train_config):
    cfg = tiny_train_config("stages=[pretrain]", "stage.pretrain.max_steps=20", "eval.benchmarks=[]",
                            "callbacks.checkpoint.every_n_train_steps=2",
                            "trainer_guard.max_bad_steps=3", INJECT, "+callbacks.inject.first=5")
    with pytest.raises(NonFiniteTraining, match=r"stopped at step 7: 3 optimizer steps in a row"
                                                r".*step=0000006\.ckpt") as stopped:
        train(cfg)
    assert "holds the weights from before these steps" in str(stopped.value)
