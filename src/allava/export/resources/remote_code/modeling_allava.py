"""An ALLaVA vision-language model as Hugging Face remote code: timm tower -> connector ->
image features written into the `<image>` placeholders of the language model's embeddings.

Written by `allava export`; loads with transformers, timm and torch alone (no `allava` package).
The weight names are the training code's (`vision.*`, `connector.*`, `llm.*`).
"""
from __future__ import annotations

import inspect

import timm
import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedModel

from .allava_connectors import Connector
from .allava_layer_tokens import layer_tokens
from .configuration_allava import AllavaConfig


class AllavaVisionTower(nn.Module):
    """A timm model whose `forward(pixels)` is the `[B, N, D]` tokens of one layer: a ViT's
    block output (prefix tokens dropped, or kept in front) or a CNN stage's feature map
    flattened row-major. Blocks after that layer cannot change it and are pruned."""

    def __init__(self, config: dict):
        super().__init__()
        self.model = timm.create_model(config["model_name"], pretrained=False, num_classes=0,
                                       **config.get("model_kwargs", {}))
        self.take_indices = self.model.prune_intermediate_layers(
            [config["feature_layer"]], prune_norm=True, prune_head=True)
        self.keep_prefix_tokens = config.get("prefix_tokens", "drop") == "keep"

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return layer_tokens(self.model, pixel_values, self.take_indices, self.keep_prefix_tokens)


def build_connector(config: dict) -> Connector:
    """The connector class named in `config`, from the shipped `allava_connectors.py`."""
    arguments = dict(config)
    name = arguments.pop("class_name")
    connector_class = getattr(inspect.getmodule(Connector), name, None)
    if not (isinstance(connector_class, type) and issubclass(connector_class, Connector)):
        raise ValueError(f"allava_connectors.py has no connector {name!r}")
    return connector_class(**arguments)


class AllavaForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """`vision` -> `connector` -> the connector's outputs written into the `<image>`
    placeholders of `llm`'s input embeddings. Generation is the LLM's, through GenerationMixin
    with its KV cache; the images are encoded once, on the first step."""

    config_class = AllavaConfig
    # The language model attends as its own config says; these let transformers pass the choice on.
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flash_attn_2 = True  # the same, as transformers 4.x spells it

    def __init__(self, config: AllavaConfig):
        super().__init__(config)
        self.vision = AllavaVisionTower(config.vision_config)
        self.connector = build_connector(config.connector_config)
        self.llm = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.llm.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.llm.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.llm.set_output_embeddings(value)

    def get_decoder(self) -> nn.Module:
        return self.llm.get_decoder()

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`[n_images, 3, H, W]` -> `[n_images, num_image_tokens, D_llm]`."""
        return self.connector(self.vision(pixel_values))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with image features written into the `<image>` placeholders,
        images in row-major order: sample by sample, left to right."""
        embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is None or pixel_values.shape[0] == 0:
            # No check for stray placeholders: a generated `<image>` id is just a token.
            return embeds
        features = self.get_image_features(pixel_values.to(embeds.dtype))
        placeholders = input_ids == self.config.image_token_id
        if features.shape[0] * features.shape[1] != int(placeholders.sum()):
            raise ValueError(
                f"{int(placeholders.sum())} <image> placeholders in input_ids but "
                f"{features.shape[0]} images x {features.shape[1]} tokens; the processor expands "
                f"each <image> to {self.config.num_image_tokens} placeholders")
        mask = placeholders.unsqueeze(-1).expand_as(embeds)
        return embeds.masked_scatter(mask, features.to(embeds.dtype).reshape(-1))

    def forward(self, input_ids=None, attention_mask=None, pixel_values=None, labels=None,
                past_key_values=None, inputs_embeds=None, position_ids=None, use_cache=None,
                **kwargs):
        """The language model's own output (`CausalLMOutputWithPast`). Its cache, cache
        positions and the like travel in `kwargs` under whatever names the installed
        transformers gives them."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, pixel_values)
        elif pixel_values is not None:
            raise ValueError("pixel_values need input_ids, to find the <image> placeholders")
        if past_key_values is not None:
            kwargs["past_key_values"] = past_key_values
        return self.llm(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                        position_ids=position_ids, labels=labels, use_cache=use_cache, **kwargs)

    def prepare_inputs_for_generation(self, *args, pixel_values=None, **kwargs):
        """Images enter on the first step only: later steps feed one new token each, and the
        image features already sit in the cache. Without a cache every step re-reads the
        whole sequence, placeholders included, so the images go along each time."""
        model_inputs = super().prepare_inputs_for_generation(*args, **kwargs)
        if _is_first_step(kwargs) or not kwargs.get("use_cache", True):
            model_inputs["pixel_values"] = pixel_values
        return model_inputs


def _is_first_step(kwargs: dict) -> bool:
    """transformers 5 marks the first step only (`is_first_iteration`); 4.x passes the cache
    position of every step."""
    if "is_first_iteration" in kwargs:
        return bool(kwargs["is_first_iteration"])
    cache_position = kwargs.get("cache_position")
    return cache_position is not None and int(cache_position[0]) == 0
