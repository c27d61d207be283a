"""One training stage of a paper recipe at real size, random weights, on synthetic batches:
tokens/s, MFU and peak GPU memory, through the same LightningModule and Trainer as train.py.

    python benchmarks/real_size_step.py                               # allava_stablelm2 finetune, packed
    python benchmarks/real_size_step.py --batching length-aware --no-checkpointing
    python benchmarks/real_size_step.py --suite --out suite.json      # the GPU table (gpu_step.sh)
    python benchmarks/real_size_step.py --batch-size 4 model/llm=qwen2_5_0_5b

Nothing is downloaded: the tower is built by timm with random weights and the LLM from its
architecture facts (tests/helpers/fixtures/llm_configs/<preset>.json). Trailing arguments are
Hydra overrides of configs/train.yaml.

Batches (`--batching`), from samples of ALLaVA-4V's modelled lengths
(benchmarks/allava_lengths.py: a 576-token image of CLIP-L/336 for most, question and
answer of each subset's length) with random token ids and pixels:
- `packed`: rows of `--row-length` tokens (default twice model.max_length) filled by
  `allava.data.packing`, as many rows as hold about `--batch-size` samples;
- `length-aware`: `--batch-size` samples per batch, sorted within 32 batches, padded;
- `random`: the same, unsorted;
- `full`: every sequence exactly `--seq-len` tokens with one image (no padding at all: a bound).

Tokens/s counts real tokens (image placeholders included, padding not). MFU = model FLOPs
(`model_flops`: LLM matmuls, attention within each sample, the frozen tower's forward, the
connector; padding and gradient checkpointing's recomputation not counted) per second, over the
GPU's dense bf16 peak. `--suite` builds the model once and measures the variants of `SUITE`
(batching, gradient checkpointing, attention implementation, micro-batch) one after another.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, IterableDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import allava  # noqa: E402,F401  (config resolvers)
from synthetic_batches import PACK_BUFFER, batched, synthetic_samples  # noqa: E402
from allava.data.samples import tokens_in  # noqa: E402
from allava.models.build import VLMBundle  # noqa: E402
from allava.models.vlm import VisionLanguageModel  # noqa: E402
from allava.training.acceleration import enable_gradient_checkpointing  # noqa: E402
from allava.training.module import VLMTrainingModule  # noqa: E402
from allava.training.trainable import trainable_modules  # noqa: E402
from tests.models.test_llm_presets import local_architecture  # noqa: E402

FIXTURES = ROOT / "tests" / "helpers" / "fixtures" / "llm_configs"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}
PAD = 0
# What `--suite` measures: the preset as it is (length-aware batches, checkpointing on), then
# one change at a time toward the fastest setting.
SUITE = [
    dict(batching="length-aware", checkpointing=True, attn="sdpa", batch_size=8),
    dict(batching="packed", checkpointing=True, attn="sdpa", batch_size=8),
    dict(batching="length-aware", checkpointing=False, attn="sdpa", batch_size=8),
    dict(batching="packed", checkpointing=False, attn="sdpa", batch_size=8),
    dict(batching="packed", checkpointing=False, attn="sdpa", batch_size=24),
    dict(batching="full", checkpointing=False, attn="sdpa", batch_size=8),
    dict(batching="packed", checkpointing=False, attn="flex_attention", batch_size=8),
    dict(batching="packed", checkpointing=False, attn="flex_attention", batch_size=24),
]


def full_batches(batch_size: int, seq_len: int, model: VisionLanguageModel, count: int):
    """Every sequence exactly `seq_len` long with one image: the old upper bound."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.llm.get_input_embeddings().num_embeddings
    side, image_tokens = model.vision.image_size, model.num_image_tokens
    for _ in range(count):
        tokens = torch.randint(1, vocab - 1, (batch_size, seq_len), generator=generator)
        tokens[:, 1:1 + image_tokens] = model.image_token_id
        labels = tokens.clone()
        labels[:, :1 + image_tokens] = -100
        yield {"input_ids": tokens, "attention_mask": torch.ones_like(tokens), "labels": labels,
               "pixel_values": torch.randn(batch_size, 3, side, side, generator=generator)}


def make_batches(batching: str, model: VisionLanguageModel, stage: str, batch_size: int,
                 steps: int, seq_len: int, row_length: int, max_length: int) -> list[dict]:
    if batching == "full":
        return list(full_batches(batch_size, seq_len, model, steps))
    count = batch_size * steps + PACK_BUFFER  # enough for every step, and a full buffer
    samples = synthetic_samples(stage, count, model.image_token_id, model.num_image_tokens,
                                model.vision.image_size,
                                model.llm.get_input_embeddings().num_embeddings, max_length)
    return batched(samples, batching, batch_size, row_length, random.Random(0), PAD, steps)


class Cycle(IterableDataset):
    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __iter__(self):
        while True:
            yield from self.batches


def document_lengths(batch: dict) -> list[int]:
    """Token count of each sample of a collated batch, packed or padded."""
    if batch.get("documents") is not None:
        documents = batch["documents"]
        return torch.bincount(documents[documents >= 0]).tolist()
    return batch["attention_mask"].sum(1).tolist()


def model_flops(model: VisionLanguageModel, lengths: list[int], images: int,
                llm_trains: bool) -> float:
    """Matmul FLOPs of forward + backward for samples of `lengths` tokens and `images` images.
    A trained LLM costs 6 per parameter and token (2 forward, 4 backward); a frozen one 4 (no
    weight gradients, but the input gradient still flows to the connector). Attention is
    counted within each sample, whatever padding or packing surrounds it. The input embedding
    is a lookup: left out unless tied to the head."""
    config = model.llm.config
    llm_params = sum(p.numel() for p in model.llm.parameters())
    if not config.tie_word_embeddings:
        llm_params -= model.llm.get_input_embeddings().weight.numel()
    per_param = 6 if llm_trains else 4
    attention = per_param * 2 * config.num_hidden_layers * config.hidden_size * sum(
        n * n for n in lengths)
    tower = 2 * sum(p.numel() for p in model.vision.parameters()) * model.vision.num_patches()
    connector = 6 * sum(p.numel() for p in model.connector.parameters()) * model.num_image_tokens
    return per_param * llm_params * sum(lengths) + attention + (tower + connector) * images


class StepTimer(L.Callback):
    """Wall time, real tokens and model FLOPs of every optimizer step after `warmup` (CUDA
    synchronised), and peak memory over those steps."""

    def __init__(self, warmup: int, flops_of):
        self.warmup, self.flops_of = warmup, flops_of
        self.times, self.tokens, self.flops, self.samples = [], [], [], []
        self._start = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            if batch_idx == self.warmup:
                torch.cuda.reset_peak_memory_stats()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if batch_idx >= self.warmup:
            self.times.append(time.perf_counter() - self._start)
            self.tokens.append(tokens_in(batch))
            self.samples.append(int(batch.get("num_samples") or batch["input_ids"].shape[0]))
            images = 0 if batch["pixel_values"] is None else batch["pixel_values"].shape[0]
            self.flops.append(self.flops_of(document_lengths(batch), images))


def compose_recipe(experiment: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides],
                      return_hydra_config=True)
    return cfg, cfg.hydra.runtime.choices["model/llm"]


def build_model(cfg, preset: str, workdir: Path) -> VisionLanguageModel:
    vision = OmegaConf.to_container(cfg.model.vision, resolve=True)
    vision.update(weights="none")
    llm_node = OmegaConf.to_container(cfg.model.llm.model, resolve=True)
    if llm_node.get("config") is None:  # a hub preset: its architecture from the fixtures
        if not (FIXTURES / f"{preset}.json").is_file():
            raise SystemExit(f"no architecture fixture for model/llm={preset} in {FIXTURES}")
        local_architecture(preset, workdir)
        llm_node.update(name_or_path=str(workdir), weights="none", trust_remote_code=False)
    tower = hydra.utils.instantiate(vision)
    llm = hydra.utils.instantiate(llm_node)
    connector = hydra.utils.instantiate(
        OmegaConf.to_container(cfg.model.connector, resolve=True),
        in_dim=tower.feature_dim, out_dim=llm.get_input_embeddings().embedding_dim)
    # The last vocabulary row stands in for `<image>` (its embedding is overwritten anyway).
    return VisionLanguageModel(tower, connector, llm,
                               image_token_id=llm.get_input_embeddings().num_embeddings - 1)


def set_checkpointing(model: VisionLanguageModel, on: bool) -> None:
    if on:
        enable_gradient_checkpointing(model)
        return
    disable = (getattr(model.llm, "activation_checkpointing_disable", None)
               or model.llm.gradient_checkpointing_disable)
    disable()
    if hasattr(model.vision.model, "set_grad_checkpointing"):
        model.vision.model.set_grad_checkpointing(False)


def peak_tflops(explicit: float | None) -> tuple[float | None, str]:
    if not torch.cuda.is_available():
        return explicit, "cpu"
    name = torch.cuda.get_device_name()
    if explicit:
        return explicit, name
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None), name


def measure(model: VisionLanguageModel, cfg, stage: dict, stage_name: str, variant: dict,
            args) -> dict:
    """Trains `args.steps` steps of one variant and returns its figures."""
    set_checkpointing(model, variant["checkpointing"])
    model.llm.set_attn_implementation(variant["attn"])
    max_length = int(cfg.model.max_length)
    batches = make_batches(variant["batching"], model, stage_name, variant["batch_size"],
                           args.steps, args.seq_len, args.row_length or 2 * max_length,
                           max_length)
    llm_trains = "llm" in stage["train"]
    timer = StepTimer(args.warmup, lambda lengths, images: model_flops(model, lengths, images,
                                                                       llm_trains))
    module = VLMTrainingModule(VLMBundle(model, None, cfg.model), stage)
    trainer = L.Trainer(max_steps=args.steps, precision=args.precision or cfg.trainer.precision,
                        devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
                        num_sanity_val_steps=0,
                        gradient_clip_val=cfg.trainer.get("gradient_clip_val"))
    trainer.fit(module, train_dataloaders=DataLoader(Cycle(batches), batch_size=None))
    seconds = sum(timer.times)
    peak, device = peak_tflops(args.peak_tflops)
    flops = sum(timer.flops)
    first = batches[0]["input_ids"].shape
    return {
        **variant, "device": device, "rows_x_length": list(first),
        "timed_steps": len(timer.times), "median_step_s": round(statistics.median(timer.times), 4),
        "samples_per_step": round(statistics.mean(timer.samples), 1),
        "tokens_per_s": round(sum(timer.tokens) / seconds, 1),
        "padding": round(1 - sum(timer.tokens) / sum(
            b["input_ids"].numel() for b in batches[args.warmup:args.steps]), 4),
        "model_tflops_per_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / (peak * 1e12), 4) if peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="allava_stablelm2")
    parser.add_argument("--stage", default="finetune", choices=["pretrain", "finetune"])
    parser.add_argument("--batching", default="packed",
                        choices=["packed", "length-aware", "random", "full"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timings")
    parser.add_argument("--batch-size", type=int, help="samples per step (default: the stage's)")
    parser.add_argument("--seq-len", type=int, default=2048, help="sequence length of `full`")
    parser.add_argument("--row-length", type=int, help="packed row length (default 2 x max_length)")
    parser.add_argument("--attn", help="attention implementation (default: the preset's)")
    parser.add_argument("--no-checkpointing", action="store_true",
                        help="gradient checkpointing off (default: the preset's setting)")
    parser.add_argument("--precision", help="Lightning precision (default: the recipe's)")
    parser.add_argument("--suite", action="store_true", help="measure every variant of SUITE")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, if not detected")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of configs/train.yaml")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        raise SystemExit("--steps must exceed --warmup")

    cfg, preset = compose_recipe(args.experiment, args.overrides)
    stage = OmegaConf.to_container(cfg.stage[args.stage], resolve=False)
    stage = {k: v for k, v in stage.items() if k != "mixture"}
    stage["train"] = trainable_modules(stage, cfg.stage.policy)
    L.seed_everything(0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        model = build_model(cfg, preset, Path(workdir))
    print(f"model built in {time.perf_counter() - start:.0f} s", flush=True)
    default = dict(batching=args.batching, attn=args.attn or model.llm.config._attn_implementation,
                   checkpointing=bool(cfg.model.get("gradient_checkpointing"))
                   and not args.no_checkpointing,
                   batch_size=args.batch_size or int(stage.get("batch_size") or 8))
    variants = SUITE if args.suite else [default]
    results = []
    for variant in variants:
        began = time.perf_counter()
        try:
            result = measure(model, cfg, stage, args.stage, variant, args)
        except Exception as error:  # one variant failing (e.g. a kernel missing) is a result
            traceback.print_exc()
            result = {**variant, "error": f"{type(error).__name__}: {str(error)[:300]}"}
        result["wall_s"] = round(time.perf_counter() - began, 1)
        results.append(result)
        print(json.dumps(result), flush=True)
        # The finished variant's gradients and optimizer states go before the next one's.
        model.zero_grad(set_to_none=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    summary = {"experiment": args.experiment, "stage": args.stage, "llm": preset,
               "trains": stage["train"], "image_tokens": model.num_image_tokens,
               "parameters": {name: sum(p.numel() for p in getattr(model, name).parameters())
                              for name in ("vision", "connector", "llm")},
               "results": results}
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


def print_table(results: list[dict]) -> None:
    print("| batching | ckpt | attention | batch | rows x length | tokens/s | MFU | peak GiB | padding |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['batching']} | {r['checkpointing']} | {r['attn']} | {r['batch_size']} | "
                  f"failed: {r['error'][:80]} | | | | |")
            continue
        mfu = f"{100 * r['mfu']:.1f} %" if r["mfu"] is not None else "n/a"
        print(f"| {r['batching']} | {'on' if r['checkpointing'] else 'off'} | {r['attn']} | "
              f"{r['batch_size']} | {r['rows_x_length'][0]} x {r['rows_x_length'][1]} | "
              f"{r['tokens_per_s']:.0f} | {mfu} | {r['peak_memory_gib']} | "
              f"{100 * r['padding']:.1f} % |")


if __name__ == "__main__":
    main()
