"""Eval throughput: `VLMPredictor.answer` on toy POPE, one item at a time against batched.

    python benchmarks/eval_throughput.py [--items 256] [--repeats 5] [--batch-sizes 1 16 64]

The model is the toy default composed from `configs/train.yaml` (`model: toy`: resnet10t tower,
MLP connector, 4-layer 128-wide Llama, the toy world's tokenizer), with random weights unless
`--model-dir` names a trained export. The toy world is generated under `data.root` first if it
is missing (as `train.py` does; it trains the tokenizer). The POPE items are fresh
(`write_toy_pope`), loaded with `load_tsv_benchmark`, and prompted as the eval runner does
(`build_prompt` with the benchmark's default style).

Images are decoded once, before timing (the runner decodes them per batch; the script prints
what that costs). A timed pass answers every item in batches of the given size through
`VLMPredictor.answer`: tokenization, the image transform, the tower and connector, and greedy
KV-cached generation with left padding, then decoding the answers. Every pass generates
exactly `--max-new-tokens` tokens per item (`min_new_tokens` is set to the same number), so
that random weights, which may emit EOS at any step, decode as much as a trained model that
answers at full length, and every batch size does the same work per item.

Batch sizes are timed round-robin, in a rotated order each repeat, after one untimed warm-up
pass each; the figures are medians over `--repeats` passes, and the ratio is against batch
size 1 measured in the same run. The predictions of every batch size (text and token ids) are
compared with those of batch size 1 (greedy decoding: any difference comes from padding or
batching); POPE prompts differ by a token at most, so a second check mixes POPE with toy MCQ
items in one batch (up to ~20 tokens of left padding) and compares again.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import allava  # noqa: F401  (registers the config resolvers)
from allava.toy.benchmarks import write_toy_mcq, write_toy_pope
from allava.evaluation import build_prompt, default_prompt_style, load_tsv_benchmark
from allava.models.predictor import VLMPredictor, load_model
from allava.models.build import build_vlm

ROOT = Path(__file__).resolve().parents[1]


def make_predictor(args: argparse.Namespace) -> VLMPredictor:
    if args.model_dir:
        return load_model(args.model_dir)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=list(args.overrides), return_hydra_config=True)
    cfg.paths.root_dir = str(ROOT)
    cfg.paths.output_dir = str(ROOT / "logs" / "eval_throughput")
    del cfg.hydra
    OmegaConf.resolve(cfg)
    from allava.toy.setup import ensure_toy_world

    ensure_toy_world(cfg.data.root, cfg.data.generate)  # the tokenizer lives there
    torch.manual_seed(args.seed)
    return VLMPredictor(build_vlm(cfg.model))


def answer_all(predictor: VLMPredictor, questions: list[str], images: list, batch_size: int,
               max_new_tokens: int) -> list[str]:
    """What the runner's loop does with decoded images: `answer` per batch of `batch_size`."""
    outputs: list[str] = []
    for start in range(0, len(questions), batch_size):
        outputs += predictor.answer(questions[start:start + batch_size],
                                    images[start:start + batch_size],
                                    max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    return outputs


@torch.inference_mode()
def generate_ids(predictor: VLMPredictor, questions: list[str], images: list, batch_size: int,
                 max_new_tokens: int) -> list[list[int]]:
    """The new token ids `answer` decodes (the same `prepare` and `generate` calls), so that the
    comparison also sees tokens that decoding with `skip_special_tokens` would hide."""
    ids: list[list[int]] = []
    for start in range(0, len(questions), batch_size):
        batch = predictor.prepare(questions[start:start + batch_size],
                                  images[start:start + batch_size])
        batch = {k: (v.to(predictor.device) if v is not None else None) for k, v in batch.items()}
        ids += predictor.model.generate(**batch, max_new_tokens=max_new_tokens,
                                        min_new_tokens=max_new_tokens, do_sample=False,
                                        temperature=None, top_p=None, top_k=None).tolist()
    return ids


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine spent busy so far (Linux `/proc/stat`), else None."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def padding_fraction(lengths: list[int], batch_size: int) -> float:
    padded = real = 0
    for start in range(0, len(lengths), batch_size):
        chunk = lengths[start:start + batch_size]
        padded += max(chunk) * len(chunk)
        real += sum(chunk)
    return 1 - real / padded


def check_heavy_padding(predictor: VLMPredictor, questions: list[str], images: list,
                        reference: list[list[int]], batch_size: int, args: argparse.Namespace
                        ) -> dict:
    """POPE prompts differ by a token or two, so the timed batches barely pad. Here each batch
    mixes POPE items with toy MCQ items (longer prompts: the options), so the POPE prompts get
    many left-padding positions; every answer must equal its batch-size-1 answer."""
    count = min(len(questions), batch_size * 2)
    with tempfile.TemporaryDirectory() as tmp:
        mcq = load_tsv_benchmark(write_toy_mcq(Path(tmp) / "toy_mcq.tsv", count, args.pope_seed))
    mcq_questions = [build_prompt(item, mcq.kind, default_prompt_style("toy_mcq"))
                     for item in mcq.items]
    mcq_images = [item.load_image() for item in mcq.items]
    mixed_questions = [q for pair in zip(questions[:count], mcq_questions) for q in pair]
    mixed_images = [i for pair in zip(images[:count], mcq_images) for i in pair]
    mixed = generate_ids(predictor, mixed_questions, mixed_images, batch_size,
                         args.max_new_tokens)
    single_mcq = generate_ids(predictor, mcq_questions, mcq_images, 1, args.max_new_tokens)
    expected = [a for pair in zip(reference[:count], single_mcq) for a in pair]
    lengths = [len(predictor.bundle.processor.encode_prompt(q, True)) for q in mixed_questions]
    pads = [max(lengths[s:s + batch_size]) - n for s in range(0, len(lengths), batch_size)
            for n in lengths[s:s + batch_size]]
    differing = [i for i, (a, b) in enumerate(zip(expected, mixed)) if a != b]
    print(f"\npadding check: {len(mixed)} items (POPE and toy MCQ alternating) in batches of "
          f"{batch_size}, left padding 0-{max(pads)} tokens (POPE items: "
          f"{statistics.median(pads[0::2]):g} median): "
          f"{len(mixed) - len(differing)}/{len(mixed)} answers (token ids) equal to batch size 1")
    for i in differing[:3]:
        print(f"  {'POPE' if i % 2 == 0 else 'MCQ'} item, {pads[i]} padding tokens: batch 1 "
              f"{expected[i]!r}, batched {mixed[i]!r}")
    return {"items": len(mixed), "batch_size": batch_size, "max_padding": max(pads),
            "differing": len(differing)}


@torch.inference_mode()
def breakdown(predictor: VLMPredictor, questions: list[str], images: list, batch_size: int,
              max_new_tokens: int) -> dict[str, float]:
    """Seconds per item in each part of `answer` (the same steps, timed one by one)."""
    model, parts = predictor.model, dict.fromkeys(("prepare", "tower+connector", "generate",
                                                   "decode text"), 0.0)
    for start in range(0, len(questions), batch_size):
        t0 = time.perf_counter()
        batch = predictor.prepare(questions[start:start + batch_size],
                                  images[start:start + batch_size])
        t1 = time.perf_counter()
        embeds = model.embed(batch["input_ids"], batch["pixel_values"])
        t2 = time.perf_counter()
        new = model.llm.generate(inputs_embeds=embeds, attention_mask=batch["attention_mask"],
                                 use_cache=True, max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None)
        t3 = time.perf_counter()
        predictor.bundle.tokenizer.batch_decode(new, skip_special_tokens=True)
        t4 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[name] += seconds
    return {name: seconds / len(questions) for name, seconds in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=256, help="toy POPE items per pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--max-new-tokens", type=int, default=8,
                        help="tokens generated per item, forced (eval.yaml's default is 8)")
    parser.add_argument("--seed", type=int, default=0, help="weights' seed (random init)")
    parser.add_argument("--pope-seed", type=int, default=4242)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's)")
    parser.add_argument("--model-dir", default=None,
                        help="a trained export instead of random weights")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-part timing")
    parser.add_argument("--no-padding-check", action="store_true",
                        help="skip the check with long left padding (POPE mixed with toy MCQ)")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of configs/train.yaml")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batch_sizes = list(dict.fromkeys(args.batch_sizes))
    if 1 not in batch_sizes:
        batch_sizes.insert(0, 1)  # the baseline every ratio is against

    predictor = make_predictor(args)
    with tempfile.TemporaryDirectory() as tmp:
        benchmark = load_tsv_benchmark(write_toy_pope(Path(tmp) / "toy_pope.tsv", args.items,
                                                      args.pope_seed))
    style = default_prompt_style("toy_pope")
    questions = [build_prompt(item, benchmark.kind, style) for item in benchmark.items]
    start = time.perf_counter()
    images = [item.load_image() for item in benchmark.items]
    decode_seconds = time.perf_counter() - start
    lengths = [len(predictor.bundle.processor.encode_prompt(q, True)) for q in questions]
    size = images[0].size
    print(f"{len(questions)} toy POPE items, {size[0]}x{size[1]} px, prompts of "
          f"{min(lengths)}-{max(lengths)} tokens (median {statistics.median(lengths):g}, "
          f"{predictor.model.num_image_tokens} of them image tokens); "
          f"{args.max_new_tokens} new tokens per item; {torch.get_num_threads()} torch threads; "
          f"weights: {args.model_dir or f'random (seed {args.seed})'}")
    print(f"decoding the {len(images)} images beforehand took {decode_seconds * 1000:.0f} ms "
          f"({decode_seconds / len(images) * 1000:.2f} ms per item; not in the timings below)")

    predictions: dict[int, list[str]] = {}
    token_ids: dict[int, list[list[int]]] = {}
    for batch_size in batch_sizes:  # warm-up pass, kept for the comparison
        predictions[batch_size] = answer_all(predictor, questions, images, batch_size,
                                             args.max_new_tokens)
        token_ids[batch_size] = generate_ids(predictor, questions, images, batch_size,
                                             args.max_new_tokens)
    times: dict[int, list[float]] = {b: [] for b in batch_sizes}
    mismatched_passes = 0
    load_before = os.getloadavg()[0]
    wall0, busy0, own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    for repeat in range(args.repeats):
        shift = repeat % len(batch_sizes)
        for batch_size in batch_sizes[shift:] + batch_sizes[:shift]:
            start = time.perf_counter()
            outputs = answer_all(predictor, questions, images, batch_size, args.max_new_tokens)
            times[batch_size].append(time.perf_counter() - start)
            mismatched_passes += outputs != predictions[batch_size]

    wall, busy1, own = (time.perf_counter() - wall0, busy_cpu_seconds(),
                        own_cpu_seconds() - own0)
    others = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - own) / wall
    print(f"timed passes: {wall:.0f} s; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; this process used {own / wall:.2f} cores"
          + ("" if others is None else f", other processes {others:.2f} cores on average")
          + f" (of {os.cpu_count()})")
    reference, reference_ids = predictions[1], token_ids[1]
    rates = {b: [len(questions) / t for t in ts] for b, ts in times.items()}
    base = statistics.median(rates[1])
    print(f"\nitems/s, median of {args.repeats} passes (runs in brackets):")
    print(f"{'batch':>5} {'items/s':>8} {'vs 1':>6} {'padding':>8} {'same as batch 1':>16}  runs"
          "   (same: answer text and token ids)")
    results = []
    for batch_size in batch_sizes:
        median = statistics.median(rates[batch_size])
        differing = [i for i in range(len(questions))
                     if reference[i] != predictions[batch_size][i]
                     or reference_ids[i] != token_ids[batch_size][i]]
        runs = ", ".join(f"{r:.1f}" for r in rates[batch_size])
        print(f"{batch_size:>5} {median:>8.1f} {median / base:>5.2f}x "
              f"{padding_fraction(lengths, batch_size):>8.3f} "
              f"{len(questions) - len(differing):>7}/{len(questions):<8}  [{runs}]")
        for i in differing[:3]:
            print(f"      item {benchmark.items[i].index}: batch 1 {reference[i]!r} "
                  f"{reference_ids[i]}, batch {batch_size} {predictions[batch_size][i]!r} "
                  f"{token_ids[batch_size][i]}")
        results.append({"batch_size": batch_size, "items_per_s_median": median,
                        "items_per_s_runs": rates[batch_size], "ratio_vs_1": median / base,
                        "padding_fraction": padding_fraction(lengths, batch_size),
                        "differing_from_batch_1": len(differing)})
    if mismatched_passes:
        print(f"WARNING: {mismatched_passes} timed passes answered differently from their "
              "own warm-up pass")

    padding_check = None
    if not args.no_padding_check:
        padding_check = check_heavy_padding(predictor, questions, images, reference_ids,
                                            max(batch_sizes), args)

    parts = {}
    if not args.no_breakdown:
        print("\nms per item in each part of answer() (median of 3 extra passes per batch size):")
        for batch_size in batch_sizes:
            passes = [breakdown(predictor, questions, images, batch_size, args.max_new_tokens)
                      for _ in range(3)]
            parts[batch_size] = {name: statistics.median(p[name] for p in passes)
                                 for name in passes[0]}
            print(f"  batch {batch_size:>3}: " + ", ".join(
                f"{name} {seconds * 1000:.2f}" for name, seconds in parts[batch_size].items()))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "items": len(questions), "repeats": args.repeats, "threads": torch.get_num_threads(),
            "timed_wall_s": wall, "other_processes_cores": others,
            "max_new_tokens": args.max_new_tokens, "prompt_tokens": lengths,
            "image_decode_s": decode_seconds, "results": results,
            "padding_check": padding_check,
            "breakdown_s_per_item": parts}, indent=2) + "\n")


if __name__ == "__main__":
    main()
