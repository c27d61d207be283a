"""Time one training step of the real-weights model on a CPU: SmolLM2-135M-Instruct (the packaged
GGUF, offline) behind EfficientNet-Lite0, fully fine-tuned against LoRA.

    python benchmarks/real_weights_step.py [--batch-size 8 --text-tokens 60 --steps 8 --repeats 2]

Each variant builds the model from configs/ (`model/llm=smollm2_135m_instruct
model/vision=efficientnet_lite0`), trains the connector and the LLM as ALLaVA does (tower frozen),
and times forward + backward + AdamW through `VisionLanguageModel.supervised_loss`, the training
module's path. Batches are synthetic: one image per sample and `--text-tokens` random tokens, the
last half of them supervised. Variants alternate round-robin over `--repeats` rounds; the figure
is the median step after the first two of each round. It answers how many steps a CPU budget
holds, e.g. for a demo of the ALLaVA recipe with real weights.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from allava.models.build import build_vlm  # noqa: E402
from allava.training.trainable import add_lora, apply_trainable  # noqa: E402
from tests.helpers.configs import compose_config  # noqa: E402

VARIANTS = {"full": None, "lora_r16": {"r": 16}}


def synthetic_batch(model, batch_size: int, text_tokens: int):
    generator = torch.Generator().manual_seed(0)
    images = model.num_image_tokens
    ids = torch.randint(10, 40_000, (batch_size, 1 + images + text_tokens), generator=generator)
    ids[:, 1:1 + images] = model.image_token_id
    labels = ids.clone()
    labels[:, :1 + images + text_tokens // 2] = -100
    size = model.vision.image_size
    pixels = torch.randn(batch_size, 3, size, size, generator=generator)
    return ids, labels, pixels


def time_variant(lora: dict | None, args, workdir: Path) -> list[float]:
    cfg = compose_config("train", ["model/llm=smollm2_135m_instruct",
                                   "model/vision=efficientnet_lite0"], workdir)
    torch.manual_seed(0)
    model = build_vlm(cfg.model).model
    if lora:
        add_lora(model.llm, lora)
    apply_trainable(model, ["connector", "llm"])
    model.train()
    model.vision.eval()  # frozen, as in training (no BatchNorm updates)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    ids, labels, pixels = synthetic_batch(model, args.batch_size, args.text_tokens)
    mask = torch.ones_like(ids)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = model.supervised_loss(ids, mask, pixels, labels, "sample")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    print(f"  {sum(p.numel() for p in trainable):,} trainable; steps (s): "
          + " ".join(f"{t:.2f}" for t in times), flush=True)
    return times[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--text-tokens", type=int, default=60)
    parser.add_argument("--steps", type=int, default=8, help="per variant and round (2 warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the variants")
    parser.add_argument("--workdir", default="/tmp/real_weights_step")
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be >= 3 (the first two are warm-up)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged GGUF, never a download
    print(f"torch threads: {torch.get_num_threads()}; batch {args.batch_size} x "
          f"(1 + image tokens + {args.text_tokens}) tokens")
    steps: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_index in range(args.repeats):
        order = list(VARIANTS) if round_index % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            print(f"round {round_index + 1}, {name}:", flush=True)
            steps[name] += time_variant(VARIANTS[name], args, Path(args.workdir))
    baseline = statistics.median(steps["full"])
    print("\n| variant | median step (s) | vs full |\n|---|---|---|")
    for name, values in steps.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {baseline / median:.2f}x |")


if __name__ == "__main__":
    main()
