"""Decoding images and the error for unusable samples: the part of the data pipeline that needs
only PIL, so that tools which never train (allava synth, allava data convert) start without
importing torch, timm or transformers."""
from __future__ import annotations

import io

from PIL import Image, ImageOps

# Read more formats than the shard writer emits: shards may come from other tools.
READABLE_IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")


class BadSample(ValueError):
    """A record or sample that cannot be used; `reason` is the short, stable key it is counted
    under (in the logs, a manifest, rejects.jsonl)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def decode_image(data: bytes) -> Image.Image:
    """Upright RGB whatever the source mode (grayscale, CMYK, palette, alpha, EXIF-rotated)."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return upright_rgb(image)
    except Exception as error:  # PIL raises many types for corrupt data
        raise BadSample("image_decode_error", str(error)[:120]) from error


def upright_rgb(image: Image.Image) -> Image.Image:
    """A loaded image turned by its EXIF orientation, alpha laid on white, in RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")
