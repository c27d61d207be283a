"""`allava <tool> ...`: one command for the project's tools.

Each tool keeps its own parser (`allava <tool> --help`); this module only routes to it. The tools
are imported when called, so that `allava --help` answers at once.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

from allava import __version__


@dataclass(frozen=True)
class Tool:
    module: str  # has `main(argv, prog) -> int`
    summary: str


TOOLS = {
    "data": Tool("allava.data.cli",
                 "dataset tools: `allava data convert` turns ALLaVA / LLaVA / ShareGPT4V records "
                 "and their images into WebDataset shards"),
    "synth": Tool("allava.synth.cli",
                  "distil captions and QA (or text answers) from an OpenAI-compatible teacher"),
    "toy": Tool("allava.toy.cli",
                "generate the toy world: shards, held-out benchmarks and its tokenizer"),
    "chat": Tool("allava.cli.chat",
                 "talk with a trained model in the terminal: multi-turn, streamed, with an image"),
    "serve": Tool("allava.serve.cli",
                  "serve a trained model over an OpenAI-compatible HTTP API, batching requests"),
    "export": Tool("allava.export.cli",
                   "write a trained model as a Hugging Face directory (stock LLaVA or remote code)"),
}

USAGE = """usage: allava <tool> [arguments]   (allava <tool> --help for its options)

Train lite vision-language models the ALLaVA way.

tools:
{tools}

examples:
  allava toy --out data/toy
  allava data convert --input ALLaVA-Caption-LAION-4V.json --image-root allava_laion --out data/allava/caption
  allava synth --input images/ --out data/synth/laion --mode laion --base-url URL --model NAME --dry-run
  allava chat logs/train/runs/<run>/finetune/export --image scene.png
  allava serve logs/train/runs/<run>/finetune/export --port 8000
  allava export logs/train/runs/<run>/finetune/export --format hf --out exports/my-vlm

Training and evaluation are Hydra applications in the repository: `python train.py [overrides]`
and `python eval.py model_dir=... [overrides]`. The older commands allava-data, allava-synth and
allava-toy still work, as aliases of `allava data`, `allava synth` and `allava toy`, for one release.
"""


def usage() -> str:
    width = max(len(name) for name in TOOLS)
    rows = "\n".join(f"  {name:<{width}}  {tool.summary}" for name, tool in TOOLS.items())
    return USAGE.format(tools=rows)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name in ("-V", "--version"):
        print(f"allava {__version__}")
        return 0
    tool = TOOLS.get(name)
    if tool is None:
        print(f"allava: unknown tool {name!r}; choose among {', '.join(TOOLS)} "
              "(allava --help lists them)", file=sys.stderr)
        return 2
    module = importlib.import_module(tool.module)  # only the tool asked for is imported
    return int(module.main(rest, prog=f"allava {name}") or 0)


if __name__ == "__main__":
    raise SystemExit(main())
