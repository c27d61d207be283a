"""The toy world's held-out benchmarks (VLMEvalKit TSV layout, written by `allava toy`), scored by
their kind like any TSV given by path (the demo's accuracy table):

  toy_pope  yes/no existence questions on held-out toy images.
  toy_mcq   multiple choice: colour, shape, count and position questions.

Their files sit in the toy world: `data.root` (train.py) or else `<paths.data_dir>/toy`.
"""

from __future__ import annotations

from allava.evaluation.benchmarks.generic import SCORER
from allava.evaluation.formats.vlmevalkit_tsv import load_tsv_benchmark
from allava.evaluation.registry import BenchmarkDefinition, define, tsv_reader


def _toy(name: str) -> BenchmarkDefinition:
    world = "${oc.select:data.root,${paths.data_dir}/toy}"
    return define(name, scorer=SCORER, readers={"tsv": tsv_reader(load_tsv_benchmark)},
                  sources={"tsv": {"path": f"{world}/benchmarks/{name}.tsv"}},
                  report=[{"column": name, "metric": "accuracy", "scale": 100}])


TOY_POPE = _toy("toy_pope")
TOY_MCQ = _toy("toy_mcq")
