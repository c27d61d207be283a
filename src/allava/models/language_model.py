"""The language model: any Hugging Face causal LM, by hub name, local path, or config."""
from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_language_model(
    name_or_path: str | None = None,
    config: dict[str, Any] | None = None,
    vocab_size: int | None = None,
    attn_implementation: str = "sdpa",
    dtype: str | None = None,
    trust_remote_code: bool = False,
    pretrained: bool = True,
) -> PreTrainedModel:
    """Loads `name_or_path` (weights included when `pretrained`), or builds a fresh model from
    `config` (a dict of `config.json` fields with `model_type`), e.g. the tiny toy LLM.

    `vocab_size`, when given, resizes the embeddings to the tokenizer (it carries `<image>`).
    """
    if (name_or_path is None) == (config is None):
        raise ValueError("model.llm needs exactly one of `name_or_path` or `config`")
    torch_dtype = _DTYPES[dtype] if dtype else None
    if config is None and pretrained:
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, attn_implementation=attn_implementation, torch_dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
    else:
        model = AutoModelForCausalLM.from_config(
            _architecture(name_or_path, config, trust_remote_code, attn_implementation),
            torch_dtype=torch_dtype, trust_remote_code=trust_remote_code,
        )
    if vocab_size is not None and model.get_input_embeddings().num_embeddings != vocab_size:
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
    return model


def _architecture(name_or_path: str | None, config: dict[str, Any] | None,
                  trust_remote_code: bool, attn_implementation: str):
    """The HF config to build random weights from: given fields, or a hub/local config.json."""
    if config is not None:
        fields = dict(config)
        model_type = fields.pop("model_type", None)
        if model_type is None:
            raise ValueError("model.llm.config needs a `model_type` (e.g. llama, phi, qwen2)")
        hf_config = AutoConfig.for_model(model_type, **fields)
    else:
        hf_config = AutoConfig.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    hf_config._attn_implementation = attn_implementation
    return hf_config
