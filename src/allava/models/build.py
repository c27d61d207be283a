"""Build a VisionLanguageModel (and its tokenizer) from the `model` config node."""
from __future__ import annotations

from dataclasses import dataclass

import hydra
from omegaconf import DictConfig, OmegaConf
from transformers import AutoTokenizer

from allava.data.chat_format import ensure_image_token, set_chat_template
from allava.data.tokenization import ConversationTokenizer
from allava.models.vlm import VisionLanguageModel


@dataclass
class VLMBundle:
    """Everything that turns records into model inputs and back, built from one config."""

    model: VisionLanguageModel
    tokenizer: object
    text: ConversationTokenizer
    config: DictConfig

    def image_transform(self):
        return self.model.vision.image_transform()


def load_tokenizer(llm_cfg: DictConfig):
    path = llm_cfg.tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(path), trust_remote_code=bool(llm_cfg.get("trust_remote_code", False))
        )
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"cannot load the tokenizer from {path!r} (model.llm.tokenizer). For the toy world, "
            "generate the data first (it trains the tokenizer): `allava-toy --out data/toy`"
        ) from error
    set_chat_template(tokenizer, llm_cfg.get("chat_template"))
    ensure_image_token(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def build_vlm(model_cfg: DictConfig) -> VLMBundle:
    """Instantiates tower, LLM and connector (widths filled in from the other two)."""
    tokenizer = load_tokenizer(model_cfg.llm)
    vision = hydra.utils.instantiate(model_cfg.vision)
    llm = hydra.utils.instantiate(model_cfg.llm.model, vocab_size=len(tokenizer))
    connector = hydra.utils.instantiate(
        model_cfg.connector,
        in_dim=vision.feature_dim,
        out_dim=llm.get_input_embeddings().embedding_dim,
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    model = VisionLanguageModel(vision, connector, llm, image_token_id)
    llm.generation_config.pad_token_id = tokenizer.pad_token_id
    llm.generation_config.eos_token_id = tokenizer.eos_token_id
    text = ConversationTokenizer(tokenizer, model.num_image_tokens,
                                 max_length=int(model_cfg.get("max_length", 2048)),
                                 image_placement=model_cfg.get("image_placement", "as_written"))
    return VLMBundle(model, tokenizer, text, model_cfg)


def model_config_as_dict(model_cfg: DictConfig) -> dict:
    return OmegaConf.to_container(model_cfg, resolve=True)
