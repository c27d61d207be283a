"""`write_remote_code`: a model trained here, written as a Hugging Face remote-code directory,
loads through the Auto classes and computes what the training code computes: the same input
ids, pixels, logits and greedy answers, for every kind of tower and connector."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

from allava.export.not_exportable import NotExportable
from allava.export.remote_code import write_remote_code
from allava.models.build import build_vlm
from allava.training.trainable import add_lora, merge_lora
from tests.helpers.configs import TINY_MODEL, TINY_WORLD, compose_config

QUESTION = "What is it?"

# Each case a tower, connector, image mode or image placement the others do not cover.
CASES = {
    "cnn_mlp2x_gelu": [],  # the toy default: resnet10t + mlp2x_gelu, images padded
    "clip_prefix_kept": ["model/vision=toy_clip", "model.vision.prefix_tokens=keep"],
    "grid_pool": ["model/connector=grid_pool"],
    "resampler": ["model/connector=resampler"],
    "ldpv2_cropped": ["model/connector=ldpv2", "model.vision.image_mode=crop"],
    "pixel_shuffle": ["model/connector=pixel_shuffle"],
    "coordinates_after_text": ["model/connector=mlp2x_gelu_xy",
                               "+model.image_placement=after_text"],
    "linear_resized": ["model/connector=linear", "model.vision.image_mode=resize"],
}


def build_bundle(toy_root: Path, run_dir: Path, overrides: list[str]):
    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    cfg = compose_config("train", [f"data.root={toy_root}", *world, *TINY_MODEL, *overrides],
                         run_dir)
    torch.manual_seed(0)
    bundle = build_vlm(cfg.model)
    bundle.model.eval()
    return bundle


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, toy_root, tmp_path_factory):
    """(our bundle, the exported directory, its model and processor loaded by transformers)."""
    root = tmp_path_factory.mktemp(request.param)
    bundle = build_bundle(toy_root, root / "run", CASES[request.param])
    out = write_remote_code(bundle, root / request.param)
    model = AutoModelForImageTextToText.from_pretrained(out, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    return bundle, out, model, processor


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.effect_noise((40, 28), 64).convert("RGB")  # not square: padding shows


def chat(image: Image.Image | None) -> list[dict]:
    parts = [{"type": "image", "image": image}] if image is not None else []
    return [{"role": "user", "content": [*parts, {"type": "text", "text": QUESTION}]}]


def test_the_processor_gives_our_ids_and_pixels(exported, image):
    bundle, _, _, processor = exported
    ours = bundle.processor.encode_prompt(QUESTION, has_image=True)
    inputs = processor.apply_chat_template(chat(image), add_generation_prompt=True,
                                           tokenize=True, return_dict=True, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == ours
    assert torch.equal(inputs["pixel_values"], bundle.processor.image_transform(image)[None])
    # A prompt written by hand, `<image>` where the image goes, gives the same.
    prompt = processor.apply_chat_template(chat(image), add_generation_prompt=True)
    by_hand = processor(text=prompt, images=[image], return_tensors="pt")
    assert by_hand["input_ids"][0].tolist() == ours
    assert processor.decode(ours[-3:]) == bundle.tokenizer.decode(ours[-3:])


def test_text_only_prompts_need_no_image(exported):
    bundle, _, model, processor = exported
    inputs = processor.apply_chat_template(chat(None), add_generation_prompt=True,
                                           tokenize=True, return_dict=True, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == bundle.processor.encode_prompt(QUESTION, False)
    assert "pixel_values" not in inputs
    ours = bundle.model.generate(inputs["input_ids"], inputs["attention_mask"],
                                 max_new_tokens=8, do_sample=False)
    theirs = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert theirs[:, inputs["input_ids"].shape[1]:].tolist() == ours.tolist()


def test_logits_loss_and_greedy_answers_match_ours(exported, image):
    bundle, _, model, processor = exported
    inputs = processor.apply_chat_template(chat(image), add_generation_prompt=True,
                                           tokenize=True, return_dict=True, return_tensors="pt")
    labels = inputs["input_ids"].masked_fill(inputs["input_ids"] == model.config.image_token_id,
                                             -100)
    with torch.no_grad():
        ours = bundle.model(inputs["input_ids"], inputs["attention_mask"],
                            inputs["pixel_values"], labels=labels)
        theirs = model(**inputs, labels=labels)
    torch.testing.assert_close(theirs.logits, ours.logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(theirs.loss, ours.loss, rtol=0, atol=1e-5)
    ours = bundle.model.generate(inputs["input_ids"], inputs["attention_mask"],
                                 inputs["pixel_values"], max_new_tokens=8, do_sample=False)
    theirs = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert theirs[:, inputs["input_ids"].shape[1]:].tolist() == ours.tolist()


def test_the_config_names_the_placeholder_both_ways(exported):
    bundle, out, _, _ = exported
    config = AutoConfig.from_pretrained(out, trust_remote_code=True)
    assert config.image_token_id == config.image_token_index == bundle.model.image_token_id
    assert config.num_image_tokens == bundle.model.num_image_tokens
    assert config.text_config.model_type == bundle.model.llm.config.model_type


def test_loaders_that_fall_back_to_automodel_get_the_same_model(exported):
    """lmms-eval's `huggingface` model, for one, loads an unknown model type with AutoModel."""
    _, out, model, _ = exported
    fallback = AutoModel.from_pretrained(out, trust_remote_code=True)
    assert type(fallback).__name__ == type(model).__name__ == "AllavaForConditionalGeneration"


def test_a_batch_of_two_images_is_left_padded_and_answered_as_ours(toy_root, tmp_path, image):
    bundle = build_bundle(toy_root, tmp_path / "run", [])
    out = write_remote_code(bundle, tmp_path / "batched")
    model = AutoModelForImageTextToText.from_pretrained(out, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
    other = Image.new("RGB", (30, 30), (200, 30, 30))
    long_chat = [{"role": "user", "content": [{"type": "image", "image": other},
                                              {"type": "text", "text": "Where is the red one?"}]}]
    inputs = processor.apply_chat_template([chat(image), long_chat], add_generation_prompt=True,
                                           tokenize=True, return_dict=True, return_tensors="pt",
                                           processor_kwargs={"padding": True})
    assert inputs["attention_mask"][:, 0].tolist() == [0, 1]  # the short prompt, padded on the left
    ours = bundle.model.generate(inputs["input_ids"], inputs["attention_mask"],
                                 inputs["pixel_values"], max_new_tokens=6, do_sample=False)
    theirs = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert theirs[:, inputs["input_ids"].shape[1]:].tolist() == ours.tolist()


# Run in a fresh interpreter where `import allava` fails: the directory must stand on its own.
LOAD_WITHOUT_ALLAVA = """
import sys
sys.modules["allava"] = None
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
out, image_path, result_path = sys.argv[1:]
model = AutoModelForImageTextToText.from_pretrained(out, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(out, trust_remote_code=True)
messages = [{"role": "user", "content": [{"type": "image", "path": image_path},
                                         {"type": "text", "text": "What is it?"}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                       return_dict=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**inputs).logits
answer = model.generate(**inputs, max_new_tokens=8, do_sample=False)
torch.save({"inputs": dict(inputs), "logits": logits,
            "answer": answer[:, inputs["input_ids"].shape[1]:]}, result_path)
"""


def test_the_directory_loads_without_the_allava_package(toy_root, tmp_path, image):
    bundle = build_bundle(toy_root, tmp_path / "run", CASES["clip_prefix_kept"])
    out = write_remote_code(bundle, tmp_path / "standalone")
    image.save(tmp_path / "image.png")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    run = subprocess.run([sys.executable, "-I", "-c", LOAD_WITHOUT_ALLAVA, str(out),
                          str(tmp_path / "image.png"), str(tmp_path / "result.pt")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    result = torch.load(tmp_path / "result.pt")
    inputs = result["inputs"]
    assert inputs["input_ids"][0].tolist() == bundle.processor.encode_prompt(QUESTION, True)
    with torch.no_grad():
        ours = bundle.model(inputs["input_ids"], inputs["attention_mask"],
                            inputs["pixel_values"]).logits
    torch.testing.assert_close(result["logits"], ours, rtol=0, atol=1e-4)
    answer = bundle.model.generate(inputs["input_ids"], inputs["attention_mask"],
                                   inputs["pixel_values"], max_new_tokens=8, do_sample=False)
    assert result["answer"].tolist() == answer.tolist()
    config = json.loads((out / "config.json").read_text())
    assert config["vision_config"]["model_name"] == "vit_base_patch16_clip_quickgelu_224"


def test_an_llm_with_code_of_its_own_is_refused_before_anything_is_written(toy_root, tmp_path):
    bundle = build_bundle(toy_root, tmp_path / "run", [])
    llm = bundle.model.llm
    # What AutoModelForCausalLM gives for `trust_remote_code`: a class from outside transformers.
    llm.__class__ = type("HubCausalLM", (type(llm),), {"__module__": "transformers_modules.x"})
    with pytest.raises(NotExportable, match="HubCausalLM.*trust_remote_code"):
        write_remote_code(bundle, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_unmerged_lora_adapters_are_refused_merged_ones_export(toy_root, tmp_path, image):
    bundle = build_bundle(toy_root, tmp_path / "run", [])
    add_lora(bundle.model.llm, {"r": 2, "alpha": 4, "dropout": 0.0})
    for name, parameter in bundle.model.llm.named_parameters():
        if "lora_B" in name:  # trained adapters: merging them changes the weights
            torch.nn.init.normal_(parameter, std=0.1)
    with pytest.raises(NotExportable, match="merge_lora"):
        write_remote_code(bundle, tmp_path / "refused")
    merge_lora(bundle.model)
    model = AutoModelForImageTextToText.from_pretrained(
        write_remote_code(bundle, tmp_path / "merged"), trust_remote_code=True).eval()
    ids = torch.tensor([bundle.processor.encode_prompt(QUESTION, has_image=True)])
    pixels = bundle.processor.image_transform(image)[None]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, pixel_values=pixels).logits,
                                   bundle.model(ids, None, pixels).logits, rtol=0, atol=1e-4)


def test_a_connector_from_elsewhere_is_refused(toy_root, tmp_path):
    bundle = build_bundle(toy_root, tmp_path / "run", [])
    connector = bundle.model.connector
    connector.__class__ = type("MyConnector", (type(connector),), {"__module__": "my_lab"})
    with pytest.raises(NotExportable, match="MyConnector"):
        write_remote_code(bundle, tmp_path / "refused")
