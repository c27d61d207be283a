"""Learning, not just running: a short run of the default model must read held-out images.

One pretrain stage on Caption records, through the real pipeline (shards, Lightning, export),
then the exported model describes scenes that training never saw: the object count it writes
first ("This picture contains 2 objects ...") must be right far more often than chance (1/3).
A change that stops the image from reaching the LLM, or the LLM from learning, fails this."""
from __future__ import annotations

import random
import re

import pytest

from allava.toy.world import render_scene, sample_scene
from allava.models.predictor import load_model
from allava.training.run import train
from tests.helpers.configs import compose_config

HELD_OUT_SEED = 987_654  # no generator seed of the toy world is near it
COUNT = re.compile(r"\b([1-9]) objects?\b")


@pytest.mark.slow
def test_a_short_run_learns_to_count_objects_in_held_out_images(tmp_path):
    world = dict(num_images=2000, num_text=200, num_val_images=16, num_benchmark_items=8,
                 image_size=64, seed=5, tokenizer_vocab_size=512)
    overrides = [f"data.root={tmp_path / 'toy'}",
                 *[f"data.generate.{k}={v}" for k, v in world.items()],
                 "model.llm.model.config.num_hidden_layers=2",
                 "model/vision=efficientnet_lite0", "model.vision.image_size=64",
                 "stages=[pretrain]", "stage.pretrain.max_steps=600",
                 "stage.pretrain.val_every_n_steps=600",
                 "data.batch_size=16", "data.val_max_samples=8", "eval.benchmarks=[]",
                 "logger=csv", "callbacks.progress_bar.refresh_rate=0"]
    outcome = train(compose_config("train", overrides, tmp_path / "run"))
    model = load_model(outcome["exports"]["pretrain"])

    rng = random.Random(HELD_OUT_SEED)
    scenes = [sample_scene(rng) for _ in range(120)]
    images = [render_scene(scene, rng, world["image_size"]) for scene in scenes]
    answers = model.answer(["Please describe everything shown in this image."] * len(images),
                           images, max_new_tokens=10)
    said = [COUNT.search(answer) for answer in answers]
    right = sum(bool(m) and int(m.group(1)) == len(scene.objects)
                for m, scene in zip(said, scenes))
    accuracy = right / len(scenes)
    print(f"held-out count accuracy {accuracy:.3f}")
    assert sum(bool(m) for m in said) >= 0.9 * len(scenes), answers[:5]  # it learnt the format
    assert accuracy >= 0.7, f"count accuracy {accuracy:.2f} (chance 0.33): {answers[:5]}"
