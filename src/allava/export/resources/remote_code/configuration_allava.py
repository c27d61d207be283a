"""Configuration of an ALLaVA vision-language model saved as Hugging Face remote code.

Written by `allava export`; loads with transformers, timm and torch alone (no `allava` package).
"""
from transformers import AutoConfig, PretrainedConfig


class AllavaConfig(PretrainedConfig):
    """Three parts and the placeholder that joins them.

    - `text_config`: the language model's own config (any causal LM transformers knows).
    - `vision_config`: the timm tower (`model_name`, `model_kwargs` of `timm.create_model`,
      `feature_layer`, `prefix_tokens`) and its preprocessing (`image_mode`, `input_size`,
      `interpolation`, `mean`, `std`, `crop_pct`, `crop_mode`).
    - `connector_config`: `class_name` of a connector in `allava_connectors.py` and its
      constructor arguments (`in_dim`, `out_dim`, ...).
    - `image_token_id` (alias `image_token_index`, LLaVA's name): the `<image>` id, repeated
      `num_image_tokens` times per image in the text.
    """

    model_type = "allava_vlm"
    sub_configs = {"text_config": AutoConfig}

    def __init__(self, text_config=None, vision_config=None, connector_config=None,
                 image_token_id=None, image_token_index=None, num_image_tokens=None, **kwargs):
        if isinstance(text_config, dict):
            fields = dict(text_config)
            text_config = AutoConfig.for_model(fields.pop("model_type"), **fields)
        self.text_config = text_config
        self.vision_config = vision_config or {}
        self.connector_config = connector_config or {}
        self.image_token_id = image_token_id if image_token_id is not None else image_token_index
        self.image_token_index = self.image_token_id
        self.num_image_tokens = num_image_tokens
        super().__init__(**kwargs)
