"""Where the LLM judge is and how it is asked.

The API key is read from the environment variable named by `JudgeSettings.api_key_env` when the
client is built, handed to the client, and never stored, logged or returned.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from allava.utils.chat_client import ChatClient

MAX_TEMPERATURE = 2.0  # OpenAI's upper bound; re-ask temperatures are capped there


class JudgeNotConfigured(RuntimeError):
    """The judge endpoint or model is missing; the message says how to set them."""


@dataclass(frozen=True)
class JudgeSettings:
    """Where the judge is and how it is asked.

    base_url / model: the OpenAI-compatible endpoint (".../v1") and the judge model's name.
    api_key_env: the environment variable holding the API key (only its name is kept here; a
        local server needs none). temperature / max_tokens: None uses each benchmark's reference
        value from the prompts file (MM-Vet 0.0 and 3, LLaVA-Bench 0.2 and 1024); a number
        overrides both benchmarks. attempts: MM-Vet asks per run until a reply parses.
        runs: MM-Vet independent judge runs averaged per item. timeout / max_retries: passed
        to ChatClient.
    """

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = None
    max_tokens: int | None = None
    attempts: int = 5
    runs: int = 1
    timeout: float = 120.0
    max_retries: int = 6

    def __post_init__(self) -> None:
        if self.temperature is not None and not (0.0 <= float(self.temperature) <= MAX_TEMPERATURE):
            raise ValueError(f"judge temperature must be in [0, {MAX_TEMPERATURE}], got {self.temperature!r}")
        if self.max_tokens is not None and int(self.max_tokens) < 1:
            raise ValueError(f"judge max_tokens must be positive, got {self.max_tokens!r}")
        if int(self.attempts) < 1 or int(self.runs) < 1:
            raise ValueError(f"judge attempts and runs must be >= 1, got {self.attempts!r}, {self.runs!r}")
        if not self.api_key_env:
            raise ValueError("judge api_key_env must name an environment variable")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "JudgeSettings":
        """From a `judge` config node (dict or DictConfig); unknown keys raise ValueError."""
        if cfg is None:
            return cls()
        known = {f.name for f in fields(cls)}
        values = {str(key): cfg[key] for key in cfg.keys()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown judge setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def require(self) -> None:
        """Raises JudgeNotConfigured unless base_url and model are set."""
        missing = [name for name in ("base_url", "model") if not getattr(self, name)]
        if missing:
            raise JudgeNotConfigured(
                f"the LLM judge is not configured (missing {' and '.join(missing)}). MM-Vet and "
                "LLaVA-Bench are graded by a judge model behind an OpenAI-compatible endpoint: set "
                "judge.base_url=<endpoint, e.g. https://api.openai.com/v1> "
                "judge.model=<judge model, e.g. gpt-4-0613> (on the Hydra command line, "
                "+judge.base_url=... +judge.model=... when the config has no judge node), and put "
                f"the API key in the environment variable {self.api_key_env} (judge.api_key_env "
                "names another one; a local server needs none)."
            )

    def api_key(self) -> str | None:
        """The key from the environment, or None when the variable is unset or empty."""
        return os.environ.get(self.api_key_env) or None

    def make_client(self, **client_kwargs: Any) -> ChatClient:
        """A ChatClient for the judge (JudgeNotConfigured when base_url/model are missing)."""
        self.require()
        return ChatClient(self.base_url, self.model, self.api_key(), timeout=self.timeout,
                             max_retries=self.max_retries, **client_kwargs)
