"""Padding and training throughput of random batches, length-aware batches and packed rows.

    python benchmarks/packing.py                 # finetune lengths, 3 rounds, ~5 minutes
    python benchmarks/packing.py --stage pretrain --rounds 5 --out packing.json

Samples have ALLaVA-4V's modelled token lengths (`benchmarks/allava_lengths.py`: a 576-token
image of CLIP-L/336 plus the question and answer of each subset, text-only Evol-Instruct
mixed in, cut at 2,048). Two measurements:

1. Padding fraction (pad tokens / all tokens) over 20,000 samples of each stage's mixture, at
   a batch of `--batch` samples: random batches, length-aware batches (sorted within 32
   batches, as `data.length_bucket_batches: 32`), and packed rows of 2,048, 4,096 and 8,192
   tokens (`allava.data.packing`, first-fit decreasing over 2,048 samples).
2. Training tokens/s on this CPU for a small model (a 2-block ViT that yields 576 tokens at
   336 px, mlp2x_gelu, a 2-layer Llama 512 wide, fp32, sdpa): forward and backward of
   `VisionLanguageModel.supervised_loss` over the same samples arranged each way; packed rows
   hold about `--batch` samples per batch. Rounds alternate between the arrangements; medians
   are reported. Tokens/s counts real tokens (image placeholders included, padding not).

With sdpa a packed row pays attention over its whole length (a dense block-diagonal mask);
flash-attention's variable-length kernel and flex attention skip the masked blocks, which the
GPU measurement (`benchmarks/gpu_step.sh`) compares.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allava_lengths import IMAGE_TOKENS, MAX_LENGTH, sample_shapes  # noqa: E402
from synthetic_batches import PACK_BUFFER, batched, synthetic_samples  # noqa: E402

from allava.data.length_batching import length_bucketed, padding_fraction  # noqa: E402
from allava.data.packing import pack_rows, padding_fraction_of_rows  # noqa: E402
from allava.data.samples import TrainingSample, tokens_in  # noqa: E402
from allava.models.connectors import MLPConnector  # noqa: E402
from allava.models.vision_tower import TimmVisionTower  # noqa: E402
from allava.models.vlm import VisionLanguageModel  # noqa: E402

VOCAB, PAD = 8000, 0
IMAGE_ID = VOCAB - 1


def small_model(attn: str) -> VisionLanguageModel:
    torch.manual_seed(0)
    tower = TimmVisionTower("vit_base_patch16_clip_quickgelu_224", image_size=336,
                            model_kwargs=dict(patch_size=14, embed_dim=64, depth=2, num_heads=2))
    config = AutoConfig.for_model("llama", vocab_size=VOCAB, hidden_size=512,
                                  intermediate_size=1408, num_hidden_layers=2,
                                  num_attention_heads=8, num_key_value_heads=8,
                                  max_position_embeddings=4096)
    config._attn_implementation = attn
    llm = AutoModelForCausalLM.from_config(config)
    model = VisionLanguageModel(tower, MLPConnector(tower.feature_dim, 512), llm, IMAGE_ID)
    assert model.num_image_tokens == IMAGE_TOKENS
    return model


def arrangements(samples: list[TrainingSample], batch: int) -> dict[str, list[dict]]:
    """The same samples as collated batches, four ways."""
    rng = random.Random(0)  # one generator through all four, in this order
    out = {"random batches": batched(samples, "random", batch, 0, rng, PAD),
           "length-aware batches": batched(samples, "length-aware", batch, 0, rng, PAD)}
    for row_length in (2048, 4096):
        out[f"packed rows of {row_length}"] = batched(samples, "packed", batch, row_length, rng,
                                                      PAD)
    return out


def padding_table(stage: str, batch: int) -> dict[str, float]:
    lengths = [[0] * shape.tokens for shape in sample_shapes(stage, 20_000, seed=1)]
    rng = random.Random(0)
    table = {"random batches": padding_fraction([lengths[i:i + batch]
                                                 for i in range(0, len(lengths), batch)]),
             "length-aware batches": padding_fraction(list(length_bucketed(iter(lengths), batch,
                                                                           32, rng)))}
    for row_length in (2048, 4096, 8192):
        rows = list(pack_rows(iter(lengths), row_length, PACK_BUFFER, rng))
        table[f"packed rows of {row_length}"] = padding_fraction_of_rows(rows, row_length)
    return table


def train_pass(model: VisionLanguageModel, batches: list[dict]) -> float:
    """Seconds for forward + backward over every batch."""
    start = time.perf_counter()
    for batch in batches:
        loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                     batch["pixel_values"], batch["labels"], "token",
                                     position_ids=batch.get("position_ids"),
                                     documents=batch.get("documents"))
        loss.backward()
        model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="finetune", choices=["pretrain", "finetune"])
    parser.add_argument("--batch", type=int, default=8, help="samples per batch")
    parser.add_argument("--samples", type=int, default=32, help="samples timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    padding = {stage: padding_table(stage, args.batch) for stage in ("pretrain", "finetune")}
    print(f"padding fraction, 20,000 samples, batch {args.batch}:")
    print("| arrangement | pretrain | finetune |\n|---|---|---|")
    for name in padding["finetune"]:
        print(f"| {name} | {100 * padding['pretrain'][name]:.1f} % | "
              f"{100 * padding['finetune'][name]:.1f} % |")
    padding = padding[args.stage]
    model = small_model("sdpa").train()
    samples = synthetic_samples(args.stage, args.samples, IMAGE_ID, IMAGE_TOKENS, 336, VOCAB,
                                MAX_LENGTH, seed=2)
    arranged = arrangements(samples, args.batch)
    tokens = {name: sum(tokens_in(b) for b in batches) for name, batches in arranged.items()}
    assert len(set(tokens.values())) == 1, tokens  # the same samples every way
    train_pass(model, arranged["random batches"][:1])  # warm-up
    times: dict[str, list[float]] = {name: [] for name in arranged}
    for _ in range(args.rounds):
        for name, batches in arranged.items():
            times[name].append(train_pass(model, batches))
    baseline = statistics.median(times["random batches"])
    rows = []
    for name in arranged:
        median = statistics.median(times[name])
        rows.append({"arrangement": name, "padding": round(padding[name], 4),
                     "batches_timed": len(arranged[name]),
                     "tokens_per_s": round(tokens[name] / median, 1),
                     "speedup_vs_random": round(baseline / median, 2),
                     "seconds": [round(t, 2) for t in times[name]]})
    print(f"stage {args.stage}, {args.samples} samples timed ({tokens['random batches']} tokens), "
          f"batch {args.batch}, {args.rounds} rounds, {args.threads} threads")
    print("| arrangement | padding | tokens/s (median) | vs random | seconds per round |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['arrangement']} | {100 * row['padding']:.1f} % | {row['tokens_per_s']:.0f} | "
              f"{row['speedup_vs_random']:.2f}x | {', '.join(map(str, row['seconds']))} |")
    if args.out:
        args.out.write_text(json.dumps({"stage": args.stage, "batch": args.batch,
                                        "padding": padding, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
