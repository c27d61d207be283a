"""How fast the real model learns the toy questions: answer accuracy along a training run.

    python benchmarks/real_learning_curve.py [--steps 100 --batch-size 8 --lr-llm 2e-4]

Builds experiment `toy_real` (EfficientNet-Lite0 frozen, mlp2x_gelu, SmolLM2-135M-Instruct, both
from their wheels), trains connector + LLM on the toy Instruct shards with AdamW (warmup, cosine to
10 %), and every `--eval-every` steps scores the first `--items` questions of toy_pope and of
toy_mcq teacher-forced: the prompt goes in exactly as eval.py sends it, and the answer is whichever
candidate (Yes/No, or the option letters) gets the higher logit at the first answer position.
That is the benchmark's accuracy for single-token answers, at a fraction of generate()'s cost, so a
run shows when, or whether, the image starts to matter. `format` is the share of items whose
top token is one of the candidates (the answer format learnt).

`--input-norm` puts a LayerNorm without weights before the connector: the frozen tower's tokens
have norm ~62, so mlp2x_gelu starts at output norm ~33 against SmolLM2's embedding norm of 3.2.
Needs the toy data: `allava-toy --out data/toy` (or any `make demo`).
"""
from __future__ import annotations

import argparse
import base64
import csv
import io
import math
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allava.data.datamodule import StageDataModule  # noqa: E402
from allava.evaluation.answer_formats import CHOICE_SUFFIX, SHORT_ANSWER_SUFFIX  # noqa: E402
from allava.models.build import build_vlm  # noqa: E402
from allava.training.trainable import apply_trainable, keep_frozen_in_eval_mode  # noqa: E402


def benchmark_items(bundle, data_dir: Path, count: int) -> list[tuple]:
    """(prompt, image, candidate token ids, index of the right one, benchmark) per item."""
    tokenizer = bundle.tokenizer

    def first_token(text: str) -> int:
        return tokenizer.encode(text, add_special_tokens=False)[0]

    def rows(name: str) -> list[dict]:
        with open(data_dir / "benchmarks" / f"{name}.tsv", encoding="utf-8") as f:
            return list(csv.DictReader(f, delimiter="\t"))[:count]

    def image(row: dict) -> Image.Image:
        return Image.open(io.BytesIO(base64.b64decode(row["image"]))).convert("RGB")

    yes_no, letters = [first_token("Yes"), first_token("No")], [first_token(x) for x in "ABCD"]
    items = [(f"{r['question']}\n{SHORT_ANSWER_SUFFIX}", image(r), yes_no,
              0 if r["answer"] == "yes" else 1, "toy_pope") for r in rows("toy_pope")]
    for r in rows("toy_mcq"):
        options = [(letter, r[letter]) for letter in "ABCD" if r.get(letter)]
        prompt = (r["question"] + "".join(f"\n{k}. {v}" for k, v in options)
                  + f"\n{CHOICE_SUFFIX}")
        items.append((prompt, image(r), letters[:len(options)], "ABCD".index(r["answer"]),
                      "toy_mcq"))
    return items


@torch.no_grad()
def score(bundle, items: list[tuple], chunk: int = 32) -> dict[str, float]:
    model, processor = bundle.model, bundle.processor
    model.eval()
    hits: dict[str, list[bool]] = {}
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        prompts = [processor.encode_prompt(prompt, True) for prompt, *_ in part]
        width, pad = max(map(len, prompts)), bundle.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # left padding
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        pixels = torch.stack([processor.image_transform(image) for _, image, *_ in part])
        hidden = model.llm.get_decoder()(
            inputs_embeds=model.embed(ids, pixels), attention_mask=mask,
            position_ids=(mask.cumsum(1) - 1).clamp(min=0)).last_hidden_state[:, -1]
        logits = model.llm.get_output_embeddings()(hidden)
        for (_, _, candidates, gold, name), row in zip(part, logits):
            hits.setdefault(name, []).append(int(row[candidates].argmax()) == gold)
            hits.setdefault(f"{name} format", []).append(int(row.argmax()) in candidates)
    model.train()
    keep_frozen_in_eval_mode(model)
    return {k: round(sum(v) / len(v), 3) for k, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr-llm", type=float, default=2e-4)
    parser.add_argument("--lr-connector", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--items", type=int, default=64, help="per benchmark")
    parser.add_argument("--input-norm", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = parser.parse_args()
    torch.manual_seed(0)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=["experiment=toy_real", f"paths.data_dir={args.data_dir}"])
    bundle = build_vlm(cfg.model)
    model = bundle.model
    apply_trainable(model, ["connector", "llm"])
    if args.input_norm:
        model.connector = torch.nn.Sequential(
            torch.nn.LayerNorm(model.vision.feature_dim, elementwise_affine=False), model.connector)
    toy = args.data_dir / "toy"
    data = StageDataModule(bundle, mixture=[{"name": "instruct", "path": str(toy / "instruct")}],
                           batch_size=args.batch_size, seed=0)
    data.setup()
    items = benchmark_items(bundle, toy, args.items)
    groups = [{"params": [p for p in model.connector.parameters() if p.requires_grad],
               "lr": args.lr_connector},
              {"params": [p for p in model.llm.parameters() if p.requires_grad], "lr": args.lr_llm}]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0, betas=(0.9, 0.98))
    peaks = [g["lr"] for g in optimizer.param_groups]
    print(f"step 0: {score(bundle, items)}", flush=True)
    model.train()
    keep_frozen_in_eval_mode(model)
    start, losses, batches = time.perf_counter(), [], iter(data.train_dataloader())
    for step in range(args.steps):
        factor = (min(1.0, (step + 1) / args.warmup)
                  * (0.1 + 0.45 * (1 + math.cos(math.pi * step / args.steps))))
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * factor
        batch = next(batches)
        loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                     batch["pixel_values"], batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            recent = losses[-args.eval_every:]
            print(f"step {step + 1} ({(step + 1) * args.batch_size} samples, "
                  f"{time.perf_counter() - start:.0f} s): loss {sum(recent) / len(recent):.3f} "
                  f"{score(bundle, items)}", flush=True)


if __name__ == "__main__":
    main()
