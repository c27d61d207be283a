"""The LLM's config as an exported directory writes it, readable by older transformers too."""
from __future__ import annotations


def with_explicit_rope_theta(text_config: dict) -> dict:
    """transformers 5 keeps `rope_theta` inside `rope_parameters`; older releases (and vLLM on
    them) read the top-level key and, when it is missing, silently use 10,000 (Qwen2.5 needs
    1,000,000). Both are written."""
    rope = text_config.get("rope_parameters") or {}
    if "rope_theta" in rope and "rope_theta" not in text_config:
        return {**text_config, "rope_theta": rope["rope_theta"]}
    return text_config
