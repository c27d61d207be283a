"""Evaluate an exported model on benchmarks (names from allava/evaluation/benchmarks/ or TSV paths).

    python eval.py model_dir=logs/train/runs/<run>/finetune/export benchmarks=[toy_pope,toy_mcq]
    python eval.py model_dir=DIR benchmarks=[/some/dir/my_set.tsv]
"""
import hydra
from omegaconf import DictConfig

import allava  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    from allava.evaluation.pipeline import run_eval

    run_eval(cfg)


if __name__ == "__main__":
    main()
