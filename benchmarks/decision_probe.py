"""How fast can a model learn one kind of toy question? (A tool for the toy recipe search.)

Trains on freshly generated toy scenes, one benchmark-format question per scene, and prints the
teacher-forced accuracy of the answer token ("Yes"/"No", an option letter, or a colour) on the
training batches as it goes. Starts from random weights (the model config composed from
configs/train.yaml with the given overrides) or from an exported model directory.

    python benchmarks/decision_probe.py --task pope-color --steps 300
    python benchmarks/decision_probe.py --task single-color --init logs/train/runs/<run>/pretrain/export
    python benchmarks/decision_probe.py --task pope-color -- model.llm.model.config.num_hidden_layers=3
    python benchmarks/decision_probe.py --task mcq-count --text-fraction 0.5 --text-tasks sum_choice
    python benchmarks/decision_probe.py --task instruct --text-fraction 0.33 --every 100

`instruct` draws the toy teacher's Instruct records (every category, both formats) and reports
accuracy per category; `--text-fraction` mixes in the toy text-only tasks; `text-pope-color`
asks POPE colour questions about the caption *text* instead of the image.

Needs the toy tokenizer (data/toy/tokenizer: run `make demo` or `allava-toy` once).
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from allava.data.samples import TrainingSample, collate
from allava.data.toy_questions import choice_question, either_yes_no_question
from allava.data.toy_teacher import (
    caption_text, format_choice_exact, format_yes_no_exact, instruct_record, text_record,
)
from allava.data.toy_text_tasks import TEXT_TASKS
from allava.data.toy_world import render_scene, sample_scene
from allava.models.build import build_vlm
from allava.models.export import load_exported
from allava.training.loss import causal_lm_loss

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("single-color", "single-pope-color", "pope-color", "pope-shape", "pope-pair",
         "mcq-color", "mcq-shape", "mcq-count", "mcq-position", "instruct", "text-pope-color")


def make_bundle(init: str | None, overrides: list[str]):
    if init:
        return load_exported(init)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    cfg.paths.root_dir = str(ROOT)
    cfg.paths.output_dir = str(ROOT / "logs" / "probe")
    OmegaConf.resolve(cfg)
    return build_vlm(cfg.model)


def make_conversation(task: str, rng: random.Random):
    """One scene and one question about it, in the benchmark prompt format, and the question's
    category ("instruct": an Instruct record of the toy teacher, any category and format)."""
    if task == "instruct":
        scene = sample_scene(rng)
        record = instruct_record(scene, rng, "probe")
        category = record["category"] if record["format"] == "exact" else "free-form"
        return record["conversations"], render_scene(scene, rng), category
    if task == "text-pope-color":  # the scene's caption text stands in for the image
        scene = sample_scene(rng)
        question, answer = format_yes_no_exact(either_yes_no_question(scene, "color", rng))
        conversation = [{"from": "human", "value": f"{caption_text(scene, rng)}\n{question}"},
                        {"from": "gpt", "value": answer}]
        return conversation, None, task
    if task.startswith("mcq-"):
        category = task.split("-")[1]
        while (q := choice_question(scene := sample_scene(rng), category, rng)) is None:
            pass
        turns = format_choice_exact(q)
    elif task == "single-color":
        scene = sample_scene(rng, 1, 1)
        turns = ("What color is the object?", scene.objects[0].color.capitalize())
    else:
        scene = sample_scene(rng, 1, 1) if task.startswith("single-") else sample_scene(rng)
        turns = format_yes_no_exact(either_yes_no_question(scene, task.split("-")[-1], rng))
    conversation = [{"from": "human", "value": f"<image>\n{turns[0]}"},
                    {"from": "gpt", "value": turns[1]}]
    return conversation, render_scene(scene, rng), task


def answer_position(labels: torch.Tensor, space_id: int) -> int:
    """The first supervised token that is not bare whitespace (the decision): " Yes" may be
    split as "Ġ" + "Yes"."""
    position = int((labels != -100).nonzero()[0])
    return position + 1 if int(labels[position]) == space_id else position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="pope-color")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--init", default=None, help="exported model dir (default: random init)")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--text-fraction", type=float, default=0.0,
                        help="share of each batch drawn from the toy text-only tasks")
    parser.add_argument("--text-tasks", nargs="+", default=None, metavar="NAME",
                        help="only these toy text tasks (names in allava.data.toy_text_tasks)")
    parser.add_argument("--mimetic", action="store_true", help="init W_K = W_Q in every layer")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the model config")
    args = parser.parse_args()

    torch.manual_seed(0)
    rng = random.Random(0)
    bundle = make_bundle(args.init, args.overrides)
    model, transform = bundle.model.train(), bundle.image_transform()
    if args.mimetic:
        for layer in model.llm.model.layers:
            layer.self_attn.k_proj.weight.data.copy_(layer.self_attn.q_proj.weight.data)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98))
    space = bundle.tokenizer.convert_tokens_to_ids("Ġ")
    window: list[tuple[str, int]] = []  # (category, answer token right?) since the last report
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        samples, categories = [], []
        for _ in range(args.batch_size):
            if rng.random() < args.text_fraction:
                if args.text_tasks:
                    prompt, reply = TEXT_TASKS[rng.choice(args.text_tasks)](rng)
                    turns = [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}]
                else:
                    turns = text_record(rng, "probe")["conversations"]
                tokens = bundle.text.encode_conversation(turns, num_images=0)
                samples.append(TrainingSample(tokens.input_ids, tokens.labels, None))
                categories.append("text")
                continue
            conversation, image, category = make_conversation(args.task, rng)
            tokens = bundle.text.encode_conversation(conversation, num_images=int(image is not None))
            pixels = None if image is None else transform(image)
            samples.append(TrainingSample(tokens.input_ids, tokens.labels, pixels))
            categories.append(category)
        batch = collate(samples, bundle.tokenizer.pad_token_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       pixel_values=batch.get("pixel_values")).logits
        loss = causal_lm_loss(logits, batch["labels"], "token")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        for row, labels in enumerate(batch["labels"]):
            position = answer_position(labels, space)
            right = int(logits[row, position - 1].argmax() == labels[position])
            window.append((categories[row], right))
        if step % args.every == 0:
            print(f"{args.task} step {step:5d}  loss {loss.item():.3f}  answer accuracy "
                  f"{report(window)}  {time.perf_counter() - start:.0f}s", flush=True)
            window.clear()


def report(window: list[tuple[str, int]]) -> str:
    """Overall accuracy, then per category when there are several."""
    by_category: dict[str, list[int]] = {}
    for category, right in window:
        by_category.setdefault(category, []).append(right)
    overall = sum(r for _, r in window) / len(window)
    if len(by_category) == 1:
        return f"{overall:.3f}"
    parts = " ".join(f"{c} {sum(v) / len(v):.2f}" for c, v in sorted(by_category.items()))
    return f"{overall:.3f} ({parts})"

if __name__ == "__main__":
    main()
