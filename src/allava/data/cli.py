"""`allava data`: dataset tools. `allava data convert` turns ALLaVA / LLaVA / ShareGPT4V
conversation files and their image folder into WebDataset shards (see allava.data.convert)."""
from __future__ import annotations

import argparse
import json
import sys

from allava.data.convert import ConvertOptions, convert
from allava.data.source_records import InputFileError

DEFAULTS = ConvertOptions()


EXAMPLES = """examples:
  allava data convert --input allava_laion/ALLaVA-Caption-LAION-4V.json --image-root allava_laion \\
      --out data/allava/caption_laion --workers 8
  allava data convert --input a.jsonl --input b.json --out data/mix --max-image-side 768
"""


def _convert(args: argparse.Namespace, prog: str) -> int:
    options = ConvertOptions(
        image_root=args.image_root, source=args.source,
        samples_per_shard=args.samples_per_shard, max_shard_bytes=args.max_shard_bytes,
        max_image_side=args.max_image_side, min_image_side=args.min_image_side,
        workers=args.workers)
    try:
        manifest = convert(args.input, args.out, options, overwrite=args.overwrite,
                           progress=not args.quiet)
    except (InputFileError, FileExistsError, RuntimeError) as error:
        print(f"{prog} convert: {error}", file=sys.stderr)
        return 2
    totals = manifest["totals"]
    print(json.dumps({"out": args.out, **totals}, indent=2))
    if totals["rejected"]:
        print(f"{totals['rejected']} record(s) rejected; one line each in "
              f"{args.out}/{manifest['rejects_file']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None, prog: str = "allava-data") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    c = commands.add_parser("convert", help="conversation JSON/JSONL + images -> shards",
                            description="Converts conversation records (JSON lists or JSON "
                            "Lines) and their images into WebDataset shards with manifest.json "
                            "and rejects.jsonl. Rerunning an interrupted conversion resumes it.",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--input", action="append", required=True,
                   help="a JSON list or JSONL file of records; repeat for several")
    c.add_argument("--image-root", default=".", help="the folder image paths are relative to")
    c.add_argument("--out", required=True, help="output shard directory")
    c.add_argument("--source", help="the records' `source` field (default: input file stem)")
    c.add_argument("--samples-per-shard", type=int, default=DEFAULTS.samples_per_shard)
    c.add_argument("--max-shard-bytes", type=int, default=DEFAULTS.max_shard_bytes)
    c.add_argument("--workers", type=int, default=DEFAULTS.workers, help="image-reading processes")
    c.add_argument("--max-image-side", type=int, default=None,
                   help="re-encode larger images to JPEG at this longest side (default: keep)")
    c.add_argument("--min-image-side", type=int, default=DEFAULTS.min_image_side,
                   help="reject images with a shorter side")
    c.add_argument("--overwrite", action="store_true",
                   help="start over in an output directory that holds shards")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    return _convert(args, prog)


if __name__ == "__main__":
    sys.exit(main())
