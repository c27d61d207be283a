"""ShardWriter: WebDataset shards that round-trip, a manifest that counts, a rejects log."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image

from allava.data.shard_writer import (
    ShardWriter,
    normalize_image_ext,
    read_manifest,
    sample_key,
    shard_paths,
)


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _record(record_id: str, with_image: bool = True) -> dict:
    record = {
        "id": record_id,
        "conversations": [
            {"from": "human", "value": ("<image>\n" if with_image else "") + "What is this?"},
            {"from": "gpt", "value": f"Answer for {record_id}."},
        ],
        "source": "test",
    }
    if with_image:
        record["image"] = f"images/{record_id}.png"
    return record


def _read_webdataset(directory: Path) -> list[dict]:
    urls = [str(p) for p in shard_paths(directory)]
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    return list(dataset)


def test_odd_ids_round_trip_through_webdataset(tmp_path: Path) -> None:
    ids = ["vflan+img.v2/7", "a.b", "a_b", "with space & 'quotes'", "ünïcödé", "plain_id-1"]
    images = {rid: _png((i * 40, 10, 200)) for i, rid in enumerate(ids)}
    with ShardWriter(tmp_path, samples_per_shard=4) as writer:
        for rid in ids:
            writer.write(_record(rid), images[rid], "png")
        writer.write(_record("text only", with_image=False))

    samples = _read_webdataset(tmp_path)
    assert len(samples) == len(ids) + 1
    by_id = {json.loads(s["json"])["id"]: s for s in samples}
    assert set(by_id) == set(ids) | {"text only"}
    for rid in ids:
        assert by_id[rid]["png"] == images[rid]  # original bytes, untouched
        assert "." not in by_id[rid]["__key__"] and "/" not in by_id[rid]["__key__"]
    assert "png" not in by_id["text only"]
    assert len({s["__key__"] for s in samples}) == len(samples)


def test_manifest_counts_shards_and_rejects(tmp_path: Path) -> None:
    with ShardWriter(tmp_path, prefix="cap", samples_per_shard=3) as writer:
        for i in range(7):
            writer.write(_record(f"r{i}"), _png((i, i, i)), "PNG")
        writer.reject("bad1", "missing_image", input="in.json", detail="images/x.png not found")
        writer.reject("bad2", "missing_image")
        writer.reject("bad3", "empty_answer")

    manifest = read_manifest(tmp_path)
    assert [s["name"] for s in manifest["shards"]] == ["cap-000000.tar", "cap-000001.tar", "cap-000002.tar"]
    assert [s["samples"] for s in manifest["shards"]] == [3, 3, 1]
    totals = manifest["totals"]
    assert totals["samples_written"] == 7
    assert totals["rejected"] == 3
    assert totals["records_in"] == 10
    assert totals["rejected_by_reason"] == {"empty_answer": 1, "missing_image": 2}
    assert "created" in manifest

    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["missing_image", "missing_image", "empty_answer"]
    assert rejects[0] == {
        "id": "bad1", "reason": "missing_image", "input": "in.json", "detail": "images/x.png not found"
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_max_shard_bytes_starts_new_shards(tmp_path: Path) -> None:
    big = b"\0" * 20_000
    with ShardWriter(tmp_path, samples_per_shard=1000, max_shard_bytes=50_000) as writer:
        for i in range(5):
            writer.write(_record(f"r{i}"), big, "jpg")
    manifest = read_manifest(tmp_path)
    assert sum(s["samples"] for s in manifest["shards"]) == 5
    assert len(manifest["shards"]) == 3  # two 20 KB samples fit under 50 KB, three do not
    assert all(s["bytes"] <= 50_000 + 10_240 for s in manifest["shards"])  # + tar end blocks


def test_duplicate_ids_are_rejected_not_merged(tmp_path: Path) -> None:
    with ShardWriter(tmp_path) as writer:
        assert writer.write(_record("same")) == "same"
        assert writer.write(_record("same")) is None
    totals = read_manifest(tmp_path)["totals"]
    assert totals["samples_written"] == 1
    assert totals["rejected_by_reason"] == {"duplicate_id": 1}


def test_crash_leaves_no_complete_looking_output(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with ShardWriter(tmp_path, samples_per_shard=2) as writer:
            for i in range(3):
                writer.write(_record(f"r{i}"), _png((1, 2, 3)), "png")
            raise RuntimeError("boom")
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.glob("*.tmp"))
    shards = sorted(tmp_path.glob("*.tar"))
    assert [p.name for p in shards] == ["shard-000000.tar"]  # only the finished one
    with tarfile.open(shards[0]) as tar:
        assert len(tar.getnames()) == 4


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    with ShardWriter(tmp_path) as writer:
        writer.write(_record("a"))
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        ShardWriter(tmp_path)
    with ShardWriter(tmp_path, overwrite=True) as writer:
        writer.write(_record("b"))
    assert [json.loads(s["json"])["id"] for s in _read_webdataset(tmp_path)] == ["b"]


def test_read_manifest_names_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(tmp_path / "nowhere")


def test_image_extension_rules(tmp_path: Path) -> None:
    assert normalize_image_ext(".JPEG") == "jpg"
    assert normalize_image_ext("webp") == "webp"
    with pytest.raises(ValueError, match="gif"):
        normalize_image_ext("gif")
    with ShardWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="together"):
            writer.write(_record("a"), _png((0, 0, 0)), None)


def test_sample_key_is_safe_and_injective_on_examples() -> None:
    ids = ["a.b", "a_b", "a/b", "a b", "x" * 300, "x" * 301]
    keys = [sample_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert sample_key("a_b") == "a_b"  # safe ids are kept as they are
    for key in keys:
        assert len(key) <= 120
        assert all(c.isalnum() or c in "_-" for c in key)
    with pytest.raises(ValueError):
        sample_key("")
