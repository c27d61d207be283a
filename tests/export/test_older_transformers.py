"""Exported configs also say what transformers 4.x reads: the RoPE base at the top level, the
tokenizer under its 4.x class name, added tokens and input names as 4.x spells them."""
from __future__ import annotations

import json

from transformers import AutoConfig

from allava.export.older_transformers import portable_tokenizer_config, with_explicit_rope_theta


def test_a_non_default_rope_base_is_written_at_the_top_level_too():
    qwen = AutoConfig.for_model("qwen2", hidden_size=32, num_attention_heads=2,
                                rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    written = with_explicit_rope_theta(qwen.to_diff_dict())
    assert written["rope_theta"] == written["rope_parameters"]["rope_theta"] == 1e6
    reread = AutoConfig.for_model("qwen2", **{k: v for k, v in written.items()
                                              if k != "model_type"})
    assert reread.rope_parameters["rope_theta"] == 1e6  # transformers 5 reads it back the same


def test_a_config_without_rope_is_left_as_it_is():
    fields = {"model_type": "gpt2", "n_embd": 32}
    assert with_explicit_rope_theta(fields) == fields


def test_the_tokenizer_config_is_spelled_as_transformers_4_reads_it(toy_root, tmp_path):
    from transformers import AutoTokenizer

    from allava.export.older_transformers import make_tokenizer_portable
    from allava.models.chat_format import ensure_image_token

    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    ensure_image_token(tokenizer)
    tokenizer.save_pretrained(str(tmp_path))
    make_tokenizer_portable(tmp_path, tokenizer.model_input_names)
    fields = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert fields["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "<image>" in fields["additional_special_tokens"]
    assert "extra_special_tokens" not in fields
    assert fields["model_input_names"] == ["input_ids", "attention_mask"]
    reread = AutoTokenizer.from_pretrained(str(tmp_path))  # transformers 5 reads it the same
    assert reread("a <image> b")["input_ids"] == tokenizer("a <image> b")["input_ids"]
    assert reread.convert_tokens_to_ids("<image>") == tokenizer.convert_tokens_to_ids("<image>")
    assert set(reread("x")) == {"input_ids", "attention_mask"}
