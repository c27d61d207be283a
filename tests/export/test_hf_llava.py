"""The stock LLaVA door: a model trained here, loaded by transformers alone, computes the same.

Tiny towers of the CLIP and SigLIP layouts with a tiny Llama (random weights): the exported
directory is read back with `LlavaForConditionalGeneration` and `AutoProcessor`, and the prompt
ids, pixels, logits and greedy tokens are compared with this package's own model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import AutoProcessor, LlavaForConditionalGeneration

from allava.cli.main import main as allava_main
from allava.export.hf_llava import llava_export_blocker, write_llava
from allava.export.not_exportable import NotExportable
from allava.models.build import VLMBundle, build_vlm
from allava.models.model_dir import export_model
from tests.helpers.configs import TINY_MODEL, TINY_WORLD, compose_config

QUESTION = "What shape is in the picture?"

TOWERS = {
    # OpenAI CLIP's layout (class token dropped: LLaVA's "default" strategy), mlp2x_gelu
    "clip": ["model/vision=toy_clip"],
    # class token kept ("full" strategy), the linear connector (identity second layer)
    "clip_keep_linear": ["model/vision=toy_clip", "model.vision.prefix_tokens=keep",
                         "model/connector=linear"],
    # SigLIP's layout: no class token, no pre-norm, patch bias, tanh GELU; the image after the
    # question (the exported chat template moves it there as training did)
    "siglip_after_text": ["model/vision=toy_clip",
                          "model.vision.model_name=vit_base_patch16_siglip_224",
                          "+model.vision.model_kwargs.act_layer=gelu_tanh",
                          "+model.image_placement=after_text"],
}


def tiny_bundle(toy_root: Path, root: Path, *overrides: str) -> VLMBundle:
    world = [f"data.generate.{k}={v}" for k, v in TINY_WORLD.items()]
    cfg = compose_config("train", [f"data.root={toy_root}", *world, *TINY_MODEL, *overrides],
                         root / "run")
    torch.manual_seed(0)
    bundle = build_vlm(cfg.model)
    bundle.model.eval()
    return bundle


@pytest.fixture(scope="module", params=list(TOWERS))
def exported(request, toy_root, tmp_path_factory) -> tuple[VLMBundle, Path]:
    root = tmp_path_factory.mktemp(request.param)
    bundle = tiny_bundle(toy_root, root, *TOWERS[request.param])
    return bundle, write_llava(bundle, root / "hf")


def image_at_tower_size(bundle: VLMBundle) -> Image.Image:
    side = bundle.model.vision.image_size
    return Image.effect_noise((side, side), 64).convert("RGB")


def hf_inputs(processor, image: Image.Image, question: str = QUESTION) -> dict:
    messages = [{"role": "user", "content": [{"type": "image", "image": image},
                                             {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                         return_dict=True, return_tensors="pt")


def test_transformers_alone_computes_what_our_model_computes(exported):
    bundle, out = exported
    model, info = LlavaForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not any(info.values()), info  # every tensor found a home, none left over
    model.eval()
    processor = AutoProcessor.from_pretrained(out)
    image = image_at_tower_size(bundle)
    inputs = hf_inputs(processor, image)

    ids = bundle.processor.encode_prompt(QUESTION, has_image=True)
    assert inputs["input_ids"][0].tolist() == ids
    assert model.config.image_seq_length == bundle.model.num_image_tokens
    pixels = bundle.processor.image_transform(image).unsqueeze(0)
    torch.testing.assert_close(inputs["pixel_values"], pixels, atol=1e-6, rtol=0)

    ours_ids = torch.tensor([ids])
    mask = torch.ones_like(ours_ids)
    with torch.no_grad():
        ours = bundle.model(input_ids=ours_ids, attention_mask=mask, pixel_values=pixels).logits
        theirs = model(**inputs).logits
    assert (ours - theirs).abs().max().item() < 1e-4
    greedy = dict(max_new_tokens=8, do_sample=False)
    our_tokens = bundle.model.generate(ours_ids, mask, pixels, **greedy)
    their_tokens = model.generate(**inputs, **greedy)[:, ours_ids.shape[1]:]
    assert their_tokens.tolist() == our_tokens.tolist()


def test_text_only_prompts_match_too(exported):
    bundle, out = exported
    model = LlavaForConditionalGeneration.from_pretrained(out).eval()
    ids = torch.tensor([bundle.processor.encode_prompt("Say hello.", has_image=False)])
    with torch.no_grad():
        ours = bundle.model(input_ids=ids).logits
        theirs = model(input_ids=ids).logits
    assert (ours - theirs).abs().max().item() < 1e-4


def test_other_image_shapes_get_our_pixels(exported):
    """Pad to square, resize, normalise: the PIL backend reproduces our transform exactly; the
    default torchvision backend within one grey level (its bicubic rounds differently)."""
    bundle, out = exported
    default = AutoProcessor.from_pretrained(out).image_processor
    pil = AutoProcessor.from_pretrained(out, backend="pil").image_processor
    one_level = 1 / 255 / min(bundle.model.vision.data_config["std"])
    for size in ((50, 30), (17, 40), (300, 200)):
        image = Image.effect_noise(size, 64).convert("RGB")
        ours = bundle.processor.image_transform(image)
        assert torch.equal(pil(image, return_tensors="pt")["pixel_values"][0], ours)
        difference = (default(image, return_tensors="pt")["pixel_values"][0] - ours).abs()
        assert difference.max().item() <= one_level * 1.01


def test_the_directory_is_in_the_layout_vllm_and_older_transformers_read(exported):
    bundle, out = exported
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        keys = set(weights.keys())
    prefixes = {key.split(".")[0] + "." + key.split(".")[1] for key in keys}
    assert prefixes <= {"vision_tower.vision_model", "multi_modal_projector.linear_1",
                        "multi_modal_projector.linear_2", "language_model.model",
                        "language_model.lm_head"}
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlavaForConditionalGeneration"]
    assert config["vision_feature_layer"] == -1  # the tower was pruned after its feature layer
    # Written explicitly: transformers 4.x reads this key and would default it silently.
    text = config["text_config"]
    assert text["rope_theta"] == text["rope_parameters"]["rope_theta"]
    for name in ("tokenizer.json", "processor_config.json", "generation_config.json",
                 "chat_template.jinja"):
        assert (out / name).is_file(), name


def test_exporting_leaves_the_model_as_it_was(toy_root, tmp_path):
    """LlavaConfig resets the attention implementation of the configs it is given; the export
    must not do that to the live model (None means eager attention with no causal mask)."""
    bundle = tiny_bundle(toy_root, tmp_path, *TOWERS["clip"])
    template = bundle.tokenizer.chat_template
    ids = torch.tensor([bundle.processor.encode_prompt(QUESTION, has_image=False)])
    with torch.no_grad():
        before = bundle.model(input_ids=ids).logits
        write_llava(bundle, tmp_path / "hf")
        after = bundle.model(input_ids=ids).logits
    assert torch.equal(before, after)
    assert bundle.model.llm.config._attn_implementation == "sdpa"
    assert bundle.tokenizer.chat_template == template


@pytest.mark.parametrize("overrides, reason", [
    ([], "not a ViT"),  # the toy default, a ResNet
    (["model/vision=toy_clip", "model/connector=grid_pool"], "not LLaVA's projector"),
    (["model/vision=toy_clip", "model.vision.model_name=vit_base_patch16_224"],
     "neither the CLIP layout"),  # a plain ViT: class token but no pre-norm
])
def test_models_stock_llava_cannot_hold_are_refused_with_the_reason(toy_root, tmp_path,
                                                                    overrides, reason):
    bundle = tiny_bundle(toy_root, tmp_path, *overrides)
    assert reason in llava_export_blocker(bundle.model)
    with pytest.raises(NotExportable, match=reason):
        write_llava(bundle, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def test_allava_export_picks_the_door_and_says_which(toy_root, tmp_path, capsys):
    """In process, for speed (tests/e2e/test_hf_export_after_training.py runs the command)."""

    def run_export(*args: str) -> Outcome:
        code = allava_main(["export", *args])
        printed = capsys.readouterr()
        return Outcome(code, printed.out, printed.err)

    clip = export_model(tiny_bundle(toy_root, tmp_path / "a", *TOWERS["clip"]), tmp_path / "clip")
    cnn = export_model(tiny_bundle(toy_root, tmp_path / "b"), tmp_path / "cnn")

    result = run_export(str(clip), "--format", "hf", "--out", str(tmp_path / "clip_hf"))
    assert result.returncode == 0, result.stderr
    assert "stock LlavaForConditionalGeneration" in result.stdout
    assert json.loads((tmp_path / "clip_hf" / "config.json").read_text())["model_type"] == "llava"

    refused = run_export(str(cnn), "--format", "hf", "--hf-class", "llava",
                         "--out", str(tmp_path / "cnn_hf"))
    assert refused.returncode == 2
    assert "cannot be a stock LLaVA" in refused.stderr and "not a ViT" in refused.stderr

    remote = run_export(str(cnn), "--format", "hf", "--out", str(tmp_path / "cnn_hf"))
    assert remote.returncode == 0, remote.stderr
    assert "remote code (not stock LLaVA: the tower" in remote.stdout
    assert (tmp_path / "cnn_hf" / "modeling_allava.py").is_file()

    again = run_export(str(clip), "--format", "hf", "--out", str(tmp_path / "clip_hf"))
    assert again.returncode == 2 and "--overwrite" in again.stderr

    replaced = run_export(str(clip), "--out", str(tmp_path / "clip_hf"), "--overwrite")
    assert replaced.returncode == 0 and "allava model directory" in replaced.stdout
    assert (tmp_path / "clip_hf" / "config.yaml").is_file()
    assert not (tmp_path / "clip_hf" / "config.json").exists()  # replaced, not merged

    onto_itself = run_export(str(clip), "--out", str(clip), "--overwrite")
    assert onto_itself.returncode == 2 and "holds the model directory" in onto_itself.stderr
    assert (clip / "model.safetensors").is_file()

    missing = run_export(str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "not an exported model directory" in missing.stderr
