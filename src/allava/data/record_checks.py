"""Structural checks of one conversation record, before any image is read.

A record that fails raises BadSample with a short, stable reason (the key counted in the
manifest and written to rejects.jsonl); nothing here raises anything else.
"""
from __future__ import annotations

from typing import Any

from allava.models.chat_format import IMAGE_TAG, MalformedConversation, to_messages
from allava.data.image_decode import BadSample


def image_path_of(record: dict[str, Any]) -> str | None:
    """The record's image path relative to the image root, or None for a text-only record.
    LLaVA-style records name one image as a string; a one-element list is accepted too."""
    image = record.get("image")
    if image is None or image == "" or image == []:
        return None
    if isinstance(image, list) and len(image) == 1:
        image = image[0]
    if isinstance(image, list):
        raise BadSample("multiple_images", f"{len(image)} images; one per record is supported")
    if not isinstance(image, str):
        raise BadSample("malformed_record", f"image field is {type(image).__name__}")
    return image


def check_record(record: Any) -> str | None:
    """Raises BadSample for a record that cannot be trained on; returns its image path."""
    if not isinstance(record, dict):
        raise BadSample("malformed_record", "not a JSON object")
    try:
        messages = to_messages(record.get("conversations"))
    except MalformedConversation as error:
        raise BadSample(error.reason, str(error)) from error
    image = image_path_of(record)
    tags = sum(m["content"].count(IMAGE_TAG) for m in messages)
    if tags != (image is not None):
        raise BadSample("image_tag_mismatch",
                             f"{tags} {IMAGE_TAG} tag(s) for {int(image is not None)} image(s)")
    return image
