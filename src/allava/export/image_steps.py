"""A tower's image transform written down as plain steps (JSON), for processors that live
outside this package.

Describing the transform the tower really builds, rather than the rules that built it (pad
colour, resize mode, crop percentage), keeps an exported processor's pixels equal to training's
whatever those rules become. The remote-code processor rebuilds the steps with torchvision.
"""
from __future__ import annotations

from torchvision import transforms as T

from allava.models.image_padding import PadToSquare


def describe_transform(transform: T.Compose) -> list[dict]:
    """`[{"op": "pad_to_square", "fill": [r, g, b]}, {"op": "resize", ...}, ...]`; raises
    ValueError for a step it has no words for."""
    return [_describe(step) for step in transform.transforms]


def _describe(step) -> dict:
    if isinstance(step, PadToSquare):
        return {"op": "pad_to_square", "fill": list(step.fill)}
    if type(step) is T.Resize:
        size = step.size if isinstance(step.size, int) else list(step.size)
        return {"op": "resize", "size": size, "interpolation": step.interpolation.value,
                "max_size": step.max_size, "antialias": step.antialias}
    if type(step) is T.CenterCrop:
        return {"op": "center_crop", "size": list(step.size)}
    if isinstance(step, T.ToTensor):  # timm's MaybeToTensor too: the same on PIL images
        return {"op": "to_tensor"}
    if type(step) is T.Normalize:
        return {"op": "normalize", "mean": _floats(step.mean), "std": _floats(step.std)}
    raise ValueError(f"the image transform step {step!r} cannot be written down for an exported "
                     "processor (known: pad to square, resize, center crop, to tensor, normalize)")


def _floats(values) -> list[float]:
    return [float(v) for v in values]
