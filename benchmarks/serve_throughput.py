"""Requests/s and generated tokens/s of `allava serve` with 1, 8 and 32 concurrent clients,
against the same server answering one request at a time.

    python benchmarks/serve_throughput.py [--requests 64] [--repeats 3] [--json OUT]

Two servers run side by side as subprocesses (tests/helpers/serve_process.py) on the same
model: `--max-batch-size 32` (batching) and `--max-batch-size 1` (the baseline: the same
server, each request generated alone). The model is the toy default composed from `configs/`
(resnet10t tower at 64 px, 16 image tokens, MLP connector, 4x128 Llama, the toy tokenizer) with
random weights, exported to a temporary folder; `--model-dir` serves a trained export instead.

Every request carries its own 64x64 PNG as a data URL and a question, is greedy, and answers
exactly `--max-tokens` tokens (`ignore_eos`), so every answer costs the same. A run sends
`--requests` requests through the official AsyncOpenAI client from `clients` concurrent tasks
and times them all. Levels and servers are interleaved round-robin after one warm-up run each;
figures are medians over `--repeats`, and the ratio is against the baseline server at the same
number of clients (with 1 client, requests are one at a time on either server).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import allava  # noqa: E402,F401  (registers the config resolvers)
from allava.models.build import build_vlm  # noqa: E402
from allava.models.model_dir import export_model  # noqa: E402
from allava.toy.setup import ensure_toy_world  # noqa: E402
from tests.helpers.serve_process import ServeProcess, start_together  # noqa: E402

MODEL_NAME = "bench"
QUESTION = "Is there a red circle in the image? Answer yes or no."


def export_toy_model(out_dir: Path, seed: int) -> Path:
    """The toy default model with random weights, exported (the toy world's tokenizer)."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    cfg.paths.root_dir = str(ROOT)
    cfg.paths.output_dir = str(out_dir / "run")
    del cfg.hydra
    OmegaConf.resolve(cfg)
    ensure_toy_world(cfg.data.root, cfg.data.generate)  # the tokenizer lives there
    torch.manual_seed(seed)
    return export_model(build_vlm(cfg.model), out_dir / "export")


def image_urls(count: int) -> list[str]:
    urls = []
    for n in range(count):
        image = Image.new("RGB", (64, 64), (n * 37 % 256, 90, 160))
        image.paste((230, 20, 20), (8 + n % 24, 8, 30 + n % 24, 30))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


async def one_run(client: openai.AsyncOpenAI, urls: list[str], clients: int, max_tokens: int
                  ) -> tuple[float, int]:
    """(seconds, completion tokens) for answering one request per URL from `clients` tasks."""
    todo = iter(urls)
    tokens = 0

    async def client_task() -> None:
        nonlocal tokens
        for url in todo:  # a shared iterator: each task takes the next request when free
            reply = await client.chat.completions.create(
                model=MODEL_NAME, max_tokens=max_tokens, temperature=0,
                extra_body={"ignore_eos": True},
                messages=[{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": QUESTION}]}])
            tokens += reply.usage.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(client_task() for _ in range(clients)))
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="a trained export (default: the toy "
                        "default model with random weights)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=64, help="requests per run")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per answer, forced")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-batch-wait-ms", default="50",
                        help="the batched server's option of that name (0: no waiting to fill)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="weights' seed (random init)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or export_toy_model(Path(tmp), args.seed)
        options = ["--model-name", MODEL_NAME, "--max-queue", str(max(args.clients) * 2)]
        servers = {"batched": ServeProcess(model_dir, *options, "--max-batch-size",
                                           str(args.max_batch_size), "--max-batch-wait-ms",
                                           args.max_batch_wait_ms),
                   "one at a time": ServeProcess(model_dir, *options, "--max-batch-size", "1")}
        start_together(*servers.values())
        try:
            results = asyncio.run(measure(servers, args))
            stats = {name: server.stats() for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.close()
    report(results, stats, args)


async def measure(servers: dict[str, ServeProcess], args) -> dict:
    """Every (server, clients) run, interleaved round-robin, after a warm-up run each. One
    client object per server for the whole measurement: its connections stay open, as a
    long-running client's would."""
    urls = image_urls(args.requests)
    clients = {name: openai.AsyncOpenAI(base_url=server.base_url, api_key="unused",
                                        max_retries=0, timeout=600)
               for name, server in servers.items()}
    runs = {(name, level): [] for name in servers for level in args.clients}
    keys = list(runs)
    for name, level in keys:
        await one_run(clients[name], urls, level, args.max_tokens)
    for repeat in range(args.repeats):
        shift = repeat % len(keys)
        for name, level in keys[shift:] + keys[:shift]:
            seconds, tokens = await one_run(clients[name], urls, level, args.max_tokens)
            runs[name, level].append({"seconds": seconds, "tokens": tokens})
            print(f"  repeat {repeat + 1}: {name:>13}, {level:>2} clients: "
                  f"{len(urls) / seconds:7.1f} requests/s", flush=True)
    for client in clients.values():
        await client.close()
    return runs


def report(runs: dict, stats: dict, args) -> None:
    print(f"\n{args.requests} requests per run, {args.max_tokens} tokens per answer, "
          f"{torch.get_num_threads()} torch threads here; medians of {args.repeats} runs")
    print(f"{'clients':>7} | {'batched req/s':>13} | {'tokens/s':>8} | "
          f"{'one at a time req/s':>19} | {'tokens/s':>8} | {'ratio':>6}")
    table = []
    for clients in args.clients:
        row = {"clients": clients}
        for name in ("batched", "one at a time"):
            rates = [args.requests / run["seconds"] for run in runs[name, clients]]
            token_rates = [run["tokens"] / run["seconds"] for run in runs[name, clients]]
            row[name] = {"requests_per_s": statistics.median(rates),
                         "tokens_per_s": statistics.median(token_rates), "runs": rates}
        row["ratio"] = row["batched"]["requests_per_s"] / row["one at a time"]["requests_per_s"]
        table.append(row)
        print(f"{clients:>7} | {row['batched']['requests_per_s']:>13.1f} | "
              f"{row['batched']['tokens_per_s']:>8.0f} | "
              f"{row['one at a time']['requests_per_s']:>19.1f} | "
              f"{row['one at a time']['tokens_per_s']:>8.0f} | {row['ratio']:>5.2f}x")
    sequential = table[0]["one at a time"]["requests_per_s"]
    for row in table:
        print(f"{row['clients']:>2} clients, batched, vs one client one at a time: "
              f"{row['batched']['requests_per_s'] / sequential:.2f}x")
    print("batch sizes the batched server ran:", stats["batched"]["batch_sizes"])
    if args.json:
        Path(args.json).write_text(json.dumps({"table": table, "server_stats": stats,
                                               "settings": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
