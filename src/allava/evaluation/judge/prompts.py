"""The judge's grading prompts and reference request settings, read from
`allava/evaluation/judge/resources/prompts.yaml` (shipped with the package, read through
importlib.resources) or from a user's own copy; their wording is ours, the information and reply
format are the references'.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


from allava.utils.package_data import ResourcePath, read_yaml, resource

DEFAULT_PROMPTS_PATH = resource("allava.evaluation.judge", "resources", "prompts.yaml")


@dataclass(frozen=True)
class MMVetPrompt:
    instructions: str
    reask: str
    max_tokens: int
    temperature: float
    temperature_step: float


@dataclass(frozen=True)
class LLaVABenchPrompt:
    system: str
    role: str
    rules: Mapping[str, str]
    max_tokens: int
    temperature: float


@dataclass(frozen=True)
class JudgePrompts:
    mmvet: MMVetPrompt
    llava_bench: LLaVABenchPrompt


def _need(section: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in section:
        raise ValueError(f"{where}: missing key {key!r}")
    value = section[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    if kind is str and not value.strip():
        raise ValueError(f"{where}: {key!r} must not be empty")
    return value


def load_judge_prompts(path: ResourcePath | None = None) -> JudgePrompts:
    """The grading prompts, from `path` (default: DEFAULT_PROMPTS_PATH, the package's
    `allava/evaluation/judge/resources/prompts.yaml`), validated."""
    path, data = read_yaml(path, DEFAULT_PROMPTS_PATH, "judge prompts file")
    if not isinstance(data, dict) or not isinstance(data.get("mmvet"), dict) \
            or not isinstance(data.get("llava_bench"), dict):
        raise ValueError(f"{path}: expected the sections `mmvet` and `llava_bench`")
    m, lb = data["mmvet"], data["llava_bench"]
    mmvet = MMVetPrompt(
        instructions=_need(m, "instructions", str, f"{path} [mmvet]"),
        reask=_need(m, "reask", str, f"{path} [mmvet]"),
        max_tokens=_need(m, "max_tokens", int, f"{path} [mmvet]"),
        temperature=_need(m, "temperature", float, f"{path} [mmvet]"),
        temperature_step=_need(m, "temperature_step", float, f"{path} [mmvet]"),
    )
    rules = _need(lb, "rules", dict, f"{path} [llava_bench]")
    for name, rule in rules.items():
        if not isinstance(rule, str) or not rule.strip():
            raise ValueError(f"{path} [llava_bench]: rule {name!r} must be a non-empty string")
    llava = LLaVABenchPrompt(
        system=_need(lb, "system", str, f"{path} [llava_bench]"),
        role=_need(lb, "role", str, f"{path} [llava_bench]"),
        rules={str(k): v for k, v in rules.items()},
        max_tokens=_need(lb, "max_tokens", int, f"{path} [llava_bench]"),
        temperature=_need(lb, "temperature", float, f"{path} [llava_bench]"),
    )
    for prompt in (mmvet, llava):
        if prompt.max_tokens < 1 or prompt.temperature < 0:
            raise ValueError(f"{path}: max_tokens must be positive and temperature >= 0")
    return JudgePrompts(mmvet=mmvet, llava_bench=llava)
