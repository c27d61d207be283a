"""Language kept: the held-out prose, perplexity's arithmetic, and the before/after report of train.py."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from allava.evaluation.language import heldout_prose, perplexity
from allava.training.run import train


class WordTokenizer:
    """Whitespace words to ids (enough for perplexity's windowing and its arithmetic)."""

    def __init__(self, vocab: int):
        self.vocab = vocab

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [hash(word) % self.vocab for word in text.split()]}


def test_the_heldout_sample_is_prose_and_fixed():
    first, second = heldout_prose(), heldout_prose()
    assert first.paragraphs == second.paragraphs and first.fingerprint == second.fingerprint
    assert sum(len(p.split()) for p in first.paragraphs) > 5000
    for paragraph in first.paragraphs:
        assert len(paragraph.split()) >= 25
        assert "::=" not in paragraph and "\n" not in paragraph and "***" not in paragraph
    assert "pydoc_data.topics" in first.source


def test_perplexity_is_the_exponent_of_the_mean_loss_over_windows():
    torch.manual_seed(0)
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
                                       num_hidden_layers=1, num_attention_heads=2,
                                       num_key_value_heads=2)).train()
    tokenizer = WordTokenizer(50)
    text = " ".join(f"w{i % 17}" for i in range(25))
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():  # windows of 10 tokens: 9 + 9 + 4 scored positions
        losses = [(float(llm(input_ids=ids[:, s:s + 10], labels=ids[:, s:s + 10]).loss), n)
                  for s, n in ((0, 9), (10, 9), (20, 4))]
    expected = math.exp(sum(l * n for l, n in losses) / 22)
    value, tokens = perplexity(llm, tokenizer, [text], max_tokens=1000, window=10)
    assert tokens == 22 and value == pytest.approx(expected, rel=1e-5)
    assert llm.training  # the model's mode is restored
    _, capped = perplexity(llm, tokenizer, [text, text], max_tokens=12, window=10)
    assert capped == 9 + 1  # the first 12 tokens only


@pytest.mark.slow
def test_train_reports_the_language_before_and_after(tiny_train_config):
    cfg = tiny_train_config("stages=[pretrain]", "eval.benchmarks=[]",
                            "eval.language={max_tokens: 200, questions: [Say hello.], "
                            "max_new_tokens: 3}")
    outcome = train(cfg)
    language = outcome["language"]
    assert list(language) == ["before training", "after training"]
    before, after = language["before training"], language["after training"]
    assert before["tokens"] == after["tokens"] > 100
    assert all(math.isfinite(c["perplexity"]) and c["perplexity"] > 1 for c in (before, after))
    assert before["perplexity"] != after["perplexity"]  # the stage changed the LLM
    assert all(len(c["answers"]) == 1 for c in (before, after))
    run_dir = Path(outcome["run_dir"])
    assert json.loads((run_dir / "summary.json").read_text())["language"] == language
    table = (run_dir / "eval" / "language.md").read_text()
    assert "| before training |" in table and "Q: Say hello." in table
