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
        return self.grid * self.grid

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, num_patches, dim = features.shape
        side = int(round(num_patches ** 0.5))
        if side * side != num_patches:
            raise ValueError(
                f"GridPoolConnector needs a square patch grid, got {num_patches} patches")
        maps = features.transpose(1, 2).reshape(batch, dim, side, side)
        pooled = nn.functional.adaptive_avg_pool2d(maps, self.grid).flatten(2).transpose(1, 2)
        return self.mlp(pooled + self.cell_embedding)
