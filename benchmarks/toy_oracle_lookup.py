"""How many steps does the toy LLM need to learn the toy_mcq look-ups when its image tokens are
perfect? An upper bound on what any vision tower can buy.

    python benchmarks/toy_oracle_lookup.py [--steps 4000] [--hidden 128] [--layers 4] [--seed 0]

Each scene becomes 9 image tokens, one per grid cell, holding exactly what the cell contains
(one-hot colour, shape and size, or "empty", plus the cell's row and column), read from the
scene's ground truth instead of its pixels, and passed through an `mlp2x_gelu`-like connector.
The LLM is the toy default's (a Llama built from configs/model/llm/toy_llama.yaml, on the toy
tokenizer), trained from random weights on toy_mcq questions (3/4 in the letter format, 1/4 as
short answers), with the finetune stage's optimizer, schedule and per-sample loss. It prints the
held-out answer accuracy (all answer tokens right) per category and format at four points. Needs
the toy world's tokenizer (`data/toy/tokenizer`, made by `make demo` or `allava toy`).
"""
from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allava.evaluation.answer_formats import choice_prompt, short_answer_prompt  # noqa: E402
from allava.toy.questions import applicable_choice_categories, choice_question  # noqa: E402
from allava.toy.world import COLORS, SHAPES, SIZES, cell_index, sample_scene  # noqa: E402

COLOR_NAMES = list(COLORS)
FEATURES = 1 + len(COLOR_NAMES) + len(SHAPES) + len(SIZES) + 2  # empty, attributes, row, column


def cell_tokens(scene) -> torch.Tensor:
    """[9, FEATURES]: what each cell holds, as the ideal tower would say it."""
    tokens = torch.zeros(9, FEATURES)
    tokens[:, 0] = 1.0
    for cell in range(9):
        tokens[cell, -2], tokens[cell, -1] = divmod(cell, 3)
    tokens[:, -2:] -= 1.0  # rows and columns in [-1, 1]
    for obj in scene.objects:
        cell = cell_index(obj.cell)
        tokens[cell, 0] = 0.0
        tokens[cell, 1 + COLOR_NAMES.index(obj.color)] = 1.0
        tokens[cell, 1 + len(COLOR_NAMES) + SHAPES.index(obj.shape)] = 1.0
        tokens[cell, 1 + len(COLOR_NAMES) + len(SHAPES) + SIZES.index(obj.size)] = 1.0
    return tokens


class Example:
    """One question: prompt ids before and after the image, answer ids, image tokens."""

    def __init__(self, tokenizer, rng: random.Random, answer_format: str | None = None):
        scene = sample_scene(rng)
        self.category = rng.choice(applicable_choice_categories(scene))
        question = choice_question(scene, self.category, rng)
        self.format = answer_format or ("letter" if rng.random() < 0.75 else "short")
        if self.format == "letter":
            prompt, answer = choice_prompt(question.question, question.options, question.answer_index)
        else:
            prompt, answer = short_answer_prompt(question.question, question.answer_text)
        encode = lambda text: tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
        self.before = encode("<s>[INST] ")
        self.after = encode(" " + prompt + " [/INST]")
        self.answer = encode(" " + answer) + [tokenizer.eos_token_id]
        self.image = cell_tokens(scene)


def batch_inputs(examples, embed: nn.Module, connector: nn.Module, hidden: int):
    """Padded input embeddings, next-token labels (-100 outside the answer) and the mask."""
    rows, labels = [], []
    for ex in examples:
        prefix = torch.tensor(ex.before)
        suffix = torch.tensor(ex.after + ex.answer)
        rows.append(torch.cat([embed(prefix), connector(ex.image), embed(suffix)]))
        unsupervised = len(ex.before) + len(ex.image) + len(ex.after) - 1
        labels.append(torch.tensor([-100] * unsupervised + ex.answer + [-100]))
    length = max(len(r) for r in rows)
    inputs = torch.zeros(len(rows), length, hidden)
    targets = torch.full((len(rows), length), -100)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, (row, label) in enumerate(zip(rows, labels)):
        inputs[i, :len(row)], targets[i, :len(label)], mask[i, :len(row)] = row, label, 1
    return inputs, targets, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tokenizer", default=str(ROOT / "data" / "toy" / "tokenizer"))
    args = parser.parse_args()

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    llm = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden, intermediate_size=2 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.heads, max_position_embeddings=512, tie_word_embeddings=True,
        initializer_range=0.1, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    connector = nn.Sequential(nn.Linear(FEATURES, args.hidden), nn.GELU(),
                              nn.Linear(args.hidden, args.hidden))
    embed = llm.get_input_embeddings()
    parameters = [*llm.parameters(), *connector.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = max(1, round(0.03 * args.steps))
    schedule = lambda s: min(1.0, (s + 1) / warmup) * (  # noqa: E731
        0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    held_out = [Example(tokenizer, random.Random(10_000 + i), ("letter", "short")[i % 2])
                for i in range(800)]

    def accuracy() -> dict[tuple[str, str], float]:
        llm.eval()
        right = defaultdict(list)
        with torch.no_grad():
            for start in range(0, len(held_out), 100):
                chunk = held_out[start:start + 100]
                inputs, targets, mask = batch_inputs(chunk, embed, connector, args.hidden)
                predicted = llm(inputs_embeds=inputs, attention_mask=mask).logits.argmax(-1)
                for i, ex in enumerate(chunk):
                    answer = targets[i] != -100
                    right[(ex.category, ex.format)].append(
                        bool((predicted[i][answer] == targets[i][answer]).all()))
        llm.train()
        return {key: sum(v) / len(v) for key, v in sorted(right.items())}

    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        inputs, targets, mask = batch_inputs([Example(tokenizer, rng) for _ in range(args.batch_size)],
                                             embed, connector, args.hidden)
        logits = llm(inputs_embeds=inputs, attention_mask=mask).logits
        per_token = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100,
                                    reduction="none").view(targets.shape)
        loss = (per_token.sum(1) / (targets != -100).sum(1).clamp(min=1)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        scheduler.step()
        if step % max(1, args.steps // 4) == 0:
            scores = " ".join(f"{c}/{f}={v:.2f}" for (c, f), v in accuracy().items())
            print(f"step {step} loss {loss.item():.3f} {time.perf_counter() - started:.0f}s {scores}",
                  flush=True)


if __name__ == "__main__":
    main()
