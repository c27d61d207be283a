"""Teacher prompts: load the editable YAML templates and turn them into OpenAI chat messages.

The wording lives in YAML files shipped with the package, one folder per prompt set
(`allava/synth/resources/prompts/<mode>.yaml` for `headings`, `.../allava_tags/<mode>.yaml` for
ALLaVA's tag layout; read through importlib.resources), so that it can be tuned without touching
code: copy a folder, edit the copies and pass it as `directory` (`allava synth --prompts DIR`).
The parser (allava.synth.sections) finds sections in either layout, whichever was asked for.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from allava.utils.package_data import ResourcePath, Traversable, resource, user_or_default

# laion: caption-then-QA on a bare image; vflan: description + answer to a given question;
# text: a detailed answer to a text-only instruction.
MODES = ("laion", "vflan", "text")

# The defaults, inside the package (Traversables: they may live in a zipped wheel).
SYNTH_RESOURCES = resource("allava.synth", "resources")
PROMPT_DIR = SYNTH_RESOURCES / "prompts"
# Packaged prompt sets: the same tasks, asking for different layouts (the parser reads both).
# headings: "### Description" ...; allava_tags: "<start of description>" ... as ALLaVA asked.
PROMPT_SETS = {"headings": PROMPT_DIR, "allava_tags": PROMPT_DIR / "allava_tags"}
CAPTION_INSTRUCTIONS_PATH = SYNTH_RESOURCES / "caption_instructions.yaml"

# The placeholder each mode's user template must contain (laion needs none: the image is the input).
_PLACEHOLDER = {"laion": None, "vflan": "question", "text": "instruction"}
_PLACEHOLDER_RE = re.compile(r"\{(question|instruction)\}")


@dataclass(frozen=True)
class PromptSet:
    mode: str
    system: str
    user: str
    max_tokens: int
    temperature: float
    # The follow-up turn for a reply that lacks one section ({section}: its name); None: no repair.
    repair: str | None = None


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown synth mode {mode!r}; known modes: {', '.join(MODES)}")


def load_prompts(mode: str, directory: ResourcePath | None = None,
                 prompt_set: str = "headings") -> PromptSet:
    """The prompts of `mode`, read from `<directory>/<mode>.yaml`; without a directory, from the
    packaged set `prompt_set` (PROMPT_SETS)."""
    check_mode(mode)
    if prompt_set not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {prompt_set!r}; packaged sets: "
                         f"{', '.join(PROMPT_SETS)}")
    path = user_or_default(directory, PROMPT_SETS[prompt_set]) / f"{mode}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"prompt file for mode {mode!r} not found: {path}")
    data = _read_yaml_mapping(path)
    missing = [key for key in ("system", "user", "max_tokens", "temperature") if key not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)}")
    system, user = data["system"], data["user"]
    if not isinstance(system, str) or not isinstance(user, str) or not user.strip():
        raise ValueError(f"{path}: `system` must be a string and `user` a non-empty string")
    max_tokens = data["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ValueError(f"{path}: `max_tokens` must be a positive integer, got {max_tokens!r}")
    temperature = data["temperature"]
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"{path}: `temperature` must be a number >= 0, got {temperature!r}")
    placeholder = _PLACEHOLDER[mode]
    if placeholder and "{" + placeholder + "}" not in user:
        raise ValueError(f"{path}: the `user` template of mode {mode!r} must contain {{{placeholder}}}")
    repair = data.get("repair")
    if repair is not None and not (isinstance(repair, str) and "{section}" in repair):
        raise ValueError(f"{path}: `repair` must be a string containing {{section}}, got {repair!r}")
    return PromptSet(mode, system, user, max_tokens, float(temperature), repair)


def load_caption_instructions(path: ResourcePath | None = None) -> list[str]:
    """The human-turn instructions for caption records (default: CAPTION_INSTRUCTIONS_PATH, the
    package's `allava/synth/resources/caption_instructions.yaml`)."""
    path = user_or_default(path, CAPTION_INSTRUCTIONS_PATH)
    if not path.is_file():
        raise FileNotFoundError(f"caption instructions file not found: {path}")
    items = _read_yaml_mapping(path).get("instructions")
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: `instructions` must be a non-empty list of strings")
    instructions = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{path}: instruction {index} must be a non-empty string, got {item!r}")
        if "<image>" in item:  # the record builder adds it; a second one would break the sample
            raise ValueError(f"{path}: instruction {index} must not contain '<image>'")
        instructions.append(item.strip())
    return instructions


def build_messages(
    prompts: PromptSet,
    *,
    image_data_url: str | None = None,
    question: str | None = None,
    instruction: str | None = None,
) -> list[dict[str, Any]]:
    """OpenAI chat messages for one item: the system prompt, then the user turn.

    laion takes an image; vflan an image and a question; text an instruction. A missing one
    raises ValueError; fields the mode does not use are ignored, so that a caller can pass an
    item's fields as they come (input metadata may carry a question in laion mode). The image
    part comes before the text, as the teacher reads it first. An empty system prompt is left
    out (some endpoints reject it).
    """
    check_mode(prompts.mode)
    given = {"image_data_url": image_data_url, "question": question, "instruction": instruction}
    needed = {"laion": {"image_data_url"}, "vflan": {"image_data_url", "question"},
              "text": {"instruction"}}[prompts.mode]
    for name in sorted(needed):
        if not (isinstance(given[name], str) and given[name].strip()):
            raise ValueError(f"mode {prompts.mode!r} needs a non-empty {name}")
    text = render(prompts.user, **{name: given[name] for name in needed if name != "image_data_url"})
    messages: list[dict[str, Any]] = []
    if prompts.system.strip():
        messages.append({"role": "system", "content": prompts.system})
    if prompts.mode == "text":
        messages.append({"role": "user", "content": text})
    else:
        messages.append({"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image_data_url}},
            {"type": "text", "text": text},
        ]})
    return messages


def repair_messages(prompts: PromptSet, messages: list[dict[str, Any]], reply: str,
                    section: str) -> list[dict[str, Any]]:
    """The conversation of `messages` and the teacher's `reply`, then the prompt set's repair
    turn asking for the one missing `section` (its name, e.g. "answer")."""
    if not prompts.repair:
        raise ValueError(f"the {prompts.mode} prompts have no `repair` template")
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": prompts.repair.replace("{section}", section)}]


def render(template: str, **values: str | None) -> str:
    """Fill `{question}` / `{instruction}` in one pass.

    Unlike str.format, braces elsewhere in the template or inside the values are left alone, and
    a value that itself contains "{instruction}" is never expanded again.
    """
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else value

    return _PLACEHOLDER_RE.sub(fill, template)


def _read_yaml_mapping(path: Traversable) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data
