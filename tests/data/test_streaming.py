"""Streaming shards into batches: bad samples are counted by reason, never crash or vanish."""
from __future__ import annotations

import io
import tarfile
from collections import Counter
from functools import partial

import pytest
from PIL import Image
from torch.utils.data import DataLoader
from transformers import AutoTokenizer

from allava.data.samples import SampleProcessor, collate
from allava.data.shard_writer import ShardWriter
from allava.data.streaming import MixtureStream, OrderedStream, ShardSource
from allava.models.processor import VLMProcessor
from allava.models.vision_tower import TimmVisionTower


def png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 12), color).save(buffer, format="PNG")
    return buffer.getvalue()


def turns(question: str, answer: str = "A red square."):
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


@pytest.fixture
def mixed_quality_shards(tmp_path):
    """Four good records and one of each kind of bad one, in two shards of unequal size."""
    out = tmp_path / "shards"
    with ShardWriter(out, samples_per_shard=3) as writer:
        writer.write({"id": "good_1", "conversations": turns("<image>\nWhat is it?")},
                     png("red"), "png")
        writer.write({"id": "corrupt_image", "conversations": turns("<image>\nWhat?")},
                     b"\x89PNG not really", "png")
        writer.write({"id": "good_text", "conversations": turns("What is 2 plus 2?", "4.")})
        writer.write({"id": "not_alternating", "conversations": turns("<image>\nHi")[::-1]},
                     png("blue"), "png")
        writer.write({"id": "two_tags", "conversations": turns("<image>\n<image>\nBoth?")},
                     png("green"), "png")
        writer.write({"id": "good_2", "conversations": turns("<image>\nColor?", "Blue.")},
                     png("blue"), "png")
        writer.write({"id": "good_3", "conversations": turns("Say hi.", "Hi.")})
    return out


@pytest.fixture
def processor(toy_root):
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    tower = TimmVisionTower("resnet18", feature_layer=2, image_size=32)
    text = VLMProcessor(tokenizer, image_token_count=tower.num_patches(), max_length=128,
                        image_transform=tower.image_transform())
    return SampleProcessor(text), tokenizer


def test_ordered_stream_counts_every_bad_record(mixed_quality_shards, processor):
    process, tokenizer = processor
    stream = OrderedStream([ShardSource(str(mixed_quality_shards))], process)
    loader = DataLoader(stream, batch_size=2, collate_fn=partial(collate, pad_id=tokenizer.pad_token_id))
    batches = list(loader)
    assert sum(b["input_ids"].shape[0] for b in batches) == 4  # the four good records
    rejected = Counter()
    for batch in batches:
        rejected.update(batch["rejected"])
    assert rejected == {"image_decode_error": 1, "turns_not_alternating": 1,
                        "image_tag_mismatch": 1}
    for batch in batches:  # images ride in sample order, one per image record
        n_images = 0 if batch["pixel_values"] is None else batch["pixel_values"].shape[0]
        assert n_images == sum(int((row == 3).any()) for row in batch["input_ids"])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_mixture_yields_the_epoch_length_from_the_manifests(mixed_quality_shards, processor,
                                                            num_workers):
    process, tokenizer = processor
    sources = [ShardSource(str(mixed_quality_shards), repeat=2.0)]
    stream = MixtureStream(sources, process, seed=1, shuffle_buffer=4)
    assert stream.samples_per_epoch == 14  # 7 records x 2 passes
    loader = DataLoader(stream, batch_size=3, num_workers=num_workers,
                        collate_fn=partial(collate, pad_id=tokenizer.pad_token_id))
    sizes = [b["input_ids"].shape[0] for b in loader]
    assert sum(sizes) == stream.samples_per_worker(num_workers) * max(num_workers, 1)
    # Two ranks of the same run see the same number of samples, drawn differently.
    ranks = []
    for rank in range(2):
        stream.set_distributed(rank, 2)
        ranks.append([s.input_ids for s in stream])
    assert len(ranks[0]) == len(ranks[1]) == 7
    assert ranks[0] != ranks[1]


def test_missing_manifest_names_the_directory(tmp_path, processor):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        MixtureStream([ShardSource(str(tmp_path))], processor[0])


def test_each_epoch_draws_a_new_order_reproducibly(mixed_quality_shards, processor):
    process, _ = processor
    stream = MixtureStream([ShardSource(str(mixed_quality_shards))], process, seed=5,
                           shuffle_buffer=4)
    first = [s.input_ids for s in stream]
    assert [s.input_ids for s in stream] == first  # same seed and epoch: same stream
    stream.set_epoch(1)
    assert [s.input_ids for s in stream] != first


@pytest.fixture
def categorised_shards(tmp_path):
    """Six text records of two categories ("count": records 0 and 3), in two shards."""
    out = tmp_path / "categorised"
    with ShardWriter(out, samples_per_shard=4) as writer:
        for i in range(6):
            category = "count" if i % 3 == 0 else "colour"
            writer.write({"id": f"{category}_{i}", "category": category,
                          "conversations": turns(f"Question {i}?", f"Answer {i}.")})
    return out


def _ids(samples, tokenizer) -> list[str]:
    return [tokenizer.decode(s.input_ids) for s in samples]


def test_select_keeps_only_the_matching_records(categorised_shards, processor):
    process, tokenizer = processor
    source = ShardSource(str(categorised_shards), select={"category": ["count"]})
    ordered = _ids(OrderedStream([source], process), tokenizer)
    assert len(ordered) == 2 and all(("Question 0" in t) or ("Question 3" in t) for t in ordered)
    mixed = _ids(MixtureStream([source], process, seed=2, shuffle_buffer=2), tokenizer)
    assert len(mixed) == 6  # the epoch length still comes from the manifest
    assert all(("Question 0" in t) or ("Question 3" in t) for t in mixed)


def test_select_that_matches_nothing_is_a_clear_error(categorised_shards, processor):
    source = ShardSource(str(categorised_shards), select={"category": ["shape"]})
    with pytest.raises(ValueError, match="matches select"):
        list(MixtureStream([source], processor[0], seed=0, shuffle_buffer=2))


def test_select_passes_unreadable_records_on_to_be_counted(tmp_path, processor):
    process, tokenizer = processor
    out = tmp_path / "broken"
    with ShardWriter(out, samples_per_shard=4) as writer:
        writer.write({"id": "other", "category": "colour", "conversations": turns("No?", "No.")})
        writer.write({"id": "kept", "category": "count", "conversations": turns("Kept?", "Yes.")})
    # Corrupt the first record's JSON inside the tar, as a damaged shard would be (its count
    # rides on the next good sample, hence first).
    shard = next(out.glob("*.tar"))
    members = []
    with tarfile.open(shard) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            if member.name.startswith("other") and member.name.endswith(".json"):
                data = b"{not json"
            members.append((member, data))
    with tarfile.open(shard, "w") as tar:
        for member, data in members:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    source = ShardSource(str(out), select={"category": ["count"]})
    batches = list(DataLoader(OrderedStream([source], process), batch_size=4,
                              collate_fn=partial(collate, pad_id=tokenizer.pad_token_id)))
    assert sum(b["input_ids"].shape[0] for b in batches) == 1
    assert sum(b["rejected"].get("bad_json", 0) for b in batches) == 1


def test_select_splits_the_selected_records_evenly_over_ranks(tmp_path, processor):
    """Validation under DDP: every rank gets as many records as the others (3 selected of 7
    over 2 ranks: 1 each), counted from the selection, not from the whole directory."""
    process, _ = processor
    out = tmp_path / "seven"
    with ShardWriter(out, samples_per_shard=3) as writer:
        for i in range(7):
            writer.write({"id": f"r{i}", "category": "count" if i % 3 == 0 else "colour",
                          "conversations": turns(f"Question {i}?", f"Answer {i}.")})
    source = ShardSource(str(out), select={"category": ["count"]})
    assert source.num_selected == 3 and source.num_samples() == 7
    stream = OrderedStream([source], process)
    per_rank = []
    for rank in range(2):
        stream.set_distributed(rank, 2)
        per_rank.append(len(list(stream)))
    assert per_rank == [1, 1]
