"""A byte-level BPE tokenizer trained offline on the toy corpus (no download)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from allava.models.chat_format import ALLAVA_CHAT_TEMPLATE, IMAGE_TAG

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", IMAGE_TAG]


def train_toy_tokenizer(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 1024
                        ) -> PreTrainedTokenizerFast:
    """Trains byte-level BPE on `texts` and saves a Hugging Face tokenizer with `<image>` and
    ALLaVA's chat template to `out_dir` (loadable with `AutoTokenizer.from_pretrained`)."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        additional_special_tokens=[IMAGE_TAG],
        model_max_length=4096,
    )
    tokenizer.chat_template = ALLAVA_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
