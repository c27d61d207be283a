"""Connectors map vision patch features `[B, N, D_v]` to LLM embeddings `[B, M, D_llm]`.

Every connector takes `in_dim` and `out_dim` (filled in from the tower and the LLM at build
time) and says how many tokens `M` it emits for `N` patches, so the text side knows how many
`<image>` placeholders to insert. Swapping one is a Hydra `model/connector=...` change.
"""
from __future__ import annotations

import torch
from torch import nn


class Connector(nn.Module):
    in_dim: int
    out_dim: int

    def num_tokens(self, num_patches: int) -> int:
        return num_patches


class LinearConnector(Connector):
    """A single linear projection (LLaVA-1.0)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


class MLPConnector(Connector):
    """`depth` linear layers with GELU between them; depth 2 is LLaVA-1.5/ALLaVA's `mlp2x_gelu`."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2):
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLPConnector depth must be >= 1, got {depth}")
        self.in_dim, self.out_dim = in_dim, out_dim
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)


class GridPoolConnector(Connector):
    """Average-pools the square patch grid to `grid`×`grid` cells, adds a learned embedding per
    cell, then applies an MLP of `depth` layers (the pooling idea of spatial-pooling connectors
    such as Honeybee's abstractors, without their convolutions).

    Fewer tokens make every LLM step cheaper; the per-cell embedding tells the LLM where each
    token sits, which rotary position offsets alone do not (they shift with the prompt)."""

    def __init__(self, in_dim: int, out_dim: int, grid: int = 3, depth: int = 2,
                 embedding_init_std: float = 0.0):
        super().__init__()
        if grid < 1 or depth < 1:
            raise ValueError(
                f"GridPoolConnector needs grid >= 1 and depth >= 1, got {grid}, {depth}")
        self.in_dim, self.out_dim, self.grid = in_dim, out_dim, grid
        # Zero: the connector starts as plain pooling + MLP. Non-zero: the cells are told
        # apart from the first step, before the embedding has learnt anything.
        self.cell_embedding = nn.Parameter(torch.randn(grid * grid, in_dim) * embedding_init_std)
        self.mlp = MLPConnector(in_dim, out_dim, depth)

    def num_tokens(self, num_patches: int) -> int:
        grid_side(num_patches, "GridPoolConnector")
        return self.grid * self.grid

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps, _ = _grid(features, "GridPoolConnector")
        pooled = nn.functional.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)
        return self.mlp(pooled + self.cell_embedding)


class CoordinateMLPConnector(Connector):
    """`mlp2x_gelu` over each token's features with its grid coordinates appended (row and
    column in [-1, 1], as CoordConv does for convolutions). A ViT tower's tokens carry learned
    position embeddings; a CNN tower's do not, and rotary offsets in the LLM shift with the
    prompt, so without these two numbers "where is the red circle?" has nothing to read."""

    def __init__(self, in_dim: int, out_dim: int, depth: int = 2):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.mlp = MLPConnector(in_dim + 2, out_dim, depth)

    def num_tokens(self, num_patches: int) -> int:
        grid_side(num_patches, "CoordinateMLPConnector")
        return num_patches

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, num_patches, _ = features.shape
        side = grid_side(num_patches, "CoordinateMLPConnector")
        axis = torch.linspace(-1.0, 1.0, side, device=features.device, dtype=features.dtype)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")  # row-major, as the tokens
        coords = torch.stack((rows.flatten(), cols.flatten()), dim=-1)
        return self.mlp(torch.cat((features, coords.expand(batch, -1, -1)), dim=-1))


def grid_side(num_patches: int, name: str) -> int:
    """The side of a square token grid; called by `num_tokens` too, so that a tower whose
    tokens form no square fails when the model is built."""
    side = int(round(num_patches ** 0.5))
    if side * side != num_patches:
        raise ValueError(
            f"{name} needs a square patch grid, got {num_patches} tokens (prefix tokens kept? "
            "set model.vision.prefix_tokens=drop, or use model/connector=mlp2x_gelu, linear or "
            "resampler, which take any token count)")
    return side


def _grid(features: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
    """`[B, N, D]` patch tokens -> `[B, D, s, s]` maps, for connectors that need the grid."""
    batch, num_patches, dim = features.shape
    side = grid_side(num_patches, name)
    return features.transpose(1, 2).reshape(batch, dim, side, side), side


class IdentityConnector(Connector):
    """Patch features straight into the LLM: only for a tower as wide as the LLM."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        if in_dim != out_dim:
            raise ValueError(
                f"the identity connector needs the tower's width ({in_dim}) to equal the LLM's "
                f"({out_dim}); use model/connector=linear or mlp2x_gelu to project between them")
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class LDPv2Connector(Connector):
    """MobileVLM V2's lightweight downsample projector: an MLP to the LLM width, 2x2 average
    pooling of the token grid (4x fewer tokens), then a depthwise 3x3 convolution added back as
    a positional encoding (PEG)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.mlp = MLPConnector(in_dim, out_dim, depth=2)
        self.peg = nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1, groups=out_dim)

    def num_tokens(self, num_patches: int) -> int:
        side = grid_side(num_patches, "LDPv2Connector")
        return max(1, side // 2) ** 2

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps, side = _grid(self.mlp(features), "LDPv2Connector")
        pooled = nn.functional.adaptive_avg_pool2d(maps, max(1, side // 2))
        return (pooled + self.peg(pooled)).flatten(2).transpose(1, 2)


class PixelShuffleConnector(Connector):
    """Space-to-depth by `factor` r (Idefics3, nanoVLM): each r x r block of patches becomes one
    token r^2 times wider, so r^2 fewer tokens; then an MLP of `depth` layers to the LLM width."""

    def __init__(self, in_dim: int, out_dim: int, factor: int = 2, depth: int = 2):
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelShuffleConnector factor must be >= 1, got {factor}")
        self.in_dim, self.out_dim, self.factor = in_dim, out_dim, factor
        self.mlp = MLPConnector(in_dim * factor * factor, out_dim, depth)

    def num_tokens(self, num_patches: int) -> int:
        side = grid_side(num_patches, "PixelShuffleConnector")
        if side % self.factor:
            raise ValueError(f"PixelShuffleConnector factor {self.factor} must divide the patch "
                             f"grid side {side} (model/connector/pixel_shuffle factor=...)")
        return num_patches // (self.factor * self.factor)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps, side = _grid(features, "PixelShuffleConnector")
        if side % self.factor:
            raise ValueError(f"PixelShuffleConnector factor {self.factor} must divide the patch "
                             f"grid side {side}")
        blocks = nn.functional.pixel_unshuffle(maps, self.factor)  # [B, D*r*r, s/r, s/r]
        return self.mlp(blocks.flatten(2).transpose(1, 2))


class ResamplerConnector(Connector):
    """Perceiver-style resampler: `num_queries` learned queries cross-attend to the patches,
    so the LLM sees a fixed number of tokens whatever the patch count; then a feed-forward
    block. Both with pre-norm residuals."""

    def __init__(self, in_dim: int, out_dim: int, num_queries: int = 64, num_heads: int = 8):
        super().__init__()
        if out_dim % num_heads:
            raise ValueError(f"ResamplerConnector: num_heads {num_heads} must divide the LLM "
                             f"width {out_dim}")
        self.in_dim, self.out_dim, self.num_queries = in_dim, out_dim, num_queries
        self.queries = nn.Parameter(torch.randn(num_queries, out_dim) * out_dim ** -0.5)
        self.kv_proj = nn.Linear(in_dim, out_dim)
        self.norm_kv = nn.LayerNorm(out_dim)
        self.norm_q = nn.LayerNorm(out_dim)
        self.attention = nn.MultiheadAttention(out_dim, num_heads, batch_first=True)
        self.norm_ffn = nn.LayerNorm(out_dim)
        self.ffn = nn.Sequential(nn.Linear(out_dim, 4 * out_dim), nn.GELU(),
                                 nn.Linear(4 * out_dim, out_dim))

    def num_tokens(self, num_patches: int) -> int:
        return self.num_queries

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        keys = self.norm_kv(self.kv_proj(features))
        queries = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)
        attended, _ = self.attention(self.norm_q(queries), keys, keys, need_weights=False)
        tokens = queries + attended
        return tokens + self.ffn(self.norm_ffn(tokens))
