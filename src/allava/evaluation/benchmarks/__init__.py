"""The benchmarks, one module per family. Each module holds all of its benchmarks: the readers of
their file layouts, the adapter that feeds answered items to the reference scorer, and their
registration (default files, prompt, generation length, published report columns). Importing
this package registers every one (`allava.evaluation.registry`).

  `pope`         pope
  `mme`          mme
  `mmbench`      mmbench_en, mmbench_cn
  `scienceqa`    scienceqa_img
  `mmmu`         mmmu_val
  `vqa`          textvqa_val, vizwiz_val
  `gqa`          gqa
  `seed_mmstar`  seed_img, mmstar
  `mmvet`        mmvet (judged)
  `llava_bench`  llava_bench (judged)
  `toy`          toy_pope, toy_mcq (the toy world's TSVs)
  `generic`      any VLMEvalKit TSV given by path, scored by its kind
"""

from allava.evaluation.benchmarks import (
    generic,
    gqa,
    llava_bench,
    mmbench,
    mme,
    mmmu,
    mmvet,
    pope,
    scienceqa,
    seed_mmstar,
    toy,
    vqa,
)

__all__ = ["generic", "gqa", "llava_bench", "mmbench", "mme", "mmmu", "mmvet", "pope", "scienceqa",
           "seed_mmstar", "toy", "vqa"]
