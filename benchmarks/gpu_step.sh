#!/usr/bin/env bash
# The GPU measurement of training speed at real size, in one command of at most 8 minutes on one
# H100 or H200: `real_size_step.py --suite` for the allava_stablelm2 finetune (random weights,
# bf16-mixed), which builds the model once and measures, one after another: length-aware and
# packed batches, gradient checkpointing on and off, sdpa and flex attention, micro-batches of 8
# and 24 samples (SUITE in real_size_step.py). Prints the table for benchmarks/README.md and
# writes gpu_step.json to $OUT (or the current directory).
#
# A device machine has PyTorch, transformers, lightning and timm but no network; the few
# packages it lacks travel as wheels. Once, on a machine with pip access, in the repository root:
#   bash benchmarks/gpu_step.sh --fetch-wheels      # into .whl/ (git-ignored, about 1 MB)
# then on the device (the device tool: carry [".whl"]):
#   bash benchmarks/gpu_step.sh
# Extra arguments go to real_size_step.py, e.g. `--steps 20` or Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 webdataset==1.0.2
        braceexpand==0.1.7)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
  exclude="$(git rev-parse --git-path info/exclude)"
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
  # All pure Python; antlr4's 4.9.3 (what omegaconf needs) is an sdist, built into a wheel.
  python3 -m pip wheel -q --no-deps -w .whl "${WHEELS[@]}"
  ls .whl
  exit 0
fi

if [[ -d .whl ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c 'import torch, transformers, lightning; print("torch", torch.__version__,
  "transformers", transformers.__version__, "lightning", lightning.__version__)'
OUT_DIR="${OUT:-.}"
mkdir -p "$OUT_DIR"
time python3 benchmarks/real_size_step.py --suite --steps 14 --warmup 4 \
  --out "$OUT_DIR/gpu_step.json" "$@"
