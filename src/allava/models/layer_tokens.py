"""The tokens of one layer of a timm model: what a vision tower hands the connector.

Imports nothing but torch: exported remote-code directories ship this file as it is
(`allava.export.remote_code`), so that their towers compute exactly what training's did.
"""
from __future__ import annotations

import torch
from torch import nn


def layer_tokens(model: nn.Module, pixel_values: torch.Tensor, take_indices: list[int],
                 keep_prefix_tokens: bool) -> torch.Tensor:
    """`[B, N, D]` tokens of the one layer in `take_indices`: a ViT block's patch tokens (its
    prefix tokens, class and registers, in front when kept) or a CNN stage's feature map,
    flattened row-major."""
    if keep_prefix_tokens:
        ((features, prefix),) = model.forward_intermediates(
            pixel_values, indices=take_indices, intermediates_only=True,
            return_prefix_tokens=True)
        return torch.cat([prefix, features.flatten(2).transpose(1, 2)], dim=1)
    (features,) = model.forward_intermediates(pixel_values, indices=take_indices,
                                              intermediates_only=True)
    # NCHW for every timm family once prefix tokens are dropped -> [B, H*W, C]
    return features.flatten(2).transpose(1, 2)
