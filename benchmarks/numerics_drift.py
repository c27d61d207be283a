"""Same code, data and seed: does training follow the same numbers under other CPU kernels?

Runs the first steps of train.py under several environments that change only which machine
code computes the same maths (ATen's vectorised kernels, MKL's GEMM code path, oneDNN's ISA,
the thread count) and prints, per variant, the first logged step whose loss differs from the
baseline's, the largest difference, and the last loss. A variant that departs in the last bits
at step 1 and by whole percents 30 steps later shows a recipe that amplifies rounding: on
another CPU it ends somewhere else.

    python benchmarks/numerics_drift.py --steps 30
    python benchmarks/numerics_drift.py --steps 30 -- 'stages=[pretrain]' model/vision=toy_resnet10t
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> environment overrides. MKL_CBWR and ONEDNN_MAX_CPU_ISA pin the code path that MKL and
# oneDNN would otherwise pick for the CPU at hand (AVX-512 where present).
VARIANTS = {
    "native": {},
    "pinned-avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten=default": {"ATEN_CPU_CAPABILITY": "default"},
    "mkl=compatible": {"MKL_CBWR": "COMPATIBLE"},
    "onednn=sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
    "threads=1": {"OMP_NUM_THREADS": "1"},
}


def losses(run_dir: Path) -> dict[int, float]:
    found = {}
    for path in run_dir.rglob("metrics.csv"):
        for row in csv.DictReader(path.open()):
            if row.get("train/loss"):
                found[int(row["step"])] = float(row["train/loss"])
    return found


def run_variant(name: str, env: dict[str, str], steps: int, overrides: list[str],
                out: Path) -> dict[int, float]:
    run_dir = out / name.replace("=", "_")
    command = [sys.executable, str(ROOT / "train.py"), f"trainer.max_steps={steps}",
               "logger=csv", "trainer.log_every_n_steps=1", "eval.benchmarks=[]",
               "callbacks.progress_bar.refresh_rate=0", f"hydra.run.dir={run_dir}", *overrides]
    subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return losses(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("overrides", nargs="*", default=["stages=[pretrain]"],
                        help="train.py overrides (default: the pretrain stage only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        curves = {name: run_variant(name, VARIANTS[name], args.steps, args.overrides, Path(tmp))
                  for name in args.variants.split(",")}
    base = curves[next(iter(curves))]
    print(f"{'variant':16} {'first differing step':>21} {'max |diff|':>11} {'last loss':>12}")
    for name, curve in curves.items():
        steps = sorted(set(base) & set(curve))
        differing = [s for s in steps if curve[s] != base[s]]
        worst = max((abs(curve[s] - base[s]) for s in steps), default=0.0)
        first = str(differing[0]) if differing else "none"
        print(f"{name:16} {first:>21} {worst:>11.3g} {curve[steps[-1]]:>12.6f}")


if __name__ == "__main__":
    main()
