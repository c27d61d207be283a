"""A timm ViT tower of the CLIP or SigLIP family, rewritten as transformers' own vision model.

transformers' `LlavaForConditionalGeneration` (and vLLM's LLaVA, lmms-eval's `llava_hf`) hold a
`CLIPVisionModel` or `SiglipVisionModel`, not a timm model. The two implement the same network,
so the weights map one to one, except that timm fuses the attention's query, key and value
projections into one matrix, which is split here. Which family a tower belongs to is read from
its structure (class token, pre-norm, patch bias), never from its name, so a tower of another
design is refused with the reason rather than converted into something that computes otherwise.

The tower was pruned after its feature layer, so the converted model has exactly the blocks that
were kept, and LLaVA reads the output of the last one (`vision_feature_layer=-1`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import Mlp
from timm.models.vision_transformer import Attention, Block, VisionTransformer
from torch import nn
from transformers import CLIPVisionConfig, PretrainedConfig, SiglipVisionConfig

from allava.export.not_exportable import NotExportable
from allava.models.vision_tower import TimmVisionTower


@dataclass(frozen=True)
class ConvertedTower:
    config: PretrainedConfig  # CLIPVisionConfig or SiglipVisionConfig
    state_dict: dict[str, torch.Tensor]  # keys `vision_model.*`, as CLIPVisionModel names them
    # LLaVA's `vision_feature_select_strategy`: "default" drops the first (class) token.
    select_strategy: str
    # Tokens the tower emits besides the patch grid (LlavaProcessor counts them).
    extra_tokens: int


def _activation_name(act: nn.Module) -> str:
    """transformers' ACT2FN name of the activation timm built."""
    kind = type(act).__name__
    if kind == "QuickGELU":
        return "quick_gelu"
    if kind == "GELUTanh":
        return "gelu_pytorch_tanh"
    if isinstance(act, nn.GELU):
        return "gelu_pytorch_tanh" if act.approximate == "tanh" else "gelu"
    raise NotExportable(f"the tower's MLP activation {kind} has no transformers equivalent")


def _check_blocks(model: VisionTransformer) -> None:
    for index, block in enumerate(model.blocks):
        plain = (type(block) is Block and type(block.attn) is Attention
                 and type(block.mlp) is Mlp and isinstance(block.norm1, nn.LayerNorm)
                 and isinstance(block.norm2, nn.LayerNorm)
                 and isinstance(block.ls1, nn.Identity) and isinstance(block.ls2, nn.Identity)
                 and isinstance(block.attn.q_norm, nn.Identity)
                 and isinstance(block.attn.k_norm, nn.Identity)
                 and isinstance(block.attn.norm, nn.Identity)
                 and isinstance(block.mlp.norm, nn.Identity)
                 and block.attn.qkv.bias is not None)
        if not plain:
            raise NotExportable(
                f"block {index} of the tower is not a plain pre-norm ViT block (layer scale, "
                "QK norm, gated MLP or a bias-free qkv): CLIP/SigLIP in transformers cannot hold it")


def _family(model: VisionTransformer) -> str:
    if getattr(model, "num_reg_tokens", 0) or model.no_embed_class or model.dynamic_img_size:
        raise NotExportable("the tower has register tokens, class-free position embeddings "
                               "or dynamic image sizes, which CLIP/SigLIP in transformers lack")
    pre_norm = isinstance(model.norm_pre, nn.LayerNorm)
    patch_bias = model.patch_embed.proj.bias is not None
    if model.cls_token is not None and pre_norm and not patch_bias:
        return "clip"
    if model.cls_token is None and isinstance(model.norm_pre, nn.Identity) and patch_bias:
        return "siglip"
    raise NotExportable(
        "the tower is a ViT of neither the CLIP layout (class token, pre-norm, bias-free patch "
        "embedding) nor the SigLIP one (no class token, no pre-norm, patch bias)")


def _layer_weights(model: VisionTransformer) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    width = model.embed_dim
    for index, block in enumerate(model.blocks):
        prefix = f"vision_model.encoder.layers.{index}."
        q, k, v = block.attn.qkv.weight.detach().split(width, dim=0)
        q_bias, k_bias, v_bias = block.attn.qkv.bias.detach().split(width, dim=0)
        for name, weight, bias in (("q_proj", q, q_bias), ("k_proj", k, k_bias),
                                   ("v_proj", v, v_bias)):
            state[f"{prefix}self_attn.{name}.weight"] = weight
            state[f"{prefix}self_attn.{name}.bias"] = bias
        for ours, theirs in ((block.attn.proj, "self_attn.out_proj"), (block.norm1, "layer_norm1"),
                             (block.norm2, "layer_norm2"), (block.mlp.fc1, "mlp.fc1"),
                             (block.mlp.fc2, "mlp.fc2")):
            state[f"{prefix}{theirs}.weight"] = ours.weight.detach()
            state[f"{prefix}{theirs}.bias"] = ours.bias.detach()
    # LLaVA reads hidden states before the final norm; the norm was pruned with the head, so it
    # is written as the identity that it never gets to be.
    state["vision_model.post_layernorm.weight"] = torch.ones(width)
    state["vision_model.post_layernorm.bias"] = torch.zeros(width)
    return state


def convert_vision_tower(tower: TimmVisionTower) -> ConvertedTower:
    """The tower as transformers' CLIPVisionModel or SiglipVisionModel weights and config.

    Raises NotExportable, with the reason, for any tower that is not a plain CLIP or SigLIP
    ViT (CNNs, ViTs with registers, layer scale, ...)."""
    model = tower.model
    if not isinstance(model, VisionTransformer):
        raise NotExportable(f"the tower {tower.model_name} is a {type(model).__name__}, not a "
                               "ViT: stock LLaVA holds only CLIP or SigLIP vision models")
    family = _family(model)
    _check_blocks(model)
    block = model.blocks[0]
    common = dict(
        hidden_size=model.embed_dim,
        intermediate_size=block.mlp.fc1.out_features,
        num_hidden_layers=len(model.blocks),
        num_attention_heads=block.attn.num_heads,
        num_channels=model.patch_embed.proj.in_channels,
        image_size=int(model.patch_embed.img_size[0]),
        patch_size=int(model.patch_embed.patch_size[0]),
        hidden_act=_activation_name(block.mlp.act),
        layer_norm_eps=block.norm1.eps,
    )
    state = _layer_weights(model)
    state["vision_model.embeddings.patch_embedding.weight"] = model.patch_embed.proj.weight.detach()
    position = model.pos_embed.detach()[0]  # [tokens, width]
    state["vision_model.embeddings.position_embedding.weight"] = position
    if family == "clip":
        state["vision_model.embeddings.class_embedding"] = model.cls_token.detach().reshape(-1)
        state["vision_model.pre_layrnorm.weight"] = model.norm_pre.weight.detach()
        state["vision_model.pre_layrnorm.bias"] = model.norm_pre.bias.detach()
        config: PretrainedConfig = CLIPVisionConfig(**common)
        strategy = "full" if tower.keep_prefix_tokens else "default"
        return ConvertedTower(config, state, strategy, extra_tokens=1)
    state["vision_model.embeddings.patch_embedding.bias"] = model.patch_embed.proj.bias.detach()
    # No attention-pooling head: LLaVA reads patch tokens, and the tower's head was pruned.
    config = SiglipVisionConfig(vision_use_head=False, **common)
    return ConvertedTower(config, state, "full", extra_tokens=0)
