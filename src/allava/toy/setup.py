"""Make sure the toy world (shards, benchmarks, tokenizer) exists before training on it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from allava.toy.generate import generate_toy_world, iter_corpus_texts
from allava.toy.tokenizer import train_toy_tokenizer

DEFAULT_VOCAB_SIZE = 1024


def ensure_toy_world(root: str | Path, generate: Mapping[str, Any], progress: bool = True
                     ) -> dict[str, Any]:
    """Generates the toy world under `root` unless it is already there with these settings
    (generation is idempotent), then trains its tokenizer if the data changed or it has none.
    Returns the generator's info (`skipped` says whether the data was already there)."""
    root = Path(root)
    params = dict(generate)
    vocab_size = int(params.pop("tokenizer_vocab_size", DEFAULT_VOCAB_SIZE))
    info = generate_toy_world(root, progress=progress, **params)
    tokenizer_dir = root / "tokenizer"
    if not info.get("skipped") or not (tokenizer_dir / "tokenizer.json").is_file():
        train_toy_tokenizer(iter_corpus_texts(root), tokenizer_dir, vocab_size=vocab_size)
    return info
