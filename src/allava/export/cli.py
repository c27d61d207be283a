"""`allava export MODEL_DIR --out OUT [--format allava|hf]`: a trained model in another format."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from allava.export.hf_llava import llava_export_blocker, write_llava
from allava.export.not_exportable import NotExportable
from allava.export.remote_code import write_remote_code
from allava.models.model_dir import export_model, load_exported

DESCRIPTION = """\
Writes a trained model (an export directory of train.py, <run>/<stage>/export) in another format.

  --format allava  this package's layout (config.yaml, model.safetensors, tokenizer/, llm/),
                   the one train.py writes and eval.py, `allava chat` and `allava serve` load.
  --format hf      a Hugging Face directory, through one of two doors:
    stock LLaVA    for a CLIP- or SigLIP-family ViT tower (clip_l336, siglip_b16, siglip_so400m,
                   toy_clip) with the linear or mlp2x_gelu connector, and any LLM transformers
                   knows: LlavaForConditionalGeneration + LlavaProcessor, loaded with no remote
                   code by transformers, vLLM, lmms-eval (llava_hf) and VLMEvalKit.
    remote code    everything else (CNN towers such as the toy default, the other connectors):
                   the modeling, configuration and processing files ship in the directory, and
                   AutoModelForImageTextToText / AutoProcessor load it with trust_remote_code=True.
                   --hf-class auto (default) takes stock LLaVA whenever the model fits it.
"""

EPILOG = """\
examples:
  allava export logs/train/runs/<run>/finetune/export --format hf --out exports/my-vlm
  allava export logs/train/runs/<run>/finetune/export --format hf --hf-class remote-code --out exports/my-vlm-rc
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path, help="an exported model directory")
    parser.add_argument("--out", type=Path, required=True, help="the directory to write")
    parser.add_argument("--format", choices=("allava", "hf"), default="allava")
    parser.add_argument("--hf-class", choices=("auto", "llava", "remote-code"), default="auto",
                        help="with --format hf: which door (default auto: stock LLaVA when the "
                             "model fits it, else remote code)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT when it exists and is not empty")
    return parser


def main(argv: list[str] | None = None, prog: str = "allava export") -> int:
    args = build_parser(prog).parse_args(argv)
    out: Path = args.out
    if args.model_dir.resolve().is_relative_to(out.resolve()):
        print(f"{prog}: --out {out} holds the model directory itself; choose another folder",
              file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"{prog}: {out} exists and is not empty; pass --overwrite to replace it",
              file=sys.stderr)
        return 2
    try:
        bundle = load_exported(args.model_dir)
    except FileNotFoundError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if out.exists():
        shutil.rmtree(out)
    if args.format == "allava":
        export_model(bundle, out)
        print(f"wrote {out}: allava model directory")
        return 0
    blocker = llava_export_blocker(bundle.model)
    if args.hf_class == "llava" and blocker:
        print(f"{prog}: this model cannot be a stock LLaVA: {blocker}; use --hf-class auto or "
              "remote-code", file=sys.stderr)
        return 2
    try:
        return _write_hf(bundle, out, args.hf_class, blocker)
    except NotExportable as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2


def _write_hf(bundle, out: Path, hf_class: str, blocker: str | None) -> int:
    if hf_class != "remote-code" and blocker is None:
        write_llava(bundle, out)
        print(f"wrote {out}: stock LlavaForConditionalGeneration (no remote code)\n"
              f"  load: LlavaForConditionalGeneration.from_pretrained({str(out)!r}), "
              f"AutoProcessor.from_pretrained({str(out)!r})")
        return 0
    write_remote_code(bundle, out)
    why = f" (not stock LLaVA: {blocker})" if blocker else ""
    print(f"wrote {out}: Hugging Face remote code{why}\n"
          f"  load: AutoModelForImageTextToText.from_pretrained({str(out)!r}, "
          f"trust_remote_code=True), AutoProcessor.from_pretrained({str(out)!r}, "
          "trust_remote_code=True)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
