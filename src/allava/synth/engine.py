"""The distillation job: for every input item, one teacher request, parsed and validated into
ALLaVA-4V records (Caption + Instruct per image, or one text record), or a reject with its
reason; bounded concurrency, resumable (see output_store)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from allava.data.image_files import ImagePayload, image_payload
from allava.data.image_decode import BadSample
from allava.synth import costs
from allava.synth.inputs import WorkItem, read_image_bytes
from allava.synth.output_store import OutputStore
from allava.synth.parsing import InvalidResponse, parse_response
from allava.synth.sections import label_name
from allava.synth.structured import (STRUCTURED_CHOICES, StructuredOutputRefused,
                                     refuses_structured_output, response_format)
from allava.synth.prompts import (PromptSet, build_messages, load_caption_instructions,
                                  repair_messages)
from allava.synth.records import item_records
from allava.utils.chat_client import ChatClient, ChatRequestError, Completion
from allava.utils.usage import Usage

_MIME = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
USAGE_FILE = "usage.json"
log = logging.getLogger(__name__)


@dataclass
class JobSettings:
    mode: str
    source: str  # prefix of the record ids, e.g. synth_laion
    concurrency: int = 8
    max_image_side: int = 1024
    seed: int = 0
    prices: dict[str, float] | None = None
    # Stop the run after this many items in a row failed to reach the teacher (each after its
    # own retries): a dead endpoint should end the job, not reject every remaining item.
    max_consecutive_failures: int = 20
    # Ask for a JSON object of the sections (allava.synth.structured): auto, on or off.
    structured: str = "auto"


@dataclass(frozen=True)
class RepairNeeded:
    """A reply lacking one section, and what the follow-up turn asks for (online: at once; in
    batch mode: in the next round's batch, so it is saved in the batch state as a dict)."""
    reply: str
    section: str  # the missing section's name, as the repair prompt says it
    reason: str   # the parser's reason and detail, for the reject if the repair fails
    detail: str


class TeacherUnavailable(RuntimeError):
    """Too many consecutive items could not get an answer; the run stops (rerun to resume)."""


@dataclass
class JobTally:
    """What this run did (the counts a progress bar and the final report show)."""
    done: int = 0
    written: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    structured_output: str | None = None  # set when the run had to give it up

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + 1


def image_data_url(item: WorkItem, max_side: int, out_dir: Path | None = None) -> tuple[str, ImagePayload]:
    """The item's image as a base64 data URL, no larger than `max_side` (verified: a corrupt
    file is a BadSample); an image from a shard is also saved under `out_dir/images/`, so that
    the records can point to a file."""
    data = read_image_bytes(item)
    if data is None:
        raise BadSample("missing_image", str(item.image_file))
    teacher = image_payload(data, max_side=max_side)
    if item.image_in_tar is not None and out_dir is not None:
        target = out_dir / item.image_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    mime = _MIME.get(teacher.ext, teacher.ext)
    return f"data:image/{mime};base64,{base64.b64encode(teacher.data).decode('ascii')}", teacher


def job_identity(settings: JobSettings, input_path: str | Path, model: str,
                 prompts: PromptSet) -> dict[str, Any]:
    """What must not change between a run and its resumption: not the endpoint (a job may move
    to another server of the same model), never the API key."""
    prompt_text = json.dumps(asdict(prompts), sort_keys=True)
    return {"mode": settings.mode, "source": settings.source, "input": str(Path(input_path).resolve()),
            "model": model, "max_image_side": settings.max_image_side,
            "seed": settings.seed,
            "prompts_sha256": hashlib.sha256(prompt_text.encode()).hexdigest()}


class SynthJob:
    def __init__(self, settings: JobSettings, prompts: PromptSet, client: ChatClient,
                 store: OutputStore, usage: Usage):
        self.settings = settings
        self.prompts = prompts
        self.client = client
        self.store = store
        self.usage = usage
        self.tally = JobTally()
        self.consecutive_failures = 0
        self.instructions = load_caption_instructions() if settings.mode != "text" else []
        if settings.structured not in STRUCTURED_CHOICES:
            raise ValueError(f"structured must be one of {STRUCTURED_CHOICES}, "
                             f"got {settings.structured!r}")
        # None: free text (off, text mode, or an endpoint that refused it under `auto`).
        self.response_format = (response_format(settings.mode) if settings.structured != "off"
                                else None)

    async def run(self, items: list[WorkItem], on_progress: Callable[[], None] | None = None) -> JobTally:
        """Processes `items` (those not finished yet) with `concurrency` workers."""
        pending = iter(items)

        async def worker() -> None:
            for item in pending:  # a shared iterator: each item goes to exactly one worker
                await self.process(item)
                self.tally.done += 1
                if on_progress is not None:
                    on_progress()

        workers = [asyncio.create_task(worker()) for _ in range(max(1, self.settings.concurrency))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        return self.tally

    async def process(self, item: WorkItem) -> None:
        prepared = await self.prepare(item)
        if prepared is None:
            return
        messages, estimate = prepared
        try:
            completion = await self.ask(messages, estimate)
        except ChatRequestError as error:
            self.consecutive_failures += 1
            self.request_failed(item, error)
            if self.consecutive_failures >= self.settings.max_consecutive_failures:
                raise TeacherUnavailable(
                    f"{self.consecutive_failures} items in a row got no answer from the teacher "
                    f"(last: {error}); check --base-url, the key and the server, then rerun the "
                    "same command: those items are retried") from None
            return
        self.consecutive_failures = 0
        repair = self.handle_reply(item, completion)
        if repair is not None:
            await self.repair(item, messages, repair, estimate)

    # --- the per-item steps, shared by the online run and the batch run (allava.synth.batch) --
    async def prepare(self, item: WorkItem) -> tuple[list[dict], int] | None:
        """The item's request messages and its estimated tokens (prompt + max completion), or
        None after rejecting an item that cannot be asked (input problem, unreadable image)."""
        if item.problem:
            self.reject(item, item.problem)
            return None
        image_url, image = None, None
        if self.settings.mode != "text":
            try:
                image_url, image = await asyncio.to_thread(
                    image_data_url, item, self.settings.max_image_side, self.store.out)
            except BadSample as error:
                self.reject(item, error.reason, error.detail)
                return None
        messages = build_messages(self.prompts, image_data_url=image_url, question=item.question,
                                  instruction=item.instruction)
        return messages, self.estimated_prompt_tokens(messages, image) + self.prompts.max_tokens

    def request_failed(self, item: WorkItem, error: ChatRequestError) -> None:
        """The teacher gave no answer: a `teacher_` reject, which a rerun retries."""
        self.reject(item, f"teacher_{error.reason}", str(error))

    def handle_reply(self, item: WorkItem, completion: Completion) -> RepairNeeded | None:
        """Writes the item's records, or its reject; returns what to ask for when the reply
        lacks one section and the prompts have a repair turn."""
        if completion.finish_reason == "length":
            self.reject(item, "truncated_response", "the teacher hit max_tokens", completion.text)
            return None
        try:
            parsed = parse_response(self.settings.mode, completion.text)
        except InvalidResponse as error:
            if not (error.repairable and self.prompts.repair):
                self.reject(item, error.reason, error.detail, completion.text)
                return None
            return RepairNeeded(completion.text, label_name(error.sections[0], self.settings.mode),
                                error.reason, error.detail)
        self._write(item, parsed)
        return None

    def repair_conversation(self, messages: list[dict], repair: RepairNeeded) -> list[dict]:
        return repair_messages(self.prompts, messages, repair.reply, repair.section)

    def handle_repair_reply(self, item: WorkItem, repair: RepairNeeded,
                            completion: Completion) -> None:
        """Keeps the item when reply + repair reply parse; rejects it with both otherwise."""
        self.usage.repairs += 1
        self.usage.repair_prompt_tokens += completion.prompt_tokens
        self.usage.repair_completion_tokens += completion.completion_tokens
        if completion.finish_reason == "length":
            return self.reject(item, "truncated_response", "the repair turn hit max_tokens",
                                repair.reply, completion.text)
        try:
            parsed = parse_response(self.settings.mode, repair.reply, repair=completion.text)
        except InvalidResponse as second:
            return self.reject(item, second.reason, f"after a repair turn: {second.detail}",
                                repair.reply, completion.text)
        self._write(item, parsed)

    def repair_failed(self, item: WorkItem, repair: RepairNeeded, failure: str) -> None:
        """The repair turn got no answer: the item is rejected for its first reply's fault."""
        self.reject(item, repair.reason, f"{repair.detail}; the repair turn failed: {failure}",
                     repair.reply)

    async def ask(self, messages: list[dict], estimate: int) -> Completion:
        """The teacher's completion, structured while the endpoint accepts it: under `auto`, a
        refusal of response_format switches the run to free text and asks again."""
        while True:
            structure = self.response_format
            try:
                return await self.client.complete(
                    messages, max_tokens=self.prompts.max_tokens,
                    temperature=self.prompts.temperature, estimated_tokens=estimate,
                    response_format=structure)
            except ChatRequestError as error:
                if structure is None or not refuses_structured_output(error):
                    raise
                if self.settings.structured == "on":
                    raise StructuredOutputRefused(
                        f"the endpoint refuses structured output ({error.message}); rerun with "
                        "--structured auto or off: finished items are kept") from None
                if self.response_format is not None:  # the first refusal of the run
                    self.response_format = None
                    self.tally.structured_output = "refused by the endpoint: free text"
                    log.warning("the endpoint refuses structured output (%s); the run goes on "
                                "in free text", error.message)

    async def repair(self, item: WorkItem, messages: list[dict], repair: RepairNeeded,
                     estimate: int) -> None:
        """One follow-up turn in the same conversation asking for the one missing section."""
        try:
            completion = await self.client.complete(
                self.repair_conversation(messages, repair), max_tokens=self.prompts.max_tokens,
                temperature=self.prompts.temperature,
                estimated_tokens=estimate + costs.text_tokens(repair.reply))  # the image is sent again
        except ChatRequestError as failure:
            return self.repair_failed(item, repair, str(failure))
        self.handle_repair_reply(item, repair, completion)

    def _write(self, item: WorkItem, parsed: dict[str, Any]) -> None:
        self.store.write_records(self.records(item, parsed))
        self.tally.written += 1

    def records(self, item: WorkItem, parsed: dict[str, Any]) -> list[dict[str, Any]]:
        return item_records(self.settings.mode, self.settings.source, item, parsed,
                            self.instructions, self.settings.seed)

    @staticmethod
    def estimated_prompt_tokens(messages: list[dict], image: ImagePayload | None) -> int:
        text = json.dumps([m["content"] if isinstance(m["content"], str) else
                           [p for p in m["content"] if p.get("type") == "text"] for m in messages])
        return costs.text_tokens(text) + (costs.image_tokens(image.width, image.height) if image else 0)

    def reject(self, item: WorkItem, reason: str, detail: str = "", raw: str | None = None,
                repair: str | None = None) -> None:
        self.store.write_reject(item.item_id, reason, detail, raw, repair)
        self.tally.reject(reason)


def load_usage(out_dir: Path) -> Usage:
    path = out_dir / USAGE_FILE
    if not path.is_file():
        return Usage()
    return Usage.from_dict(json.loads(path.read_text(encoding="utf-8")))


def save_usage(out_dir: Path, usage: Usage, prices: dict[str, float] | None, model: str) -> None:
    """usage.json, replaced atomically: totals over every run of this job."""
    data = {**usage.to_dict(), "model": model, "estimated_cost_usd": usage.cost(prices),
            "prices_per_million": prices, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    temporary = out_dir / (USAGE_FILE + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    temporary.replace(out_dir / USAGE_FILE)
