"""Two real processes (torch.distributed, gloo, CPU) stream one mixture as DDP would: equal
batch counts per rank (else the per-batch all-reduce would hang), disjoint samples per rank."""
from __future__ import annotations

import datetime
import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from allava.data.shard_writer import ShardWriter
from allava.data.streaming import MixtureStream, ShardSource

WORLD = 2
WORKERS = 2


def _write(out: Path, prefix: str, count: int, per_shard: int) -> None:
    with ShardWriter(out, samples_per_shard=per_shard) as writer:
        for i in range(count):
            writer.write({"id": f"{prefix}_{i}", "conversations": []})


def _keys(raws):
    return (raw["__key__"] for raw in raws)


def _rank_main(rank: int, port: int, root: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    sources = [ShardSource(f"{root}/big"), ShardSource(f"{root}/small", repeat=2.0)]
    stream = MixtureStream(sources, _keys, seed=3, shuffle_buffer=4)
    stream.set_distributed(rank, WORLD)
    loader = DataLoader(stream, batch_size=4, num_workers=WORKERS, collate_fn=list)
    seen, batches = [], 0
    for batch in loader:
        seen += batch
        batches += 1
        token = torch.ones(1)
        dist.all_reduce(token)  # as DDP's gradient sync: needs every rank at every batch
    Path(root, f"rank{rank}.json").write_text(json.dumps({"batches": batches, "keys": seen}))
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_get_equal_batches_and_disjoint_samples(tmp_path):
    # Unequal shards: 7, 7, 7, 7, 2 samples; and a source with fewer shards than slots.
    _write(tmp_path / "big", "big", 30, per_shard=7)
    _write(tmp_path / "small", "small", 6, per_shard=6)
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    expected_per_worker = -(-(30 + 2 * 6) // (WORLD * WORKERS))  # from the manifests: 11
    per_worker_batches = -(-expected_per_worker // 4)
    for rank in ranks:
        assert rank["batches"] == WORKERS * per_worker_batches
        assert len(rank["keys"]) == WORKERS * expected_per_worker
        assert any(k.startswith("small") for k in rank["keys"])
        assert any(k.startswith("big") for k in rank["keys"])
    assert not set(ranks[0]["keys"]) & set(ranks[1]["keys"])


def test_slots_split_small_sources_by_sample_and_refuse_too_few(tmp_path):
    from itertools import islice
    import random

    from allava.data.streaming import slot_samples

    _write(tmp_path / "one", "one", 6, per_shard=6)
    urls = ShardSource(str(tmp_path / "one")).urls()
    taken = [{s["__key__"] for s in islice(slot_samples(urls, random.Random(0), slot, 4, "e0"), 10)}
             for slot in range(4)]
    assert set().union(*taken) == {f"one_{i}" for i in range(6)}
    assert sum(map(len, taken)) == 6  # every sample in exactly one slot, pass after pass
    _write(tmp_path / "tiny", "tiny", 3, per_shard=3)
    tiny = ShardSource(str(tmp_path / "tiny")).urls()
    with pytest.raises(ValueError, match="cannot feed 4 ranks x workers"):
        list(islice(slot_samples(tiny, random.Random(0), 3, 4, "e0"), 1))
