"""Resuming a killed `train.py` run: which run, whether its config still matches, and what each
stage left behind.

A run directory holds `run_state.json` (the config that matters for the weights, the W&B group,
whether the run finished) and, per finished stage, `<stage>/stage_done.pt` (the
random generators when the stage ended) next to its export. A resumed run reuses finished
stages' exports, continues the stage that was running from its `checkpoints/last.ckpt`, and
starts the stages after it as the uninterrupted run would have.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from allava.utils.jsonl_files import write_json

from allava.training.checkpoint_files import atomic_save, load_checkpoint
from allava.training.periodic_checkpoints import LAST
from allava.training.random_state import capture_random_state

RUN_STATE = "run_state.json"
RUN_DIR_ENV, RESUMING_ENV = "ALLAVA_RUN_DIR", "ALLAVA_RESUMING"
STAGE_DONE = "stage_done.pt"
# Keys that may change between a run and its resume: where files go, how the run is named,
# logged and watched (callbacks: checkpoints, progress, throughput), what is evaluated after
# training. Everything else shapes the weights or the data.
IGNORED_KEYS = ("paths", "resume", "resume_force", "run_group", "run_name", "task_name",
                "logger", "eval", "trainer_guard", "callbacks")


def comparable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config, flattened to `a.b.c: value`, without the IGNORED_KEYS."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    container = OmegaConf.to_container(cfg, resolve=True)
    walk(container, "")
    return {key: value for key, value in flat.items()
            if not any(key == ignored or key.startswith(ignored + ".") for ignored in IGNORED_KEYS)}


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    return [f"{key}: {saved.get(key, '<absent>')!r} -> {current.get(key, '<absent>')!r}"
            for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]


@dataclass
class RunState:
    """`run_state.json` of one run directory."""

    directory: Path
    config: dict[str, Any] = field(default_factory=dict)
    run_group: str | None = None
    finished: bool = False

    @classmethod
    def read(cls, directory: str | Path) -> RunState | None:
        path = Path(directory) / RUN_STATE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(directory=Path(directory), config=data["config"], run_group=data.get("run_group"),
                   finished=bool(data.get("finished")))

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_json(self.directory / RUN_STATE, {"config": self.config, "run_group": self.run_group,
                                                "finished": self.finished})

    def wandb_id(self, stage: str) -> str:
        """The W&B run id of `stage`: the same in every process and every resume of this run,
        so that a resumed stage logs to its run."""
        key = f"{self.run_group}:{self.directory.resolve()}:{stage}"
        return hashlib.sha1(key.encode()).hexdigest()[:16]


def latest_unfinished_run(runs_dir: Path, config: dict[str, Any]) -> Path | None:
    """The newest run directory under `runs_dir` started with `config` and not finished (this
    call's own directory too: a requeued cluster job gets its directory's name back)."""
    if not runs_dir.is_dir():
        return None
    candidates = []
    for directory in runs_dir.iterdir():
        state = RunState.read(directory)
        if state and not state.finished and not config_differences(state.config, config):
            candidates.append(((directory / RUN_STATE).stat().st_mtime, directory))
    return max(candidates)[1] if candidates else None


def open_run(cfg: DictConfig) -> tuple[RunState, bool]:
    """The run this `train.py` call writes to, and whether it resumes one.

    `resume` null: a new run in `paths.output_dir`. `resume=<run dir>`: that run, refused when
    its config differs (the differences are listed) unless `resume_force=true`. `resume=auto`:
    the newest unfinished run of the same config next to `paths.output_dir`, else a new run."""
    output_dir = Path(cfg.paths.output_dir)
    current = comparable_config(cfg)
    request = cfg.get("resume")
    target: Path | None = None
    if os.environ.get("LOCAL_RANK", "0") != "0" and RUN_DIR_ENV in os.environ:
        # A DDP process that Lightning started: the run is the one rank 0 opened.
        state = RunState.read(os.environ[RUN_DIR_ENV])
        if state is None:
            raise FileNotFoundError(f"{RUN_DIR_ENV}={os.environ[RUN_DIR_ENV]} holds no {RUN_STATE}")
        return state, os.environ.get(RESUMING_ENV) == "1"
    if request == "auto":
        target = latest_unfinished_run(output_dir.parent, current)
        print(f"resume=auto: {'continuing ' + str(target) if target else 'no unfinished run of this config; starting a new one'}")
    elif request:
        target = Path(str(request))
        if not target.is_dir():
            raise FileNotFoundError(f"resume={request}: no such run directory")
    if target is None:
        return _announced(RunState(directory=output_dir, config=current), False)
    state = RunState.read(target)
    if state is None:
        raise FileNotFoundError(f"resume={target}: no {RUN_STATE} there (not a train.py run dir, "
                                "or one from before resumable runs)")
    differences = config_differences(state.config, current)
    if differences and not cfg.get("resume_force"):
        listed = "\n  ".join(differences)
        raise ValueError(f"resume={target}: this config differs from the run's in what shapes the "
                         f"model or the data:\n  {listed}\nUse the run's overrides, or add "
                         "resume_force=true to continue anyway")
    if differences:
        state.config = current
    return _announced(state, True)


def _announced(state: RunState, resuming: bool) -> tuple[RunState, bool]:
    """Leaves the choice in the environment, which the processes Lightning starts inherit."""
    os.environ[RUN_DIR_ENV] = str(state.directory)
    os.environ[RESUMING_ENV] = "1" if resuming else "0"
    return state, resuming


def last_checkpoint(stage_dir: Path) -> Path | None:
    path = stage_dir / "checkpoints" / LAST
    return path if path.exists() else None  # a file, or a sharded checkpoint directory


def mark_stage_done(stage_dir: Path) -> None:
    """Written after the stage's export: the stage is finished, and the random generators as
    they were at its end (a resumed run restores them before the next stage)."""
    atomic_save({"random_state": capture_random_state()}, stage_dir / STAGE_DONE)


def stage_done(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / STAGE_DONE
    return load_checkpoint(path) if path.is_file() else None
