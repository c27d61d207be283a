"""Records/s of the synthetic data engine against a loopback teacher with simulated latency.

    python benchmarks/synth_throughput.py [--latency 0.05] [--repeats 3]

The teacher is tests/synth_server.py's real HTTP server on 127.0.0.1, in a process of its own
(as a remote teacher would be: its threads do not compete with the engine for the GIL),
answering every laion request with a well-formed response after `--latency` seconds. Each run pushes a folder of
64x64 PNG images through the whole engine (image encoding, the openai client, parsing,
records appended to disk) at concurrency 1, 8 and 32; runs are interleaved round-robin and
every figure is the median over `--repeats`. Records/s counts both records of an image
(Caption + Instruct). The target of issue 5: >= 20x the sequential rate at concurrency 32.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from allava.synth.engine import JobSettings, SynthJob  # noqa: E402
from allava.synth.inputs import read_items  # noqa: E402
from allava.synth.output_store import OutputStore  # noqa: E402
from allava.synth.prompts import load_prompts  # noqa: E402
from allava.utils.chat_client import ChatClient  # noqa: E402
from allava.utils.usage import Usage  # noqa: E402
from tests.helpers.synth_server import LoopbackTeacher, Reply  # noqa: E402
from tests.synth.test_engine import laion_answer  # noqa: E402

ITEMS_PER_RUN = {1: 40, 8: 240, 32: 800}  # about 2 s of work each at 50 ms latency


def make_images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        Image.new("RGB", (64, 64), (n % 256, 100, 50)).save(folder / f"img{n:05d}.png")
    return folder


def one_run(base_url: str, images: Path, count: int, concurrency: int, workdir: Path) -> float:
    """Records per second of one engine run over the first `count` images."""
    items = read_items(images, "laion")[:count]
    out = Path(tempfile.mkdtemp(dir=workdir))
    store = OutputStore(out, "laion", "bench")
    usage = Usage()
    job = SynthJob(JobSettings(mode="laion", source="bench", concurrency=concurrency),
                   load_prompts("laion"),
                   ChatClient(base_url, "bench-model", None, usage=usage), store, usage)

    async def go() -> None:
        try:
            await job.run(items)
        finally:
            await job.client.aclose()

    start = time.perf_counter()
    asyncio.run(go())
    elapsed = time.perf_counter() - start
    store.close()
    if job.tally.written != count:
        raise RuntimeError(f"only {job.tally.written} of {count} items written: {job.tally}")
    return 2 * count / elapsed


class FixedAnswer:
    """The responder of the teacher process (picklable: a class, not a lambda)."""

    def __init__(self, latency: float):
        self.answer, self.latency = laion_answer("green"), latency

    def __call__(self, request: dict, index: int) -> Reply:
        return Reply(content=self.answer, delay=self.latency)


def serve(latency: float, urls, stop) -> None:
    with LoopbackTeacher(FixedAnswer(latency)) as server:
        urls.put(server.base_url)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rates: dict[int, list[float]] = {c: [] for c in ITEMS_PER_RUN}
    urls, stop = multiprocessing.Queue(), multiprocessing.Event()
    teacher = multiprocessing.Process(target=serve, args=(args.latency, urls, stop), daemon=True)
    teacher.start()
    base_url = urls.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            images = make_images(Path(tmp) / "images", max(ITEMS_PER_RUN.values()))
            for _ in range(args.repeats):
                for concurrency, count in ITEMS_PER_RUN.items():
                    rates[concurrency].append(one_run(base_url, images, count, concurrency, Path(tmp)))
    finally:
        stop.set()
        teacher.join(timeout=10)
    sequential = statistics.median(rates[1])
    print(f"latency {args.latency * 1000:.0f} ms, median of {args.repeats} runs each")
    print("| concurrency | items per run | records/s (median) | runs | x sequential |")
    print("|---|---|---|---|---|")
    for concurrency, values in rates.items():
        median = statistics.median(values)
        print(f"| {concurrency} | {ITEMS_PER_RUN[concurrency]} | {median:.1f} | "
              f"{', '.join(f'{v:.1f}' for v in values)} | {median / sequential:.1f} |")


if __name__ == "__main__":
    main()
