"""Gradient checkpointing and torch.compile change speed and memory, never the numbers."""
from __future__ import annotations

import pytest
import torch

from allava.models.build import build_vlm
from allava.training.acceleration import compile_model, enable_gradient_checkpointing
from allava.training.trainable import apply_trainable


def _loss_and_grads(bundle, batch):
    model = bundle.model
    model.train()
    model.zero_grad()
    loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                 batch["pixel_values"], batch["labels"])
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


def _batch(bundle, size: int = 3):
    torch.manual_seed(2)
    model = bundle.model
    length = model.num_image_tokens + 12
    tokens = torch.randint(5, 60, (size, length))
    tokens[:, 1:1 + model.num_image_tokens] = model.image_token_id
    labels = tokens.clone()
    labels[:, :1 + model.num_image_tokens] = -100
    side = model.vision.image_size
    return {"input_ids": tokens, "attention_mask": torch.ones_like(tokens),
            "pixel_values": torch.randn(size, 3, side, side), "labels": labels}


def _twin_bundles(tiny_train_config, *overrides):
    cfg = tiny_train_config(*overrides)
    bundles = []
    for _ in range(2):
        torch.manual_seed(0)
        bundle = build_vlm(cfg.model)
        apply_trainable(bundle.model, ["vision", "connector", "llm"])
        bundle.model.vision.eval()  # BatchNorm in eval: both twins see identical statistics
        bundles.append(bundle)
    return bundles


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_train_config):
    plain, checkpointed = _twin_bundles(tiny_train_config, "model.llm.model.config.num_hidden_layers=2")
    enable_gradient_checkpointing(checkpointed.model)
    llm = checkpointed.model.llm
    assert getattr(llm, "is_activation_checkpointing", None) or llm.is_gradient_checkpointing
    batch = _batch(plain)
    loss, grads = _loss_and_grads(plain, batch)
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointed, batch)
    torch.testing.assert_close(loss_ckpt, loss)
    assert grads.keys() == grads_ckpt.keys() and any(n.startswith("llm.") for n in grads)
    for name in grads:
        torch.testing.assert_close(grads_ckpt[name], grads[name], atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_compiled_model_gives_the_same_loss_and_keeps_parameter_names(tiny_train_config):
    eager, compiled = _twin_bundles(tiny_train_config)
    compile_model(compiled.model)
    assert [n for n, _ in compiled.model.named_parameters()] == \
        [n for n, _ in eager.model.named_parameters()]
    batch = _batch(eager)
    loss, grads = _loss_and_grads(eager, batch)
    loss_compiled, grads_compiled = _loss_and_grads(compiled, batch)
    torch.testing.assert_close(loss_compiled, loss, atol=1e-5, rtol=1e-5)
    for name in grads:
        torch.testing.assert_close(grads_compiled[name], grads[name], atol=1e-5, rtol=1e-4)
