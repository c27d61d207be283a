"""Load benchmarks stored in LLaVA-1.5's evaluation layout: a question file, an image folder and the
answer/annotation file each benchmark ships.

Layouts read (haotian-liu/LLaVA `docs/Evaluation.md`, `scripts/v1_5/eval/{pope,textvqa,gqa,vizwiz,sqa}.sh`)
live one per module, each documenting its files, how a question meets its answer and its items:
  `pope`       `load_pope`
  `textvqa`    `load_textvqa`, `textvqa_question_of_prompt`
  `gqa`        `load_gqa`
  `vizwiz`     `load_vizwiz`
  `scienceqa`  `load_scienceqa`
`common` holds what every loader shares: the fields every item carries, the skip reason codes,
`load_item_image` and `strip_short_answer_suffix`.
"""

from allava.evaluation.llava_layout.common import (
    DUPLICATE_QUESTION,
    MALFORMED_ANNOTATION,
    MALFORMED_LINE,
    MISSING_IMAGE,
    NO_ANNOTATION,
    NOT_IN_QUESTION_FILE,
    NOT_IN_SPLIT,
    load_item_image,
    strip_short_answer_suffix,
)
from allava.evaluation.llava_layout.gqa import GQA_LAYOUT, load_gqa
from allava.evaluation.llava_layout.pope import POPE_LAYOUT, load_pope
from allava.evaluation.llava_layout.scienceqa import SCIENCEQA_LAYOUT, load_scienceqa
from allava.evaluation.llava_layout.textvqa import TEXTVQA_LAYOUT, load_textvqa, textvqa_question_of_prompt
from allava.evaluation.llava_layout.vizwiz import VIZWIZ_LAYOUT, load_vizwiz

__all__ = [
    "DUPLICATE_QUESTION",
    "GQA_LAYOUT",
    "MALFORMED_ANNOTATION",
    "MALFORMED_LINE",
    "MISSING_IMAGE",
    "NOT_IN_QUESTION_FILE",
    "NOT_IN_SPLIT",
    "NO_ANNOTATION",
    "POPE_LAYOUT",
    "SCIENCEQA_LAYOUT",
    "TEXTVQA_LAYOUT",
    "VIZWIZ_LAYOUT",
    "load_gqa",
    "load_item_image",
    "load_pope",
    "load_scienceqa",
    "load_textvqa",
    "load_vizwiz",
    "strip_short_answer_suffix",
    "textvqa_question_of_prompt",
]


