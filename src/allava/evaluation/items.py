"""What every reader returns: a `Benchmark` of `BenchmarkItem`s plus the `SkippedItem`s it could not
use, the benchmark kinds, the two reader errors, and how an item's image is decoded.

An image comes in one of two forms: base64 text inside the file (VLMEvalKit's TSVs:
`BenchmarkItem.image_b64`) or a file next to it (LLaVA-1.5's layouts: `extras["image_path"]`).
`load_item_image` reads either; a picture that does not decode raises `UndecodableImageError`,
which the runner turns into a skipped item.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

BenchmarkKind = Literal["yes_no", "multiple_choice", "short_answer", "open_ended"]
# "open_ended" (MM-Vet, LLaVA-Bench: free answers graded by a judge) is never inferred.
BENCHMARK_KINDS: tuple[str, ...] = ("yes_no", "multiple_choice", "short_answer", "open_ended")
DEFAULT_CATEGORY = "uncategorized"


class BenchmarkFormatError(ValueError):
    """A benchmark file the loader cannot read as a whole (the message names file and problem)."""


class UndecodableImageError(ValueError):
    """One image cell that does not decode to a picture."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One question of a benchmark; the image stays base64 text until `load_image` is called."""

    index: int | str
    question: str
    answer: str
    category: str = DEFAULT_CATEGORY
    options: dict[str, str] = field(default_factory=dict)
    hint: str | None = None
    image_b64: str | None = None
    row: int = 0  # 1-based data row in the file, for error messages and `Benchmark.head`
    # What particular scorers need beyond one answer: e.g. `answers` (the 10 annotators' answers
    # of VQA-style benchmarks), `image_id` (MME pairs two questions per image), `split`.
    extras: dict[str, Any] = field(default_factory=dict)

    def load_image(self) -> Image.Image | None:
        """The decoded RGB image, or None for a text-only question."""
        if self.image_b64 is None:
            return None
        return decode_base64_image(self.image_b64)


@dataclass(frozen=True)
class SkippedItem:
    """A row that cannot be evaluated, kept so that it is counted instead of silently dropped."""

    index: int | str
    row: int
    reason: str


@dataclass
class Benchmark:
    name: str
    kind: BenchmarkKind
    items: list[BenchmarkItem]
    skipped: list[SkippedItem] = field(default_factory=list)
    path: Path | None = None

    def head(self, num_rows: int) -> Benchmark:
        """This benchmark cut to its first `num_rows` data rows (items and skipped rows alike)."""
        return replace(
            self,
            items=[item for item in self.items if item.row <= num_rows],
            skipped=[skip for skip in self.skipped if skip.row <= num_rows],
        )


# ------------------------------------------------------------------------------------------ images


def decode_base64_image(image_b64: str) -> Image.Image:
    """Decode base64 text to an RGB PIL image, raising `UndecodableImageError` with the cause."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(image_b64))) as image:
            return image.convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as error:
        raise UndecodableImageError(f"image does not decode ({type(error).__name__}: {error})") from error


def check_base64_image(image_b64: str) -> None:
    """Cheap up-front check (header and checksums, no pixel decoding) that an image is readable."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(image_b64))) as image:
            image.verify()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        # PIL's verify() reports some corruptions as SyntaxError.
        raise UndecodableImageError(f"image does not decode ({type(error).__name__}: {error})") from error


def load_item_image(item: BenchmarkItem) -> Image.Image | None:
    """The item's RGB image: read from `extras["image_path"]` when set, else `item.load_image()`.

    A file that has gone missing or does not decode raises `UndecodableImageError`, which the
    runner records as a skipped item.
    """
    image_path = item.extras.get("image_path")
    if image_path is None:
        return item.load_image()
    try:
        with Image.open(image_path) as image:
            return image.convert("RGB")
    except (FileNotFoundError, UnidentifiedImageError, OSError, ValueError) as error:
        raise UndecodableImageError(
            f"image file {image_path} does not decode ({type(error).__name__}: {error})"
        ) from error
