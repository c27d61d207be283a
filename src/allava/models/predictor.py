"""Answer questions about images with a trained model: batched, left-padded, KV-cached."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from allava.models.build import VLMBundle
from allava.models.model_dir import load_exported


def left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of `prompts` padded on the left, so that every prompt ends
    where generation starts."""
    width = max(len(p) for p in prompts)
    input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts])
    attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return input_ids, attention_mask


class VLMPredictor:
    """Wraps a built model for inference. `answer` is what eval.py calls."""

    def __init__(self, bundle: VLMBundle):
        self.bundle = bundle
        self.model = bundle.model.eval()
        self.transform = bundle.processor.image_transform

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, questions: list[str], images: list[Image.Image | None]) -> dict:
        if len(questions) != len(images):
            raise ValueError(f"{len(questions)} questions but {len(images)} images")
        prompts = [self.bundle.processor.encode_prompt(q, img is not None)
                   for q, img in zip(questions, images)]
        input_ids, attention_mask = left_padded(prompts, self.bundle.tokenizer.pad_token_id)
        pixels = [self.transform(img.convert("RGB")) for img in images if img is not None]
        pixel_values = torch.stack(pixels) if pixels else None
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "pixel_values": pixel_values}

    @torch.inference_mode()
    def answer(self, questions: list[str], images: list[Image.Image | None],
               max_new_tokens: int = 32, do_sample: bool = False, **generate_kwargs) -> list[str]:
        batch = {k: (v.to(self.device) if v is not None else None)
                 for k, v in self.prepare(questions, images).items()}
        if not do_sample:
            generate_kwargs.update(temperature=None, top_p=None, top_k=None)
        new_tokens = self.model.generate(**batch, max_new_tokens=max_new_tokens,
                                         do_sample=do_sample, **generate_kwargs)
        texts = self.bundle.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [t.strip() for t in texts]


def load_model(model_dir: str | Path, device: str = "cpu") -> VLMPredictor:
    """`allava.load_model("logs/.../finetune/export").answer(["What is it?"], [image])`."""
    return VLMPredictor(load_exported(model_dir, device=device))
