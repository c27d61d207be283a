"""The vision-language model: vision tower -> connector -> spliced into the LLM's embeddings."""
from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from allava.models.connectors import Connector
from allava.models.loss import causal_lm_loss, next_token_loss
from allava.models.packed_attention import as_one_row, is_flash
from allava.models.vision_tower import TimmVisionTower

# Config fields of LLMs whose logits are more than `lm_head(last hidden state)`; for those the
# loss takes the plain forward path.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


class ImageTokenMismatch(ValueError):
    """The number of `<image>` placeholders differs from the number of image features."""


class VisionLanguageModel(nn.Module):
    """`vision` + `connector` + `llm`. Each `<image>` of the text was expanded to
    `num_image_tokens` placeholder ids at tokenization; `embed` writes the connector's outputs
    into exactly those positions with one masked scatter (no per-sample Python loop)."""

    def __init__(self, vision: TimmVisionTower, connector: Connector, llm: PreTrainedModel,
                 image_token_id: int):
        super().__init__()
        if connector.in_dim != vision.feature_dim:
            raise ValueError(f"connector in_dim {connector.in_dim} != vision feature_dim "
                             f"{vision.feature_dim}")
        llm_width = llm.get_input_embeddings().embedding_dim
        if connector.out_dim != llm_width:
            raise ValueError(f"connector out_dim {connector.out_dim} != LLM width {llm_width}")
        self.vision = vision
        self.connector = connector
        self.llm = llm
        self.image_token_id = image_token_id

    @property
    def num_image_tokens(self) -> int:
        return self.connector.num_tokens(self.vision.num_patches())

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`[n_images, 3, H, W]` -> `[n_images, M, D_llm]`."""
        return self.connector(self.vision(pixel_values))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None) -> torch.Tensor:
        embeds = self.llm.get_input_embeddings()(input_ids)
        placeholders = input_ids == self.image_token_id
        num_placeholders = int(placeholders.sum())
        if pixel_values is None or pixel_values.shape[0] == 0:
            if num_placeholders:
                raise ImageTokenMismatch(f"{num_placeholders} image placeholders but no images")
            return embeds
        features = self.encode_images(pixel_values.to(embeds.dtype))
        if features.shape[0] * features.shape[1] != num_placeholders:
            raise ImageTokenMismatch(
                f"{num_placeholders} image placeholders in the text but {features.shape[0]} "
                f"images x {features.shape[1]} tokens = {features.shape[0] * features.shape[1]} "
                "features; the text side must expand each <image> to model.num_image_tokens"
            )
        # Images fill placeholders in row-major order: sample by sample, left to right.
        mask = placeholders.unsqueeze(-1).expand_as(embeds)
        return embeds.masked_scatter(mask, features.to(embeds.dtype).reshape(-1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, **kwargs):
        """`position_ids` that restart within a row mark packed samples (see
        `allava.models.packed_attention`); the attention mask is then left out."""
        embeds = self.embed(input_ids, pixel_values)
        if position_ids is None:
            return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels,
                            use_cache=False, **kwargs)
        output = self._run_packed(self.llm, embeds, position_ids, **kwargs)
        if labels is not None:
            output.loss = causal_lm_loss(output.logits, labels)
        return output

    def _run_packed(self, module: nn.Module, embeds: torch.Tensor, position_ids: torch.Tensor,
                    **kwargs):
        """`module` (the LLM or its decoder) on packed rows; outputs keep the `[R, L, ...]`
        layout of the rows."""
        rows, length = position_ids.shape
        flash = is_flash(getattr(self.llm.config, "_attn_implementation", None))
        if flash:
            embeds, position_ids = as_one_row(embeds, position_ids)
        output = module(inputs_embeds=embeds, position_ids=position_ids, attention_mask=None,
                        use_cache=False, **kwargs)
        if flash:
            for key in ("logits", "last_hidden_state"):
                if output.get(key) is not None:
                    output[key] = output[key].reshape(rows, length, -1)
        return output

    def supervised_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                        pixel_values: torch.Tensor | None, labels: torch.Tensor,
                        reduction: str = "token", position_ids: torch.Tensor | None = None,
                        documents: torch.Tensor | None = None) -> torch.Tensor:
        """The next-token loss, with vocabulary logits computed only where a label is set.

        Prompts, images and padding carry no labels, so this skips most of the LM head's work
        and the `[B, T, V]` logits tensor. Same value as
        `causal_lm_loss(self(...).logits, labels)`; LLMs that transform their logits take that
        path instead. Packed rows (`allava.data.packing`) come with `position_ids` that restart
        at every sample and `documents`, each token's sample index, for `reduction="sample"`."""
        if any(getattr(self.llm.config, name, None) for name in _LOGIT_TRANSFORMS):
            logits = self(input_ids=input_ids, attention_mask=attention_mask,
                          pixel_values=pixel_values, position_ids=position_ids).logits
            return causal_lm_loss(logits, labels, reduction, documents)
        embeds = self.embed(input_ids, pixel_values)
        decoder = self.llm.get_decoder()
        if position_ids is None:
            output = decoder(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        else:
            output = self._run_packed(decoder, embeds, position_ids)
        return next_token_loss(output.last_hidden_state, labels, reduction,
                               to_logits=self.llm.get_output_embeddings(), documents=documents)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 pixel_values: torch.Tensor | None = None, **generate_kwargs) -> torch.Tensor:
        """New token ids only (prompts must be left-padded). KV cache on; greedy unless
        `do_sample=True`."""
        embeds = self.embed(input_ids, pixel_values)
        return self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask,
                                 use_cache=True, **generate_kwargs)
