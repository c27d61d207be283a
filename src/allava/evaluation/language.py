"""Does the LLM keep its language through multimodal training? (ALLaVA mixes text-only data for it.)

Two measures, taken on the same model before and after training:

- perplexity on held-out English prose: paragraphs of the Python reference documentation that
  ships with CPython (`pydoc_data.topics`), so every install has the same sample offline and no
  training set here contains it;
- greedy answers to a few fixed open questions, to read beside the number.
"""
from __future__ import annotations

import hashlib
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch

from allava.models.predictor import VLMPredictor

DEFAULT_QUESTIONS = (
    "What is the capital of France?",
    "Give two tips for sleeping well.",
    "Why do leaves change colour in autumn?",
)


@dataclass(frozen=True)
class HeldoutText:
    """The paragraphs measured, and a fingerprint that tells two samples apart."""

    paragraphs: tuple[str, ...]
    source: str

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\n\n".join(self.paragraphs).encode()).hexdigest()[:12]


@dataclass
class LanguageCheck:
    """One model's perplexity on the held-out text and its answers to the open questions."""

    perplexity: float
    tokens: int
    answers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heldout_prose(min_words: int = 25) -> HeldoutText:
    """Prose paragraphs of CPython's `pydoc_data.topics`, topics in sorted order; grammar rules,
    code examples (indented), headings and short fragments are left out."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some distributions split the documentation off
        raise RuntimeError("the held-out text is CPython's pydoc_data.topics, which this Python "
                           "lacks (on Debian: apt install libpython3-stdlib)") from error
    paragraphs = []
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            if block.startswith(" ") or "::=" in block or re.search(r"^[*=-]{3,}", block, re.M):
                continue
            words = block.split()
            if len(words) >= min_words:
                paragraphs.append(" ".join(words))
    version = ".".join(map(str, sys.version_info[:2]))
    return HeldoutText(tuple(paragraphs), f"pydoc_data.topics (Python {version})")


@torch.no_grad()
def perplexity(llm, tokenizer, paragraphs: Sequence[str], max_tokens: int = 4096,
               window: int = 256) -> tuple[float, int]:
    """exp(mean next-token loss) over the first `max_tokens` tokens of `paragraphs`, each
    paragraph cut into windows of at most `window` tokens; returns (perplexity, tokens scored)."""
    device = next(llm.parameters()).device
    was_training = llm.training
    llm.eval()
    total_loss, total_tokens, budget = 0.0, 0, max_tokens
    try:
        for text in paragraphs:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:budget]
            budget -= len(ids)
            for start in range(0, len(ids), window):
                chunk = torch.tensor([ids[start:start + window]], device=device)
                if chunk.shape[1] < 2:
                    continue
                loss = llm(input_ids=chunk, labels=chunk).loss
                scored = chunk.shape[1] - 1
                total_loss += float(loss) * scored
                total_tokens += scored
            if budget <= 0:
                break
    finally:
        llm.train(was_training)
    if not total_tokens:
        raise ValueError("no held-out tokens to score")
    return math.exp(total_loss / total_tokens), total_tokens


def check_language(predictor, heldout: HeldoutText, questions: Sequence[str] = DEFAULT_QUESTIONS,
                   max_tokens: int = 4096, max_new_tokens: int = 48) -> LanguageCheck:
    """Perplexity of the predictor's LLM on `heldout` and its greedy answers to `questions`
    (text only, through the model's chat template)."""
    bundle = predictor.bundle
    value, tokens = perplexity(bundle.model.llm, bundle.tokenizer, heldout.paragraphs, max_tokens)
    answers = (predictor.answer(list(questions), [None] * len(questions),
                                max_new_tokens=max_new_tokens) if questions else [])
    return LanguageCheck(value, tokens, answers)  # answer() strips them


class LanguageProbe:
    """`eval.language` of train.py: the same held-out text and questions for every model checked."""

    def __init__(self, questions: Sequence[str] = DEFAULT_QUESTIONS, max_tokens: int = 4096,
                 max_new_tokens: int = 48):
        self.heldout = heldout_prose()
        self.questions = tuple(questions)
        self.max_tokens = int(max_tokens)
        self.max_new_tokens = int(max_new_tokens)

    def check(self, bundle) -> LanguageCheck:
        """Measures a built model (VLMBundle), leaving it in the mode it was in."""
        was_training = bundle.model.training
        try:
            return check_language(VLMPredictor(bundle), self.heldout, self.questions,
                                  self.max_tokens, self.max_new_tokens)
        finally:
            bundle.model.train(was_training)

    def table(self, checks: dict[str, LanguageCheck]) -> str:
        return language_table(checks, self.heldout, self.questions)


def language_table(checks: dict[str, LanguageCheck], heldout: HeldoutText,
                   questions: Sequence[str]) -> str:
    """Markdown: perplexity per model, then each question with every model's answer."""
    first = next(iter(checks.values()))
    lines = [f"Language kept: perplexity on {first.tokens:,} held-out tokens of "
             f"{heldout.source}, sample {heldout.fingerprint} (lower is better)", "",
             "| model | perplexity |", "|---|---|"]
    lines += [f"| {name} | {check.perplexity:.2f} |" for name, check in checks.items()]
    for index, question in enumerate(questions):
        lines += ["", f"Q: {question}"]
        lines += [f"  {name}: {_one_line(check.answers[index])}" for name, check in checks.items()
                  if index < len(check.answers)]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(empty)"
