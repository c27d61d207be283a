"""Evaluation from a config: generate (or re-score), score, print and save the tables, log to W&B.

Used by eval.py (`run_eval`) and by train.py after the last stage (`evaluate_and_report`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from allava.evaluation.judge import JudgeSettings
from allava.evaluation.judge.choice_matcher import ChoiceMatcher
from allava.evaluation.registry import benchmark_spec_resolver
from allava.evaluation.report import (ReportColumn, comparison_table, load_published,
                                      log_eval_run)
from allava.evaluation.results_table import format_results_table
from allava.evaluation.runner import evaluate_benchmarks, resolve_benchmark
from allava.models.predictor import VLMPredictor, load_model

__all__ = ["benchmark_resolver", "evaluate_and_report", "run_eval"]


def benchmark_resolver(cfg: DictConfig):
    """Name -> BenchmarkSpec of a benchmark defined in allava.evaluation.benchmarks, resolved
    against `cfg` (see allava.evaluation.registry)."""
    return benchmark_spec_resolver(cfg)


def references_text(results: dict) -> str:
    """One line per benchmark: the reference implementation its score follows."""
    lines = ["scored as:"]
    for name, entry in results.items():
        reference = entry.get("reference")
        if isinstance(reference, dict):
            reference = (f"{reference['repository']}@{str(reference['commit'])[:8]} "
                         f"{', '.join(reference['files'])}")
        lines.append(f"  {name}: {reference}")
    return "\n".join(lines)


def evaluate_and_report(model: Any, cfg: DictConfig, out_dir: Path) -> dict:
    """Evaluates a VLMBundle or VLMPredictor on `cfg.eval` (train.py) or `cfg` (eval.py), or, with
    `model=None`, re-scores `predictions_dir`; prints and saves the tables."""
    settings = cfg.eval if "eval" in cfg else cfg
    predictor = None
    if model is not None:
        predictor = model if isinstance(model, VLMPredictor) else VLMPredictor(model)
    judge_node = settings.get("judge")
    judge = JudgeSettings.from_config(OmegaConf.to_container(judge_node, resolve=True) if judge_node else None)
    matcher = None
    if settings.get("choice_matcher"):
        matcher = ChoiceMatcher(judge)  # JudgeNotConfigured now, not after generating
    resolve = benchmark_resolver(cfg)
    identity = {"model": str(settings.get("model_dir") or cfg.get("model_dir") or "")}
    results = evaluate_benchmarks(
        predictor, list(settings.benchmarks), out_dir,
        resolve=resolve, batch_size=int(settings.batch_size),
        max_new_tokens=settings.get("max_new_tokens"), limit=settings.get("limit"),
        predictions_dir=settings.get("predictions_dir"), judge=judge, run_identity=identity, matcher=matcher,
        progress=bool(settings.get("progress", True)),
    )
    out_dir = Path(out_dir)
    table = format_results_table(results)
    columns = report_columns(results, list(settings.benchmarks), resolve)
    comparison = comparison_markdown(results, columns)
    (out_dir / "results.md").write_text(f"{table}\n\n{comparison}\n".rstrip() + "\n", encoding="utf-8")
    print(table)
    if comparison:
        print(f"\n{comparison}")
    print(references_text(results))
    print(f"results: {out_dir / 'results.json'} (tables: {out_dir / 'results.md'})")
    wandb_cfg = settings.get("wandb")  # eval.py's; train.py logs its eval run with its loggers
    if wandb_cfg and wandb_cfg.get("enabled", True):
        group = settings.get("run_group")
        log_eval_run(results, comparison, group=group, name=f"{group or settings.task_name}-eval",
                     project=wandb_cfg.get("project", "allava"), entity=wandb_cfg.get("entity"),
                     mode=wandb_cfg.get("mode", "auto"), save_dir=out_dir,
                     config=OmegaConf.to_container(cfg, resolve=True), columns_by_benchmark=columns)
    return results


def comparison_markdown(results: dict, columns: dict) -> str:
    """Our numbers beside the published ALLaVA rows (report.PUBLISHED_FILE, shipped with the
    package as allava/evaluation/resources/published_allava.yaml); empty when no benchmark fills
    a published column."""
    published = load_published()
    if not any(column.column in published.columns for group in columns.values() for column in group):
        return ""  # e.g. the toy benchmarks: nothing published to compare with
    return comparison_table(results, columns, published)


def report_columns(results: dict, entries: list[str], resolve) -> dict:
    """Benchmark -> the published columns it fills (its settings' `report`); a benchmark without
    one (a TSV given by path) gets a column of its own holding its headline score."""
    columns = {}
    for entry in entries:
        spec = resolve_benchmark(entry, resolve)
        if spec.name not in results:
            continue
        columns[spec.name] = ([ReportColumn(**column) for column in spec.report]
                              or [ReportColumn(spec.name, "score")])
    return columns


def run_eval(cfg: DictConfig) -> dict:
    """eval.py: load the exported model (or nothing, in score-only mode), evaluate, report, log."""
    out_dir = Path(cfg.paths.output_dir)
    if cfg.get("predictions_dir"):
        predictor = None
    elif cfg.get("model_dir"):
        predictor = load_model(cfg.model_dir, device=cfg.get("device", "cpu"))
    else:
        raise ValueError("eval.py needs model_dir=<exported model> to generate answers, or "
                         "predictions_dir=<an earlier eval's output dir> to re-score its predictions")
    return evaluate_and_report(predictor, cfg, out_dir)
