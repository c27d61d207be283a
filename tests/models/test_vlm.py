"""The composed VLM: splice positions, count mismatches, export/load, batched generation."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from allava.models.predictor import VLMPredictor, load_model
from allava.models.build import build_vlm
from allava.models.model_dir import export_model
from allava.models.vlm import ImageTokenMismatch


@pytest.fixture
def bundle(tiny_train_config):
    torch.manual_seed(0)
    return build_vlm(tiny_train_config().model)


def test_tower_and_connector_agree_with_the_text_side(bundle):
    model = bundle.model
    grid = 32 // model.vision.reduction  # 32 px images in the tiny world
    assert model.num_image_tokens == model.vision.num_patches() == grid * grid
    assert bundle.processor.image_token_count == model.num_image_tokens
    pixels = torch.randn(2, 3, 32, 32)
    assert model.encode_images(pixels).shape == (2, grid * grid, model.llm.config.hidden_size)


def test_features_land_exactly_at_the_placeholders(bundle):
    model = bundle.model.eval()
    image_id, m = model.image_token_id, model.num_image_tokens
    # Sample 0: image after 3 text tokens; sample 1: text only; sample 2: image at position 1.
    rows = [[5, 6, 7] + [image_id] * m + [8, 9],
            [10, 11, 12, 13, 14] + [15] * m,
            [16] + [image_id] * m + [17, 18, 19, 20]]
    input_ids = torch.tensor(rows)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        embeds = model.embed(input_ids, pixels)
        features = model.encode_images(pixels)
        token_embeds = model.llm.get_input_embeddings()(input_ids)
    torch.testing.assert_close(embeds[0, 3:3 + m], features[0])
    torch.testing.assert_close(embeds[2, 1:1 + m], features[1])
    text = input_ids != image_id
    torch.testing.assert_close(embeds[text], token_embeds[text])


def test_placeholder_count_mismatch_is_a_clear_error(bundle):
    model = bundle.model
    image_id, m = model.image_token_id, model.num_image_tokens
    input_ids = torch.tensor([[1] + [image_id] * (m - 1) + [2]])
    with pytest.raises(ImageTokenMismatch, match="placeholders"):
        model.embed(input_ids, torch.randn(1, 3, 32, 32))
    with pytest.raises(ImageTokenMismatch, match="no images"):
        model.embed(torch.tensor([[1] + [image_id] * m]), None)


def test_export_then_load_gives_identical_logits(bundle, tmp_path):
    torch.manual_seed(1)
    for p in bundle.model.parameters():  # move off the init so that loading really matters
        p.data.add_(0.01 * torch.randn_like(p))
    model = bundle.model.eval()
    ids = bundle.processor.encode_prompt("What color is the circle?", has_image=True)
    input_ids = torch.tensor([ids])
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model(input_ids=input_ids, pixel_values=pixels).logits
    export_model(bundle, tmp_path / "export")
    loaded = load_model(tmp_path / "export")
    with torch.no_grad():
        after = loaded.model(input_ids=input_ids, pixel_values=pixels).logits
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert loaded.bundle.tokenizer.chat_template == bundle.tokenizer.chat_template


def test_batched_left_padded_generation_matches_one_by_one(bundle):
    predictor = VLMPredictor(bundle)
    images = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")] + [None]
    questions = ["Describe this image in detail.", "Is there a circle?", "What is 2 plus 3?"]
    batched = predictor.answer(questions, images, max_new_tokens=6)
    single = [predictor.answer([q], [i], max_new_tokens=6)[0] for q, i in zip(questions, images)]
    assert batched == single
    sampled = predictor.answer(questions, images, max_new_tokens=6, do_sample=True,
                               temperature=1.0)
    assert len(sampled) == 3


def test_connector_width_mismatch_fails_at_build(bundle):
    from allava.models.connectors import LinearConnector
    from allava.models.vlm import VisionLanguageModel

    with pytest.raises(ValueError, match="in_dim"):
        VisionLanguageModel(bundle.model.vision, LinearConnector(7, 32), bundle.model.llm, 3)


@pytest.mark.parametrize("reduction", ["token", "sample"])
def test_supervised_loss_equals_the_loss_on_full_logits(bundle, reduction):
    """The training loss skips logits where no label is set; value and gradients must not move."""
    from allava.models.loss import causal_lm_loss

    model = bundle.model.train()
    image_id, m = model.image_token_id, model.num_image_tokens
    input_ids = torch.tensor([[1] + [image_id] * m + [5, 6, 7, 8, 9],
                              [1, 10, 11, 12, 13, 14] + [0] * m])
    labels = torch.full_like(input_ids, -100)
    labels[0, -3:] = input_ids[0, -3:]  # three supervised tokens
    labels[1, 4:6] = input_ids[1, 4:6]  # two, then padding
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    pixels = torch.randn(1, 3, 32, 32)

    def loss_and_grads(fast: bool):
        model.zero_grad()
        if fast:
            loss = model.supervised_loss(input_ids, attention_mask, pixels, labels, reduction)
        else:
            logits = model(input_ids=input_ids, attention_mask=attention_mask,
                           pixel_values=pixels).logits
            loss = causal_lm_loss(logits, labels, reduction)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    fast_loss, fast_grads = loss_and_grads(True)
    full_loss, full_grads = loss_and_grads(False)
    torch.testing.assert_close(fast_loss, full_loss)
    assert len(fast_grads) == len(full_grads) > 0
    for fast, full in zip(fast_grads, full_grads):
        torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-6)


def test_grid_pool_connector_emits_one_token_per_cell(tiny_train_config):
    from allava.models.connectors import GridPoolConnector

    cfg = tiny_train_config("model/connector=grid_pool", "model.vision.feature_layer=2")
    model = build_vlm(cfg.model).model
    assert model.vision.num_patches() == 16  # 32 px at stride 8
    assert model.num_image_tokens == 9
    assert model.encode_images(torch.randn(2, 3, 32, 32)).shape == (2, 9, 32)

    # Pooling: a 4x4 grid of patches whose feature is the patch's row; 3x3 adaptive cells
    # cover rows [0, 2), [1, 3), [2, 4), so their mean rows are 0.5, 1.5 and 2.5.
    connector = GridPoolConnector(in_dim=1, out_dim=1, grid=3, depth=1)
    with torch.no_grad():
        connector.mlp.mlp[0].weight.fill_(1.0)
        connector.mlp.mlp[0].bias.zero_()
    rows = torch.arange(4.0).repeat_interleave(4).view(1, 16, 1)
    pooled = connector(rows).view(3, 3)
    torch.testing.assert_close(pooled, torch.tensor([[0.5] * 3, [1.5] * 3, [2.5] * 3]))
    with pytest.raises(ValueError, match="square"):
        connector(torch.zeros(1, 12, 1))


def test_grid_pool_cell_embedding_init():
    from allava.models.connectors import GridPoolConnector

    plain = GridPoolConnector(in_dim=8, out_dim=4, grid=4)
    assert torch.count_nonzero(plain.cell_embedding) == 0  # starts as pooling + MLP
    torch.manual_seed(0)
    marked = GridPoolConnector(in_dim=64, out_dim=4, grid=4, embedding_init_std=0.5)
    embedding = marked.cell_embedding.detach()
    assert embedding.shape == (16, 64)
    assert 0.4 < embedding.std().item() < 0.6
    # Every cell is told apart from the first step: no two rows alike.
    distances = torch.cdist(embedding, embedding) + torch.eye(16) * 1e9
    assert distances.min().item() > 1.0
