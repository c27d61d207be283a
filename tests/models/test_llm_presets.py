"""The real LLM presets, built at full size on the meta device from their architecture facts
(`tests/helpers/fixtures/llm_configs/<preset>.json`, the fields of each model's config.json)."""
from __future__ import annotations

import json
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from allava.models.connectors import MLPConnector
from allava.models.vlm import VisionLanguageModel
from tests.helpers.configs import compose_config

FIXTURES = Path(__file__).parents[1] / "helpers" / "fixtures" / "llm_configs"

# preset: (hub name, parameters, width, vocabulary rows); counts as published for each model.
PRESETS = {
    "phi2": ("microsoft/phi-2", 2_779_683_840, 2560, 51200),
    "stablelm2_1_6b": ("stabilityai/stablelm-2-1_6b", 1_644_515_328, 2048, 100352),
    "phi3_mini": ("microsoft/Phi-3-mini-4k-instruct", 3_821_079_552, 3072, 32064),
    "qwen2_5_0_5b": ("Qwen/Qwen2.5-0.5B-Instruct", 494_032_768, 896, 151936),
    "qwen2_5_1_5b": ("Qwen/Qwen2.5-1.5B-Instruct", 1_543_714_304, 1536, 151936),
    "smollm2_360m": ("HuggingFaceTB/SmolLM2-360M-Instruct", 361_821_120, 960, 49152),
    "smollm2_135m_instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", 134_515_008, 576, 49152),
    "tinyllama": ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1_100_048_384, 2048, 32000),
}


def local_architecture(preset: str, directory: Path) -> Path:
    """A directory holding the preset's config.json, as a hub snapshot would."""
    fields = {k: v for k, v in json.loads((FIXTURES / f"{preset}.json").read_text()).items()
              if not k.startswith("_")}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(fields))
    return directory


def build_on_meta(preset: str, tmp_path: Path, vocab_size: int | None = None, *overrides: str):
    cfg = compose_config("train", [f"model/llm={preset}", *overrides], tmp_path)
    node = OmegaConf.to_container(cfg.model.llm.model, resolve=True)
    node.update(name_or_path=str(local_architecture(preset, tmp_path / preset)), weights="none")
    with torch.device("meta"):
        return hydra.utils.instantiate(node, vocab_size=vocab_size), cfg


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_every_preset_has_a_fixture():
    presets = {p.stem for p in (Path(__file__).parents[2] / "configs/model/llm").glob("*.yaml")}
    assert presets - {"toy_llama"} == set(PRESETS) == {p.stem for p in FIXTURES.glob("*.json")}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_llm_preset_builds_at_full_size_on_meta(preset, tmp_path):
    hub, parameters, width, rows = PRESETS[preset]
    model, cfg = build_on_meta(preset, tmp_path, vocab_size=rows - 100)
    llm = cfg.model.llm
    assert llm.tokenizer == llm.model.name_or_path == hub
    assert llm.model.weights == "auto" and not llm.trust_remote_code and llm.model.attn_implementation == "sdpa"
    assert count(model) == parameters
    assert model.get_input_embeddings().weight.shape == (rows, width)  # never shrunk
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("preset", ["phi2", "qwen2_5_0_5b"])
def test_embeddings_grow_when_added_tokens_do_not_fit(preset, tmp_path):
    _, parameters, width, rows = PRESETS[preset]
    model, _ = build_on_meta(preset, tmp_path, vocab_size=rows + 1)
    tied = model.config.tie_word_embeddings
    assert model.get_input_embeddings().weight.shape == (rows + 1, width)
    head_bias = model.get_output_embeddings().bias is not None  # Phi-2's head has one
    assert count(model) == parameters + width * (1 if tied else 2) + head_bias


# LLM preset -> mlp2x_gelu parameters from CLIP-L's 1024 channels: 1024 x d + d + d x d + d.
ALLAVA_MODELS = {"stablelm2_1_6b": 6_295_552, "phi2": 9_180_160, "phi3_mini": 12_589_056}


@pytest.mark.parametrize("preset", sorted(ALLAVA_MODELS))
def test_allava_models_build_on_meta_with_576_image_tokens(preset, tmp_path):
    llm, cfg = build_on_meta(preset, tmp_path, None, "model/vision=clip_l336",
                             "model.vision.weights=none", "model/connector=mlp2x_gelu")
    with torch.device("meta"):
        tower = hydra.utils.instantiate(OmegaConf.to_container(cfg.model.vision, resolve=True))
        connector = hydra.utils.instantiate(
            OmegaConf.to_container(cfg.model.connector, resolve=True),
            in_dim=tower.feature_dim, out_dim=llm.get_input_embeddings().embedding_dim)
        model = VisionLanguageModel(tower, connector, llm, image_token_id=0)
    assert isinstance(connector, MLPConnector) and count(connector) == ALLAVA_MODELS[preset]
    assert model.num_image_tokens == 576
    assert count(model) == 290_909_184 + ALLAVA_MODELS[preset] + PRESETS[preset][1]


def test_flash_attention_without_the_package_names_the_fix(tmp_path):
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="attn_implementation=sdpa"):
        build_on_meta("qwen2_5_0_5b", tmp_path, None,
                      "model.llm.model.attn_implementation=flash_attention_2")


def test_chat_template_own_when_present_else_allavas(toy_root):
    from transformers import AutoTokenizer

    from allava.models.chat_format import ALLAVA_CHAT_TEMPLATE, set_chat_template

    own = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}]
    tokenizer = AutoTokenizer.from_pretrained(str(toy_root / "tokenizer"))
    tokenizer.chat_template = None  # like Phi-2's tokenizer
    set_chat_template(tokenizer, None)
    assert tokenizer.chat_template == ALLAVA_CHAT_TEMPLATE
    assert "[INST] hi [/INST] yes" in tokenizer.apply_chat_template(messages, tokenize=False)
    tokenizer.chat_template = own  # like Qwen2.5-Instruct's
    set_chat_template(tokenizer, None)
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "<|user|>hi<|assistant|>yes"
    set_chat_template(tokenizer, "allava")  # the released ALLaVA models' format, forced
    assert tokenizer.chat_template == ALLAVA_CHAT_TEMPLATE
