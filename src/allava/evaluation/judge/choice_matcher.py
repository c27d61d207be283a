"""An optional LLM fallback for multiple-choice answers that VLMEvalKit's rules cannot read.

VLMEvalKit asks a judge model to map such an answer to an option (or to "Z", none of them);
its `exact_matching` setting, our default, counts those answers wrong instead. With
`choice_matcher=true` eval.py builds this matcher on the configured judge endpoint; it is a
`reference.mmbench.Matcher`: (prediction, options) -> letter, "Z", or None when no reply held one.
Its prompt: `allava/evaluation/judge/resources/choice_matcher.yaml` (shipped with the package), or
a user's own file passed as `prompt_file`.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any


from allava.evaluation.judge.settings import JudgeSettings
from allava.evaluation.reference.choice_extraction import infer_choice
from allava.utils.package_data import ResourcePath, read_yaml, resource
from allava.utils.chat_client import ChatRequestError

PROMPT_FILE = resource("allava.evaluation.judge", "resources", "choice_matcher.yaml")


def load_choice_matcher_prompt(path: ResourcePath | None = None) -> dict[str, Any]:
    """The matcher's prompt spec from `path` (default: PROMPT_FILE): `instructions` (with
    `{options}` and `{answer}`) and optionally `max_tokens`, `temperature`, `attempts`."""
    path, spec = read_yaml(path, PROMPT_FILE, "choice matcher prompt file")
    if not isinstance(spec, dict) or not isinstance(spec.get("instructions"), str) \
            or not spec["instructions"].strip():
        raise ValueError(f"{path}: expected a mapping with a non-empty string `instructions`")
    return spec


class ChoiceMatcher:
    def __init__(self, settings: JudgeSettings, prompt_file: ResourcePath | None = None):
        settings.require()
        self.settings = settings
        spec = load_choice_matcher_prompt(prompt_file)
        self.instructions: str = spec["instructions"]
        self.max_tokens = int(spec.get("max_tokens", 4))
        self.temperature = float(spec.get("temperature", 0.0))
        self.attempts = int(spec.get("attempts", 3))
        self.calls = 0  # judge requests made, for the results' record

    def __call__(self, prediction: str, options: Mapping[str, str]) -> str | None:
        listed = "\n".join(f"{letter}. {text}" for letter, text in sorted(options.items()))
        content = self.instructions.format(options=listed, answer=prediction)
        messages = [{"role": "user", "content": content}]
        for _ in range(self.attempts):
            reply = asyncio.run(self._ask(messages))
            # The reply is read with the same rules as a model's answer; "Z" is a verdict too.
            letter = infer_choice(reply, {**options, "Z": "none of the options"}) if reply else None
            if letter is not None:
                return letter
        return None

    async def _ask(self, messages: list[dict]) -> str | None:
        self.calls += 1
        client = self.settings.make_client()
        try:
            completion = await client.complete(messages, max_tokens=self.max_tokens,
                                               temperature=self.temperature)
            return completion.text
        except ChatRequestError as error:
            if error.reason == "empty_response":
                return None
            raise
        finally:
            await client.aclose()
