"""A trained model as a stock Hugging Face LLaVA directory (`LlavaForConditionalGeneration`).

What it holds, and who reads it:
- `config.json` (`model_type: llava`): the converted tower's CLIP/SigLIP config, the LLM's own
  config, the projector's activation, the feature layer and select strategy.
- `model.safetensors` in the key layout of the llava-hf checkpoints (`vision_tower.vision_model.*`,
  `multi_modal_projector.*`, `language_model.model.*`, `language_model.lm_head.*`), which vLLM's
  LLaVA loader reads and transformers 5 maps onto its own names when loading.
- the tokenizer (its chat template taught image parts), `LlavaProcessor` and
  `LlavaImageProcessor` configs that reproduce the tower's preprocessing, and
  `generation_config.json`.

Only CLIP/SigLIP towers with a `linear` or `mlp2x_gelu` connector fit (`llava_export_blocker`
says why a model does not); everything else takes the remote-code door.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import (GenerationConfig, LlavaConfig, LlavaImageProcessor, LlavaProcessor,
                          PretrainedConfig)
from transformers.image_utils import PILImageResampling

from allava.export.older_transformers import make_tokenizer_portable, with_explicit_rope_theta
from allava.export.not_exportable import NotExportable
from allava.export.vision_conversion import convert_vision_tower
from allava.models.build import VLMBundle
from allava.models.chat_format import multimodal_chat_template
from allava.models.connectors import Connector, LinearConnector, MLPConnector
from allava.models.vlm import VisionLanguageModel
from allava.training.trainable import has_lora

WEIGHTS = "model.safetensors"
_RESAMPLING = {"bicubic": PILImageResampling.BICUBIC, "bilinear": PILImageResampling.BILINEAR,
               "nearest": PILImageResampling.NEAREST, "lanczos": PILImageResampling.LANCZOS}


def _projector_layers(connector: Connector) -> tuple[nn.Linear, nn.Linear | None, str]:
    """(first layer, second layer or None, LLaVA's activation name) of a LLaVA-shaped connector."""
    if type(connector) is LinearConnector:
        return connector.proj, None, "linear"
    if type(connector) is MLPConnector:
        layers = list(connector.mlp)
        if len(layers) == 1:
            return layers[0], None, "linear"
        if len(layers) == 3 and type(layers[1]) is nn.GELU and layers[1].approximate == "none":
            return layers[0], layers[2], "gelu"
    raise NotExportable(
        f"the connector {type(connector).__name__} is not LLaVA's projector (only linear and "
        "mlp2x_gelu are)")


def _projector(connector: Connector) -> tuple[str, dict[str, torch.Tensor]]:
    """(`projector_hidden_act`, `multi_modal_projector.*` weights) of LLaVA's two-layer projector.

    `mlp2x_gelu` is that projector; `linear` becomes it with no activation and an identity
    second layer, which computes the same thing."""
    first, second, activation = _projector_layers(connector)
    width = connector.out_dim
    weights = {"multi_modal_projector.linear_1.weight": first.weight.detach(),
               "multi_modal_projector.linear_1.bias": first.bias.detach()}
    if second is None:
        weights["multi_modal_projector.linear_2.weight"] = torch.eye(width, dtype=first.weight.dtype)
        weights["multi_modal_projector.linear_2.bias"] = torch.zeros(width, dtype=first.bias.dtype)
    else:
        weights["multi_modal_projector.linear_2.weight"] = second.weight.detach()
        weights["multi_modal_projector.linear_2.bias"] = second.bias.detach()
    return activation, weights


def llava_export_blocker(model: VisionLanguageModel) -> str | None:
    """Why `model` cannot be written as a stock LLaVA, or None when it can."""
    if has_lora(model):
        return ("the model has LoRA adapters not merged into its weights; merge them first "
                "(allava.training.trainable.merge_lora; a stage's export holds merged weights)")
    try:
        convert_vision_tower(model.vision)
        _projector(model.connector)
    except NotExportable as reason:
        return str(reason)
    return None


def _llm_weights(llm: nn.Module) -> dict[str, torch.Tensor]:
    """The LLM's tensors under `language_model.`; a tied output layer is written once, as the
    embedding (loaders tie it back from `tie_word_embeddings`)."""
    weights, seen = {}, set()
    for name, tensor in llm.state_dict().items():
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        weights[f"language_model.{name}"] = tensor
    return weights


def _image_processor(bundle: VLMBundle) -> LlavaImageProcessor:
    """LLaVA's image processor set to the tower's preprocessing (`TimmVisionTower.image_transform`)."""
    tower = bundle.model.vision
    data = tower.data_config
    side = tower.image_size
    if tower.image_mode == "resize":
        size, crop = {"height": side, "width": side}, False
    else:  # pad (square, so the crop keeps everything) or crop (timm's resize, then the centre)
        size, crop = {"shortest_edge": int(side / data.get("crop_pct", 1.0))}, True
    return LlavaImageProcessor(
        do_pad=tower.image_mode == "pad", size=size, do_center_crop=crop,
        crop_size={"height": side, "width": side},
        resample=_RESAMPLING[data.get("interpolation", "bicubic")],
        image_mean=list(data["mean"]), image_std=list(data["std"]))


def write_llava(bundle: VLMBundle, out_dir: str | Path) -> Path:
    """Writes `bundle` as a stock LLaVA directory; NotExportable (with the reason) when its
    tower or connector has no LLaVA equivalent."""
    model = bundle.model
    blocker = llava_export_blocker(model)
    if blocker:
        raise NotExportable(blocker)
    tower = convert_vision_tower(model.vision)
    activation, projector_weights = _projector(model.connector)
    # A copy: LlavaConfig resets its sub-configs' attention implementation, which would change
    # how the bundle's own LLM attends (None falls back to eager attention without a causal mask).
    llm_config: PretrainedConfig = copy.deepcopy(model.llm.config)
    config = LlavaConfig(
        vision_config=tower.config, text_config=llm_config,
        image_token_index=model.image_token_id, image_seq_length=model.num_image_tokens,
        projector_hidden_act=activation, vision_feature_layer=-1,
        vision_feature_select_strategy=tower.select_strategy,
        tie_word_embeddings=bool(getattr(llm_config, "tie_word_embeddings", False)))
    config.architectures = ["LlavaForConditionalGeneration"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    _patch_json(out / "config.json",
                lambda c: {**c, "text_config": with_explicit_rope_theta(c["text_config"])})

    weights = {f"vision_tower.{k}": v for k, v in tower.state_dict.items()}
    weights.update(projector_weights)
    weights.update(_llm_weights(model.llm))
    save_file({k: v.detach().to("cpu").contiguous() for k, v in weights.items()},
              str(out / WEIGHTS), metadata={"format": "pt"})

    tokenizer = copy.deepcopy(bundle.tokenizer)  # the bundle's keeps its training template
    template = multimodal_chat_template(tokenizer.chat_template,
                                        bundle.processor.image_placement)
    tokenizer.chat_template = template
    processor = LlavaProcessor(
        image_processor=_image_processor(bundle), tokenizer=tokenizer,
        patch_size=tower.config.patch_size,
        vision_feature_select_strategy=tower.select_strategy,
        num_additional_image_tokens=tower.extra_tokens, chat_template=template)
    processor.save_pretrained(str(out))
    make_tokenizer_portable(out, tokenizer.model_input_names)
    generation = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                  eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id)
    generation.save_pretrained(str(out))
    return out


def _patch_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text())), indent=2, sort_keys=True)
                    + "\n")
