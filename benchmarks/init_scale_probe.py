"""Does a tiny Llama learn "is token q among the context tokens?" fast, and what does it depend on?

A synthetic, image-free version of the POPE decision: the context holds 1-3 (colour, shape)
pairs between filler tokens, then a query colour; the target is Yes/No. Trains a Hugging Face
LlamaForCausalLM from scratch (batch 32, AdamW) and prints the answer accuracy every 50 steps.
Used to pick the toy LLM's `initializer_range` (configs/model/llm/toy_llama.yaml).

    python benchmarks/init_scale_probe.py --init-std 0.02
    python benchmarks/init_scale_probe.py --init-std 0.1 --layers 3 --seed 1
"""
from __future__ import annotations

import argparse
import random
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

BOS, QUERY, YES, NO, SEP = 1, 5, 6, 7, 8
COLORS, SHAPES, FILLERS = range(10, 16), range(20, 23), range(30, 60)


def example(rng: random.Random, suffix: int) -> tuple[list[int], int]:
    colors = [rng.choice(COLORS) for _ in range(rng.randint(1, 3))]
    context = [t for c in colors for t in (rng.choice(FILLERS), c, rng.choice(SHAPES))]
    present = rng.random() < 0.5
    query = rng.choice(colors) if present else rng.choice([c for c in COLORS if c not in colors])
    tail = [rng.choice(FILLERS) for _ in range(suffix)]  # distance between query and answer
    return [BOS, *context, SEP, QUERY, query, SEP, *tail], YES if present else NO


def batch(rng: random.Random, size: int, suffix: int):
    rows = [example(rng, suffix) for _ in range(size)]
    length = max(len(r) for r, _ in rows) + 1
    ids = torch.zeros(size, length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (prompt, answer) in enumerate(rows):
        ids[i, : len(prompt) + 1] = torch.tensor([*prompt, answer])
        mask[i, : len(prompt) + 1] = 1
        labels[i, len(prompt)] = answer
    return ids, mask, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-std", type=float, default=0.02, help="LlamaConfig.initializer_range")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--suffix", type=int, default=0, help="filler tokens after the query")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    config = LlamaConfig(
        vocab_size=64, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=128, tie_word_embeddings=True, initializer_range=args.init_std,
    )
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        ids, mask, labels = batch(rng, 32, args.suffix)
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if step % 50 == 0:
            rows, cols = (labels != -100).nonzero(as_tuple=True)
            right = out.logits[rows, cols - 1].argmax(-1) == labels[rows, cols]
            print(f"step {step:4d}  loss {out.loss.item():.3f}  answer accuracy "
                  f"{right.float().mean().item():.2f}  {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
