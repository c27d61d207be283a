"""Data pipeline benchmark (issue 3): conversion speed, loader throughput, padding, and how
many loader workers keep one GPU fed.

    python benchmarks/data_pipeline.py                    # both measurements below
    python benchmarks/data_pipeline.py --only loaders     # [--samples 5000] [--rounds 3]
    python benchmarks/data_pipeline.py --only workers     # [--worker-records 800]

Everything is written under `--work` (default /tmp/allava_data_bench) and reused by later runs.

`loaders`: builds ALLaVA-like data once: JPEGs of 512-1024 px, captions whose lengths spread
like ALLaVA's long GPT-4V captions (log-normal, median ~120 words), 10 % text-only records, one
JSON list, as released. Then measures, on this machine:
- `allava data convert` with 1 and 2 workers (records/s);
- loader throughput with 2 DataLoader workers, batch 16: the streaming pipeline over the
  shards against a LLaVA-style map-style dataset that reads the JSON list and the image files.
  Both use the same image transform (CLIP-L/336 size, pad to square) and the same tokenization;
  rounds alternate between the two and the median is reported;
- the padding fraction (pad tokens / all tokens) at batch size 16, with 576 image tokens per
  image (CLIP-L/336 + mlp2x_gelu), random batches against length-aware ones.

`workers` ("the data keeps up"): what ONE loader worker delivers at the `allava_stablelm2`
finetune's real inputs, and so how many workers one H100 needs. Records follow ALLaVA-4V's
finetune mixture (benchmarks/allava_lengths.py: image or text-only, question and answer token
counts; the answer is sized until the tokenized conversation is as long as modelled; the toy
BPE stands in for StableLM-2's tokenizer, which cannot be downloaded), with a 512-1024 px JPEG
per image record, converted to shards. In this process, with one torch thread as a DataLoader
worker has, in wall and CPU time (per CPU second: what an idle core would do; other processes
may share this machine's cores), it times:
- each step of a sample on its own, in SampleProcessor's order: tar read, JSON + JPEG decode,
  the recipe's image transform (CLIP-L/336: pad to square, bicubic resize to 336, CLIP
  mean/std; the tower is built on the meta device: no weights), tokenisation
  (`VLMProcessor.encode_conversation`, ALLaVA's chat template), packing + collate
  (`pack_rows` + `collate_packed`: the recipe's rows of 2 x max_length tokens, buffer 2,048)
  and the hand-over of each batch to the trainer process (tensors into shared memory, as a
  worker's result queue does);
- the whole training loader (`MixtureStream` -> `SampleProcessor` -> `PackedBatches` ->
  `collate_packed`, num_workers=0): samples processed per second once the first is out; one
  worker = that plus the hand-over; median over rounds;
- the samples/s an H100 (989 TFLOPS dense bf16) consumes at 50 % MFU: model FLOPs per sample
  as `real_size_step.model_flops` counts them for MFU (6 x LLM parameters per token, attention
  over the sample's own length since packed samples attend only to themselves, the frozen
  tower's forward and the connector for an image), averaged over the modelled finetune
  lengths; workers needed = ceil(that / one worker's samples/s);
- what-ifs for the image half (decode + transform) of the same images: PIL's JPEG draft mode
  (decoding at 1/2, 1/4 or 1/8 scale while the long side stays >= 336, so that the resize
  still only shrinks), shards written by the converter with `max_image_side=336`, and, since
  the synthetic JPEGs compress far better than photos, the same images re-encoded with
  photo-like grain.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import cycle, islice, takewhile
from pathlib import Path
from typing import Any, Callable

import torch
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from allava_lengths import TEMPLATE_TOKENS, SampleShape, sample_shapes  # noqa: E402

from allava.data.convert import ConvertOptions, convert  # noqa: E402
from allava.data.image_decode import READABLE_IMAGE_EXTENSIONS, upright_rgb  # noqa: E402
from allava.data.length_batching import length_bucketed, padding_fraction  # noqa: E402
from allava.data.packing import (PackedBatches, collate_packed, pack_rows,  # noqa: E402
                                 samples_per_row)
from allava.data.samples import (SampleProcessor, TrainingSample, collate,  # noqa: E402
                                 decode_image, decode_sample)
from allava.data.shard_writer import MANIFEST_NAME  # noqa: E402
from allava.data.streaming import MixtureStream, ShardSource, iter_tar_samples  # noqa: E402
from allava.models.chat_format import (IMAGE_TAG, ensure_image_token,  # noqa: E402
                                       set_chat_template)
from allava.models.processor import VLMProcessor  # noqa: E402
from allava.models.vision_tower import TimmVisionTower  # noqa: E402
from allava.toy.tokenizer import train_toy_tokenizer  # noqa: E402

WORDS = ("the a an image shows large small red blue green wooden street building person dog "
         "sky tree table window left right near behind bright dark detailed background "
         "foreground several two three colorful old modern light shadow sign text reads").split()
IMAGE_TOKENS = 576
BATCH = 16


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def _write_image(args: tuple[int, str]) -> None:
    index, path = args
    rng = random.Random(index)
    size = (rng.randint(512, 1024), rng.randint(512, 1024))
    image = Image.new("RGB", size, tuple(rng.randint(0, 255) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):  # shapes and gradients compress like photos, unlike noise
        x, y = rng.randint(0, size[0]), rng.randint(0, size[1])
        draw.ellipse((x, y, x + rng.randint(40, 300), y + rng.randint(40, 300)),
                     fill=tuple(rng.randint(0, 255) for _ in range(3)))
    image.save(path, "JPEG", quality=90)


def build_dataset(work: Path, count: int) -> tuple[Path, Path]:
    raw = work / "raw"
    images = raw / "images"
    listing = raw / "allava_like.json"
    if listing.is_file():
        return listing, images
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    records, jobs = [], []
    for i in range(count):
        words = max(8, int(rng.lognormvariate(4.8, 0.5)))
        answer = " ".join(_sentence(rng, 15) for _ in range(max(1, words // 15)))
        if rng.random() < 0.1:
            records.append({"id": f"evol_{i}", "conversations": [
                {"from": "human", "value": _sentence(rng, rng.randint(8, 40))},
                {"from": "gpt", "value": answer}]})
            continue
        name = f"{i:06d}.jpeg"
        jobs.append((i, str(images / name)))
        records.append({"id": f"allava_laion_cap_{i}", "image": f"images/{name}",
                        "conversations": [
                            {"from": "human", "value": "<image>\nPlease depict the image in words."},
                            {"from": "gpt", "value": answer}]})
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_image, jobs, chunksize=32))
    listing.write_text(json.dumps(records))
    return listing, images


class LlavaStyleDataset(Dataset):
    """What LLaVA's LazySupervisedDataset does: the JSON list in memory, one image file per item."""

    def __init__(self, listing: Path, image_root: Path, text, transform):
        self.records = json.loads(listing.read_text())
        self.image_root, self.text, self.transform = image_root, text, transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> TrainingSample:
        record = self.records[index]
        pixels = None
        if "image" in record:
            image = decode_image((self.image_root.parent / record["image"]).read_bytes())
            pixels = self.transform(image)
        tokens = self.text.encode_conversation(record["conversations"],
                                               num_images=int(pixels is not None))
        return TrainingSample(tokens.input_ids, tokens.labels, pixels)


def _throughput(loader: DataLoader, samples: int) -> float:
    start = time.perf_counter()
    seen = 0
    for batch in islice(loader, samples // BATCH):
        seen += batch["input_ids"].shape[0]
    return seen / (time.perf_counter() - start)


def measure_loaders(args: argparse.Namespace, work: Path) -> None:
    """Conversion, the two loaders with 2 workers, and padding at batch 16 (see the docstring)."""
    start = time.perf_counter()
    listing, images = build_dataset(work, args.samples)
    print(f"dataset ready ({time.perf_counter() - start:.0f}s): {listing}")

    rates = {}
    for workers in (1, 2):
        out = work / f"shards_w{workers}"
        begin = time.perf_counter()
        manifest = convert([listing], out, ConvertOptions(image_root=str(images.parent),
                                                          workers=workers), overwrite=True,
                           progress=False)
        rates[workers] = manifest["totals"]["records_in"] / (time.perf_counter() - begin)
        print(f"convert, {workers} worker(s): {rates[workers]:.0f} records/s "
              f"({manifest['totals']['samples_written']} written)")

    records = json.loads(listing.read_text())
    tokenizer = train_toy_tokenizer((t["value"] for r in records for t in r["conversations"]),
                                    work / "tokenizer", vocab_size=2000)
    ensure_image_token(tokenizer)
    transform = TimmVisionTower("resnet10t", image_size=336, image_mode="pad").image_transform()
    text = VLMProcessor(tokenizer, IMAGE_TOKENS, max_length=4096, image_transform=transform)
    pad = partial(collate, pad_id=tokenizer.pad_token_id)

    stream = MixtureStream([ShardSource(str(work / "shards_w2"))], SampleProcessor(text),
                           shuffle_buffer=1000)
    streaming = DataLoader(stream, batch_size=BATCH, num_workers=2, collate_fn=pad)
    mapped = DataLoader(LlavaStyleDataset(listing, images, text, transform), batch_size=BATCH,
                        shuffle=True, num_workers=2, collate_fn=pad)
    speeds: dict[str, list[float]] = {"streaming": [], "map-style": []}
    for _ in range(args.rounds):
        speeds["streaming"].append(_throughput(streaming, args.loader_samples))
        speeds["map-style"].append(_throughput(mapped, args.loader_samples))
    for name, values in speeds.items():
        print(f"loader {name}: median {statistics.median(values):.1f} samples/s "
              f"({', '.join(f'{v:.1f}' for v in values)})")
    ratio = statistics.median(speeds["streaming"]) / statistics.median(speeds["map-style"])
    print(f"streaming / map-style: {ratio:.2f}x")

    lengths = [[0] * len(text.encode_conversation(r["conversations"],
                                                  num_images=int("image" in r)).input_ids)
               for r in records]
    random.Random(0).shuffle(lengths)
    plain = [lengths[i:i + BATCH] for i in range(0, len(lengths), BATCH)]
    bucketed = list(length_bucketed(iter(lengths), BATCH, 32, random.Random(0)))
    print(f"padding at batch {BATCH}: random {padding_fraction(plain):.3f}, "
          f"length-aware {padding_fraction(bucketed):.3f}")


# --- `workers`: one loader worker at the allava_stablelm2 finetune's real inputs ------------

EXPERIMENT = "allava_stablelm2"
GPU, MFU, WORKER_TARGET = "H100", 0.5, 8
LOADER_PACKING_BUFFER = 256  # the steps use the recipe's 2,048; its rounds take a minute here
WHAT_IF_IMAGES, GRAIN_IMAGES, DIFF_IMAGES, PART_IMAGES = 300, 100, 50, 100
FLOPS_SHAPES = 20_000  # modelled samples averaged for the FLOPs per sample
HAND_OVER = "hand-over to the trainer (shared memory)"
STEPS = ("tar read", "JSON + JPEG decode", "image transform", "tokenise", "pack + collate",
         HAND_OVER)


@dataclass(frozen=True)
class Recipe:
    """What the finetune stage of EXPERIMENT fixes for the data and the FLOPs."""
    model: Any  # VisionLanguageModel on the meta device: shapes, no weights
    llm_trains: bool
    max_length: int
    batch_size: int
    row_length: int
    packing_buffer: int
    chat_template: str | None
    image_placement: str
    peak_tflops: float  # GPU's dense bf16 peak


@dataclass(frozen=True)
class Packing:
    row_length: int
    rows: int  # per batch
    buffer: int
    pad_id: int


def finetune_recipe() -> Recipe:
    # Hydra and Lightning load slowly: only this measurement needs them.
    from omegaconf import OmegaConf
    from allava.training.trainable import trainable_modules
    from real_size_step import PEAK_BF16_TFLOPS, build_model, compose_recipe

    cfg, preset = compose_recipe(EXPERIMENT, [])
    with tempfile.TemporaryDirectory() as workdir, torch.device("meta"):
        model = build_model(cfg, preset, Path(workdir))
    stage = {k: v for k, v in OmegaConf.to_container(cfg.stage.finetune, resolve=False).items()
             if k != "mixture"}
    max_length = int(cfg.model.max_length)
    return Recipe(model, "llm" in trainable_modules(stage, cfg.stage.policy), max_length,
                  int(stage["batch_size"]), int(cfg.data.packing_length or 2 * max_length),
                  int(cfg.data.packing_buffer), cfg.model.llm.get("chat_template"),
                  cfg.model.get("image_placement", "as_written"), PEAK_BF16_TFLOPS[GPU])


def recipe_processor(recipe: Recipe, tokenizer_dir: Path) -> VLMProcessor:
    """The recipe's processor with the toy BPE in place of StableLM-2's tokenizer (which cannot
    be downloaded here), trained on the word list the records are written with."""
    corpus = (_sentence(random.Random(i), 15) for i in range(2000))
    tokenizer = train_toy_tokenizer(corpus, tokenizer_dir, vocab_size=2000)
    ensure_image_token(tokenizer)
    set_chat_template(tokenizer, recipe.chat_template)
    return VLMProcessor(tokenizer, recipe.model.num_image_tokens, max_length=recipe.max_length,
                        image_placement=recipe.image_placement,
                        image_transform=recipe.model.vision.image_transform())


def _words(seed: str, count: int) -> str:
    """`count` words in sentences of 15; a longer text of the same seed extends a shorter one."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(max(1, count))]
    return " ".join(" ".join(words[i:i + 15]).capitalize() + "." for i in range(0, len(words), 15))


def tokens_per_word(tokenizer) -> float:
    return len(tokenizer(_words("calibration", 3000), add_special_tokens=False)["input_ids"]) / 3000


def uncut_tokens(shape: SampleShape) -> int:
    """The modelled length before the processor's cut at max_length."""
    image = IMAGE_TOKENS if shape.image else 0
    return TEMPLATE_TOKENS + shape.question_tokens + shape.answer_tokens + image


def sized_conversation(processor: VLMProcessor, shape: SampleShape, key: str,
                       per_word: float) -> list[dict]:
    """A question of about the modelled tokens, and an answer lengthened or shortened until the
    tokenized conversation (chat template and image placeholders included, before the cut at
    max_length) is as long as modelled."""
    question = _words(f"{key}:q", round(shape.question_tokens / per_word))
    prompt = f"{IMAGE_TAG}\n{question}" if shape.image else question
    target, words = uncut_tokens(shape), round(shape.answer_tokens / per_word)
    best: tuple[int, list[dict]] | None = None
    for _ in range(6):
        turns = [{"from": "human", "value": prompt},
                 {"from": "gpt", "value": _words(f"{key}:a", words)}]
        length = len(processor.encode_conversation(turns, int(shape.image), truncate=False)
                     .input_ids)
        if best is None or abs(length - target) < best[0]:
            best = (abs(length - target), turns)
        if length == target:
            break
        step = round((target - length) / per_word) or (1 if target > length else -1)
        words = max(1, words + step)
    return best[1]


def build_finetune_dataset(raw: Path, count: int, processor: VLMProcessor,
                           per_word: float) -> Path:
    """`count` records of the finetune mixture as released (a JSON list + image files), built
    once and kept for later runs."""
    listing = raw / "finetune.json"
    if listing.is_file():
        return listing
    (raw / "images").mkdir(parents=True, exist_ok=True)
    records, jobs = [], []
    for index, shape in enumerate(sample_shapes("finetune", count, seed=0)):
        record = {"id": f"{shape.subset}_{index}",
                  "conversations": sized_conversation(processor, shape, str(index), per_word)}
        if shape.image:
            record["image"] = f"images/{index:06d}.jpeg"
            jobs.append((index, str(raw / record["image"])))
        records.append(record)
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_image, jobs, chunksize=16))
    listing.write_text(json.dumps(records))
    return listing


def shards(listing: Path, out: Path, max_image_side: int | None = None) -> Path:
    """The listing converted (2 workers) once, kept for later runs."""
    if not (out / MANIFEST_NAME).is_file():
        convert([listing], out, ConvertOptions(image_root=str(listing.parent), workers=2,
                                               max_image_side=max_image_side),
                overwrite=True, progress=False)
    return out


class StepClock:
    """Wall and CPU seconds per named step, summed over calls."""

    def __init__(self):
        self.wall: Counter = Counter()
        self.cpu: Counter = Counter()

    @contextmanager
    def step(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] += time.perf_counter() - wall
        self.cpu[name] += time.process_time() - cpu


def time_steps(urls: list[str], processor: VLMProcessor, packing: Packing
               ) -> tuple[StepClock, int]:
    """One pass over the shards, each step of each sample timed on its own (SampleProcessor's
    work, split), then packing + collate: (the clock, samples)."""
    clock, samples = StepClock(), []
    raws = iter_tar_samples(urls, None, resampled=False)
    while True:
        with clock.step("tar read"):
            raw = next(raws, None)
        if raw is None:
            break
        with clock.step("JSON + JPEG decode"):
            record, image = decode_sample(raw)
        with clock.step("image transform"):
            pixels = processor.image_transform(image) if image is not None else None
        with clock.step("tokenise"):
            tokens = processor.encode_conversation(record["conversations"],
                                                   num_images=int(image is not None))
        samples.append(TrainingSample(tokens.input_ids, tokens.labels, pixels))
    # Packing rounds start at a full buffer: distinct copies of the samples fill two of them.
    copies = [replace(s) for s in islice(cycle(samples), max(len(samples), 2 * packing.buffer))]
    rows = pack_rows(copies, packing.row_length, packing.buffer, random.Random(0),
                     length=lambda sample: len(sample.input_ids))
    batches = iter(lambda: list(islice(rows, packing.rows)), [])
    while True:
        with clock.step("pack + collate"):
            batch = next(batches, None)
            collated = collate_packed(batch, packing.pad_id, packing.row_length) if batch else None
        if collated is None:
            break
        with clock.step(HAND_OVER):
            hand_over(collated)
    for totals in (clock.wall, clock.cpu):  # the same per-sample scale as the other steps
        for name in ("pack + collate", HAND_OVER):
            totals[name] *= len(samples) / len(copies)
    return clock, len(samples)


def hand_over(batch: dict[str, Any]) -> None:
    """What a worker's result queue does to every batch: its tensors copied into shared memory
    (passing their few file descriptors to the trainer is left out)."""
    for value in batch.values():
        if isinstance(value, torch.Tensor):
            value.share_memory_()


class Clocked:
    """A sample processor that notes (wall, CPU) time as each processed sample comes out."""

    def __init__(self, processor: Callable):
        self.processor = processor
        self.times: list[tuple[float, float]] = []

    def __call__(self, raws):
        for sample in self.processor(raws):
            self.times.append((time.perf_counter(), time.process_time()))
            yield sample


def loader_rate(shard_dir: Path, processor: VLMProcessor, packing: Packing,
                per_row: float, count: int) -> tuple[float, float]:
    """Samples/s of the training loader in this process (num_workers=0): `count` samples
    processed after the first one, over the wall and CPU time they took, the packing and
    collating of the batches in between included. Counting samples delivered instead would
    count a packing round's burst of rows as free."""
    clocked = Clocked(SampleProcessor(processor))
    stream = MixtureStream([ShardSource(str(shard_dir))], clocked, shuffle_buffer=1000,
                           samples_per_epoch=10**9)
    packed = PackedBatches(stream, packing.rows, packing.row_length, per_row,
                           LOADER_PACKING_BUFFER)
    loader = DataLoader(packed, batch_size=None, num_workers=0,
                        collate_fn=partial(collate_packed, pad_id=packing.pad_id,
                                           row_length=packing.row_length))
    for _ in takewhile(lambda _: len(clocked.times) <= count, loader):
        pass
    (wall0, cpu0), (wall1, cpu1) = clocked.times[0], clocked.times[count]
    return count / (wall1 - wall0), count / (cpu1 - cpu0)


def image_bytes(shard_dir: Path) -> dict[str, bytes]:
    """Sample key -> image file bytes, for the shards' samples with an image."""
    found = {}
    for raw in iter_tar_samples(ShardSource(str(shard_dir)).urls(), None, resampled=False):
        ext = next((e for e in READABLE_IMAGE_EXTENSIONS if e in raw), None)
        if ext:
            found[raw["__key__"]] = raw[ext]
    return found


def draft_decode(data: bytes, side: int) -> Image.Image:
    """`decode_image` with PIL's JPEG draft mode: the DCT decodes at 1/2, 1/4 or 1/8 scale, as
    far as the long side stays >= `side`, so that padding to square and resizing to `side`
    still only shrink."""
    image = Image.open(io.BytesIO(data))
    scale = side / max(image.size)
    image.draft("RGB", (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
    image.load()
    if max(image.size) < side:
        raise ValueError(f"draft mode went below {side} px: {image.size}")
    return upright_rgb(image)


def with_grain(data: bytes) -> bytes:
    """The image with blurred luminance noise, re-encoded at quality 90: about a photo's bits
    per pixel (the flat synthetic shapes need a fraction of them)."""
    image = decode_image(data)
    noise = Image.effect_noise(image.size, 40).filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    ImageChops.add(image, noise.convert("RGB"), offset=-128).save(out, "JPEG", quality=90)
    return out.getvalue()


def bits_per_pixel(payloads: list[bytes]) -> float:
    pixels = sum(math.prod(Image.open(io.BytesIO(data)).size) for data in payloads)
    return 8 * sum(map(len, payloads)) / pixels


def time_image_half(payloads: list[bytes], decode: Callable, transform: Callable
                    ) -> tuple[float, float, list[torch.Tensor]]:
    """(wall ms, CPU ms) per image of decode + transform, and the first DIFF_IMAGES tensors."""
    kept = []
    wall, cpu = time.perf_counter(), time.process_time()
    for data in payloads:
        pixels = transform(decode(data))
        if len(kept) < DIFF_IMAGES:
            kept.append(pixels)
    return (1e3 * (time.perf_counter() - wall) / len(payloads),
            1e3 * (time.process_time() - cpu) / len(payloads), kept)


def time_transform_parts(payloads: list[bytes], transform) -> dict[str, tuple[float, float]]:
    """(wall ms, CPU ms) per image of each part of the image transform (decoding not timed)."""
    clock = StepClock()
    for data in payloads:
        image = decode_image(data)
        for part in transform.transforms:
            with clock.step(type(part).__name__):
                image = part(image)
    return {name: (1e3 * clock.wall[name] / len(payloads), 1e3 * clock.cpu[name] / len(payloads))
            for name in clock.wall}


@dataclass(frozen=True)
class WhatIf:
    name: str
    payloads: list[bytes]
    decode: Callable
    reference: str | None  # the variant whose pixels it is compared with


def image_what_ifs(full: Path, resized: Path, side: int) -> list[WhatIf]:
    originals = image_bytes(full)
    keys = sorted(originals)[:WHAT_IF_IMAGES]
    small = image_bytes(resized)
    grainy = [with_grain(originals[k]) for k in keys[:GRAIN_IMAGES]]
    draft = partial(draft_decode, side=side)
    return [
        WhatIf("full decode (as now)", [originals[k] for k in keys], decode_image, None),
        WhatIf("draft mode", [originals[k] for k in keys], draft, "full decode (as now)"),
        WhatIf(f"converter max_image_side={side}", [small[k] for k in keys], decode_image,
               "full decode (as now)"),
        WhatIf("photo-like grain, full decode", grainy, decode_image, None),
        WhatIf("photo-like grain, draft mode", grainy, draft, "photo-like grain, full decode"),
    ]


def sample_flops(recipe: Recipe) -> Callable[[int, bool], float]:
    """Model FLOPs of one packed sample (tokens, image?), as `real_size_step.model_flops`
    counts them for the GPU benchmark's MFU: attention within the sample, the frozen tower and
    the connector for its image."""
    from real_size_step import model_flops

    cache: dict[tuple[int, bool], float] = {}  # each call sums the parameters anew

    def flops(tokens: int, image: bool) -> float:
        if (tokens, image) not in cache:
            cache[tokens, image] = model_flops(recipe.model, [tokens], int(image),
                                               recipe.llm_trains)
        return cache[tokens, image]

    return flops


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


@dataclass
class Rounds:
    """Per round: ms per sample of each step, ms per image of each transform part and of each
    what-if (wall, CPU), the loader's samples/s (wall, CPU); what-if pixel differences."""
    steps: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    parts: list[dict[str, tuple[float, float]]] = field(default_factory=list)
    images: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    loader: list[tuple[float, float]] = field(default_factory=list)
    diffs: dict[str, float] = field(default_factory=dict)


def measure_round(results: Rounds, shard_dir: Path, processor: VLMProcessor, packing: Packing,
                  per_row: float, what_ifs: list[WhatIf], loader_samples: int) -> None:
    clock, count = time_steps(ShardSource(str(shard_dir)).urls(), processor, packing)
    for name in STEPS:
        results.steps.setdefault(name, []).append(
            (1e3 * clock.wall[name] / count, 1e3 * clock.cpu[name] / count))
    results.loader.append(loader_rate(shard_dir, processor, packing, per_row, loader_samples))
    transform = processor.image_transform
    kept: dict[str, list[torch.Tensor]] = {}
    for what in what_ifs:
        wall, cpu, kept[what.name] = time_image_half(what.payloads, what.decode, transform)
        results.images.setdefault(what.name, []).append((wall, cpu))
    results.parts.append(time_transform_parts(what_ifs[0].payloads[:PART_IMAGES], transform))
    std = torch.as_tensor(transform.transforms[-1].std).view(3, 1, 1)  # Normalize's
    for what in what_ifs:  # mean |difference| in 8-bit levels against the reference
        if what.reference:
            results.diffs[what.name] = statistics.mean(
                ((a - b).abs() * std * 255).mean().item()
                for a, b in zip(kept[what.name], kept[what.reference]))


def measure_one_worker(args: argparse.Namespace, work: Path) -> None:
    """The `workers` measurement (see the docstring): printed as markdown tables."""
    torch.set_num_threads(1)  # what a DataLoader worker runs with
    start = time.perf_counter()
    recipe = finetune_recipe()
    processor = recipe_processor(recipe, work / "finetune_tokenizer")
    folder = work / f"finetune_{args.worker_records}"
    listing = build_finetune_dataset(folder / "raw", args.worker_records, processor,
                                     tokens_per_word(processor.tokenizer))
    side = recipe.model.vision.image_size
    full = shards(listing, folder / "shards")
    what_ifs = image_what_ifs(full, shards(listing, folder / f"shards_{side}", side), side)
    print(f"finetune data ready ({time.perf_counter() - start:.0f}s): {listing}")

    records = json.loads(listing.read_text())
    lengths = [len(processor.encode_conversation(r["conversations"], int("image" in r)).input_ids)
               for r in records]
    per_row = samples_per_row(lengths, recipe.row_length, recipe.packing_buffer)
    # As StageDataModule: as many rows as hold about the stage's batch size.
    packing = Packing(recipe.row_length, max(1, round(recipe.batch_size / per_row)),
                      recipe.packing_buffer, processor.tokenizer.pad_token_id)
    results = Rounds()
    for round_ in range(args.worker_rounds):  # steps, loader, what-ifs interleaved: load drifts
        measure_round(results, full, processor, packing, per_row, what_ifs, args.worker_samples)
        print(f"round {round_ + 1}/{args.worker_rounds}: loader {results.loader[-1][0]:.1f} "
              f"samples/s ({time.perf_counter() - start:.0f}s)")

    flops = sample_flops(recipe)
    shapes = sample_shapes("finetune", FLOPS_SHAPES, seed=1)
    modelled = [s.tokens for s in sample_shapes("finetune", len(records), seed=0)]
    data = (f"{len(records)} records, {statistics.mean('image' in r for r in records):.0%} with "
            f"a JPEG of 512-1024 px, mean length {statistics.mean(lengths):.0f} tokens tokenized "
            f"/ {statistics.mean(modelled):.0f} modelled (a record at most "
            f"{max(abs(a - b) for a, b in zip(lengths, modelled))} apart); rows of "
            f"{packing.row_length} tokens hold {per_row:.2f} samples, a batch {packing.rows} rows")
    print(worker_report(recipe, data, results, what_ifs, shapes, flops))
    print(f"\nwall time {time.perf_counter() - start:.0f}s")


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.2f} | {pair[1]:.2f}"


def _medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in pairs), statistics.median(c for _, c in pairs)


def _workers(need: float, rate: float) -> str:
    workers = math.ceil(need / rate)
    return f"**{workers}** ({'within' if workers <= WORKER_TARGET else 'over'} {WORKER_TARGET})"


def step_table(medians: dict[str, tuple[float, float]], parts: list[dict]) -> list[str]:
    total = sum(c for _, c in medians.values())
    slowest = max(medians, key=lambda name: medians[name][1])
    lines = ["| step (per sample of the mixture) | ms wall | ms CPU | share (CPU) |",
             "|---|---|---|---|"]
    for name, pair in medians.items():
        mark = "**" if name == slowest else ""
        lines.append(f"| {mark}{name}{mark} | {_ms(pair)} | {pair[1] / total:.0%} |")
    lines.append(f"| sum | {sum(w for w, _ in medians.values()):.2f} | {total:.2f} | 100% |")
    lines.append(f"\nslowest step: {slowest}; image transform, ms CPU per image "
                 f"({PART_IMAGES} images): " + ", ".join(
                     f"{name} {statistics.median(p[name][1] for p in parts):.2f}"
                     for name in parts[0]))
    return lines


def worker_report(recipe: Recipe, data: str, results: Rounds, what_ifs: list[WhatIf],
                  shapes: list[SampleShape], flops: Callable[[int, bool], float]) -> str:
    medians = {name: _medians(v) for name, v in results.steps.items()}
    image_share = statistics.mean(s.image for s in shapes)
    mean_flops = statistics.mean(flops(s.tokens, s.image) for s in shapes)
    need = MFU * recipe.peak_tflops * 1e12 / mean_flops
    # The loader ran in this process: a worker also hands every batch over to the trainer.
    in_process = _medians(results.loader)
    worker = tuple(1 / (1 / rate + medians[HAND_OVER][i] / 1e3)
                   for i, rate in enumerate(in_process))
    image_ms = {name: _medians(v) for name, v in results.images.items()}

    def worker_with(name: str) -> tuple[float, float]:
        """One worker's samples/s with `name`'s decode + transform instead of today's."""
        base = image_ms[what_ifs[0].name]
        return tuple(1 / (1 / rate - image_share * (base[i] - image_ms[name][i]) / 1e3)
                     for i, rate in enumerate(worker))

    lines = [
        f"\n## One loader worker, {EXPERIMENT} finetune inputs "
        f"(measured here: {cpu_name()}, {os.cpu_count()} cores, 1 torch thread)\n",
        f"{data}. Medians of {len(results.loader)} rounds. CPU: per CPU second, what an idle "
        "core would do.\n",
        *step_table(medians, results.parts),
        "\n| measurement | value |",
        "|---|---|",
        f"| whole loader in this process (num_workers=0, packing buffer "
        f"{LOADER_PACKING_BUFFER}) | {in_process[0]:.1f} samples/s wall "
        f"({', '.join(f'{w:.1f}' for w, _ in results.loader)}), {in_process[1]:.1f} CPU |",
        f"| **one worker** (that + the hand-over) | **{worker[0]:.1f}** samples/s wall, "
        f"**{worker[1]:.1f}** CPU |",
        f"| one worker from the sum of the steps | "
        f"{1e3 / sum(w for w, _ in medians.values()):.1f} wall, "
        f"{1e3 / sum(c for _, c in medians.values()):.1f} CPU |",
        f"| model FLOPs per sample (mean over {len(shapes):,} modelled, {image_share:.0%} with "
        f"an image) | {mean_flops / 1e12:.2f} TFLOP, of which tower + connector "
        f"{flops(0, True) * image_share / 1e12:.2f} |",
        f"| {GPU} at {MFU:.0%} MFU ({recipe.peak_tflops:.0f} TFLOPS bf16) needs | "
        f"**{need:.1f}** samples/s ({need * statistics.mean(s.tokens for s in shapes):,.0f} "
        "tokens/s) |",
        f"| workers per {GPU}, wall / CPU | {_workers(need, worker[0])} / "
        f"{_workers(need, worker[1])} |",
        "\n| image half (decode + transform), what-if | bits/pixel | ms wall per image "
        "| ms CPU per image | mean abs diff (8-bit levels) | one worker then, wall / CPU "
        "| workers, wall / CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for what in what_ifs:
        wall, cpu = worker_with(what.name)
        diff = f"{results.diffs[what.name]:.2f}" if what.name in results.diffs else "-"
        lines.append(f"| {what.name} ({len(what.payloads)} images) | "
                     f"{bits_per_pixel(what.payloads):.2f} | {_ms(image_ms[what.name])} "
                     f"| {diff} | {wall:.1f} / {cpu:.1f} samples/s | {_workers(need, wall)} / "
                     f"{_workers(need, cpu)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("loaders", "workers"), help="one measurement only")
    parser.add_argument("--work", default="/tmp/allava_data_bench")
    parser.add_argument("--samples", type=int, default=5000, help="loaders: records")
    parser.add_argument("--loader-samples", type=int, default=1600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-records", type=int, default=800, help="workers: records")
    parser.add_argument("--worker-rounds", type=int, default=3)
    parser.add_argument("--worker-samples", type=int, default=400,
                        help="workers: samples the whole loader delivers per round")
    args = parser.parse_args()
    work = Path(args.work)
    if args.only in (None, "loaders"):
        measure_loaders(args, work)
    if args.only in (None, "workers"):
        measure_one_worker(args, work)


if __name__ == "__main__":
    main()
