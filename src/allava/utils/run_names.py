"""The name of a new run directory: one name for every process of a job.

Under SLURM (`srun`) or `torchrun` every process of a multi-process job starts `train.py`
itself, a few seconds apart; a time stamp would give each its own directory. These launchers
name the job in the environment, and that name is the same in all its processes.
"""
from __future__ import annotations

import os
import time


def _world_size(variable: str) -> int:
    try:
        return int(os.environ.get(variable, "1"))
    except ValueError:
        return 1


def run_name(now: str = "%Y-%m-%d_%H-%M-%S") -> str:
    """`ALLAVA_RUN_ID` when set; in a multi-task SLURM step `slurm-<job>.<step>` (a requeued
    job gets the same name back, which `resume=auto` then continues); in a multi-process
    torchrun job `torchrun-<rendezvous id>`; else the local time formatted with `now`."""
    if os.environ.get("ALLAVA_RUN_ID"):
        return os.environ["ALLAVA_RUN_ID"]
    job, step = os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_STEP_ID")
    if job and step and _world_size("SLURM_NTASKS") > 1:
        return f"slurm-{job}.{step}"
    rendezvous = os.environ.get("TORCHELASTIC_RUN_ID")
    if rendezvous and rendezvous != "none" and _world_size("WORLD_SIZE") > 1:
        return f"torchrun-{rendezvous}"
    return time.strftime(now)
