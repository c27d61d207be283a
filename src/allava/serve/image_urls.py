"""`image_url` parts to images: `data:` URLs (base64) and local `file://` paths.

The server fetches nothing from the network: a model server that downloads what a request
names can be made to reach hosts its clients cannot. Every failure is a 400 naming the problem.
"""
from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image, UnidentifiedImageError

from allava.serve.errors import APIError, bad_request

# Larger images are refused before decoding: a 40-megapixel RGB image already takes 120 MB,
# and every image is shrunk to the tower's few hundred pixels anyway.
MAX_IMAGE_PIXELS = 40_000_000
PARAM = "messages"


def load_image(url: str) -> Image.Image:
    """The RGB image an `image_url` names."""
    if url.startswith("data:"):
        data = _data_url_bytes(url)
    elif url.startswith("file:"):
        data = _file_bytes(url)
    else:
        scheme = url.split(":", 1)[0] if ":" in url else url[:20]
        raise bad_request(f"image_url scheme {scheme!r} is not supported: send the image inline "
                          "as data:image/...;base64,... or a file:// path on the server",
                          param=PARAM, code="invalid_image_url")
    return decode_image(data)


def _data_url_bytes(url: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise bad_request("image data URLs must be base64: data:image/png;base64,...",
                          param=PARAM, code="invalid_image_url")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise bad_request(f"the image data URL is not valid base64 ({error})", param=PARAM,
                          code="invalid_image_url") from None


def _file_bytes(url: str) -> bytes:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise bad_request(f"file:// URLs name a path on this server, not host {parsed.netloc!r}",
                          param=PARAM, code="invalid_image_url")
    path = Path(unquote(parsed.path))
    try:
        return path.read_bytes()
    except OSError as error:
        raise bad_request(f"cannot read image file {path}: {error.strerror or error}",
                          param=PARAM, code="invalid_image_url") from None


def decode_image(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise _too_large(image.width, image.height)
            return image.convert("RGB")
    except APIError:
        raise
    except UnidentifiedImageError:
        raise bad_request("the image bytes are in no format this server reads (PNG, JPEG, "
                          "WebP, GIF, BMP, ...)", param=PARAM, code="invalid_image") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise bad_request(f"cannot read the image: {error}", param=PARAM,
                          code="invalid_image") from None


def _too_large(width: int, height: int) -> APIError:
    return bad_request(f"the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,} "
                       "pixels are accepted", param=PARAM, code="invalid_image")
