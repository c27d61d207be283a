"""Mixture sources that are not local directories: HTTP (a real server on loopback), brace
patterns, pipe: commands; and shards that fail to download."""
from __future__ import annotations

import json
import shutil

import pytest

from allava.data import shard_access
from allava.data.samples import SampleProcessor
from allava.data.streaming import MixtureStream, OrderedStream, ShardSource, iter_tar_samples
from tests.helpers.shard_server import serve_directory


def keys(samples) -> list[str]:
    return [s["__key__"] for s in samples]


@pytest.fixture
def local_caption(toy_root):
    source = ShardSource(path=str(toy_root / "caption"))
    return source, keys(iter_tar_samples(source.urls(), None, resampled=False))


def no_wait(_seconds: float) -> None:
    pass


def test_an_http_directory_reads_as_the_local_one(toy_root, local_caption):
    local, expected = local_caption
    with serve_directory(toy_root) as (base, requests):
        remote = ShardSource(path=f"{base}/caption")
        assert remote.num_samples() == local.num_samples()
        assert all(u.startswith(f"{base}/caption/shard-") for u in remote.urls())
        assert keys(iter_tar_samples(remote.urls(), None, resampled=False)) == expected
    assert requests["/caption/manifest.json"] == 1


def test_a_brace_pattern_takes_those_shards_with_the_manifest_beside_them(toy_root, tmp_path):
    # Three shards (copies of one), of 10, 20 and 30 samples by the manifest.
    (shard,) = ShardSource(path=str(toy_root / "caption")).shards
    (tmp_path / "caption").mkdir()
    entries = []
    for index in range(3):
        name = f"shard-{index:06d}.tar"
        shutil.copy(toy_root / "caption" / shard["name"], tmp_path / "caption" / name)
        entries.append({"name": name, "samples": 10 * (index + 1)})
    (tmp_path / "caption" / "manifest.json").write_text(json.dumps({"shards": entries}))
    with serve_directory(tmp_path) as (base, _):
        pattern = ShardSource(path=f"{base}/caption/shard-{{000001..000002}}.tar")
        assert pattern.urls() == [f"{base}/caption/shard-000001.tar",
                                  f"{base}/caption/shard-000002.tar"]
        assert pattern.num_samples() == 50
        wrong = ShardSource(path=f"{base}/caption/shard-{{000002..000004}}.tar")
        with pytest.raises(ValueError, match="does not list.*shard-000003.tar"):
            wrong.urls()
    local = ShardSource(path=f"{tmp_path / 'caption'}/shard-{{000000..000001}}.tar")
    assert local.num_samples() == 30 and local.urls()[0] == f"{tmp_path / 'caption'}/shard-000000.tar"


def test_a_pipe_command_with_its_manifest(toy_root, local_caption):
    _, expected = local_caption
    source = ShardSource(path=f"pipe:cat {toy_root / 'caption'}/{{shard}}",
                         manifest_path=f"pipe:cat {toy_root / 'caption' / 'manifest.json'}")
    assert keys(iter_tar_samples(source.urls(), None, resampled=False)) == expected
    with pytest.raises(ValueError, match="manifest"):
        ShardSource(path="pipe:cat x/{shard}").urls()


def test_a_failing_pipe_command_is_an_unreadable_shard(tmp_path):
    (marker,) = shard_access.shard_samples("pipe:exit 3", retries=1, sleep=no_wait)
    assert marker["__key__"] == shard_access.UNREADABLE_SHARD
    assert "exited with 3" in marker[shard_access.UNREADABLE_SHARD]


def test_a_flaky_shard_is_retried_and_read_once(toy_root, local_caption):
    local, expected = local_caption
    first = local.shards[0]["name"]
    with serve_directory(toy_root, {f"/caption/{first}": "fail_first"}) as (base, requests):
        samples = list(shard_access.shard_samples(f"{base}/caption/{first}", sleep=no_wait))
        assert requests[f"/caption/{first}"] == 2
    assert keys(samples) == expected[: local.shards[0]["samples"]]


def test_a_dropped_connection_keeps_what_arrived_once_then_counts_the_shard(
        toy_root, local_caption, tiny_train_config):
    local, expected = local_caption
    first = local.shards[0]["name"]
    waits = []
    with serve_directory(toy_root, {f"/caption/{first}": "drop_half"}) as (base, requests):
        samples = list(shard_access.shard_samples(f"{base}/caption/{first}", retries=2,
                                                  sleep=waits.append))
        assert requests[f"/caption/{first}"] == 3  # a try and two retries
    assert waits == [1.0, 2.0]  # exponential backoff
    *delivered, marker = samples
    assert 0 < len(delivered) < local.shards[0]["samples"]
    assert keys(delivered) == expected[: len(delivered)]  # in order, none repeated
    assert marker["__key__"] == shard_access.UNREADABLE_SHARD

    # Through the training stream: counted as a reject, the run goes on with other shards.
    from allava.models.build import build_vlm

    bundle = build_vlm(tiny_train_config().model)
    with serve_directory(toy_root, {f"/caption/{first}": "drop_half"}) as (base, _):
        shard_access_backoff = shard_access.BACKOFF_S
        shard_access.BACKOFF_S = 0.0
        try:
            stream = MixtureStream([ShardSource(path=f"{base}/caption")],
                                   SampleProcessor(bundle.processor), seed=0, shuffle_buffer=4,
                                   samples_per_epoch=local.num_samples())
            produced = list(stream)
        finally:
            shard_access.BACKOFF_S = shard_access_backoff
    assert len(produced) == local.num_samples()  # the quota holds
    rejected = sum(s.rejected.get("unreadable_shard", 0) for s in produced)
    assert rejected >= 1


def test_a_missing_remote_manifest_says_what_is_missing(toy_root, tmp_path):
    shutil.copytree(toy_root / "caption", tmp_path / "caption")
    (tmp_path / "caption" / "manifest.json").unlink()
    with serve_directory(tmp_path) as (base, requests):
        with pytest.raises(FileNotFoundError, match="no manifest.json at .*caption/manifest.json"):
            ShardSource(path=f"{base}/caption").urls()
        assert requests["/caption/manifest.json"] == 1  # a 404 is not retried
        (marker,) = shard_access.shard_samples(f"{base}/caption/nope.tar")
        assert "404" in marker[shard_access.UNREADABLE_SHARD]
        assert requests["/caption/nope.tar"] == 1
