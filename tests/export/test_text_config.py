"""Exported LLM configs name their RoPE base where transformers 4.x looks for it."""
from __future__ import annotations

from transformers import AutoConfig

from allava.export.text_config import with_explicit_rope_theta


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
