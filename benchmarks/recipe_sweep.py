"""Run many recipe_probe.py variants side by side (on a GPU machine) and tabulate their curves.

    python benchmarks/recipe_sweep.py VARIANTS_FILE OUT_DIR [--jobs 14] [--device cuda]

VARIANTS_FILE holds one variant per line, `name: recipe_probe arguments` (`#` starts a
comment). The shared record pool is built once, in parallel, before the variants start;
each variant writes OUT_DIR/<name>.log, and OUT_DIR/summary.txt gets every held-out line.
"""
from __future__ import annotations

import argparse
import os
import pickle
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_probe import make_pool  # noqa: E402

PROBE = Path(__file__).resolve().parent / "recipe_probe.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants")
    parser.add_argument("out_dir")
    parser.add_argument("--jobs", type=int, default=14)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pool", default="logs/sweep_pool.pkl")
    parser.add_argument("--pool-size", type=int, default=48000)
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not Path(args.pool).is_file():
        Path(args.pool).write_bytes(pickle.dumps(make_pool(args.pool_size, os.cpu_count() or 1)))
    print(f"pool ready after {time.perf_counter() - start:.0f}s", flush=True)
    variants = []
    for line in Path(args.variants).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, rest = line.split(":", 1)
            variants.append((name.strip(), shlex.split(rest)))
    running: list[tuple[str, subprocess.Popen]] = []
    for name, extra in variants:
        while len(running) >= args.jobs:
            time.sleep(1)
            running = [(n, p) for n, p in running if p.poll() is None]
        log = open(out / f"{name}.log", "w")
        command = [sys.executable, str(PROBE), "--pool", args.pool, "--device", args.device, *extra]
        log.write(" ".join(command) + "\n")
        log.flush()
        running.append((name, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)))
    for _, process in running:
        process.wait()
    with open(out / "summary.txt", "w") as summary:
        for name, _ in variants:
            lines = (out / f"{name}.log").read_text().splitlines()
            for line in lines:
                if "held-out" in line or "Error" in line or "limit" in line:
                    summary.write(f"{name}: {line.strip()}\n")
    print((out / "summary.txt").read_text())
    print(f"sweep done after {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
