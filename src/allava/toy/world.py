"""The toy world: scenes of coloured shapes on a 3x3 grid, and their rendering.

This is the embedded default dataset's ground truth. Everything here is a pure function of a
`random.Random`, so a seed reproduces the same scenes and the same pixels. Held-out benchmarks are
generated to the same specification, so the numbers below are part of a contract, not tuning knobs.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CELL_NAMES: tuple[str, ...] = (
    "top left", "top", "top right",
    "left", "center", "right",
    "bottom left", "bottom", "bottom right",
)  # row-major
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 40),
    "purple": (140, 60, 180),
    "orange": (240, 140, 30),
}
SIZES: tuple[str, ...] = ("small", "large")

# Object side as a fraction of the cell side, per size word.
SIZE_FRACTIONS: dict[str, tuple[float, float]] = {"small": (0.35, 0.50), "large": (0.70, 0.90)}
BACKGROUND_RANGE = (225, 255)  # each channel of the flat background colour
BACKGROUND_NOISE = 8  # per-pixel uniform noise in [-8, 8]
COLOR_JITTER = 20  # per-channel uniform jitter of an object's colour
CENTER_JITTER = 0.10  # max offset of an object's centre from its cell centre, in cell sides
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down for anti-aliased edges

_CELL_INDEX = {name: i for i, name in enumerate(CELL_NAMES)}


@dataclass(frozen=True)
class ToyObject:
    shape: str
    color: str
    size: str
    cell: str


@dataclass(frozen=True)
class Scene:
    objects: tuple[ToyObject, ...]  # in reading (cell) order


def cell_index(cell: str) -> int:
    """Row-major position of a cell name (0 = top left)."""
    return _CELL_INDEX[cell]


def article(word: str) -> str:
    """The indefinite article for a word of our vocabulary ("an orange", "a red")."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def describe_object(obj: ToyObject) -> str:
    """Size, colour and shape in the fixed order the teacher always uses: "small red circle"."""
    return f"{obj.size} {obj.color} {obj.shape}"


def scene_to_json(scene: Scene) -> list[dict[str, str]]:
    """Plain-JSON form of a scene (kept next to benchmark items so answers can be re-derived)."""
    return [
        {"shape": o.shape, "color": o.color, "size": o.size, "cell": o.cell} for o in scene.objects
    ]


def scene_from_json(objects: list[dict[str, str]]) -> Scene:
    """Inverse of `scene_to_json`; validates the vocabulary and restores reading order."""
    parsed = []
    for o in objects:
        obj = ToyObject(shape=o["shape"], color=o["color"], size=o["size"], cell=o["cell"])
        if obj.shape not in SHAPES or obj.color not in COLORS or obj.size not in SIZES or obj.cell not in _CELL_INDEX:
            raise ValueError(f"object outside the toy-world vocabulary: {o!r}")
        parsed.append(obj)
    return Scene(objects=tuple(sorted(parsed, key=lambda o: cell_index(o.cell))))


def sample_scene(rng: random.Random, min_objects: int = 1, max_objects: int = 3) -> Scene:
    """Draw 1-3 objects (by default) with random attributes, each in its own cell."""
    if not 1 <= min_objects <= max_objects <= len(CELL_NAMES):
        raise ValueError(
            f"need 1 <= min_objects <= max_objects <= {len(CELL_NAMES)}, "
            f"got min_objects={min_objects}, max_objects={max_objects}"
        )
    count = rng.randint(min_objects, max_objects)
    cells = sorted(rng.sample(range(len(CELL_NAMES)), count))
    color_names = list(COLORS)
    objects = tuple(
        ToyObject(
            shape=rng.choice(SHAPES),
            color=rng.choice(color_names),
            size=rng.choice(SIZES),
            cell=CELL_NAMES[c],
        )
        for c in cells
    )
    return Scene(objects=objects)


def _noisy_background(rng: random.Random, image_size: int) -> np.ndarray:
    """A light flat colour plus uniform per-pixel noise, as uint8 [H, W, 3]."""
    base = np.array([rng.randint(*BACKGROUND_RANGE) for _ in range(3)], dtype=np.int16)
    # numpy's generator is seeded from the scene rng so the whole image follows one seed.
    noise_rng = np.random.default_rng(rng.getrandbits(64))
    noise = noise_rng.integers(
        -BACKGROUND_NOISE, BACKGROUND_NOISE + 1, size=(image_size, image_size, 3), dtype=np.int16
    )
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _jittered_color(rng: random.Random, color: str) -> tuple[int, int, int]:
    r, g, b = (
        min(255, max(0, c + rng.randint(-COLOR_JITTER, COLOR_JITTER))) for c in COLORS[color]
    )
    return (r, g, b)


@dataclass(frozen=True)
class PlacedObject:
    """Where and how an object was drawn, in image pixels (pixel (x, y) covers [x, x+1))."""

    obj: ToyObject
    center: tuple[float, float]  # (x, y)
    side: float  # diameter / side / base and height of the triangle
    rgb: tuple[int, int, int]


def _place_object(obj: ToyObject, rng: random.Random, cell_side: float) -> PlacedObject:
    """Draw the object's jittered side, centre and colour from `rng`."""
    row, col = divmod(cell_index(obj.cell), 3)
    low, high = SIZE_FRACTIONS[obj.size]
    side = rng.uniform(low, high) * cell_side
    cx = (col + 0.5 + rng.uniform(-CENTER_JITTER, CENTER_JITTER)) * cell_side
    cy = (row + 0.5 + rng.uniform(-CENTER_JITTER, CENTER_JITTER)) * cell_side
    return PlacedObject(obj=obj, center=(cx, cy), side=side, rgb=_jittered_color(rng, obj.color))


def _draw_object(draw: ImageDraw.ImageDraw, placed: PlacedObject, scale: int) -> None:
    """Draw one placed object on a canvas `scale` times the image size."""
    (cx, cy), half = placed.center, placed.side / 2
    x0, y0, x1, y1 = ((cx - half) * scale, (cy - half) * scale, (cx + half) * scale, (cy + half) * scale)
    # PIL's boxes include their last pixel, hence the "- 1" on the far edges.
    shape, fill = placed.obj.shape, placed.rgb
    if shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif shape == "triangle":  # pointing up, inscribed in the object's square
        draw.polygon([(cx * scale, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render_scene_with_layout(
    scene: Scene, rng: random.Random, image_size: int = 64
) -> tuple[Image.Image, tuple[PlacedObject, ...]]:
    """Render a scene and also return where each object landed (for tests and grounding)."""
    if image_size < 3:
        raise ValueError(f"image_size must be at least 3 pixels, got {image_size}")
    background = _noisy_background(rng, image_size)
    # Upsampling the noisy background by pixel repetition keeps its noise exact after the box
    # downsample, while shape edges get averaged (anti-aliased) and shape interiors stay noise-free.
    scale = SUPERSAMPLE
    canvas = Image.fromarray(background).resize(
        (image_size * scale, image_size * scale), Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(canvas)
    cell_side = image_size / 3
    layout = tuple(_place_object(obj, rng, cell_side) for obj in scene.objects)
    for placed in layout:
        _draw_object(draw, placed, scale)
    return canvas.reduce(scale), layout


def render_scene(scene: Scene, rng: random.Random, image_size: int = 64) -> Image.Image:
    """Render a scene to an RGB image; size, colour and position jitter come from `rng`."""
    return render_scene_with_layout(scene, rng, image_size)[0]


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes, tuned for speed: noisy 64px images barely compress better at higher levels."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()
