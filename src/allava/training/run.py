"""What `train.py` does: the configured stages in order, each with its own Trainer,
checkpoints, W&B run and exported model, then an evaluation of the final model."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from allava.data.datamodule import StageDataModule
from allava.evaluation.language import LanguageProbe
from allava.evaluation.pipeline import evaluate_and_report
from allava.evaluation.report import numeric_leaves
from allava.models.build import VLMBundle, build_vlm
from allava.models.model_dir import WEIGHTS, export_model
from allava.toy.setup import ensure_toy_world
from allava.training import loggers as logger_factories
from allava.training.acceleration import compile_model, enable_gradient_checkpointing
from allava.training.checkpoint_files import AtomicCheckpointIO, load_checkpoint
from allava.training.module import VLMTrainingModule
from allava.training.random_state import restore_random_state
from allava.training.resume import (RunState, last_checkpoint, mark_stage_done, open_run,
                                    stage_done)
from allava.training.trainable import (ADAPTER_MARK, add_stage_adapters, merge_lora,
                                       parameter_counts, trainable_modules)


def load_initial_weights(bundle: VLMBundle, path: str | Path) -> None:
    """Starts from an exported model directory or a Lightning checkpoint of this module."""
    source = Path(path)
    if source.is_dir():
        from safetensors.torch import load_model

        if not (source / WEIGHTS).is_file():
            raise FileNotFoundError(f"init_from={path}: no {WEIGHTS} in that directory")
        load_model(bundle.model, str(source / WEIGHTS))
        return
    if not source.is_file():
        raise FileNotFoundError(f"init_from={path}: no such file or directory")
    state = load_checkpoint(source)["state_dict"]
    state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if any(ADAPTER_MARK in key for key in state):
        raise ValueError(f"init_from={path} is a checkpoint of a LoRA stage (adapters not merged "
                         "yet); start from that stage's export directory, which holds the merged "
                         "weights")
    bundle.model.load_state_dict(state)


def _stage_length(cfg: DictConfig, stage: DictConfig) -> dict[str, Any]:
    """`trainer.max_steps` / `max_epochs`, when set, apply to every stage; else the stage's."""
    max_steps = cfg.trainer.get("max_steps") or stage.get("max_steps") or -1
    max_epochs = cfg.trainer.get("max_epochs") or stage.get("max_epochs")
    if max_steps == -1 and max_epochs is None:
        raise ValueError(f"stage {stage.name}: set stage.{stage.name}.max_steps or max_epochs")
    return {"max_steps": int(max_steps), "max_epochs": int(max_epochs) if max_epochs else -1}


def resolve_run_group(cfg: DictConfig) -> str:
    """`run_group` when set; else `<task_name>-<time>`, where the time is the sweep's start in a
    multirun (its directory name), so that all its jobs share one W&B group."""
    if cfg.get("run_group"):
        return str(cfg.run_group)
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return f"{cfg.task_name}-{Path(HydraConfig.get().sweep.dir).name}"
    return f"{cfg.task_name}-{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def run_label(cfg: DictConfig) -> str:
    """What tells this train.py call apart from its siblings in a multirun: `run_name`, else
    the command-line overrides (e.g. `model/connector=ldpv2`), else nothing."""
    if cfg.get("run_name"):
        return str(cfg.run_name)
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return ""
    return str(HydraConfig.get().job.get("override_dirname") or "")


def _build_loggers(cfg: DictConfig, stage_name: str, stage_dir: Path,
                   run_id: str | None = None) -> list:
    label = run_label(cfg)
    name = f"{cfg.run_group}-{label}-{stage_name}" if label else f"{cfg.run_group}-{stage_name}"
    return [hydra.utils.instantiate(node, stage=stage_name, group=cfg.run_group,
                                    save_dir=str(stage_dir), name=name, run_id=run_id)
            for node in (cfg.get("logger") or {}).values() if node]


def _build_callbacks(cfg: DictConfig, stage_dir: Path, has_logger: bool) -> list:
    callbacks = []
    for node in (cfg.get("callbacks") or {}).values():
        if not node:
            continue
        if not has_logger and "LearningRateMonitor" in node._target_:
            continue  # it refuses to run without a logger (logger=none)
        writes_checkpoints = node._target_.endswith(("PeriodicCheckpoint", "ModelCheckpoint"))
        extra = {"dirpath": str(stage_dir / "checkpoints")} if writes_checkpoints else {}
        callbacks.append(hydra.utils.instantiate(node, **extra))
    return callbacks


def accumulation_steps(global_batch_size: int | None, batch_size: int, world_size: int,
                       default: int = 1, stage_name: str = "?") -> int:
    """Micro-batches per optimizer step so that devices x per-device batch x steps equals the
    stage's `global_batch_size` (the paper's 256 / 128 on any number of GPUs)."""
    if not global_batch_size:
        return default
    per_step = batch_size * world_size
    if global_batch_size % per_step:
        raise ValueError(
            f"stage {stage_name}: global_batch_size {global_batch_size} is not a multiple of "
            f"per-device batch {batch_size} x {world_size} devices = {per_step}; change "
            f"stage.{stage_name}.batch_size (or data.batch_size) or the number of devices")
    return global_batch_size // per_step


def run_stage(cfg: DictConfig, bundle: VLMBundle, stage_name: str, run_dir: Path,
              run_state: RunState | None = None, resume_from: Path | None = None) -> Path:
    """Trains one stage (from `resume_from`, a checkpoint of it, when given) and exports it."""
    if stage_name not in cfg.stage or not isinstance(cfg.stage[stage_name], DictConfig):
        known = [k for k, v in cfg.stage.items() if isinstance(v, DictConfig)]
        raise KeyError(f"stages lists {stage_name!r} but there is no stage.{stage_name} config; "
                       f"known: {known}")
    stage = cfg.stage[stage_name]
    stage_dir = run_dir / stage_name
    data_cfg = cfg.data
    stage_settings = OmegaConf.to_container(stage, resolve=True)
    stage_settings["train"] = trainable_modules(stage_settings, cfg.stage.get("policy"))
    adapted = add_stage_adapters(bundle.model, stage_settings.get("lora"), stage_name)
    batch_size = int(stage.get("batch_size") or data_cfg.batch_size)
    datamodule = StageDataModule(
        bundle, mixture=OmegaConf.to_container(stage.mixture, resolve=True),
        val=OmegaConf.to_container(data_cfg.val, resolve=True) if data_cfg.get("val") else [],
        batch_size=batch_size, num_workers=data_cfg.num_workers,
        seed=cfg.seed, shuffle_buffer=data_cfg.shuffle_buffer,
        val_max_samples=data_cfg.get("val_max_samples"),
        length_bucket_batches=data_cfg.get("length_bucket_batches", 0),
        packing=bool(data_cfg.get("packing", False)),
        packing_buffer=int(data_cfg.get("packing_buffer", 2048)),
        packing_length=data_cfg.get("packing_length"),
    )
    module = VLMTrainingModule(
        bundle, stage_settings,
        preview_examples=datamodule.preview_examples(8) if data_cfg.get("val") else None,
        max_bad_steps=int(cfg.get("trainer_guard", {}).get("max_bad_steps", 20)),
    )
    loggers = _build_loggers(cfg, stage_name, stage_dir,
                             run_id=run_state.wandb_id(stage_name) if run_state else None)
    trainer_cfg = {k: v for k, v in cfg.trainer.items() if k not in ("max_steps", "max_epochs")}
    val_every = stage.get("val_every_n_steps")
    trainer: L.Trainer = hydra.utils.instantiate(
        trainer_cfg, **_stage_length(cfg, stage), default_root_dir=str(stage_dir),
        logger=loggers or False, callbacks=_build_callbacks(cfg, stage_dir, has_logger=bool(loggers)),
        val_check_interval=int(val_every) if val_every and data_cfg.get("val") else None,
        check_val_every_n_epoch=None if val_every else 1,
        limit_val_batches=None if data_cfg.get("val") else 0,
        **_checkpoint_io(cfg),
    )
    trainer.accumulate_grad_batches = accumulation_steps(
        stage.get("global_batch_size"), batch_size, trainer.world_size,
        default=int(cfg.trainer.get("accumulate_grad_batches") or 1), stage_name=stage_name)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    rank_zero_info(f"=== stage {stage_name}: training {stage_settings['train']}"
                   f"{' with LoRA on ' + str(adapted) if adapted else ''}, batch {batch_size} x "
                   f"{trainer.world_size} devices x {trainer.accumulate_grad_batches} accumulated ===")
    if resume_from is not None:
        rank_zero_info(f"[{stage_name}] resuming from {resume_from}")
    with warnings.catch_warnings():  # frozen parts train in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, datamodule=datamodule,
                    ckpt_path=str(resume_from) if resume_from else None, weights_only=True)
    module.gather_weights()  # after FSDP2, the bundle's plain model gets the trained weights
    if adapted:  # the export, and the next stage, get plain weights
        merge_lora(bundle.model)
    export_dir = stage_dir / "export"
    if trainer.is_global_zero:
        export_model(bundle, export_dir)
        mark_stage_done(stage_dir)
        rank_zero_info(f"[{stage_name}] exported to {export_dir}")
    trainer.strategy.barrier("stage_export")
    for logger in loggers:
        logger_factories.finish(logger)
    return export_dir


def _checkpoint_io(cfg: DictConfig) -> dict[str, Any]:
    """Atomic, weights-only checkpoint files, where the strategy takes a CheckpointIO plugin
    (one process, DDP, FSDP2 gathering into one file; sharded checkpoint directories are
    written by the strategy itself and read with weights_only=True)."""
    strategy = cfg.trainer.get("strategy", "auto")
    name = strategy.get("_target_", "") if isinstance(strategy, DictConfig) else str(strategy)
    name = name.rsplit(".", 1)[-1].lower()
    if name.startswith(("auto", "ddp", "single", "fsdp2")) and not cfg.trainer.get("plugins"):
        return {"plugins": [AtomicCheckpointIO()]}
    return {}


def _open_run(cfg: DictConfig) -> tuple[RunState, bool]:
    """This call's run (a new one, or the one `resume` names), with `run_group` and
    `paths.output_dir` set to the run's."""
    run_state, resuming = open_run(cfg)
    with open_dict(cfg):
        cfg.run_group = run_state.run_group or resolve_run_group(cfg)
        cfg.paths.output_dir = str(run_state.directory)
    run_state.run_group = cfg.run_group
    if rank_zero_only.rank == 0:
        run_state.write()
    return run_state, resuming


def train(cfg: DictConfig) -> dict[str, Any]:
    """Runs `cfg.stages` and returns the export dirs (and eval results when configured).
    With `resume`, finished stages are reused and the interrupted one continues."""
    L.seed_everything(cfg.seed, workers=True)
    run_state, resuming = _open_run(cfg)
    run_dir = run_state.directory
    if cfg.data.get("generate"):
        ensure_toy_world(cfg.data.root, cfg.data.generate)
    bundle = build_vlm(cfg.model)
    if cfg.get("init_from"):
        load_initial_weights(bundle, cfg.init_from)
    if cfg.model.get("gradient_checkpointing"):
        enable_gradient_checkpointing(bundle.model)
    if cfg.model.get("compile"):
        compile_model(bundle.model)
    probe = _language_probe(cfg)
    language = {"before training": probe.check(bundle)} if probe else {}
    exports = {}
    for stage_name in cfg.stages:
        stage_dir = run_dir / stage_name
        finished = stage_done(stage_dir) if resuming else None
        if finished is not None:  # reuse its export, and the RNG as it was when it ended
            load_initial_weights(bundle, stage_dir / "export")
            restore_random_state(finished["random_state"])
            rank_zero_info(f"[{stage_name}] finished before; reusing {stage_dir / 'export'}")
            exports[stage_name] = stage_dir / "export"
            continue
        exports[stage_name] = run_stage(cfg, bundle, stage_name, run_dir, run_state,
                                        resume_from=last_checkpoint(stage_dir) if resuming else None)
    outcome: dict[str, Any] = {
        "run_dir": str(run_dir), "label": run_label(cfg),
        "exports": {k: str(v) for k, v in exports.items()},
        "image_tokens": bundle.model.num_image_tokens,
        "parameters": parameter_counts(bundle.model),
    }
    if cfg.get("eval") and cfg.eval.get("benchmarks") and exports and rank_zero_only.rank == 0:
        outcome["results"] = _evaluate_final(cfg, bundle, run_dir)
    if probe and exports:
        language["after training"] = probe.check(bundle)
        outcome["language"] = _report_language(probe, language, run_dir / "eval")
    if outcome.get("results") or outcome.get("language"):
        _log_results(cfg, run_dir, outcome.get("results", {}), outcome.get("language", {}))
    _write_summary(run_dir, outcome)
    if rank_zero_only.rank == 0:
        run_state.finished = True
        run_state.write()
    return outcome


def _evaluate_final(cfg: DictConfig, bundle: VLMBundle, run_dir: Path) -> dict:
    return evaluate_and_report(bundle, cfg, run_dir / "eval")


def _language_probe(cfg: DictConfig) -> LanguageProbe | None:
    """`eval.language` set: the LLM's held-out perplexity and open answers, before and after."""
    node = cfg.eval.get("language") if cfg.get("eval") else None
    if node is None or rank_zero_only.rank != 0:
        return None
    return LanguageProbe(**OmegaConf.to_container(node, resolve=True))


def _report_language(probe: LanguageProbe, checks: dict, out_dir: Path) -> dict:
    table = probe.table(checks)
    print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "language.md").write_text(table + "\n", encoding="utf-8")
    return {name: check.to_dict() for name, check in checks.items()}


def _log_results(cfg: DictConfig, run_dir: Path, results: dict, language: dict) -> None:
    """One `eval` run per train.py call in the W&B group, its summary holding every score, so
    that the runs of a sweep sit side by side (group by `group`, compare `eval/*`)."""
    metrics = {}
    for benchmark, entry in results.items():
        metrics.update(numeric_leaves(entry, f"eval/{benchmark}"))
    for name, check in language.items():
        metrics[f"language/perplexity {name}"] = check["perplexity"]
    loggers = _build_loggers(cfg, "eval", run_dir / "eval")
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        logger.log_metrics(metrics, step=0)
        logger_factories.finish(logger)


@rank_zero_only
def _write_summary(run_dir: Path, outcome: dict) -> None:
    (run_dir / "summary.json").write_text(json.dumps(outcome, indent=2))
