"""A multi-turn conversation with a trained model: its turns, its image, its streamed answers.

The image belongs to the first human turn (as in ALLaVA's and LLaVA's multi-turn records), so
every prompt is the whole conversation so far, rendered by the processor with the image
placeholders once. The terminal chat (`allava chat`) is a loop around this class.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from allava.models.build import VLMBundle
from allava.models.chat_format import IMAGE_TAG


class ContextFull(ValueError):
    """The question alone (with the image) leaves no room for an answer."""


@dataclass(frozen=True)
class Sampling:
    """How answers are drawn: greedy when `temperature` is 0, else sampled (nucleus `top_p`)."""

    temperature: float = 0.2
    top_p: float | None = None
    max_new_tokens: int = 512

    def generate_kwargs(self) -> dict:
        if self.temperature <= 0:
            # None, not the LLM's defaults: greedy decoding warns about sampling settings.
            return dict(do_sample=False, temperature=None, top_p=None, top_k=None)
        return dict(do_sample=True, temperature=self.temperature, top_p=self.top_p)


class _StopWhenSet(StoppingCriteria):
    """Ends generation early when the reader stops (Ctrl-C), so the thread does not run on."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool,
                          device=input_ids.device)


class ChatSession:
    """Turns so far, the attached image, and the context budget.

    `max_length` (default: the processor's, i.e. what the model was trained on) bounds prompt
    plus answer. When a new question would not fit, the oldest turns are forgotten; the image
    stays, moving to the first turn kept.
    """

    def __init__(self, bundle: VLMBundle, max_length: int | None = None):
        self.bundle = bundle
        self.model = bundle.model.eval()
        self.processor = bundle.processor
        self.max_length = bundle.context_length(max_length)
        self.image: Image.Image | None = None
        self.turns: list[tuple[str, str]] = []  # (question, answer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def attach_image(self, image: Image.Image | None) -> None:
        """A new image (or none) starts a new conversation: the image belongs to its first turn."""
        self.image = image.convert("RGB") if image is not None else None
        self.reset()

    def reset(self) -> None:
        self.turns.clear()

    def records(self, question: str | None = None) -> list[dict[str, str]]:
        """The conversation as ALLaVA records, with `question` as the open last turn."""
        records: list[dict[str, str]] = []
        for asked, answered in self.turns:
            records += [{"from": "human", "value": asked}, {"from": "gpt", "value": answered}]
        if question is not None:
            records.append({"from": "human", "value": question})
        if records and self.image is not None:
            records[0] = {**records[0], "value": f"{IMAGE_TAG}\n{records[0]['value']}"}
        return records

    def prompt_ids(self, question: str) -> list[int]:
        return self.processor.encode_chat_prompt(self.records(question),
                                                 num_images=int(self.image is not None))

    def context_tokens(self) -> int:
        """Tokens the conversation so far takes (what the next prompt starts with)."""
        if not self.turns:
            return 0
        sample = self.processor.encode_conversation(
            self.records(), num_images=int(self.image is not None), truncate=False)
        return len(sample.input_ids)

    def fit(self, question: str, max_new_tokens: int) -> tuple[list[int], int, int]:
        """(prompt ids, answer budget, turns forgotten) for `question` within `max_length`.

        The answer is sure of a quarter of the context (or `max_new_tokens` if less): keeping
        room for a full `max_new_tokens` would forget every turn in a short-context model."""
        reserve = min(max_new_tokens, self.max_length // 4)
        forgotten = 0
        ids = self.prompt_ids(question)
        while len(ids) + reserve > self.max_length and self.turns:
            del self.turns[0]
            forgotten += 1
            ids = self.prompt_ids(question)
        room = self.max_length - len(ids)
        if room < 1:
            raise ContextFull(f"the question takes {len(ids)} tokens of the model's "
                              f"{self.max_length}: no room for an answer; ask a shorter one")
        return ids, min(max_new_tokens, room), forgotten

    def ask(self, question: str, sampling: Sampling) -> "StreamedAnswer":
        """Starts answering `question`; iterate the result for the text as it comes."""
        question = question.strip()
        if IMAGE_TAG in question:
            raise ValueError(f"{IMAGE_TAG} is reserved for the attached image (/image PATH)")
        ids, budget, forgotten = self.fit(question, sampling.max_new_tokens)
        return StreamedAnswer(self, question, ids, budget, forgotten, sampling)

    def remember(self, question: str, answer: str) -> None:
        self.turns.append((question, answer))


class StreamedAnswer:
    """One answer, generated in a thread and read piece by piece. When read to the end it
    joins the conversation; an answer stopped early (or empty) is left out of it."""

    def __init__(self, session: ChatSession, question: str, prompt_ids: list[int],
                 max_new_tokens: int, forgotten_turns: int, sampling: Sampling):
        self.session = session
        self.question = question
        self.prompt_ids = prompt_ids
        self.max_new_tokens = max_new_tokens
        self.forgotten_turns = forgotten_turns
        self.sampling = sampling
        self.text = ""
        self._stop = threading.Event()
        self._error: BaseException | None = None

    def _generate(self, streamer: TextIteratorStreamer) -> None:
        session = self.session
        device = session.device
        ids = torch.tensor([self.prompt_ids], device=device)
        pixels = None
        if session.image is not None:
            pixels = session.processor.image_transform(session.image).unsqueeze(0).to(device)
        try:
            with torch.inference_mode():
                session.model.generate(
                    ids, torch.ones_like(ids), pixels, max_new_tokens=self.max_new_tokens,
                    streamer=streamer, stopping_criteria=StoppingCriteriaList(
                        [_StopWhenSet(self._stop)]),
                    **self.sampling.generate_kwargs())
        except BaseException as error:  # re-raised in the reading thread
            self._error = error
            streamer.end()

    def __iter__(self) -> Iterator[str]:
        tokenizer = self.session.processor.tokenizer
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        thread = threading.Thread(target=self._generate, args=(streamer,), daemon=True)
        try:
            thread.start()
            for piece in streamer:
                if not self.text:
                    piece = piece.lstrip()  # the space a template puts before an answer
                self.text += piece
                if piece:
                    yield piece
        finally:  # also on Ctrl-C or when the reader stops early
            self._stop.set()
            if thread.is_alive():
                thread.join()
        if self._error is not None:
            raise self._error
        if self.text.strip():
            self.session.remember(self.question, self.text.strip())
