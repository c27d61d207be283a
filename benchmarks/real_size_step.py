"""One training stage of a paper recipe at real size, random weights, on synthetic batches:
tokens/s, MFU and peak GPU memory, through the same LightningModule and Trainer as train.py.

    python benchmarks/real_size_step.py                          # allava_stablelm2, finetune, 30 steps
    python benchmarks/real_size_step.py --stage pretrain --steps 30 --out result.json
    python benchmarks/real_size_step.py --batch-size 4 --seq-len 1024 model/llm=qwen2_5_0_5b

Nothing is downloaded: the tower is built by timm with random weights and the LLM from its
architecture facts (tests/helpers/fixtures/llm_configs/<preset>.json). Every batch holds `--batch-size`
sequences of exactly `--seq-len` tokens: one 336 px image (576 tokens) and random text, with the
loss on the text. Trailing arguments are Hydra overrides of configs/train.yaml.

MFU = the step's model FLOPs (`model_flops_per_step`: LLM matmuls and attention, the frozen
tower's forward, the connector; gradient checkpointing's recomputation not counted) per second,
over the GPU's dense bf16 peak.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, IterableDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import allava  # noqa: E402,F401  (config resolvers)
from allava.models.build import VLMBundle  # noqa: E402
from allava.models.vlm import VisionLanguageModel  # noqa: E402
from allava.training.acceleration import enable_gradient_checkpointing  # noqa: E402
from allava.training.module import VLMTrainingModule  # noqa: E402
from allava.training.trainable import trainable_modules  # noqa: E402
from tests.models.test_llm_presets import local_architecture  # noqa: E402

FIXTURES = ROOT / "tests" / "helpers" / "fixtures" / "llm_configs"
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


class SyntheticBatches(IterableDataset):
    """Endless batches of one image + random text per sequence, all exactly `seq_len` long."""

    def __init__(self, batch_size: int, seq_len: int, image_tokens: int, image_side: int,
                 image_token_id: int, vocab_size: int):
        self.shape = (batch_size, seq_len)
        self.image_tokens, self.image_side = image_tokens, image_side
        self.image_token_id, self.vocab_size = image_token_id, vocab_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(0)
        while True:
            batch, length = self.shape
            tokens = torch.randint(1, self.vocab_size - 1, self.shape, generator=generator)
            tokens[:, 1:1 + self.image_tokens] = self.image_token_id
            labels = tokens.clone()
            labels[:, :1 + self.image_tokens] = -100
            yield {"input_ids": tokens, "attention_mask": torch.ones_like(tokens), "labels": labels,
                   "pixel_values": torch.randn(batch, 3, self.image_side, self.image_side,
                                               generator=generator)}


class StepTimer(L.Callback):
    """Wall time of every optimizer step (CUDA synchronised), and peak memory after warm-up."""

    def __init__(self, warmup: int):
        self.warmup, self.times, self._start = warmup, [], None

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


def compose_recipe(experiment: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", *overrides],
                      return_hydra_config=True)
    preset = cfg.hydra.runtime.choices["model/llm"]
    if not (FIXTURES / f"{preset}.json").is_file():
        raise SystemExit(f"no architecture fixture for model/llm={preset} in {FIXTURES}")
    return cfg, preset


def build_model(cfg, preset: str, workdir: Path) -> VisionLanguageModel:
    local_architecture(preset, workdir)  # the preset's config.json, as a hub snapshot has it
    vision = OmegaConf.to_container(cfg.model.vision, resolve=True)
    vision.update(weights="none")
    llm_node = OmegaConf.to_container(cfg.model.llm.model, resolve=True)
    llm_node.update(name_or_path=str(workdir), weights="none", trust_remote_code=False)
    tower = hydra.utils.instantiate(vision)
    llm = hydra.utils.instantiate(llm_node)
    connector = hydra.utils.instantiate(
        OmegaConf.to_container(cfg.model.connector, resolve=True),
        in_dim=tower.feature_dim, out_dim=llm.get_input_embeddings().embedding_dim)
    # The last vocabulary row stands in for `<image>` (its embedding is overwritten anyway).
    return VisionLanguageModel(tower, connector, llm,
                               image_token_id=llm.get_input_embeddings().num_embeddings - 1)


def model_flops_per_step(model: VisionLanguageModel, batch: int, seq_len: int,
                         llm_trains: bool) -> float:
    """Matmul FLOPs of forward + backward. A trained LLM costs 6 per parameter and token (2
    forward, 4 backward); a frozen one 4 (no weight gradients, but the input gradient still
    flows to the connector). The input embedding is a lookup: left out unless tied to the head."""
    config = model.llm.config
    llm_params = sum(p.numel() for p in model.llm.parameters())
    if not config.tie_word_embeddings:
        llm_params -= model.llm.get_input_embeddings().weight.numel()
    per_param = 6 if llm_trains else 4
    tokens = batch * seq_len
    attention = per_param * 2 * config.num_hidden_layers * config.hidden_size * seq_len ** 2 * batch
    tower = 2 * sum(p.numel() for p in model.vision.parameters()) * model.vision.num_patches() * batch
    connector = 6 * sum(p.numel() for p in model.connector.parameters()) * model.num_image_tokens * batch
    return per_param * llm_params * tokens + attention + tower + connector


def peak_tflops(explicit: float | None) -> tuple[float | None, str]:
    if not torch.cuda.is_available():
        return explicit, "cpu"
    name = torch.cuda.get_device_name()
    if explicit:
        return explicit, name
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="allava_stablelm2")
    parser.add_argument("--stage", default="finetune", choices=["pretrain", "finetune"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timings")
    parser.add_argument("--batch-size", type=int, help="per device (default: the stage's)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, if not detected")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of configs/train.yaml")
    args = parser.parse_args()
    if args.steps <= args.warmup:
        raise SystemExit("--steps must exceed --warmup")

    cfg, preset = compose_recipe(args.experiment, args.overrides)
    stage = OmegaConf.to_container(cfg.stage[args.stage], resolve=False)
    stage = {k: v for k, v in stage.items() if k != "mixture"}
    stage["train"] = trainable_modules(stage, cfg.stage.policy)
    batch_size = args.batch_size or int(stage.get("batch_size") or 8)
    L.seed_everything(0)
    with tempfile.TemporaryDirectory() as workdir:
        model = build_model(cfg, preset, Path(workdir))
    if cfg.model.get("gradient_checkpointing"):
        enable_gradient_checkpointing(model)
    image_tokens = model.num_image_tokens
    if args.seq_len <= image_tokens + 2:
        raise SystemExit(f"--seq-len must exceed the {image_tokens} image tokens + 2")
    data = SyntheticBatches(batch_size, args.seq_len, image_tokens, model.vision.image_size,
                            model.image_token_id, model.llm.get_input_embeddings().num_embeddings)
    module = VLMTrainingModule(VLMBundle(model, None, cfg.model), stage)
    timer = StepTimer(args.warmup)
    trainer = L.Trainer(max_steps=args.steps, precision=cfg.trainer.precision, devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[timer], num_sanity_val_steps=0,
                        gradient_clip_val=cfg.trainer.get("gradient_clip_val"))
    trainer.fit(module, train_dataloaders=DataLoader(data, batch_size=None))

    step = statistics.median(timer.times)
    peak, device = peak_tflops(args.peak_tflops)
    flops = model_flops_per_step(model, batch_size, args.seq_len, "llm" in stage["train"])
    result = {
        "experiment": args.experiment, "stage": args.stage, "llm": preset, "device": device,
        "precision": cfg.trainer.precision, "trains": stage["train"],
        "gradient_checkpointing": bool(cfg.model.get("gradient_checkpointing")),
        "batch_size": batch_size, "seq_len": args.seq_len, "image_tokens": image_tokens,
        "timed_steps": len(timer.times), "median_step_s": round(step, 4),
        "tokens_per_s": round(batch_size * args.seq_len / step, 1),
        "model_tflops_per_step": round(flops / 1e12, 2),
        "mfu": round(flops / step / (peak * 1e12), 4) if peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available() else None,
        "parameters": {name: sum(p.numel() for p in getattr(model, name).parameters())
                       for name in ("vision", "connector", "llm")},
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
