"""Raw WebDataset samples -> decoded (record, image) -> model-ready training samples."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

# The image half needs no torch and lives in image_decode; BadSample and decode_image are
# imported from here as well.
from allava.data.image_decode import READABLE_IMAGE_EXTENSIONS, BadSample, decode_image
from allava.data.shard_access import UNREADABLE_SHARD
from allava.models.chat_format import MalformedConversation
from allava.models.processor import VLMProcessor


def decode_sample(raw: dict[str, Any]) -> tuple[dict, Image.Image | None]:
    """A tar sample (`json` + optional image member) -> (record, image or None)."""
    record, image_bytes = read_sample(raw)
    return record, decode_image(image_bytes) if image_bytes is not None else None


def read_sample(raw: dict[str, Any]) -> tuple[dict, bytes | None]:
    """A tar sample -> (record, its image's encoded bytes or None), the image not decoded."""
    if UNREADABLE_SHARD in raw:  # the rest of a shard that could not be read
        raise BadSample("unreadable_shard", f"{raw.get('__url__')}: {raw[UNREADABLE_SHARD]}")
    if "json" not in raw:
        raise BadSample("missing_json", raw.get("__key__", "?"))
    try:
        record = json.loads(raw["json"])
    except (ValueError, UnicodeDecodeError) as error:
        raise BadSample("bad_json", str(error)[:120]) from error
    image_key = next((ext for ext in READABLE_IMAGE_EXTENSIONS if ext in raw), None)
    if image_key is None and record.get("image"):
        raise BadSample("missing_image", str(record.get("id")))
    return record, raw[image_key] if image_key else None


@dataclass
class TrainingSample:
    input_ids: list[int]
    labels: list[int]
    pixel_values: torch.Tensor | None
    rejected: Counter = field(default_factory=Counter)  # rejects seen just before this one
    truncated: bool = False  # cut at the processor's max_length
    # The encoded image, when its pixels are made later (`SampleProcessor(defer_images=True)`).
    image_bytes: bytes | None = None


class SampleProcessor:
    """Turns raw samples into TrainingSamples; bad ones are counted by reason, never raised.

    The counts ride along on the next good sample, which is how they get out of DataLoader
    worker processes into the training loop's logs.

    `defer_images`: samples keep their encoded image (`image_bytes`) and get their pixels from
    `attach_pixels` later: a packing buffer of thousands of samples then holds JPEG bytes, not
    1.35 MB of float pixels each.
    """

    def __init__(self, processor: VLMProcessor, defer_images: bool = False):
        if processor.image_transform is None:
            raise ValueError("the processor has no image_transform (give it the tower's)")
        self.processor = processor
        self.defer_images = defer_images

    def __call__(self, raws):
        pending: Counter = Counter()
        for raw in raws:
            try:
                record, image_bytes = read_sample(raw)
                image = (decode_image(image_bytes)
                         if image_bytes is not None and not self.defer_images else None)
                tokens = self.processor.encode_conversation(
                    record["conversations"], num_images=int(image_bytes is not None))
                pixels = self.processor.image_transform(image) if image is not None else None
            except (BadSample, MalformedConversation) as error:
                pending[error.reason] += 1
                continue
            except KeyError as error:
                pending[f"missing_field_{error.args[0]}"] += 1
                continue
            yield TrainingSample(tokens.input_ids, tokens.labels, pixels, pending,
                                 tokens.truncated,
                                 image_bytes if self.defer_images else None)
            pending = Counter()

    def pixels(self, image_bytes: bytes) -> torch.Tensor:
        return self.processor.image_transform(decode_image(image_bytes))

    def attach_pixels(self, samples: list[TrainingSample]) -> list[TrainingSample]:
        """The samples whose deferred image decodes, with their pixels; a sample whose image
        does not is left out and counted on the next one kept (or the first, if it was last)."""
        kept: list[TrainingSample] = []
        pending: Counter = Counter()
        for sample in samples:
            if sample.image_bytes is not None:
                try:
                    sample.pixel_values = self.pixels(sample.image_bytes)
                except BadSample as error:
                    pending[error.reason] += 1
                    continue
                sample.image_bytes = None
            sample.rejected.update(pending)
            pending = Counter()
            kept.append(sample)
        if pending and kept:
            kept[0].rejected.update(pending)
        return kept

    def token_length(self, raw: dict[str, Any]) -> int | None:
        """A raw sample's length in tokens as a training sample (cut at max_length), without
        decoding its image; None for a sample the processor would reject."""
        try:
            record, image_bytes = read_sample(raw)
            return len(self.processor.encode_conversation(
                record["conversations"], num_images=int(image_bytes is not None)).input_ids)
        except (BadSample, MalformedConversation, KeyError, TypeError):
            return None


def data_counts(samples: list[TrainingSample]) -> dict[str, Any]:
    """What the samples of a batch report about the data: rejects seen before them, and how
    many were truncated."""
    rejected: Counter = Counter()
    for sample in samples:
        rejected.update(sample.rejected)
    return {"rejected": dict(rejected), "truncated": sum(s.truncated for s in samples)}


def collate(samples: list[TrainingSample], pad_id: int) -> dict[str, Any]:
    """Right-pads a batch; images are stacked in sample order (the splice relies on it)."""
    width = max(len(s.input_ids) for s in samples)
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(samples), width), dtype=torch.long)
    for row, sample in enumerate(samples):
        n = len(sample.input_ids)
        input_ids[row, :n] = torch.tensor(sample.input_ids)
        labels[row, :n] = torch.tensor(sample.labels)
        attention_mask[row, :n] = 1
    pixels = [s.pixel_values for s in samples if s.pixel_values is not None]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "pixel_values": torch.stack(pixels) if pixels else None,
        **data_counts(samples),
    }


def samples_in(batch: dict[str, Any]) -> int:
    """Samples of a collated batch: its rows, or the samples packed into them."""
    return int(batch.get("num_samples") or batch["input_ids"].shape[0])


def tokens_in(batch: dict[str, Any]) -> int:
    """Non-padding tokens of a collated batch, packed or not (image placeholders included)."""
    if batch.get("attention_mask") is not None:
        return int(batch["attention_mask"].sum())
    return int((batch["documents"] >= 0).sum())
