"""A vision tower built from any timm model, returning patch features of a chosen layer."""
from __future__ import annotations

from typing import Any, Mapping

import timm
import torch
from timm.data import create_transform, resolve_model_data_config
from timm.models import load_state_dict
from torch import nn

from allava.models.image_padding import PadToSquare
from allava.models.layer_tokens import layer_tokens
from allava.models.weights import TowerWeights, rename_by_position, resolve_tower_weights


class TimmVisionTower(nn.Module):
    """Wraps a timm model so that `forward(pixels)` returns `[B, N, D]` patch features.

    Works for ViTs (tokens of block `feature_layer`) and CNNs (the feature map of stage
    `feature_layer`, flattened row-major into tokens). A ViT's prefix tokens (class, registers)
    are dropped (`prefix_tokens="drop"`, ALLaVA's and LLaVA's default) or kept in front of the
    patches (`"keep"`). `weights` (`auto`, `none`, `hub` or a checkpoint file) and `packaged`
    say where the weights come from (`allava.models.weights.resolve_tower_weights`). Blocks
    after the feature layer cannot affect the output and are pruned away to save memory and
    time.
    """

    def __init__(
        self,
        model_name: str,
        weights: str = "none",
        packaged: Mapping[str, str] | None = None,
        feature_layer: int = -2,
        image_size: int | None = None,
        image_mode: str = "pad",
        prefix_tokens: str = "drop",
        model_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if image_mode not in ("pad", "resize", "crop"):
            raise ValueError(f"image_mode must be 'pad', 'resize' or 'crop', got {image_mode!r}")
        if prefix_tokens not in ("drop", "keep"):
            raise ValueError(f"prefix_tokens must be 'drop' or 'keep', got {prefix_tokens!r}")
        kwargs = dict(model_kwargs or {})
        if image_size is not None and _accepts_img_size(model_name):
            kwargs.setdefault("img_size", image_size)
        self.model_name = model_name
        self.model_kwargs = kwargs  # timm.create_model's: an export rebuilds the model from them
        # Weights load before pruning: a checkpoint holds every block.
        source = resolve_tower_weights(model_name, weights, packaged)
        self.model = _create_with_weights(model_name, source, kwargs)
        self.feature_layer = feature_layer
        self.image_mode = image_mode
        self.keep_prefix_tokens = prefix_tokens == "keep"
        if self.keep_prefix_tokens and not self.num_prefix_tokens:
            raise ValueError(f"{model_name} has no prefix (class/register) tokens to keep; "
                             "set model.vision.prefix_tokens=drop")
        # prune_intermediate_layers returns the absolute indices it kept.
        self._take_indices = self.model.prune_intermediate_layers(
            [feature_layer], prune_norm=True, prune_head=True
        )
        info = self.model.feature_info
        layer = self._take_indices[0]
        self.feature_dim: int = (info[layer]["num_chs"] if isinstance(info, list) else info.channels()[layer])
        self.reduction: int = info[layer]["reduction"] if isinstance(info, list) else info.reduction()[layer]
        data_config = resolve_model_data_config(self.model)
        if image_size is not None:
            data_config["input_size"] = (3, image_size, image_size)
        if image_mode != "crop":
            data_config["crop_pct"] = 1.0
        self.data_config = data_config
        self.image_size: int = int(data_config["input_size"][-1])

    def num_patches(self, image_size: int | None = None) -> int:
        """Tokens per image: the patch grid, plus the prefix tokens when they are kept."""
        prefix = self.num_prefix_tokens if self.keep_prefix_tokens else 0
        return prefix + self.num_grid_patches(image_size)

    def num_grid_patches(self, image_size: int | None = None) -> int:
        side = image_size or self.image_size
        patch_embed = getattr(self.model, "patch_embed", None)
        if patch_embed is not None and not getattr(patch_embed, "dynamic_img_pad", False):
            grid = side // self.reduction  # a ViT's patchify drops a partial last patch
        else:
            grid = -(-side // self.reduction)  # convs pad partial windows
        return grid * grid

    @property
    def num_prefix_tokens(self) -> int:
        return int(getattr(self.model, "num_prefix_tokens", 0))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return layer_tokens(self.model, pixel_values, self._take_indices, self.keep_prefix_tokens)

    def image_transform(self, train: bool = False):
        """The model's own preprocessing (timm data config) with optional pad-to-square."""
        transform = create_transform(**self.data_config, is_training=False)
        if self.image_mode == "pad":
            # Truncated, not rounded: LLaVA's pad colour, which Hugging Face's LlavaImageProcessor
            # reproduces, so that exported models see the same pixels.
            mean = tuple(int(255 * m) for m in self.data_config["mean"])
            transform.transforms.insert(0, PadToSquare(mean))
        if self.image_mode == "resize":
            # Plain resize to the square input size, no crop.
            from torchvision import transforms as T

            transform.transforms[0] = T.Resize((self.image_size, self.image_size), antialias=True)
        return transform


def _create_with_weights(model_name: str, source: TowerWeights,
                         kwargs: dict[str, Any]) -> nn.Module:
    """A headless timm model with the weights `source` names: timm loads its own download and
    files with its names (through the model's checkpoint filter); a file of another
    implementation is renamed by position (its head, last, left over)."""
    by_name_file = source.file if source.keys == "by_name" else None
    model = timm.create_model(
        model_name,
        pretrained=source.from_hub or by_name_file is not None,
        pretrained_cfg_overlay=dict(file=by_name_file) if by_name_file else None,
        num_classes=0,
        **kwargs,
    )
    if source.file and source.keys == "by_position":
        state = rename_by_position(load_state_dict(source.file), model.state_dict(),
                                   what=source.file)
        model.load_state_dict(state)
    return model


def _accepts_img_size(model_name: str) -> bool:
    """Transformers take `img_size` at construction (it sizes the position embeddings)."""
    return any(k in model_name for k in ("vit", "deit", "eva", "siglip", "clip", "beit", "swin"))
