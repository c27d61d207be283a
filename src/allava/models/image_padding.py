"""Padding an image to a square, as LLaVA does before resizing.

Imports nothing but PIL: exported remote-code directories ship this file as it is
(`allava.export.remote_code`), so that their processors pad exactly as training did.
"""
from __future__ import annotations

from PIL import Image


class PadToSquare:
    """Pads an image to a square with a fill colour (the normalisation mean, as LLaVA does),
    so that resizing never distorts the aspect ratio and no content is cropped away."""

    def __init__(self, fill: tuple[int, int, int]):
        self.fill = fill

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if width == height:
            return image
        side = max(width, height)
        canvas = Image.new(image.mode, (side, side), self.fill)
        canvas.paste(image, ((side - width) // 2, (side - height) // 2))
        return canvas

    def __repr__(self) -> str:
        return f"PadToSquare(fill={self.fill})"
