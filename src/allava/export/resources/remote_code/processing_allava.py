"""The processor of an ALLaVA vision-language model saved as Hugging Face remote code: the
tokenizer and chat template, `<image>` expansion, and the tower's image preprocessing.

Written by `allava export`; loads with transformers, timm and torch alone (no `allava` package).
"""
from __future__ import annotations

import torch
from PIL import Image
from torchvision import transforms
from transformers import BatchFeature, ProcessorMixin
from transformers.image_utils import load_image

from .allava_image_padding import PadToSquare


def build_image_transform(steps: list[dict]) -> transforms.Compose:
    """The tower's preprocessing, step by step as training ran it (written down at export)."""
    return transforms.Compose([_step(step) for step in steps])


def _step(step: dict):
    kind = step["op"]
    if kind == "pad_to_square":
        return PadToSquare(tuple(step["fill"]))
    if kind == "resize":
        return transforms.Resize(step["size"], transforms.InterpolationMode(step["interpolation"]),
                                 max_size=step["max_size"], antialias=step["antialias"])
    if kind == "center_crop":
        return transforms.CenterCrop(step["size"])
    if kind == "to_tensor":
        return transforms.ToTensor()
    if kind == "normalize":
        return transforms.Normalize(step["mean"], step["std"])
    raise ValueError(f"unknown image step {kind!r} in processor_config.json")


class AllavaProcessor(ProcessorMixin):
    """`processor(text=..., images=...)` and `processor.apply_chat_template(...)` give the model's
    inputs: each `<image>` of the text becomes `num_image_tokens` placeholder ids, each image
    its `pixel_values`. No special tokens are added: the chat template writes those it wants
    (the prompts the model was trained on were tokenized the same way)."""

    # transformers 4.x finds the parts and settings here; 5.x reads them from `__init__`.
    attributes = ["tokenizer"]
    tokenizer_class = "AutoTokenizer"
    valid_kwargs = ["chat_template", "image_steps", "num_image_tokens", "image_token"]

    def __init__(self, tokenizer=None, image_steps=None, num_image_tokens=1,
                 image_token="<image>", chat_template=None):
        super().__init__(tokenizer, chat_template=chat_template)
        self.image_steps = image_steps
        self.num_image_tokens = num_image_tokens
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.image_transform = build_image_transform(image_steps)

    def __call__(self, images=None, text=None, videos=None, audio=None, return_tensors=None,
                 add_special_tokens=False, **tokenizer_kwargs) -> BatchFeature:
        """`text`: a prompt or a list of prompts, where each `<image>` stands for the next image;
        `images`: an image, a list of them, or one list per prompt (PIL images, paths or URLs).
        Further keyword arguments (padding, truncation, ...) go to the tokenizer."""
        if videos is not None or audio is not None:  # 4.x's apply_chat_template passes both
            raise ValueError("this model reads text and images only")
        if text is None:
            raise ValueError("text is required: a prompt with one <image> per image "
                             "(apply_chat_template writes it from messages)")
        texts = [text] if isinstance(text, str) else list(text)
        flat_images = _flatten(images)
        tags = sum(t.count(self.image_token) for t in texts)
        if tags != len(flat_images):
            raise ValueError(f"{tags} {self.image_token} in the text for {len(flat_images)} images")
        expanded = [t.replace(self.image_token, self.image_token * self.num_image_tokens)
                    for t in texts]
        data = dict(self.tokenizer(expanded, add_special_tokens=add_special_tokens,
                                   **tokenizer_kwargs))
        if flat_images:
            data["pixel_values"] = torch.stack(
                [self.image_transform(_as_rgb(image)) for image in flat_images])
        return BatchFeature(data, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return [*self.tokenizer.model_input_names, "pixel_values"]


def _flatten(images) -> list:
    if images is None:
        return []
    if not isinstance(images, (list, tuple)):
        return [images]
    return [image for item in images for image in _flatten(item)]


def _as_rgb(image) -> Image.Image:
    """A PIL image converted to RGB; a path, URL or base64 string decoded by transformers."""
    return image.convert("RGB") if isinstance(image, Image.Image) else load_image(image)
