"""The language model: any Hugging Face causal LM, by hub name, local path, or config."""
from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from allava.models.weights import LLMSource, resolve_llm_source

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_language_model(
    name_or_path: str | None = None,
    config: dict[str, Any] | None = None,
    vocab_size: int | None = None,
    attn_implementation: str = "sdpa",
    dtype: str | None = None,
    trust_remote_code: bool = False,
    weights: str = "auto",
    packaged: dict[str, str] | None = None,
) -> PreTrainedModel:
    """Loads `name_or_path` with its weights, or builds a fresh model: from `config` (a dict of
    `config.json` fields with `model_type`, e.g. the tiny toy LLM), or with `weights: none` from
    the architecture of `name_or_path`.

    `weights` and `packaged` say where the files come from (`allava.models.weights.
    resolve_llm_source`: auto, hub, none, or a folder / .gguf file). A GGUF checkpoint is
    dequantised to float32 (or `dtype`) on load.
    `vocab_size`: the tokenizer's length (it carries `<image>`), which the embeddings must cover.
    """
    if (name_or_path is None) == (config is None):
        raise ValueError("model.llm needs exactly one of `name_or_path` or `config`")
    check_attn_implementation(attn_implementation)
    torch_dtype = _DTYPES[dtype] if dtype else None
    source = resolve_llm_source(name_or_path, weights, packaged) if config is None else None
    if source is not None and weights != "none":
        model = AutoModelForCausalLM.from_pretrained(
            source.location, attn_implementation=attn_implementation, dtype=torch_dtype,
            trust_remote_code=trust_remote_code, **source.kwargs(),
        )
    else:
        model = AutoModelForCausalLM.from_config(
            _architecture(source, config, trust_remote_code, attn_implementation),
            dtype=torch_dtype, trust_remote_code=trust_remote_code,
        )
    rows = model.get_input_embeddings().num_embeddings
    # A model built from `config` gets exactly the tokenizer's vocabulary. A hub model keeps its
    # rows (they often outnumber the tokenizer's ids: Phi-2 51,200 for 50,295) and grows only
    # when `<image>` and other added tokens do not fit.
    if vocab_size is not None and (vocab_size > rows or (config is not None and vocab_size != rows)):
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
    return model


ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def check_attn_implementation(name: str) -> None:
    """Fails at build time, naming the fix, rather than deep inside transformers."""
    if name not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"model.llm.model.attn_implementation={name!r}; choose among "
                         f"{list(ATTN_IMPLEMENTATIONS)}")
    if name == "flash_attention_2":
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise ValueError("attn_implementation=flash_attention_2 needs the flash-attn package "
                             "(pip install flash-attn --no-build-isolation, CUDA only); or use "
                             "model.llm.model.attn_implementation=sdpa")


def _architecture(source: LLMSource | None, config: dict[str, Any] | None,
                  trust_remote_code: bool, attn_implementation: str):
    """The HF config to build random weights from: given fields, or a hub/local config.json."""
    if config is not None:
        fields = dict(config)
        model_type = fields.pop("model_type", None)
        if model_type is None:
            raise ValueError("model.llm.config needs a `model_type` (e.g. llama, phi, qwen2)")
        hf_config = AutoConfig.for_model(model_type, **fields)
    else:
        hf_config = AutoConfig.from_pretrained(source.location, trust_remote_code=trust_remote_code,
                                               **source.kwargs())
    hf_config._attn_implementation = attn_implementation
    return hf_config
