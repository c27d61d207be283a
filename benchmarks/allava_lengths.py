"""Token lengths shaped like ALLaVA-4V's training mixtures, for the benchmarks that need them.

The released data cannot be downloaded here, so each subset is modelled by log-normal token
counts for the question and the answer, fixed from what is known about it:
- Caption-LAION / Caption-VFLAN: one fixed prompt ("Please depict the image in words.") and a
  GPT-4V caption of 100-400 tokens;
- Instruct-LAION: a short complex-reasoning question, a detailed answer of about 100-500 tokens;
- Instruct-VFLAN: Vision-FLAN task instructions (some with options), shorter answers;
- Evol-Instruct-GPT4-Turbo (text only): longer questions, answers of hundreds of tokens up to
  the 2,048-token limit.
A sample with an image adds 576 tokens (CLIP-L/336 + mlp2x_gelu); the chat template adds
`TEMPLATE_TOKENS`. The mixtures weigh subsets by their record counts and ALLaVA's repeats
(the text twice in pretraining). These are assumptions, stated here so that measured lengths
can replace them: `sample_lengths(..., lengths_from=...)` draws from a JSON list of them.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

IMAGE_TOKENS = 576
TEMPLATE_TOKENS = 10
MAX_LENGTH = 2048


@dataclass(frozen=True)
class Subset:
    records: int
    image: bool
    question: tuple[float, float]  # median tokens, log-normal sigma
    answer: tuple[float, float]
    answer_range: tuple[int, int]


SUBSETS = {
    "caption_laion": Subset(469_000, True, (9, 0.0), (210, 0.3), (80, 450)),
    "caption_vflan": Subset(195_000, True, (9, 0.0), (180, 0.35), (60, 450)),
    "instruct_laion": Subset(469_000, True, (28, 0.4), (230, 0.45), (30, 1200)),
    "instruct_vflan": Subset(193_000, True, (55, 0.7), (130, 0.6), (10, 1000)),
    "evol_text": Subset(143_000, False, (110, 0.9), (450, 0.6), (20, 2000)),
}
MIXTURES = {
    "pretrain": {"caption_laion": 1, "caption_vflan": 1, "evol_text": 2},
    "finetune": {"instruct_laion": 1, "instruct_vflan": 1, "evol_text": 1},
}


@dataclass(frozen=True)
class SampleShape:
    subset: str
    image: bool
    question_tokens: int
    answer_tokens: int

    @property
    def tokens(self) -> int:
        """Training length: cut at MAX_LENGTH as the processor cuts it."""
        total = TEMPLATE_TOKENS + self.question_tokens + self.answer_tokens
        return min(MAX_LENGTH, total + (IMAGE_TOKENS if self.image else 0))


def _draw(rng: random.Random, median: float, sigma: float, low: int = 1,
          high: int = MAX_LENGTH) -> int:
    value = median if sigma == 0 else rng.lognormvariate(math.log(median), sigma)
    return max(low, min(high, int(value)))


def sample_shapes(stage: str, count: int, seed: int = 0) -> list[SampleShape]:
    """`count` samples of the stage's mixture, subsets drawn in proportion to records x repeat."""
    rng = random.Random(seed)
    names = list(MIXTURES[stage])
    weights = [SUBSETS[n].records * MIXTURES[stage][n] for n in names]
    shapes = []
    for name in rng.choices(names, weights=weights, k=count):
        subset = SUBSETS[name]
        shapes.append(SampleShape(name, subset.image, _draw(rng, *subset.question),
                                  _draw(rng, *subset.answer, *subset.answer_range)))
    return shapes


def sample_lengths(stage: str, count: int, seed: int = 0,
                   lengths_from: Path | None = None) -> list[int]:
    """Training lengths in tokens: modelled, or drawn from a JSON list of measured lengths
    (e.g. the token lengths of real converted records)."""
    if lengths_from is not None:
        measured = json.loads(Path(lengths_from).read_text())
        rng = random.Random(seed)
        return [min(MAX_LENGTH, int(rng.choice(measured))) for _ in range(count)]
    return [shape.tokens for shape in sample_shapes(stage, count, seed)]
