"""`allava toy`: generate the toy world dataset from the command line."""

from __future__ import annotations

import argparse
import json

from allava.toy.setup import DEFAULT_VOCAB_SIZE, ensure_toy_world


EXAMPLES = """examples:
  allava toy --out data/toy                      # the demo's world (make demo does this itself)
  allava toy --out /tmp/tiny --num-images 200 --num-text 50 --benchmark-items 40
"""


def build_parser(prog: str = "allava-toy") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Generate the toy world: training/val WebDataset shards, held-out benchmarks "
                    "and the tokenizer trained on its corpus.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="output directory (e.g. data/toy)")
    parser.add_argument("--num-images", type=int, default=20000, help="training images")
    parser.add_argument("--num-text", type=int, default=8000, help="text-only records")
    parser.add_argument("--num-val-images", type=int, default=256, help="validation images")
    parser.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--benchmark-items", type=int, default=600, help="items per benchmark")
    parser.add_argument("--samples-per-shard", type=int, default=2000)
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE,
                        help="size of the byte-level BPE tokenizer trained on the corpus")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: list[str] | None = None, prog: str = "allava-toy") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    for name in ("num_images", "num_text", "num_val_images", "benchmark_items"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    generate = dict(
        num_images=args.num_images, num_text=args.num_text, num_val_images=args.num_val_images,
        num_benchmark_items=args.benchmark_items, image_size=args.image_size, seed=args.seed,
        samples_per_shard=args.samples_per_shard, tokenizer_vocab_size=args.vocab_size,
    )
    info = ensure_toy_world(args.out, generate, progress=not args.no_progress)
    state = "already up to date" if info["skipped"] else f"generated in {info['seconds']} s"
    print(f"toy world at {info['out_dir']}: {state}")
    print(json.dumps(info["counts"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
