"""A packed batch trains exactly like the same samples unpacked: same loss, same gradients.

Tiny models from configs (fp32, CPU): samples with and without images, several images in one
row, a sample whose first label is set (a boundary a packed row must not read across), every
loss reduction, and the LLM families and attention implementations the presets use.
"""
from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaModel, PreTrainedModel

from allava.data.packing import collate_packed, first_fit_decreasing
from allava.data.samples import TrainingSample, collate
from allava.models.connectors import MLPConnector
from allava.models.loss import REDUCTIONS
from allava.models.packed_attention import packing_problem
from allava.models.vision_tower import TimmVisionTower
from allava.models.vlm import VisionLanguageModel

VOCAB, PAD, IMAGE = 120, 0, 119
TOWER = dict(model_name="vit_base_patch16_clip_quickgelu_224", image_size=32,
             model_kwargs=dict(patch_size=8, embed_dim=32, depth=2, num_heads=2))
LLM_FAMILIES = {
    "llama": dict(num_key_value_heads=2),
    "qwen2": dict(num_key_value_heads=2),
    "phi": dict(),
    "stablelm": dict(num_key_value_heads=2),
    "phi3": dict(num_key_value_heads=2, pad_token_id=0),
    # Soft-capped logits: the loss goes through the LLM's full forward.
    "gemma2": dict(num_key_value_heads=2, head_dim=8, attn="eager"),
}


def tiny_vlm(family: str = "llama", attn: str = "sdpa", seed: int = 0) -> VisionLanguageModel:
    torch.manual_seed(seed)
    fields = dict(LLM_FAMILIES[family])
    attn = fields.pop("attn", attn)
    config = AutoConfig.for_model(family, vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4,
                                  max_position_embeddings=256, **fields)
    config._attn_implementation = attn
    llm = AutoModelForCausalLM.from_config(config)
    tower = TimmVisionTower(**TOWER)
    connector = MLPConnector(tower.feature_dim, 32)
    return VisionLanguageModel(tower, connector, llm, image_token_id=IMAGE).float()


def make_samples(model: VisionLanguageModel, count: int, seed: int = 0) -> list[TrainingSample]:
    """Prompt (with the image's placeholders for most samples), then a supervised answer."""
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for index in range(count):
        with_image = index % 3 != 2
        prompt = [rng.randrange(1, IMAGE) for _ in range(rng.randint(1, 6))]
        if with_image:
            prompt[1:1] = [IMAGE] * model.num_image_tokens
        answer = [rng.randrange(1, IMAGE) for _ in range(rng.randint(1, 20))]
        labels = [-100] * len(prompt) + answer
        if index == 4:  # a sample supervised from its first token (a text continuation)
            labels = prompt[:1] + labels[1:]
        pixels = torch.randn(3, 32, 32, generator=generator) if with_image else None
        samples.append(TrainingSample(prompt + answer, labels, pixels))
    return samples


def loss_and_grads(model: VisionLanguageModel, batch: dict, reduction: str
                   ) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = model.supervised_loss(batch["input_ids"], batch["attention_mask"],
                                 batch["pixel_values"], batch["labels"], reduction,
                                 position_ids=batch.get("position_ids"),
                                 documents=batch.get("documents"))
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()
                         if p.grad is not None}


def packed_rows(samples: list[TrainingSample], max_length: int) -> list[list[TrainingSample]]:
    rows = first_fit_decreasing(samples, max_length, lambda s: len(s.input_ids))
    assert len(rows) < len(samples)  # the rows really hold several samples
    assert any(sum(s.pixel_values is not None for s in row) >= 2 for row in rows)
    assert any(any(s.pixel_values is None for s in row) and any(s.pixel_values is not None
                                                                for s in row) for row in rows)
    return rows


def assert_same(unpacked: tuple, packed: tuple) -> None:
    (loss, grads), (packed_loss, packed_grads) = unpacked, packed
    assert packed_loss == pytest.approx(loss, abs=1e-5)
    assert grads.keys() == packed_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(packed_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", sorted(LLM_FAMILIES))
def test_packed_rows_give_the_loss_and_gradients_of_unpacked_samples(family):
    model = tiny_vlm(family)
    samples = make_samples(model, 10)
    rows = packed_rows(samples, max_length=64)
    ordered = [s for row in rows for s in row]  # the same samples, in the packed order
    for reduction in REDUCTIONS:
        unpacked = loss_and_grads(model, collate(ordered, PAD), reduction)
        packed = loss_and_grads(model, collate_packed(rows, PAD, row_length=64), reduction)
        assert_same(unpacked, packed)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_every_masked_attention_implementation_keeps_samples_apart(attn):
    model = tiny_vlm("llama", attn)
    samples = make_samples(model, 9, seed=1)
    rows = packed_rows(samples, max_length=64)
    ordered = [s for row in rows for s in row]
    assert_same(loss_and_grads(model, collate(ordered, PAD), "sample"),
                loss_and_grads(model, collate_packed(rows, PAD, row_length=64), "sample"))


def test_without_its_position_ids_a_packed_row_would_mix_samples():
    """The check above can fail: the same rows with one causal sequence per row differ."""
    model = tiny_vlm()
    samples = make_samples(model, 10)
    rows = packed_rows(samples, max_length=64)
    ordered = [s for row in rows for s in row]
    batch = collate_packed(rows, PAD, row_length=64)
    mixed = dict(batch, position_ids=None, attention_mask=torch.ones_like(batch["input_ids"]))
    loss, _ = loss_and_grads(model, collate(ordered, PAD), "token")
    mixed_loss, _ = loss_and_grads(model, mixed, "token")
    assert abs(mixed_loss - loss) > 1e-3


def test_flash_attention_rows_are_laid_end_to_end(monkeypatch):
    """Flash attention finds sample boundaries only in a batch of one row, so the VLM lays
    the rows end to end for it. flash-attn needs a GPU: here the flattened row runs through
    sdpa, which must still give the unpacked loss and gradients."""
    model = tiny_vlm()
    seen = {}
    decoder = model.llm.get_decoder()
    original = decoder.forward

    def spy(**kwargs):
        if kwargs.get("position_ids") is not None:  # the packed call, not the unpacked one
            seen.update(shape=tuple(kwargs["inputs_embeds"].shape),
                        positions=kwargs["position_ids"].clone())
        return original(**kwargs)

    monkeypatch.setattr(decoder, "forward", spy)
    monkeypatch.setattr("allava.models.vlm.is_flash", lambda name: True)
    samples = make_samples(model, 10)
    rows = packed_rows(samples, 64)
    batch = collate_packed(rows, PAD, row_length=64)
    packed = loss_and_grads(model, batch, "sample")
    assert seen["shape"][:2] == (1, len(rows) * 64)
    assert torch.equal(seen["positions"], batch["position_ids"].reshape(1, -1))
    ordered = [s for row in rows for s in row]
    assert_same(loss_and_grads(model, collate(ordered, PAD), "sample"), packed)


class _OwnMaskModel(PreTrainedModel):
    """Stands for remote code that builds its own causal mask (no masking_utils)."""
    config_class = LlamaConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)

    def get_decoder(self):
        return self


def test_an_llm_that_builds_its_own_mask_is_refused_before_training():
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4)
    config._attn_implementation = "eager"
    problem = packing_problem(_OwnMaskModel(config))
    assert problem and "data.packing=false" in problem and "_OwnMaskModel" in problem
    assert packing_problem(AutoModelForCausalLM.from_config(config)) is None
    paged = AutoModelForCausalLM.from_config(config)
    paged.config._attn_implementation = "paged|eager"  # generation-only kernels
    assert "attn_implementation=sdpa" in packing_problem(paged)


def test_caption_words_objective_reads_packed_rows_sample_by_sample():
    from allava.training.objectives import CaptionWordsHead, caption_words_loss

    model = tiny_vlm()
    # Packing drops a sample's first label (it would be predicted across the boundary), which
    # a bag of caption words would miss: conversations start with an unlabelled prompt.
    samples = [s for s in make_samples(model, 11, seed=2) if s.labels[0] == -100]
    rows = packed_rows(samples, 64)
    ordered = [s for row in rows for s in row]
    head = CaptionWordsHead(model.vision.feature_dim, VOCAB)
    args = (model.vision, head)
    unpacked = caption_words_loss(*args, collate(ordered, PAD), IMAGE, model.num_image_tokens)
    packed = caption_words_loss(*args, collate_packed(rows, PAD, row_length=64), IMAGE,
                                model.num_image_tokens)
    assert packed.item() == pytest.approx(unpacked.item(), abs=1e-6)
