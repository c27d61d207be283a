"""Glue between the Hydra configs and the evaluation runner (used by eval.py and train.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


def benchmark_resolver(cfg: DictConfig, config_dir: Path = CONFIG_DIR):
    """Name -> TSV path, from `configs/benchmark/<name>.yaml`, whose `path` may interpolate
    `${paths.*}` and, inside train.py, `${data.*}` (the toy benchmarks follow `data.root`)."""
    context = {"paths": cfg.paths, "data": cfg.get("data") or {}}

    def resolve(name: str) -> Path:
        node_file = config_dir / "benchmark" / f"{name}.yaml"
        if not node_file.is_file():
            known = sorted(p.stem for p in (config_dir / "benchmark").glob("*.yaml"))
            raise FileNotFoundError(
                f"unknown benchmark {name!r}: no {node_file}. Known: {known}; "
                "or pass a path to a TSV file in the VLMEvalKit layout"
            )
        node = OmegaConf.merge(context, {"benchmark": OmegaConf.load(node_file)})
        path = Path(node.benchmark.path)
        if not path.is_file():
            raise FileNotFoundError(f"benchmark {name!r}: file {path} does not exist")
        return path

    return resolve


def evaluate_and_report(model: Any, cfg: DictConfig, out_dir: Path) -> dict:
    """Evaluates a VLMBundle or VLMPredictor on `cfg.eval` (train.py) or `cfg` (eval.py)."""
    from allava.evaluation import evaluate_benchmarks, format_results_table
    from allava.inference import VLMPredictor

    settings = cfg.eval if "eval" in cfg else cfg
    predictor = model if isinstance(model, VLMPredictor) else VLMPredictor(model)
    results = evaluate_benchmarks(
        predictor, list(settings.benchmarks), out_dir,
        resolve=benchmark_resolver(cfg), batch_size=int(settings.batch_size),
        max_new_tokens=int(settings.max_new_tokens), limit=settings.get("limit"),
    )
    print(format_results_table(results))
    print(f"results: {Path(out_dir) / 'results.json'}")
    return results


def run_eval(cfg: DictConfig) -> dict:
    from allava.inference import load_model

    predictor = load_model(cfg.model_dir, device=cfg.get("device", "cpu"))
    return evaluate_and_report(predictor, cfg, Path(cfg.paths.output_dir))
