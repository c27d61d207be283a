"""ALLaVA: lite vision-language models trained on teacher-synthesized data."""

import os

from omegaconf import OmegaConf

from allava.utils.run_names import run_name

__version__ = "0.1.0"

# `${cwd:}` in configs: the launch directory. Unlike `${hydra:runtime.cwd}` it resolves before
# Hydra sets up a job, which a multirun's sweep directory (under paths.log_dir) needs.
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)
# `${run_name:}`: a new run directory's name, the same in every process of a SLURM or torchrun
# job (allava.utils.run_names); the local time otherwise.
OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def load_model(model_dir, device: str = "cpu"):
    """Load an exported model directory into a predictor with `.answer(questions, images)`."""
    from allava.models.predictor import load_model as _load  # lazy: `import allava` needs no torch

    return _load(model_dir, device=device)
