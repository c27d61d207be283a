"""Every connector: its token count, its shapes, its build-time errors, and that it trains."""
from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException

from allava.models.build import build_vlm
from allava.models.connectors import (CoordinateMLPConnector, IdentityConnector, LDPv2Connector,
                                      MLPConnector, PixelShuffleConnector, ResamplerConnector)

CONNECTORS = ["linear", "mlp2x_gelu", "mlp2x_gelu_xy", "ldpv2", "pixel_shuffle", "resampler",
              "grid_pool"]


@pytest.mark.parametrize("connector, tokens", [
    (IdentityConnector(1024, 1024), 576),
    (MLPConnector(1024, 2560), 576),
    (CoordinateMLPConnector(1024, 2560), 576),
    (LDPv2Connector(1024, 2048), 144),
    (PixelShuffleConnector(1024, 2048, factor=2), 144),
    (PixelShuffleConnector(1152, 896, factor=3), 81),  # SigLIP-so400m/384: 27 x 27 patches
    (ResamplerConnector(1024, 2048, num_queries=64), 64),
])
def test_token_counts_match_outputs(connector, tokens):
    patches = 729 if connector.in_dim == 1152 else 576
    assert connector.num_tokens(patches) == tokens
    out = connector(torch.randn(2, patches, connector.in_dim))
    assert out.shape == (2, tokens, connector.out_dim)


def test_mlp2x_gelu_parameter_counts_of_the_allava_models():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(MLPConnector(1024, 2048)) == 6_295_552  # CLIP-L -> StableLM-2 1.6B
    assert count(MLPConnector(1024, 2560)) == 9_180_160  # CLIP-L -> Phi-2


def test_coordinates_tell_the_grid_cells_apart_row_by_row():
    connector = CoordinateMLPConnector(1, 2, depth=1)
    with torch.no_grad():  # the output is the appended (row, column) pair itself
        connector.mlp.mlp[0].weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
        connector.mlp.mlp[0].bias.zero_()
    tokens = connector(torch.zeros(2, 9, 1))  # a 3x3 grid of identical features
    assert tokens[0].tolist() == [[-1.0, -1.0], [-1.0, 0.0], [-1.0, 1.0], [0.0, -1.0],
                                  [0.0, 0.0], [0.0, 1.0], [1.0, -1.0], [1.0, 0.0], [1.0, 1.0]]
    assert torch.equal(tokens[0], tokens[1])
    with pytest.raises(ValueError, match="square patch grid"):
        connector.num_tokens(10)


def test_pixel_shuffle_moves_each_block_into_one_token():
    connector = PixelShuffleConnector(1, 4, factor=2, depth=1)
    with torch.no_grad():
        connector.mlp.mlp[0].weight.copy_(torch.eye(4))
        connector.mlp.mlp[0].bias.zero_()
    grid = torch.arange(16.0).view(1, 16, 1)  # a 4x4 grid numbered row by row
    tokens = connector(grid)
    assert tokens.shape == (1, 4, 4)
    assert tokens[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left 2x2 block
    with pytest.raises(ValueError, match="must divide"):
        PixelShuffleConnector(1, 4, factor=3)(torch.zeros(1, 16, 1))


def test_identity_with_unequal_widths_fails_at_build_time(tiny_train_config):
    cfg = tiny_train_config("model/connector=identity")
    with pytest.raises(InstantiationException, match="model/connector=linear or mlp2x_gelu"):
        build_vlm(cfg.model)


@pytest.mark.parametrize("name", CONNECTORS)
def test_every_connector_trains_on_the_toy_world(name, tiny_train_config):
    from allava.data.datamodule import StageDataModule

    overrides = [f"model/connector={name}"]
    if name == "resampler":
        overrides += ["model.connector.num_queries=4", "model.connector.num_heads=2"]
    if name in ("ldpv2", "pixel_shuffle", "grid_pool"):
        overrides += ["model.vision.feature_layer=2"]  # a 4x4 grid at 32 px
    cfg = tiny_train_config(*overrides)
    bundle = build_vlm(cfg.model)
    model = bundle.model
    datamodule = StageDataModule(bundle, mixture=[{"path": f"{cfg.data.root}/instruct"}],
                                 batch_size=8, shuffle_buffer=8)
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    torch.manual_seed(0)
    params = [p for n, p in model.named_parameters() if not n.startswith("vision.")]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    before = {n: p.detach().clone() for n, p in model.connector.named_parameters()}
    losses = []
    for _ in range(25):  # fit one batch: the connector must pass a gradient through
        loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                     batch["pixel_values"], batch["labels"], "token")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    changed = {n for n, p in model.connector.named_parameters() if not torch.equal(p, before[n])}
    assert before and changed == set(before)  # the loss reached every connector weight
