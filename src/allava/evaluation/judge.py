"""LLM-judged scoring of MM-Vet and LLaVA-Bench (in-the-wild), through any OpenAI-compatible endpoint.

The judge is reached through the synth network client (`allava.synth.teacher.TeacherClient`:
retries with backoff on 429 / 5xx / timeouts, usage accounting). The grading prompts live in
`configs/judge/prompts.yaml`; their wording is ours, the information and reply format are the
references'.

MM-Vet reproduces yuweihao/MM-Vet `mm-vet_evaluator.py` (`runs` and `export_result`, read at
commit 7d717c2) and VLMEvalKit's `vlmeval/dataset/utils/mmvet.py` (`MMVet_auxeval`, `MMVet_acc`):
  * One user message: the few-shot instructions, then the row "question | ground truth |
    prediction | " (spaces put around each <AND>/<OR> of the ground truth) for the judge to
    complete with a correctness score in [0, 1]. Reference settings: max_tokens 3, temperature 0.
  * A reply whose first token is not a number in [0, 1] is asked again, with a nudge appended to
    the message; asks 1 and 2 use the base temperature, each later ask adds 0.5 (the official
    script's schedule). After `attempts` (5) unparseable replies the run scores 0.0, as both
    references do. The official script sends a sixth request whose reply it never reads; we do not.
  * `runs` independent judge runs (the official default is 1; the paper used 5). An item's score
    is the mean of its runs. Per capability (rec, ocr, know, gen, spat, math), an item counts
    once toward every capability it lists; a capability's score is the mean of its items' scores
    × 100, the total the mean over all items × 100 (equal to the official per-run figures
    averaged over runs). `total_runs` and `total_std` (population std over runs) are the official
    `runs` and `std` columns; `per_integration` is its capability-integration table (items
    grouped by their exact set of capabilities).
  * Parsing (`parse_mmvet_score`): the official script reads `reply.split(" ")[0]` and VLMEvalKit
    the whole reply; we strip the reply and read its first whitespace-separated token, so
    " 0.5", "0.5\\n..." and "0.5 because..." all read 0.5. NaN and infinities are rejected (the
    official range check lets NaN through).
  Values are returned unrounded; the official tables print them rounded to one decimal.

LLaVA-Bench reproduces haotian-liu/LLaVA `llava/eval/eval_gpt_review_bench.py`,
`llava/eval/table/rule.json` (the `llava_bench_*` rules) and `llava/eval/summarize_gpt_review.py`
(read at commit 181a2f8):
  * A system message, then one user message: [Context] (the caption lines joined by newlines),
    [Question], [Assistant 1] = the reference answer (GPT-4's), [Assistant 2] = the evaluated
    model's answer, [System] = the category's rule. Reference settings: temperature 0.2,
    max_tokens 1024.
  * Parsing (`parse_pair_scores`), as `parse_score`: the reply's first line, commas turned into
    spaces, split on single spaces; exactly two fields that both convert with float(), else the
    review is unparseable. Quirks kept: "8, 9" and "8 9 " (three fields) are unparseable, and so
    is "Assistant 1: 8". We also reject NaN and infinities (the reference keeps them).
  * An unparseable review is recorded as (-1, -1) and, as in the reference, enters the means as
    such; `unparsed` counts them. No re-ask.
  * Per category and over all items ("overall"): the mean of each assistant's scores; the
    relative score is round(round(mean2, 3) / round(mean1, 3) × 100, 1), exactly as printed by
    `summarize_gpt_review` (None where the rounded reference mean is 0, where it would divide
    by zero). `mean_reference` / `mean_model` are the unrounded means.

Judge failures. A reply with no usable text (the client's `empty_response`) is an unparseable
reply, as in both references (their parsers fail on it). Any other `TeacherError` (the endpoint
stayed unreachable after the client's retries, or refused the request) is not a judgment: the
item is reported with `error` set to the reason, left out of every aggregate, counted in `errors`,
and `complete` is False. The references retry such failures forever instead.

Items are `MMVetItem` / `LLaVABenchItem` or plain mappings with the same fields (see the classes).
Predictions are a mapping from item id to the model's answer, or a sequence aligned with the items.
The API key is read from the environment variable named by `JudgeSettings.api_key_env` when the
client is built, handed to the client, and never stored, logged or returned.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from allava.synth.teacher import TeacherClient, TeacherError

log = logging.getLogger(__name__)

DEFAULT_PROMPTS_PATH = Path(__file__).resolve().parents[3] / "configs" / "judge" / "prompts.yaml"

MMVET_CAPABILITIES: tuple[str, ...] = ("rec", "ocr", "know", "gen", "spat", "math")
LLAVA_BENCH_CATEGORIES: tuple[str, ...] = ("conv", "detail", "complex")
UNPARSED_PAIR: tuple[float, float] = (-1.0, -1.0)  # what LLaVA records for an unreadable review
MAX_TEMPERATURE = 2.0  # OpenAI's upper bound; re-ask temperatures are capped there

# --------------------------------------------------------------------------------- settings


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
        to TeacherClient.
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

    def make_client(self, **client_kwargs: Any) -> TeacherClient:
        """A TeacherClient for the judge (JudgeNotConfigured when base_url/model are missing)."""
        self.require()
        return TeacherClient(self.base_url, self.model, self.api_key(), timeout=self.timeout,
                             max_retries=self.max_retries, **client_kwargs)


# ---------------------------------------------------------------------------------- prompts


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


def load_judge_prompts(path: str | Path | None = None) -> JudgePrompts:
    """The grading prompts, from `path` (default: configs/judge/prompts.yaml), validated."""
    path = Path(path or DEFAULT_PROMPTS_PATH)
    if not path.is_file():
        raise FileNotFoundError(f"judge prompts file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error})") from error
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


# ------------------------------------------------------------------------------------ items


@dataclass(frozen=True)
class MMVetItem:
    """One MM-Vet question.

    id: unique key (MM-Vet's "v1_0", ...). question: the question text. answer: the ground truth,
    possibly with <AND> / <OR> between elements. capabilities: the capabilities it tests (rec,
    ocr, know, gen, spat, math; a mapping may give them as `capability` or `capabilities`, a
    list or a comma-separated string as in VLMEvalKit's TSV `category`).
    """

    id: str
    question: str
    answer: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class LLaVABenchItem:
    """One LLaVA-Bench (in-the-wild) question.

    id: unique key (the `question_id`). question: the question text. reference: the reference
    answer ("Assistant 1"; GPT-4's in answers_gpt4.jsonl). category: conv, detail or complex.
    caption: the image's context description (context.jsonl's `caption`; a list of lines is
    joined with newlines, as the reference does).
    """

    id: str
    question: str
    reference: str
    category: str
    caption: str


def _field(raw: Mapping[str, Any], names: Sequence[str], position: int) -> Any:
    for name in names:
        if name in raw and raw[name] is not None:
            return raw[name]
    raise ValueError(f"item {position}: missing field {' / '.join(names)}")


def _as_mmvet_item(raw: Any, position: int) -> MMVetItem:
    if isinstance(raw, MMVetItem):
        item = raw
    elif isinstance(raw, Mapping):
        caps = _field(raw, ("capabilities", "capability"), position)
        item = MMVetItem(id=str(_field(raw, ("id",), position)),
                         question=str(_field(raw, ("question",), position)),
                         answer=str(_field(raw, ("answer",), position)),
                         capabilities=caps)
    else:
        raise TypeError(f"item {position}: expected an MMVetItem or a mapping, got {type(raw).__name__}")
    caps = item.capabilities
    if isinstance(caps, str):
        caps = caps.split(",")
    caps = tuple(dict.fromkeys(str(c).strip() for c in caps if str(c).strip()))
    if not caps:
        raise ValueError(f"item {position} ({item.id}): no capability listed")
    return MMVetItem(id=str(item.id), question=item.question, answer=item.answer, capabilities=caps)


def _as_llava_item(raw: Any, position: int) -> LLaVABenchItem:
    if isinstance(raw, LLaVABenchItem):
        item = raw
    elif isinstance(raw, Mapping):
        item = LLaVABenchItem(id=str(_field(raw, ("id",), position)),
                              question=str(_field(raw, ("question",), position)),
                              reference=str(_field(raw, ("reference",), position)),
                              category=str(_field(raw, ("category",), position)),
                              caption=_field(raw, ("caption",), position))
    else:
        raise TypeError(f"item {position}: expected a LLaVABenchItem or a mapping, got {type(raw).__name__}")
    caption = item.caption
    if not isinstance(caption, str):
        caption = "\n".join(str(line) for line in caption)
    return LLaVABenchItem(id=str(item.id), question=item.question, reference=item.reference,
                          category=item.category, caption=caption)


def _predictions_for(ids: list[str], predictions: Mapping[Any, Any] | Sequence[Any]) -> list[str]:
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate item id(s): {', '.join(dupes[:5])}")
    if isinstance(predictions, Mapping):
        by_id = {str(key): value for key, value in predictions.items()}
        missing = [i for i in ids if by_id.get(i) is None]
        if missing:
            raise ValueError(f"no prediction for {len(missing)} item(s), e.g. {', '.join(missing[:5])}")
        return [str(by_id[i]) for i in ids]
    if isinstance(predictions, (str, bytes)) or len(predictions) != len(ids):
        raise ValueError(f"predictions must be a mapping by id or a sequence of {len(ids)} answers")
    if any(p is None for p in predictions):
        raise ValueError("a prediction is None")
    return [str(p) for p in predictions]


# ---------------------------------------------------------------------------------- parsing


def parse_mmvet_score(text: str | None) -> float | None:
    """The correctness score in [0, 1] that starts the judge's reply, or None."""
    if not isinstance(text, str):
        return None
    tokens = text.strip().split()
    if not tokens:
        return None
    try:
        score = float(tokens[0])
    except ValueError:
        return None
    if not math.isfinite(score) or score < 0.0 or score > 1.0:
        return None
    return score


def parse_pair_scores(text: str | None) -> tuple[float, float] | None:
    """(score of assistant 1, score of assistant 2) from the reply's first line, or None.

    LLaVA's `parse_score`: commas become spaces, the line is split on single spaces, and exactly
    two fields must convert with float() (so "8, 9" and "8 9 " do not parse). Non-finite
    numbers are rejected.
    """
    if not isinstance(text, str):
        return None
    fields_ = text.split("\n")[0].replace(",", " ").split(" ")
    if len(fields_) != 2:
        return None
    try:
        pair = (float(fields_[0]), float(fields_[1]))
    except ValueError:
        return None
    if not all(math.isfinite(x) for x in pair):
        return None
    return pair


# --------------------------------------------------------------------------------- messages


def mmvet_messages(prompt: MMVetPrompt, question: str, answer: str, prediction: str, *,
                   reask: bool = False) -> list[dict[str, str]]:
    """The judge request for one MM-Vet item (the official layout; `reask` adds the nudge)."""
    truth = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    content = prompt.instructions + "\n" + " | ".join([question, truth, prediction, ""])
    if reask:
        content += "\n" + prompt.reask
    return [{"role": "user", "content": content}]


def llava_bench_messages(prompt: LLaVABenchPrompt, item: LLaVABenchItem,
                         prediction: str) -> list[dict[str, str]]:
    """The judge request for one LLaVA-Bench item (the reference's layout)."""
    rule = prompt.rules.get(item.category)
    if rule is None:
        raise ValueError(f"no judge rule for LLaVA-Bench category {item.category!r}; "
                         f"known: {', '.join(prompt.rules)}")
    role = prompt.role
    content = (f"[Context]\n{item.caption}\n\n"
               f"[Question]\n{item.question}\n\n"
               f"[{role} 1]\n{item.reference}\n\n[End of {role} 1]\n\n"
               f"[{role} 2]\n{prediction}\n\n[End of {role} 2]\n\n"
               f"[System]\n{rule}\n\n")
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]


# ------------------------------------------------------------------------------------ grading


class _Gate:
    """Bounds the judge requests in flight."""

    def __init__(self, concurrency: int):
        if int(concurrency) < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        self._semaphore = asyncio.Semaphore(int(concurrency))

    async def ask(self, judge: TeacherClient, messages: list[dict], *, max_tokens: int,
                  temperature: float) -> str | None:
        """The reply text; None for a reply without usable text; other TeacherErrors propagate."""
        async with self._semaphore:
            try:
                completion = await judge.complete(messages, max_tokens=max_tokens,
                                                  temperature=temperature)
            except TeacherError as exc:
                if exc.reason == "empty_response":
                    return None
                raise
        return completion.text


@dataclass
class _RunResult:
    score: float | None = None
    parsed: bool = False
    replies: list[str | None] = field(default_factory=list)
    error: str | None = None


def _ordered_capabilities(caps) -> list[str]:
    known = [c for c in MMVET_CAPABILITIES if c in caps]
    return known + [c for c in caps if c not in MMVET_CAPABILITIES]


async def grade_mmvet(items: Sequence[MMVetItem | Mapping[str, Any]],
                      predictions: Mapping[Any, Any] | Sequence[Any],
                      judge: TeacherClient, concurrency: int = 8, *,
                      settings: JudgeSettings | None = None,
                      prompts: JudgePrompts | None = None) -> dict[str, Any]:
    """Grades MM-Vet answers with the judge; see the module docstring for the rules.

    Returns: `total` (mean item score × 100), `per_capability` and `per_capability_count`,
    `per_integration` (by exact capability set, keys joined with "_"), `total_runs`,
    `total_std`, `runs`, `num_items`, `num_graded`, `unparsed` (runs whose `attempts` replies
    all failed to parse, scored 0.0), `reasks` (extra asks after unparseable replies), `errors`,
    `complete`, and `items` (per item: id, capabilities, score, run_scores, unparsed_runs,
    replies per run, error). Aggregates are None when no item was graded.
    """
    settings = settings or JudgeSettings()
    prompt = (prompts or load_judge_prompts()).mmvet
    parsed_items = [_as_mmvet_item(raw, i) for i, raw in enumerate(items)]
    answers = _predictions_for([it.id for it in parsed_items], predictions)
    gate = _Gate(concurrency)
    base_t = prompt.temperature if settings.temperature is None else float(settings.temperature)
    max_tokens = prompt.max_tokens if settings.max_tokens is None else int(settings.max_tokens)
    runs, attempts = int(settings.runs), int(settings.attempts)

    async def one_run(item: MMVetItem, prediction: str) -> _RunResult:
        result = _RunResult()
        try:
            for attempt in range(attempts):
                temperature = min(MAX_TEMPERATURE, base_t + prompt.temperature_step * max(0, attempt - 1))
                messages = mmvet_messages(prompt, item.question, item.answer, prediction,
                                          reask=attempt > 0)
                text = await gate.ask(judge, messages, max_tokens=max_tokens, temperature=temperature)
                result.replies.append(text)
                score = parse_mmvet_score(text)
                if score is not None:
                    result.score, result.parsed = score, True
                    return result
            result.score = 0.0  # every ask failed to parse: the references' fallback
        except TeacherError as exc:
            log.warning("MM-Vet judge failed on item %s: %s", item.id, exc)
            result.error = exc.reason
        return result

    tasks = [one_run(item, pred) for item, pred in zip(parsed_items, answers) for _ in range(runs)]
    flat = await asyncio.gather(*tasks)

    per_item: list[dict[str, Any]] = []
    for index, item in enumerate(parsed_items):
        results = flat[index * runs:(index + 1) * runs]
        error = next((r.error for r in results if r.error is not None), None)
        run_scores = None if error else [r.score for r in results]
        per_item.append({
            "id": item.id,
            "capabilities": _ordered_capabilities(item.capabilities),
            "score": None if error else float(np.mean(run_scores)),
            "run_scores": run_scores,
            "unparsed_runs": sum(1 for r in results if r.error is None and not r.parsed),
            "replies": [r.replies for r in results],
            "error": error,
        })
    graded = [row for row in per_item if row["error"] is None]

    cap_sum: dict[str, float] = {}
    cap_count: dict[str, int] = {}
    int_sum: dict[str, float] = {}
    int_count: dict[str, int] = {}
    run_totals = np.zeros(runs)
    for row in graded:
        for cap in row["capabilities"]:
            cap_sum[cap] = cap_sum.get(cap, 0.0) + row["score"]
            cap_count[cap] = cap_count.get(cap, 0) + 1
        key = "_".join(row["capabilities"])
        int_sum[key] = int_sum.get(key, 0.0) + row["score"]
        int_count[key] = int_count.get(key, 0) + 1
        run_totals += np.asarray(row["run_scores"], dtype=float)
    order = _ordered_capabilities(list(cap_count))
    n = len(graded)
    total_runs = (run_totals / n * 100).tolist() if n else None
    return {
        "benchmark": "mmvet",
        "total": sum(row["score"] for row in graded) / n * 100 if n else None,
        "per_capability": {c: cap_sum[c] / cap_count[c] * 100 for c in order},
        "per_capability_count": {c: cap_count[c] for c in order},
        "per_integration": {k: int_sum[k] / int_count[k] * 100
                            for k in sorted(int_count, key=lambda k: (-int_count[k], k))},
        "total_runs": total_runs,
        "total_std": float(np.std(total_runs)) if n else None,
        "runs": runs,
        "attempts": attempts,
        "num_items": len(per_item),
        "num_graded": n,
        "unparsed": sum(row["unparsed_runs"] for row in per_item),
        "reasks": sum(max(0, len(r.replies) - 1) for r in flat),
        "errors": len(per_item) - n,
        "complete": n == len(per_item),
        "items": per_item,
    }


def _relative(pairs: list[tuple[float, float]]) -> tuple[float, float, float | None]:
    """(mean1, mean2, relative score) as summarize_gpt_review computes and prints them."""
    means = np.asarray(pairs, dtype=float).mean(0).tolist()
    rounded = [round(x, 3) for x in means]
    relative = None if rounded[0] == 0 else round(rounded[1] / rounded[0] * 100, 1)
    return means[0], means[1], relative


async def grade_llava_bench(items: Sequence[LLaVABenchItem | Mapping[str, Any]],
                            predictions: Mapping[Any, Any] | Sequence[Any],
                            judge: TeacherClient, concurrency: int = 8, *,
                            settings: JudgeSettings | None = None,
                            prompts: JudgePrompts | None = None) -> dict[str, Any]:
    """Grades LLaVA-Bench (in-the-wild) answers against the reference answers; see the module docstring.

    Returns: `relative` (per category and "overall": mean model score / mean reference score
    × 100, as LLaVA prints it), `mean_reference` and `mean_model` (unrounded means, unparsed
    reviews included as -1), `count` (items per category), `num_items`, `num_graded`,
    `unparsed`, `errors`, `complete`, and `items` (per item: id, category, scores — (-1, -1)
    when unparseable —, parsed, review, error).
    """
    settings = settings or JudgeSettings()
    prompt = (prompts or load_judge_prompts()).llava_bench
    parsed_items = [_as_llava_item(raw, i) for i, raw in enumerate(items)]
    unknown = sorted({it.category for it in parsed_items} - set(prompt.rules))
    if unknown:  # before any request, as the reference asserts on its first such item
        raise ValueError(f"no judge rule for LLaVA-Bench categor{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(map(repr, unknown))}; known: {', '.join(prompt.rules)}")
    answers = _predictions_for([it.id for it in parsed_items], predictions)
    gate = _Gate(concurrency)
    temperature = prompt.temperature if settings.temperature is None else float(settings.temperature)
    max_tokens = prompt.max_tokens if settings.max_tokens is None else int(settings.max_tokens)

    async def one(item: LLaVABenchItem, prediction: str) -> dict[str, Any]:
        row: dict[str, Any] = {"id": item.id, "category": item.category, "scores": None,
                               "parsed": False, "review": None, "error": None}
        try:
            text = await gate.ask(judge, llava_bench_messages(prompt, item, prediction),
                                  max_tokens=max_tokens, temperature=temperature)
        except TeacherError as exc:
            log.warning("LLaVA-Bench judge failed on item %s: %s", item.id, exc)
            row["error"] = exc.reason
            return row
        pair = parse_pair_scores(text)
        row.update(review=text, parsed=pair is not None,
                   scores=list(pair if pair is not None else UNPARSED_PAIR))
        return row

    per_item = list(await asyncio.gather(*(one(it, p) for it, p in zip(parsed_items, answers))))
    graded = [row for row in per_item if row["error"] is None]
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in graded:
        groups.setdefault(row["category"], []).append(tuple(row["scores"]))
    order = [c for c in LLAVA_BENCH_CATEGORIES if c in groups] + \
            sorted(c for c in groups if c not in LLAVA_BENCH_CATEGORIES)
    if graded:
        groups_all = {c: groups[c] for c in order}
        groups_all["overall"] = [tuple(row["scores"]) for row in graded]
    else:
        groups_all = {}
    stats = {name: _relative(pairs) for name, pairs in groups_all.items()}
    return {
        "benchmark": "llava_bench",
        "relative": {name: s[2] for name, s in stats.items()},
        "mean_reference": {name: s[0] for name, s in stats.items()},
        "mean_model": {name: s[1] for name, s in stats.items()},
        "count": {name: len(pairs) for name, pairs in groups_all.items()},
        "num_items": len(per_item),
        "num_graded": len(graded),
        "unparsed": sum(1 for row in graded if not row["parsed"]),
        "errors": len(per_item) - len(graded),
        "complete": len(graded) == len(per_item),
        "items": per_item,
    }
