"""One training step of our model against transformers' `LlavaForConditionalGeneration` holding
the very same weights: time per step and the step's peak memory, on the CPU.

    python benchmarks/vs_hf_llava.py                     # defaults: 3-6 minutes on 2 cores
    python benchmarks/vs_hf_llava.py --rounds 9 --llm-layers 12 --seq-len 512 --out result.json

The model is ALLaVA's layout at a size a CPU can step: a ViT of OpenAI CLIP's layout
(`vit_base_patch16_clip_quickgelu_224` from timm, features of the second-to-last block, class
token dropped: 196 image tokens), the `mlp2x_gelu` connector and a Llama built from a config
(`--llm-layers` x `--llm-hidden`, 64-wide heads, MLP 2.75x the width, vocabulary 32,000: 168 M
parameters, 0.63 GiB in float32, by default). Everything is random-initialised in float32;
nothing is downloaded. Ours is assembled from the classes the `model` config nodes instantiate
(`TimmVisionTower`, `MLPConnector`, `build_language_model`); the reference is that model
written by the project's own stock-LLaVA export (`allava.export.hf_llava.write_llava`) and
read back by `LlavaForConditionalGeneration.from_pretrained`, so both hold identical weights
(the losses must agree to 1e-4, relative, or the script stops). Both use sdpa attention. As in
ALLaVA, the tower is frozen (no gradient, eval mode) and the connector and the LLM train.

The batch is the same for both: `--batch-size` sequences of [BOS, a 15-token prompt, the
image's placeholders, a 32-token question, the answer, EOS], padded on the right to
`--seq-len` tokens (every other sample's answer is a quarter shorter, so the attention mask
has padding); labels are set on the answer and EOS only. Our step is what training runs,
`VisionLanguageModel.supervised_loss(..., reduction="token")` (vocabulary logits only where a
label is set); the reference's is `model(..., labels=..., use_cache=False).loss` (logits at
every position, the loss averaged over the supervised tokens, as ours with `reduction="token"`).
A step is: grads set to None, forward, loss, backward; no optimizer (it would cost both the
same).

Time: after `--warmup` steps each, `--rounds` rounds of one step of each model, alternating
(ours, ref, ours, ref, ...), so that a slow spell of a shared machine hits both. Reported: the
median wall time per model and the ratio of the medians; the median of the rounds' own ratios
(the two steps of a round ran back to back, so this one cancels most of a drifting load); and
the process's CPU time per step (`time.process_time`), which depends less on how much of the
CPUs other processes took. The 1-minute load average before and after says how shared the
machine was: with other work running, differences under ~20% are within the noise.

Peak memory: each model steps again in a fresh child process (this script with
`--measure-memory`): a process's resident set does not shrink back reliably enough to measure a
second model after a first. The child builds the model and the batch, runs one warm-up step
(one-time allocations: kernel caches, thread pools), then resets the kernel's high-water mark
to the current resident set (`/proc/self/clear_refs`, "5") and reads VmHWM - VmRSS after the
forward (what it keeps for the backward, at its peak) and after the backward (the whole step:
gradients + activations + temporaries). Children run with glibc's mmap threshold pinned at
64 KiB (`MALLOC_MMAP_THRESHOLD_`), so that every tensor larger than that is its own mapping,
returned to the kernel when freed: the resident set then follows the live tensors instead of
what malloc kept from the warm-up step (unpinned, the warm-up's freed memory hides most of the
next step's). `tracemalloc` sees no tensor memory, and torch keeps no peak counter on the CPU.
The gradients, the same in both models and most of the step's peak, are shown on their own line.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import LlavaForConditionalGeneration
from transformers.utils import logging as hf_logging

from allava.export.hf_llava import write_llava
from allava.models.build import VLMBundle
from allava.models.connectors import MLPConnector
from allava.models.language_model import build_language_model
from allava.models.processor import VLMProcessor
from allava.models.vision_tower import TimmVisionTower
from allava.models.vlm import VisionLanguageModel
from allava.toy.tokenizer import train_toy_tokenizer
from allava.training.trainable import apply_trainable, keep_frozen_in_eval_mode

TOWER = "vit_base_patch16_clip_quickgelu_224"
VOCAB = 32_000
PROMPT_TOKENS, QUESTION_TOKENS = 15, 32
TOLERANCE = 1e-4  # relative, on the loss
GIB = 2**30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=384,
                        help="tokens of the longest sequence (image placeholders included)")
    parser.add_argument("--llm-layers", type=int, default=8)
    parser.add_argument("--llm-hidden", type=int, default=1024,
                        help="Llama width; 64-wide heads, MLP 2.75x as wide")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    parser.add_argument("--measure-memory", choices=["ours", "ref"], help=argparse.SUPPRESS)
    parser.add_argument("--export-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the two models --------------------------------------------------------------------------

def llm_config(args: argparse.Namespace) -> dict:
    """A Llama of TinyLlama's proportions (untied head, MLP 2.75x the width)."""
    intermediate = 256 * round(args.llm_hidden * 2.75 / 256)
    return dict(model_type="llama", vocab_size=VOCAB, hidden_size=args.llm_hidden,
                intermediate_size=intermediate, num_hidden_layers=args.llm_layers,
                num_attention_heads=args.llm_hidden // 64,
                num_key_value_heads=args.llm_hidden // 64,
                max_position_embeddings=max(2048, args.seq_len), rms_norm_eps=1e-5,
                tie_word_embeddings=False)


def tiny_tokenizer():
    """A throwaway tokenizer: the export writes one, and it fixes the `<image>` id. The text of
    the batch is random ids, so what it learnt does not matter."""
    with tempfile.TemporaryDirectory() as folder:
        return train_toy_tokenizer(["a red circle left of a blue square"] * 4, folder,
                                   vocab_size=300)


def build_ours(args: argparse.Namespace) -> VLMBundle:
    """Seeded, so that a child process rebuilds the very same weights."""
    torch.manual_seed(args.seed)
    tokenizer = tiny_tokenizer()
    tower = TimmVisionTower(TOWER, weights="none", feature_layer=-2, image_size=224,
                            image_mode="pad", prefix_tokens="drop")
    llm = build_language_model(config=llm_config(args), attn_implementation="sdpa")
    connector = MLPConnector(tower.feature_dim, llm.get_input_embeddings().embedding_dim, depth=2)
    model = VisionLanguageModel(tower, connector, llm, tokenizer.convert_tokens_to_ids("<image>"))
    processor = VLMProcessor(tokenizer, model.num_image_tokens,
                             image_transform=tower.image_transform())
    apply_trainable(model, ["connector", "llm"])  # ALLaVA's policy in both stages
    model.train()
    keep_frozen_in_eval_mode(model)
    return VLMBundle(model, processor, config=None)


def load_reference(export_dir: Path) -> LlavaForConditionalGeneration:
    """The exported directory as transformers reads it, frozen the way ours is."""
    ref, info = LlavaForConditionalGeneration.from_pretrained(
        export_dir, dtype=torch.float32, attn_implementation="sdpa", output_loading_info=True)
    if any(info.values()):
        raise RuntimeError(f"the export did not load cleanly: {info}")
    ref.train()
    ref.model.vision_tower.requires_grad_(False).eval()
    return ref


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- the batch and the step ------------------------------------------------------------------

def make_batch(args: argparse.Namespace, tokenizer, image_tokens: int, image_token_id: int
               ) -> dict[str, torch.Tensor]:
    """Random text ids around each image's placeholders; labels on the answer and EOS."""
    generator = torch.Generator().manual_seed(args.seed)
    answer = args.seq_len - (2 + PROMPT_TOKENS + image_tokens + QUESTION_TOKENS)
    if answer < 4:
        raise SystemExit(f"--seq-len must leave room for an answer after the {image_tokens} "
                         f"image tokens (at least {args.seq_len - answer + 4})")
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    first_text_id = max(image_token_id, bos, eos, pad) + 1  # text never mimics a special id

    def text(count: int) -> torch.Tensor:
        return torch.randint(first_text_id, VOCAB, (count,), generator=generator)

    ids = torch.full((args.batch_size, args.seq_len), pad)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for row in range(args.batch_size):
        length = answer if row % 2 == 0 else answer - answer // 4
        sample = torch.cat([torch.tensor([bos]), text(PROMPT_TOKENS),
                            torch.full((image_tokens,), image_token_id), text(QUESTION_TOKENS),
                            text(length), torch.tensor([eos])])
        ids[row, :len(sample)] = sample
        mask[row, :len(sample)] = 1
        labels[row, len(sample) - length - 1:len(sample)] = sample[-length - 1:]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "pixel_values": torch.randn(args.batch_size, 3, 224, 224, generator=generator)}


def forward_loss(kind: str, model: torch.nn.Module, batch: dict[str, torch.Tensor]
                 ) -> torch.Tensor:
    if kind == "ours":
        return model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                     batch["pixel_values"], batch["labels"], reduction="token")
    # use_cache=False as ours: a training step keeps no KV cache.
    return model(**batch, use_cache=False).loss


def step(kind: str, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Grads to None, forward, loss, backward; returns the loss."""
    model.zero_grad(set_to_none=True)
    loss = forward_loss(kind, model, batch)
    loss.backward()
    return loss.item()


def timed_rounds(models: dict[str, torch.nn.Module], batch: dict[str, torch.Tensor],
                 warmup: int, rounds: int) -> tuple[dict[str, dict[str, list[float]]],
                                                    dict[str, float]]:
    """Wall and CPU seconds of each step, models alternating step by step; and each model's
    loss (of its first step: all steps compute the same one, nothing updates the weights)."""
    losses = {kind: step(kind, model, batch) for kind, model in models.items()}
    for _ in range(warmup - 1):
        for kind, model in models.items():
            step(kind, model, batch)
    times = {kind: {"wall": [], "cpu": []} for kind in models}
    for index in range(rounds):
        for kind, model in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step(kind, model, batch)
            times[kind]["wall"].append(time.perf_counter() - wall)
            times[kind]["cpu"].append(time.process_time() - cpu)
        print(f"  round {index + 1}/{rounds}: "
              + ", ".join(f"{k} {v['wall'][-1]:.2f} s" for k, v in times.items()), flush=True)
    return times, losses


# --- peak memory, in a child process ---------------------------------------------------------

def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_memory_here(args: argparse.Namespace) -> dict:
    """Runs in the child: one warm-up step, then the high-water mark across one more."""
    torch.set_num_threads(args.threads)
    if args.measure_memory == "ours":
        model = build_ours(args).model
        image_tokens, image_token_id = model.num_image_tokens, model.image_token_id
    else:
        model = load_reference(args.export_dir)
        image_tokens, image_token_id = model.config.image_seq_length, model.config.image_token_id
    batch = make_batch(args, tiny_tokenizer(), image_tokens, image_token_id)
    step(args.measure_memory, model, batch)
    model.zero_grad(set_to_none=True)
    gc.collect()
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)
    loss = forward_loss(args.measure_memory, model, batch)
    forward_peak = _status_kib("VmHWM")  # what the forward keeps for the backward, at its peak
    loss.backward()
    step_peak = _status_kib("VmHWM")
    return {"rest_gib": before * 1024 / GIB, "forward_gib": (forward_peak - before) * 1024 / GIB,
            "step_gib": (step_peak - before) * 1024 / GIB, "loss": loss.item()}


def measure_memory(kind: str, export_dir: Path, argv: list[str]) -> dict:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    command = [sys.executable, __file__, *argv, "--measure-memory", kind,
               "--export-dir", str(export_dir)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"memory child for {kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the comparison --------------------------------------------------------------------------

def compare(args: argparse.Namespace, argv: list[str]) -> dict:
    """Builds both models, checks they agree, times them, then measures their memory."""
    bundle = build_ours(args)
    ours = bundle.model
    batch = make_batch(args, bundle.tokenizer, ours.num_image_tokens, ours.image_token_id)
    supervised = int((batch["labels"][:, 1:] != -100).sum())
    with tempfile.TemporaryDirectory() as workdir:
        export_dir = write_llava(bundle, Path(workdir) / "hf")
        ref = load_reference(export_dir)
        if ref.config.image_token_id != ours.image_token_id:
            raise RuntimeError("the export's image token id differs from ours")
        if trainable(ref) != trainable(ours):
            raise RuntimeError(f"trainable parameters differ: {trainable(ours)} vs "
                               f"{trainable(ref)}")
        print(f"{sum(p.numel() for p in ours.parameters()) / 1e6:.0f} M parameters, "
              f"{trainable(ours) / 1e6:.0f} M trainable; batch {tuple(batch['input_ids'].shape)}, "
              f"{ours.num_image_tokens} image tokens per sequence, {supervised} supervised tokens",
              flush=True)
        times, losses = timed_rounds({"ours": ours, "ref": ref}, batch, args.warmup, args.rounds)
        relative = abs(losses["ours"] - losses["ref"]) / abs(losses["ref"])
        if relative > TOLERANCE:
            raise SystemExit(f"losses differ: ours {losses['ours']} vs reference {losses['ref']}")
        grad_gib = trainable(ours) * 4 / GIB  # float32 gradients
        del ours, ref, bundle  # the children get the machine's memory to themselves
        gc.collect()
        print("peak memory, one child process per model ...", flush=True)
        memory = {kind: measure_memory(kind, export_dir, argv) for kind in ("ours", "ref")}
    for kind in ("ours", "ref"):
        if abs(memory[kind]["loss"] - losses[kind]) > TOLERANCE * abs(losses[kind]):
            raise SystemExit(f"the {kind} memory child computed another loss")
    result = {
        "cpu": cpu_name(), "threads": args.threads,
        "torch": torch.__version__, "tower": TOWER, "llm": llm_config(args),
        "batch_size": args.batch_size, "seq_len": args.seq_len, "supervised_tokens": supervised,
        "warmup": args.warmup, "rounds": args.rounds, "grad_gib": grad_gib,
        "loss_rel_diff": relative,
    }
    for kind in ("ours", "ref"):
        result[kind] = {"median_s": statistics.median(times[kind]["wall"]),
                        "median_cpu_s": statistics.median(times[kind]["cpu"]),
                        "times_s": times[kind]["wall"], "cpu_times_s": times[kind]["cpu"],
                        "loss": losses[kind], **memory[kind]}
    ours_s, ref_s = times["ours"]["wall"], times["ref"]["wall"]
    result["time_ratio"] = result["ours"]["median_s"] / result["ref"]["median_s"]
    # Each round's two steps ran back to back: their ratio cancels slow spells of the machine.
    result["paired_ratio"] = statistics.median(a / b for a, b in zip(ours_s, ref_s))
    result["cpu_ratio"] = result["ours"]["median_cpu_s"] / result["ref"]["median_cpu_s"]
    result["memory_ratio"] = result["ours"]["step_gib"] / result["ref"]["step_gib"]
    result["forward_memory_ratio"] = result["ours"]["forward_gib"] / result["ref"]["forward_gib"]
    return result


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def table(result: dict) -> str:
    ours, ref = result["ours"], result["ref"]

    def row(name: str, a: str, b: str, ratio: str = "") -> str:
        return f"| {name} | {a} | {b} | {ratio} |"

    def listed(times: list[float]) -> str:
        return " ".join(f"{t:.2f}" for t in times)

    return "\n".join([
        "| | ours | HF LlavaForConditionalGeneration | ours / HF |",
        "|---|---|---|---|",
        row("step time, median (s)", f"{ours['median_s']:.3f}", f"{ref['median_s']:.3f}",
            f"{result['time_ratio']:.3f}"),
        row("step times, in round order (s)", listed(ours["times_s"]), listed(ref["times_s"]),
            f"{result['paired_ratio']:.3f} (median of the rounds' ratios)"),
        row("CPU time per step, median (s)", f"{ours['median_cpu_s']:.3f}",
            f"{ref['median_cpu_s']:.3f}", f"{result['cpu_ratio']:.3f}"),
        row("peak memory increase, whole step (GiB)", f"{ours['step_gib']:.3f}",
            f"{ref['step_gib']:.3f}", f"{result['memory_ratio']:.3f}"),
        row("peak memory increase, forward (GiB)", f"{ours['forward_gib']:.3f}",
            f"{ref['forward_gib']:.3f}", f"{result['forward_memory_ratio']:.3f}"),
        row("of the step's peak: float32 gradients (GiB)", f"{result['grad_gib']:.3f}",
            f"{result['grad_gib']:.3f}"),
        row("resident before the step (GiB)", f"{ours['rest_gib']:.2f}", f"{ref['rest_gib']:.2f}"),
        row("loss", f"{ours['loss']:.6f}", f"{ref['loss']:.6f}",
            f"relative difference {result['loss_rel_diff']:.1e}"),
    ])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.warmup < 1 or args.rounds < 1:
        raise SystemExit("--warmup and --rounds must be at least 1")
    hf_logging.disable_progress_bar()
    if args.measure_memory:
        print(json.dumps(measure_memory_here(args)))
        return
    torch.set_num_threads(args.threads)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    result = compare(args, argv)
    # Other processes share the CPUs; the load average says how much of them this run had.
    result["load_average"] = [load_before, os.getloadavg()[0]]
    result["wall_s"] = time.perf_counter() - started
    print()
    print(table(result))
    print(f"\nwall time {result['wall_s']:.0f} s; 1-minute load average "
          f"{load_before:.1f} at the start, {result['load_average'][1]:.1f} at the end "
          f"({args.threads} threads on {os.cpu_count()} CPUs)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
