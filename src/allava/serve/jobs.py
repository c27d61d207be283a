"""A chat-completions request, checked and encoded, as the engine runs it: `GenerationJob`.

All the per-request work the worker thread must not do (reading the image, the chat template,
tokenizing, the image transform) happens here, in the HTTP side's thread pool; every problem a
client can cause becomes a 400 for that request alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from allava.models.build import VLMBundle
from allava.models.chat_format import MalformedConversation
from allava.models.chat_session import Sampling
from allava.serve.conversation import read_conversation
from allava.serve.errors import APIError, bad_request
from allava.serve.schema import ChatCompletionRequest, check_supported

OPENAI_DEFAULT_TEMPERATURE = 1.0

# What the processor's conversation checks mean for a client that sent OpenAI messages.
CONVERSATION_PROBLEMS = {
    "empty_turn": "every message needs some content",
    "turns_not_alternating": "messages must alternate user and assistant, after at most one "
                             "system message at the start",
    "no_question": "the last message must be the user's",
}


@dataclass(frozen=True)
class JobLimits:
    context_length: int  # prompt and answer tokens together
    default_max_tokens: int  # when a request names no max_tokens (less if the context is short)


@dataclass
class GenerationJob:
    prompt_ids: list[int]
    pixels: torch.Tensor | None  # [3, H, W], the tower's input
    max_tokens: int
    generate_kwargs: dict  # sampling settings for `generate` (Sampling.generate_kwargs)
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    seed: int | None = None
    stream: bool = False

    @property
    def group(self) -> tuple:
        """Jobs with equal groups may share a batch: `generate` takes one sampling setting per
        call, and a seed only means something for a batch that is drawn with it alone."""
        kwargs = self.generate_kwargs
        sampled = bool(kwargs["do_sample"])
        return (sampled, kwargs["temperature"], kwargs["top_p"], self.seed if sampled else None)


def build_job(request: ChatCompletionRequest, bundle: VLMBundle, limits: JobLimits
              ) -> GenerationJob:
    check_supported(request)
    stop = request.stop_strings()
    conversation = read_conversation(request.messages)
    processor = bundle.processor
    try:
        prompt_ids = processor.encode_chat_prompt(
            conversation.turns, num_images=int(conversation.image is not None))
    except MalformedConversation as error:
        raise bad_request(CONVERSATION_PROBLEMS.get(error.reason, str(error)),
                          param="messages") from None
    pixels = None
    if conversation.image is not None:
        try:
            pixels = processor.image_transform(conversation.image)
        except (ValueError, RuntimeError, OSError) as error:  # sizes the transform cannot take
            raise bad_request(f"cannot use the image: {error}", param="messages",
                              code="invalid_image") from None
    temperature = OPENAI_DEFAULT_TEMPERATURE if request.temperature is None \
        else request.temperature
    top_p = None if request.top_p in (None, 1.0) else request.top_p  # 1.0 keeps every token
    max_tokens = answer_budget(len(prompt_ids), request.answer_limit(), limits)
    return GenerationJob(
        prompt_ids=prompt_ids, pixels=pixels, max_tokens=max_tokens,
        generate_kwargs=Sampling(temperature, top_p, max_tokens).generate_kwargs(),
        stop=stop, ignore_eos=request.ignore_eos, seed=request.seed,
        stream=bool(request.stream))


def answer_budget(prompt_tokens: int, requested: int | None, limits: JobLimits) -> int:
    """max_tokens of the answer: as requested if prompt and answer fit the context (else 400,
    as OpenAI and vLLM answer); unrequested, the default within the room left."""
    context = limits.context_length
    room = context - prompt_tokens
    if requested is None:
        if room < 1:
            raise _too_long(context, f"the messages take {prompt_tokens} tokens, leaving no "
                                     "room for an answer")
        return min(limits.default_max_tokens, room)
    if requested > room:
        raise _too_long(context, f"you requested {prompt_tokens + requested} tokens "
                                 f"({prompt_tokens} in the messages, {requested} in the "
                                 "completion)")
    return requested


def _too_long(context: int, detail: str) -> APIError:
    return bad_request(f"This model's maximum context length is {context} tokens; {detail}. "
                       "Shorten the messages or lower max_tokens.", param="messages",
                       code="context_length_exceeded")
