"""Data pipeline benchmark (issue 3): conversion speed, loader throughput, padding.

    python benchmarks/data_pipeline.py [--samples 5000] [--work /tmp/allava_data_bench]

Builds ALLaVA-like data once: JPEGs of 512-1024 px, captions whose lengths spread like
ALLaVA's long GPT-4V captions (log-normal, median ~120 words), 10 % text-only records, one JSON
list, as released. Then measures, on this machine:
- `allava-data convert` with 1 and 2 workers (records/s);
- loader throughput with 2 DataLoader workers, batch 16: the streaming pipeline over the
  shards against a LLaVA-style map-style dataset that reads the JSON list and the image files.
  Both use the same image transform (CLIP-L/336 size, pad to square) and the same tokenization;
  rounds alternate between the two and the median is reported;
- the padding fraction (pad tokens / all tokens) at batch size 16, with 576 image tokens per
  image (CLIP-L/336 + mlp2x_gelu), random batches against length-aware ones.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from itertools import islice
from pathlib import Path

from PIL import Image, ImageDraw
from torch.utils.data import DataLoader, Dataset

from allava.models.chat_format import ensure_image_token
from allava.data.convert import ConvertOptions, convert
from allava.data.length_batching import length_bucketed, padding_fraction
from allava.data.samples import SampleProcessor, TrainingSample, collate, decode_image
from allava.data.streaming import MixtureStream, ShardSource
from allava.models.processor import VLMProcessor
from allava.toy.tokenizer import train_toy_tokenizer
from allava.models.vision_tower import TimmVisionTower

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--work", default="/tmp/allava_data_bench")
    parser.add_argument("--loader-samples", type=int, default=1600)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(args.work)
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


if __name__ == "__main__":
    main()
