"""Try a toy training recipe fast: a caption phase, then QA phases, scored per question kind.

The tool behind the toy recipe search in benchmarks/README.md. It builds the model from
configs/train.yaml with Hydra overrides and trains it in-process (no Lightning, no shards) on
a cached pool of records that the toy teacher wrote (generated on first use), then prints the
teacher-forced accuracy of the answer's first token on 1,000 held-out Instruct records, per
category. That accuracy tracks what eval.py's greedy decoding scores on the exact-format items.

    # 600 caption steps (saved), then 1,000 steps of all Instruct records
    python benchmarks/recipe_probe.py --caption-steps 600 --save /tmp/cap.pt \\
        --schedule "1000:all" -- model.llm.model.config.num_hidden_layers=4
    # a curriculum from the saved caption model: POPE first, then everything
    python benchmarks/recipe_probe.py --load /tmp/cap.pt --caption-steps 0 \\
        --schedule "400:pope-color,pope-shape,pope-pair;600:all-exact" --text 0.2

A schedule is `steps:kinds` parts separated by `;`. Kinds are Instruct categories
(`pope-color`, `mcq-count`, ...) in the exact benchmark format, or `all-exact` (every category,
exact format only), or `all` (every Instruct record, free-form answers included), or `single`
(every Instruct record about a one-object scene).
`--text` mixes that share of toy text-only records into every phase.

Other knobs: `--tower-steps N` first pretrains the tower alone on caption words (multi-label,
CatLIP-style); `--turns 3` packs three questions about one image into each QA sample;
`--caption-mix` keeps some Caption records in the QA phases; `--lm-batch-size` sets the batch
of the caption and QA phases apart from the tower phase's; `--no-answer-space` drops the
template's space before the answer; `--vision-lr` sets the tower's LR; `--device cuda` and
`--time-limit` serve benchmarks/recipe_sweep.py, which runs many variants side by side on a
GPU. The caption phase also reports held-out caption accuracy by word kind (colour, shape,
size, count, position), which shows what the model has learnt to read from images; each
QA evaluation also sorts the wrong answers to "Where is the ...?" into near and far misses.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import pickle
import random
import re
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decision_probe import answer_position, make_bundle  # noqa: E402

from allava.data.samples import TrainingSample, collate  # noqa: E402
from allava.data.toy_teacher import caption_record, instruct_record, text_record  # noqa: E402
from allava.data.toy_world import CELL_NAMES, COLORS, SHAPES, SIZES, render_scene, sample_scene  # noqa: E402
from allava.training.freezing import keep_frozen_in_eval_mode  # noqa: E402
from allava.training.objectives import CaptionWordsHead, caption_words_loss  # noqa: E402

HELD_OUT = 1000
EXTRA_QUESTIONS = 2  # further Instruct records per scene, for multi-turn samples (--turns)


def make_pool_chunk(num_scenes: int, seed: int) -> dict:
    """Per scene: its pixels, a Caption and an Instruct record (plus EXTRA_QUESTIONS more, for
    multi-turn samples); plus text-only records."""
    rng = random.Random(seed)
    pool: dict = {"caption": [], "instruct": [], "extra": [], "text": [], "images": []}
    for i in range(num_scenes):
        scene = sample_scene(rng)
        pool["images"].append(np.asarray(render_scene(scene, rng)))
        pool["caption"].append((caption_record(scene, rng, "p")["conversations"], i, None))
        record = instruct_record(scene, rng, "p")
        category = record["category"] if record["format"] == "exact" else None
        pool["instruct"].append((record["conversations"], i, category))
        pool["extra"].append([instruct_record(scene, rng, "p")["conversations"]
                              for _ in range(EXTRA_QUESTIONS)])
    for _ in range(num_scenes // 3):
        pool["text"].append((text_record(rng, "p")["conversations"], None, None))
    pool["images"] = np.stack(pool["images"])
    return pool


POOL_CHUNKS = 15  # a pool is the same whatever the number of processes that build it
POOL_VERSION = 2  # bump when the teacher's records change (2: short answers)


def make_pool(num_scenes: int, workers: int = 2) -> dict:
    """`num_scenes` scenes in POOL_CHUNKS chunks (seeds 123, 124, ...), built by `workers`
    processes and concatenated."""
    chunk = -(-num_scenes // POOL_CHUNKS)
    with ProcessPoolExecutor(max(1, min(workers, POOL_CHUNKS))) as executor:
        parts = list(executor.map(make_pool_chunk, [chunk] * POOL_CHUNKS,
                                  [123 + k for k in range(POOL_CHUNKS)]))
    merged: dict = {key: [] for key in parts[0]}
    offset = 0
    for part in parts:
        for key in ("caption", "instruct"):
            merged[key] += [(conv, image + offset, cat) for conv, image, cat in part[key]]
        for key in ("extra", "text"):
            merged[key] += part[key]
        merged["images"].append(part["images"])
        offset += len(part["images"])
    merged["images"] = np.concatenate(merged["images"])
    merged["version"] = POOL_VERSION
    return merged


class Probe:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bundle = make_bundle(None, args.overrides)
        self.model = self.bundle.model.train()
        path = Path(args.pool)
        self.pool = pickle.loads(path.read_bytes()) if path.is_file() else {}
        if self.pool.get("version") != POOL_VERSION:  # absent, or cached by an older version
            self.pool = make_pool(args.pool_size, workers=os.cpu_count() or 1)
            path.write_bytes(pickle.dumps(self.pool))
        if args.no_answer_space:  # the answer's first token is then the options' letter token
            self.bundle.tokenizer.chat_template = self.bundle.tokenizer.chat_template.replace(
                "{{ ' ' + message['content']", "{{ message['content']")
        self.device = torch.device(args.device)
        self.deadline = time.perf_counter() + args.time_limit
        self.model.to(self.device)
        config = self.model.vision.data_config
        self.mean = torch.tensor(config["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(config["std"]).view(1, 3, 1, 1)
        self.num_train = len(self.pool["images"]) - HELD_OUT
        self.by_kind: dict[str, list[int]] = {"all": list(range(self.num_train))}
        for i, (_, _, category) in enumerate(self.pool["instruct"][: self.num_train]):
            if " 1 object " in self.pool["caption"][i][0][1]["value"]:  # one-object scenes
                self.by_kind.setdefault("single", []).append(i)
            if category is not None:
                self.by_kind.setdefault(category, []).append(i)
                self.by_kind.setdefault("all-exact", []).append(i)
        self.cache: dict = {}
        self.space = self.bundle.tokenizer.convert_tokens_to_ids("Ġ")

    def sample(self, source: str, index: int, turns: int = 1):
        key = (source, index, turns)
        if key not in self.cache:
            conversation, image, category = self.pool[source][index]
            for extra in self.pool["extra"][index][: turns - 1]:  # follow-up turns: no image tag
                question = extra[0]["value"].replace("<image>\n", "")
                conversation = conversation + [{**extra[0], "value": question}, extra[1]]
            tokens = self.bundle.text.encode_conversation(conversation,
                                                          num_images=int(image is not None))
            self.cache[key] = (tokens.input_ids, tokens.labels, image, category)
        return self.cache[key]

    def batch(self, items) -> dict:
        batch = collate([TrainingSample(ids, labels, None) for ids, labels, _, _ in items],
                        self.bundle.tokenizer.pad_token_id)
        images = [image for _, _, image, _ in items if image is not None]
        if images:
            pixels = torch.from_numpy(self.pool["images"][images]).permute(0, 3, 1, 2).float()
            size = self.model.vision.image_size
            if pixels.shape[-1] != size:  # a tower that reads the 64 px scenes upscaled
                pixels = torch.nn.functional.interpolate(pixels, size=(size, size),
                                                         mode="bicubic", antialias=True)
            batch["pixel_values"] = (pixels / 255 - self.mean) / self.std
        return {key: value.to(self.device) for key, value in batch.items()
                if isinstance(value, torch.Tensor)}

    @torch.no_grad()
    def evaluate(self, tag: str) -> None:
        self.model.eval()
        indices = [i for i in range(self.num_train, len(self.pool["images"]))
                   if self.pool["instruct"][i][2] is not None]  # exact-format items only
        items = [self.sample("instruct", i) for i in indices]
        right: dict[str, list[int]] = {}
        misses: list[str] = []
        by_scene: dict[str, list[int]] = {}
        by_answer: dict[str, list[int]] = {}
        for start in range(0, len(items), 64):
            chunk = items[start:start + 64]
            batch = self.batch(chunk)
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                pixel_values=batch["pixel_values"]).logits
            for row, item in enumerate(chunk):
                at = answer_position(batch["labels"][row], self.space)
                guess = int(logits[row, at - 1].argmax())
                hit = int(guess == batch["labels"][row, at])
                right.setdefault(item[3], []).append(hit)
                if item[3] == "mcq-position":
                    by_scene.setdefault(self.position_scene_kind(indices[start + row]), []).append(hit)
                    by_answer.setdefault(self.position_answer_kind(item), []).append(hit)
                    if not hit:
                        misses.append(self.position_miss(item, guess))
        self.train_mode()
        overall = np.mean([x for v in right.values() for x in v])
        parts = " ".join(f"{k} {np.mean(v):.2f}" for k, v in sorted(right.items()))
        print(f"  held-out {tag}: {overall:.3f} | {parts}", flush=True)
        if misses:
            kinds = ", ".join(f"{k} {n}" for k, n in Counter(misses).most_common())
            print(f"  position misses: {kinds}", flush=True)
        if by_scene:
            print("  position by scene: " + ", ".join(
                f"{k} {np.mean(v):.2f} ({len(v)})" for k, v in sorted(by_scene.items())), flush=True)
            print("  position by answer: " + ", ".join(
                f"{k} {np.mean(v):.2f} ({len(v)})" for k, v in sorted(by_answer.items())), flush=True)

    def position_answer_kind(self, item) -> str:
        """A "Where is ...?" item by its right option: one word ("top") or two ("top left"),
        and whether another option is a word of it or contains it."""
        text = self.bundle.tokenizer.decode(item[0])
        options = dict(re.findall(r"\n([ABCD])\. ([a-z ]+)", text))
        truth = options.get(self.bundle.tokenizer.decode(
            [t for t in item[1] if t >= 0]).strip()[:1], "")
        words = set(truth.split())
        overlap = any(o != truth and set(o.split()) & words for o in options.values())
        return f"{len(words)} word{'s' if len(words) > 1 else ''}, {'overlapping' if overlap else 'distinct'} options"

    def position_scene_kind(self, index: int) -> str:
        """A "Where is the <colour> <shape>?" item's scene, from its caption: one object, or
        several whose others share the target's colour or shape (a partial match), or not."""
        caption = self.pool["caption"][index][0][1]["value"].lower()
        question = self.pool["instruct"][index][0][0]["value"]
        target = re.search(r"Where is the (\w+) (\w+)\?", question).groups()
        found = re.findall(rf"({'|'.join(COLORS)}) ({'|'.join(SHAPES)})", caption)
        if len(found) == 1:
            return "one object"
        partial = any((c == target[0]) != (s == target[1]) for c, s in found)
        return "others share colour or shape" if partial else "others differ"

    def position_miss(self, item, guess: int) -> str:
        """How a wrong answer to "Where is the ...?" relates to the right one: a cell sharing
        a word with it ("top" for "top left"), a neighbouring cell, or elsewhere."""
        text = self.bundle.tokenizer.decode(item[0])
        options = dict(re.findall(r"\n([ABCD])\. ([a-z ]+)", text))
        letter = self.bundle.tokenizer.decode([guess]).strip()
        truth = self.bundle.tokenizer.decode([t for t in item[1] if t >= 0]).strip()[:1]
        if letter not in options or truth not in options:
            return "not an option"
        said, right = options[letter].strip(), options[truth].strip()
        if set(said.split()) & set(right.split()):
            return "shares a word"
        (r1, c1), (r2, c2) = (divmod(CELL_NAMES.index(x), 3) for x in (said, right))
        return "neighbour" if max(abs(r1 - r2), abs(c1 - c2)) == 1 else "far"

    def train_mode(self) -> None:
        """Train mode, except for a frozen tower (`--vision-lr 0`), as in train.py's stages."""
        self.model.train()
        keep_frozen_in_eval_mode(self.model)

    def tower_phase(self, steps: int) -> None:
        """Pretrains the tower alone on caption words: the `caption_words` objective of the
        toy default's `tower` stage (allava.training.objectives)."""
        tower = self.model.vision
        head = CaptionWordsHead(tower.feature_dim, len(self.bundle.tokenizer)).to(self.device)
        optimizer = torch.optim.AdamW(list(tower.parameters()) + list(head.parameters()),
                                      lr=self.args.tower_lr or self.args.lr, weight_decay=0.0)
        start = time.perf_counter()
        for step in range(1, steps + 1):
            items = [self.sample("caption", self.rng.randrange(self.num_train))
                     for _ in range(self.args.batch_size)]
            loss = caption_words_loss(tower, head, self.batch(items), self.model.image_token_id,
                                      self.model.num_image_tokens)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step % self.args.every == 0 or step == steps:
                print(f"tower step {step} loss {loss.item():.4f} "
                      f"{time.perf_counter() - start:.0f}s", flush=True)

    @functools.cache
    def caption_word_kinds(self) -> dict[int, str]:
        """First token of each toy-world word (" red", " circle", ...) -> its kind."""
        words = {"shape": SHAPES, "color": tuple(COLORS), "size": SIZES, "count": ("1", "2", "3"),
                 "position": ("top", "bottom", "left", "right", "center")}
        return {self.bundle.tokenizer.encode(" " + name, add_special_tokens=False)[0]: kind
                for kind, names in words.items() for name in names}

    @torch.no_grad()
    def evaluate_captions(self, tag: str) -> None:
        """Teacher-forced accuracy on held-out captions, by the kind of word predicted: shows
        which attributes the caption phase has taught the model to read from the image."""
        self.model.eval()
        kind_of = self.caption_word_kinds()
        right: dict[str, list[int]] = {}
        held_out = [self.sample("caption", i) for i in range(self.num_train, len(self.pool["images"]))]
        for start in range(0, len(held_out), 64):
            batch = self.batch(held_out[start:start + 64])
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                pixel_values=batch["pixel_values"]).logits
            hits = logits[:, :-1].argmax(-1) == batch["labels"][:, 1:]
            for target, hit in zip(batch["labels"][:, 1:].flatten().tolist(), hits.flatten().tolist()):
                if target in kind_of:
                    right.setdefault(kind_of[target], []).append(int(hit))
        self.train_mode()
        print(f"  held-out captions {tag}: " + " ".join(
            f"{kind} {np.mean(hits):.2f}" for kind, hits in sorted(right.items())), flush=True)

    def phase(self, name: str, steps: int, kinds: list[str] | None) -> None:
        """`kinds` None: the caption phase; else Instruct records of those kinds."""
        args = self.args
        vision = list(self.model.vision.parameters())
        rest = [p for n, p in self.model.named_parameters() if not n.startswith("vision.")]
        optimizer = torch.optim.AdamW(
            [{"params": vision, "lr": args.lr if args.vision_lr is None else args.vision_lr},
             {"params": rest, "lr": args.lr}],
            betas=(0.9, 0.98), weight_decay=0.0)
        warmup = max(1, int(0.03 * steps))

        def schedule(step: int) -> float:  # the stages' warm-up + cosine to 0.1x
            if step < warmup:
                return (step + 1) / warmup
            return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        start = time.perf_counter()
        for step in range(1, steps + 1):
            if time.perf_counter() > self.deadline:
                print(f"{name}: time limit reached at step {step - 1}", flush=True)
                self.evaluate(f"{name}@{step - 1}")
                raise SystemExit(0)
            items = []
            for _ in range(args.lm_batch_size or args.batch_size):
                if self.rng.random() < args.text:
                    items.append(self.sample("text", self.rng.randrange(len(self.pool["text"]))))
                elif kinds is None or self.rng.random() < args.caption_mix:
                    items.append(self.sample("caption", self.rng.randrange(self.num_train)))
                else:
                    index = self.rng.choice(self.by_kind[self.rng.choice(kinds)])
                    items.append(self.sample("instruct", index, args.turns))
            batch = self.batch(items)
            reduction = "token" if kinds is None else args.loss  # as the pretrain stage
            loss = self.model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                              batch["pixel_values"], batch["labels"], reduction)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step % args.every == 0 or step == steps:
                print(f"{name} step {step} loss {loss.item():.3f} "
                      f"{time.perf_counter() - start:.0f}s", flush=True)
                if kinds is not None or step == steps:
                    self.evaluate(f"{name}@{step}")
                if kinds is None:
                    self.evaluate_captions(f"{name}@{step}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tower-steps", type=int, default=0,
                        help="first pretrain the tower alone on caption words (CatLIP-style)")
    parser.add_argument("--caption-steps", type=int, default=600)
    parser.add_argument("--schedule", default="1000:all")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lm-batch-size", type=int, default=None,
                        help="batch of the caption and QA phases (default --batch-size)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--vision-lr", type=float, default=None, help="tower LR (default --lr)")
    parser.add_argument("--tower-lr", type=float, default=None,
                        help="LR of the tower-alone phase (default --lr)")
    parser.add_argument("--loss", default="token", choices=("token", "sample"),
                        help="loss reduction of the QA phases (the caption phase: token)")
    parser.add_argument("--text", type=float, default=0.1, help="share of text-only records")
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", default="logs/probe_pool.pkl", help="cached record pool")
    parser.add_argument("--pool-size", type=int, default=48000, help="scenes in a new pool")
    parser.add_argument("--turns", type=int, default=1,
                        help=f"questions per QA sample, 1 to {1 + EXTRA_QUESTIONS} (multi-turn)")
    parser.add_argument("--caption-mix", type=float, default=0.0,
                        help="share of Caption records kept in the QA phases")
    parser.add_argument("--no-answer-space", action="store_true",
                        help="chat template without the space before the answer")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--time-limit", type=float, default=float("inf"),
                        help="seconds; stop (after a last evaluation) when they are spent")
    parser.add_argument("--save", help="save the weights after the caption phase")
    parser.add_argument("--load", help="start from weights saved with --save")
    parser.add_argument("--save-final", help="save the weights after the last phase")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the model config")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    probe = Probe(args)
    print(f"image tokens {probe.model.num_image_tokens}, "
          f"{sum(p.numel() for p in probe.model.parameters()) / 1e6:.2f}M parameters", flush=True)
    if args.load:
        probe.model.load_state_dict(torch.load(args.load))
    if args.tower_steps:
        probe.tower_phase(args.tower_steps)
    if args.vision_lr == 0:  # frozen: no gradients, BatchNorm statistics kept
        probe.model.vision.requires_grad_(False)
        probe.train_mode()
    if args.caption_steps:
        probe.phase("caption", args.caption_steps, None)
    if args.save:
        torch.save(probe.model.state_dict(), args.save)
    for k, part in enumerate(filter(None, args.schedule.split(";"))):
        steps, kinds = part.split(":")
        probe.phase(f"qa{k}", int(steps), kinds.split(","))
    if args.save_final:
        torch.save(probe.model.state_dict(), args.save_final)
    if not args.schedule:  # e.g. --load a saved model, no phases: evaluate it
        probe.evaluate("loaded")


if __name__ == "__main__":
    main()
