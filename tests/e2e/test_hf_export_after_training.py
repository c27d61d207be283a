"""A short toy run with the CLIP-layout tower, exported with `allava export --format hf`, answers
through transformers alone exactly as through this package's predictor."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from allava.models.predictor import load_model
from allava.training.run import train

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "hf_answers.py"


def test_a_trained_toy_clip_model_answers_the_same_through_transformers(tiny_train_config,
                                                                       tmp_path):
    cfg = tiny_train_config("model/vision=toy_clip", "stages=[tower,pretrain,finetune]",
                            "stage.pretrain.max_steps=12", "stage.finetune.max_steps=12",
                            "eval.benchmarks=[]")
    run_dir = Path(train(cfg)["run_dir"])
    export = run_dir / "finetune" / "export"
    hf_dir = tmp_path / "hf"
    result = subprocess.run([sys.executable, "-m", "allava.cli.main", "export", str(export),
                             "--format", "hf", "--out", str(hf_dir)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "stock LlavaForConditionalGeneration" in result.stdout

    images = {"square": Image.effect_noise((32, 32), 64).convert("RGB"),
              "wide": Image.new("RGB", (60, 24), (30, 160, 40)),
              "tall": Image.new("RGB", (20, 48), (200, 30, 30))}
    items = []
    for name, image in images.items():
        image.save(tmp_path / f"{name}.png")
        for question in ("What is in the image?", "What color is the shape?"):
            items.append({"image": str(tmp_path / f"{name}.png"), "question": question})
    (tmp_path / "items.json").write_text(json.dumps(items))
    theirs = subprocess.run([sys.executable, str(HELPER), str(hf_dir), str(tmp_path / "items.json")],
                            capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stderr
    hf_answers = json.loads(theirs.stdout)

    predictor = load_model(export)
    ours = [predictor.answer([item["question"]], [Image.open(item["image"])],
                             max_new_tokens=24)[0] for item in items]
    assert hf_answers == ours
    # A few steps of a tiny model give repetitive answers, but they differ with the image:
    # the pixels reach the model through both doors.
    assert len(set(ours)) > 1
