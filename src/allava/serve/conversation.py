"""OpenAI chat messages -> ALLaVA turns (`{"from": "human" | "gpt" | "system", "value"}`) and
the conversation's image.

The model was trained with one image per conversation, written as an `<image>` line at the
start of the human turn it belongs to (the processor may move it after the text, as the model
was trained). More images in one request are refused rather than silently dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from allava.models.chat_format import IMAGE_TAG
from allava.serve.errors import bad_request
from allava.serve.image_urls import load_image
from allava.serve.schema import ContentPart, ImageURL, Message

# "developer" is what OpenAI's newer models call the system turn.
SPEAKERS = {"system": "system", "developer": "system", "user": "human", "assistant": "gpt"}


@dataclass
class Conversation:
    turns: list[dict[str, str]]
    image: Image.Image | None


def read_conversation(messages: list[Message]) -> Conversation:
    """The turns and the image of `messages`; 400 for roles, parts or images it cannot take."""
    turns: list[dict[str, str]] = []
    image_urls: list[str] = []
    for index, message in enumerate(messages):
        speaker = SPEAKERS.get(message.role)
        if speaker is None:
            raise bad_request(f"messages[{index}]: role {message.role!r} is not supported "
                              f"(use {', '.join(SPEAKERS)})", param=f"messages[{index}].role")
        text, urls = _text_and_image_urls(message.content, index)
        if urls and speaker != "human":
            raise bad_request(f"messages[{index}]: images go in user messages only",
                              param=f"messages[{index}].content")
        if IMAGE_TAG in text:
            raise bad_request(f"messages[{index}]: {IMAGE_TAG} is reserved for images; send the "
                              "image as an image_url part", param=f"messages[{index}].content")
        image_urls += urls
        turns.append({"from": speaker, "value": f"{IMAGE_TAG}\n{text}" if urls else text})
    if len(image_urls) > 1:
        raise bad_request(f"this model takes one image per conversation; the messages hold "
                          f"{len(image_urls)}", param="messages", code="too_many_images")
    return Conversation(turns, load_image(image_urls[0]) if image_urls else None)


def _text_and_image_urls(content: str | list[ContentPart] | None, index: int
                         ) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    urls: list[str] = []
    for number, part in enumerate(content):
        where = f"messages[{index}].content[{number}]"
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif part.type == "image_url" and part.image_url is not None:
            url = part.image_url
            urls.append(url.url if isinstance(url, ImageURL) else url)
        else:
            raise bad_request(f"{where}: content part type {part.type!r} is not supported "
                              "(text, image_url)", param=where)
    # Text parts are joined by a newline, as vLLM does.
    return "\n".join(texts), urls
