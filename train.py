"""Train a vision-language model in stages (default: pretrain, then finetune on the toy world).

    python train.py                                   # the toy default, end to end
    python train.py trainer.max_steps=50 model/connector=linear
    python train.py stages=[finetune] init_from=logs/train/runs/<run>/pretrain/export
    python train.py logger=csv                        # or logger=none
    python train.py <same overrides> resume=<run dir>  # continue a killed run (or resume=auto)
"""
import hydra
from omegaconf import DictConfig

import allava  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    import signal
    import sys

    from allava.training.periodic_checkpoints import TrainingPreempted
    from allava.training.run import train

    try:
        train(cfg)
    except TrainingPreempted as stop:  # checkpoint written: exit as the signal would have
        print(f"train.py: {stop}", file=sys.stderr)
        sys.exit(128 + getattr(signal, stop.signal_name, signal.SIGTERM))


if __name__ == "__main__":
    main()
