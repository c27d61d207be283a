"""Read one image file for a shard: verified, its original bytes kept unless asked otherwise.

Every image is fully decoded once, so a truncated or corrupt file is rejected at conversion time
rather than mid-training. Grayscale, CMYK, palette, alpha and EXIF-rotated images are valid: the
bytes are kept as they are, and `samples.decode_image` makes them upright RGB when training reads
them. Files in a format the shard schema does not carry (GIF, BMP, TIFF, ...) are re-encoded
losslessly to PNG; `max_side` re-encodes larger images, upright, to JPEG at that longest side.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from allava.data.image_decode import BadSample, upright_rgb
from allava.data.shard_writer import normalize_image_ext
DEFAULT_MIN_SIDE = 8
JPEG_QUALITY = 95
_PNG_MODES = ("1", "L", "LA", "I", "P", "RGB", "RGBA")
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImagePayload:
    data: bytes
    ext: str
    width: int
    height: int


def _open_verified(data: bytes) -> Image.Image:
    """Decodes every pixel; a decompression bomb (PIL's pixel limit, or twice it) is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadSample("decompression_bomb", str(error)[:160]) from error
        except Exception as error:  # PIL raises many types for corrupt or truncated data
            raise BadSample("unreadable_image", str(error)[:160]) from error
    return image


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def read_image(root: str | Path, relative: str, max_side: int | None = None,
               min_side: int = DEFAULT_MIN_SIDE) -> ImagePayload:
    path = Path(root) / relative
    if not path.is_file():
        raise BadSample("missing_image", str(path))
    return image_payload(path.read_bytes(), max_side, min_side)


def image_payload(data: bytes, max_side: int | None = None,
                  min_side: int = DEFAULT_MIN_SIDE) -> ImagePayload:
    """Verified image bytes, kept, made PNG, or re-encoded to JPEG at `max_side` (see above)."""
    image = _open_verified(data)
    width, height = _upright_size(image)
    if min(width, height) < min_side:
        raise BadSample("image_too_small", f"{image.size[0]}x{image.size[1]} < {min_side} px")
    if max_side and max(width, height) > max_side:
        try:
            upright = upright_rgb(image)  # decoded above already: no second decode
        except Exception as error:  # a corrupt EXIF block, say
            raise BadSample("unreadable_image", str(error)[:160]) from error
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = upright.resize(size, Image.Resampling.BICUBIC)
        return ImagePayload(_encode(resized, "JPEG"), "jpg", *size)
    try:
        ext = normalize_image_ext(image.format or "")
    except ValueError:  # a format shards do not carry (GIF, BMP, TIFF): every pixel, in PNG
        if image.mode not in _PNG_MODES:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        return ImagePayload(_encode(image, "PNG"), "png", width, height)
    return ImagePayload(data, ext, width, height)


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """Width and height once the EXIF orientation is applied (5-8 swap the sides)."""
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
