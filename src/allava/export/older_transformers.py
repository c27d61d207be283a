"""What transformers 4.x needs to read a directory that transformers 5 wrote.

Checked by loading exports with transformers 4.57 (`benchmarks/README.md`, "Exported models in
older transformers"): the weights, configs and processors read the same once these are written
in the older spelling as well.
"""
from __future__ import annotations

import json
from pathlib import Path

# transformers 5's name of the fast tokenizer class; 4.x knows it as PreTrainedTokenizerFast,
# which 5.x reads too.
_FAST_TOKENIZER = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def with_explicit_rope_theta(text_config: dict) -> dict:
    """transformers 5 keeps `rope_theta` inside `rope_parameters`; older releases (and vLLM on
    them) read the top-level key and, when it is missing, silently use 10,000 (Qwen2.5 needs
    1,000,000). Both are written."""
    rope = text_config.get("rope_parameters") or {}
    if "rope_theta" in rope and "rope_theta" not in text_config:
        return {**text_config, "rope_theta": rope["rope_theta"]}
    return text_config


def portable_tokenizer_config(fields: dict, model_input_names: list[str]) -> dict:
    """`tokenizer_config.json` as transformers 4.x reads it, and 5.x the same:
    - the tokenizer class under its 4.x name;
    - added special tokens as `additional_special_tokens` (5.x writes a list under
      `extra_special_tokens`, a key that 4.x expects to be a dict of named tokens);
    - the model's input names, or 4.x's fast tokenizer adds `token_type_ids`, which
      `generate` refuses."""
    fields = dict(fields)
    kind = fields.get("tokenizer_class")
    fields["tokenizer_class"] = _FAST_TOKENIZER.get(kind, kind)
    extra = fields.get("extra_special_tokens")
    if isinstance(extra, list):
        del fields["extra_special_tokens"]
        known = fields.get("additional_special_tokens") or []
        fields["additional_special_tokens"] = known + [t for t in extra if t not in known]
    fields["model_input_names"] = list(model_input_names)
    return fields


def make_tokenizer_portable(out_dir: Path, model_input_names: list[str]) -> None:
    """Rewrites the `tokenizer_config.json` that `save_pretrained` wrote in `out_dir`."""
    path = Path(out_dir) / "tokenizer_config.json"
    fields = portable_tokenizer_config(json.loads(path.read_text(encoding="utf-8")),
                                       model_input_names)
    path.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
