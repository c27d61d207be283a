"""Build a VisionLanguageModel (and its tokenizer) from the `model` config node."""
from __future__ import annotations

from dataclasses import dataclass

import hydra
from omegaconf import DictConfig, OmegaConf

from allava.models.processor import VLMProcessor, load_tokenizer
from allava.models.vlm import VisionLanguageModel


@dataclass
class VLMBundle:
    """Everything that turns records into model inputs and back, built from one config."""

    model: VisionLanguageModel
    processor: VLMProcessor
    config: DictConfig

    @property
    def tokenizer(self):
        return self.processor.tokenizer

    def context_length(self, limit: int | None = None) -> int:
        """Tokens of prompt and answer together: `limit` (default: the processor's max_length,
        what the model was trained on), capped by the LLM's position embeddings."""
        limit = limit or self.processor.max_length
        positions = getattr(self.model.llm.config, "max_position_embeddings", None)
        return min(limit, positions) if positions else limit


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
    processor = VLMProcessor(tokenizer, model.num_image_tokens,
                             max_length=int(model_cfg.get("max_length", 2048)),
                             image_placement=model_cfg.get("image_placement", "as_written"),
                             image_transform=vision.image_transform())
    return VLMBundle(model, processor, model_cfg)


def model_config_as_dict(model_cfg: DictConfig) -> dict:
    return OmegaConf.to_container(model_cfg, resolve=True)
