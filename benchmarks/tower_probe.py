"""What a frozen tower's image tokens say about the toy world: linear probes of colour and shape
per grid cell, for several input sizes and feature stages.

    python benchmarks/tower_probe.py [--scenes 3000 --tower efficientnet_lite0]

Scenes come from the toy world's generator (src/allava/toy/world.py); the tower is a preset of
configs/model/vision/ with its packaged weights. A cell's features are its tokens concatenated
(2x2 tokens per cell at 6x6, one at 3x3); a linear classifier per attribute (the empty cell is a
class of its own) trains on the first scenes and is scored on the last 500, on the occupied
cells. An attribute the probe cannot read is one the connector and the LLM must dig out
themselves, so this picks the tower's stage and input size before any costly training run.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allava.models.vision_tower import TimmVisionTower  # noqa: E402
from allava.toy.world import COLORS, SHAPES, cell_index, render_scene, sample_scene  # noqa: E402

SETTINGS = ((96, -1), (96, -2), (48, -2), (48, -3), (192, -1))  # (input px, stage); 3x3-divisible grids
HELD_OUT = 500


def scene_labels(scenes) -> dict[str, torch.Tensor]:
    """[scenes, 9] class per cell and attribute: 0 = empty, then the vocabulary's order."""
    colours, shapes = ["none", *COLORS], ["none", *SHAPES]
    labels = {"colour": torch.zeros(len(scenes), 9, dtype=torch.long),
              "shape": torch.zeros(len(scenes), 9, dtype=torch.long)}
    for row, scene in enumerate(scenes):
        for obj in scene.objects:
            labels["colour"][row, cell_index(obj.cell)] = colours.index(obj.color)
            labels["shape"][row, cell_index(obj.cell)] = shapes.index(obj.shape)
    return labels


@torch.no_grad()
def cell_features(tower: TimmVisionTower, images) -> torch.Tensor:
    """[scenes, 9, D]: each cell's tokens concatenated (the grid must divide into 3x3)."""
    transform = tower.image_transform(train=False)
    tokens = torch.cat([tower(torch.stack([transform(im) for im in images[i:i + 200]]))
                        for i in range(0, len(images), 200)])
    count, length, width = tokens.shape
    side = int(length ** 0.5)
    if side * side != length or side % 3:
        raise ValueError(f"a {side}x{side} token grid does not split into 3x3 cells")
    per = side // 3
    grid = tokens.view(count, 3, per, 3, per, width).permute(0, 1, 3, 2, 4, 5)
    return grid.reshape(count, 9, per * per * width)


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> float:
    """A linear classifier (Adam, full batch) on standardised features; accuracy on the held-out
    scenes' occupied cells."""
    torch.manual_seed(0)
    train_x, test_x = features[:-HELD_OUT].flatten(0, 1), features[-HELD_OUT:].flatten(0, 1)
    train_y, test_y = labels[:-HELD_OUT].flatten(), labels[-HELD_OUT:].flatten()
    mean, std = train_x.mean(0), train_x.std(0) + 1e-5
    classifier = torch.nn.Linear(train_x.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(classifier((train_x - mean) / std), train_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = classifier((test_x - mean) / std).argmax(-1)
    occupied = test_y > 0
    return float((predicted[occupied] == test_y[occupied]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=3000)
    parser.add_argument("--tower", default="efficientnet_lite0", help="a configs/model/vision preset")
    args = parser.parse_args()
    rng = random.Random(0)
    scenes = [sample_scene(rng) for _ in range(args.scenes)]
    images = [render_scene(scene, rng) for scene in scenes]
    labels = scene_labels(scenes)
    preset = OmegaConf.load(ROOT / "configs/model/vision" / f"{args.tower}.yaml")
    print(f"{args.scenes} scenes ({HELD_OUT} held out), tower {preset.model_name}; "
          "accuracy on occupied cells (chance: colour 0.17, shape 0.33)\n")
    print("| input px | stage | tokens | width per cell | colour | shape |")
    print("|---|---|---|---|---|---|")
    for size, stage in SETTINGS:
        tower = TimmVisionTower(preset.model_name, weights="packaged",
                                packaged=OmegaConf.to_container(preset.packaged),
                                feature_layer=stage, image_size=size).eval()
        features = cell_features(tower, images)
        tokens = tower.num_patches()
        scores = [probe_accuracy(features, labels[name]) for name in ("colour", "shape")]
        print(f"| {size} | {stage} | {tokens} | {features.shape[-1]} | "
              f"{scores[0]:.3f} | {scores[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
