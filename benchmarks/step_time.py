"""Time one training step (forward, backward, AdamW) of toy model variants on real toy batches.

    python benchmarks/step_time.py [--repeats 30]

Each variant is a list of Hydra overrides of configs/train.yaml; the baseline is measured in
the same run, interleaved with the others (round-robin), and every figure is a median over
`--repeats` steps. Batches come from recipe_probe.py's cached pool (built on first use), so the
sequence lengths are those of the stages: Caption records, or Instruct + text records.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_probe import Probe  # noqa: E402

from allava.training.loss import causal_lm_loss  # noqa: E402

VARIANTS = {
    "regnet, full logits": (["model/vision=toy_regnet"], "full"),
    "regnet": (["model/vision=toy_regnet"], "supervised"),
    "resnet10t-slim": (["model/vision=toy_resnet10t"], "supervised"),
    "resnet10t-slim, grid_pool 3x3 (stride 8)": (
        ["model/vision=toy_resnet10t", "model/connector=grid_pool", "model.vision.feature_layer=2"],
        "supervised"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--pool", default="logs/probe_pool.pkl")
    args = parser.parse_args()
    probes = {}
    for name, (overrides, _) in VARIANTS.items():
        probe_args = argparse.Namespace(
            seed=0, overrides=overrides, pool=args.pool, pool_size=48000, no_answer_space=False,
            device="cpu", time_limit=float("inf"))
        probes[name] = Probe(probe_args)
    optimizers = {name: torch.optim.AdamW(probe.model.parameters(), lr=1e-4)
                  for name, probe in probes.items()}
    for kind in ("caption", "qa"):
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for repeat in range(args.repeats + 3):
            for name, (_, loss_kind) in VARIANTS.items():
                probe = probes[name]
                model = probe.model
                optimizer = optimizers[name]
                # Image placeholders depend on the connector: re-tokenize per variant.
                batch = probe.batch([probe.sample(s, i) for s, i in _sources(kind)])
                start = time.perf_counter()
                if loss_kind == "full":
                    logits = model(input_ids=batch["input_ids"],
                                   attention_mask=batch["attention_mask"],
                                   pixel_values=batch["pixel_values"]).logits
                    loss = causal_lm_loss(logits, batch["labels"])
                else:
                    loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                                 batch["pixel_values"], batch["labels"])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                if repeat >= 3:  # warm-up steps are not timed
                    times[name].append(time.perf_counter() - start)
        base = statistics.median(next(iter(times.values())))
        print(f"\n{kind} batch (32 samples), median of {args.repeats} steps, "
              f"{torch.get_num_threads()} threads:")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:45s} {median * 1000:6.0f} ms  ({median / base:.2f}x)")


def _sources(kind: str) -> list[tuple[str, int]]:
    if kind == "caption":
        return [("caption", i) for i in range(32)]
    return [("instruct", i) for i in range(29)] + [("text", i) for i in range(3)]


if __name__ == "__main__":
    main()
