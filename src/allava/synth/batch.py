"""`allava synth --batch`: the same requests through the OpenAI Batch API, at batch prices.

The run goes in rounds. Round 1 writes every pending item's request (built as online, by
SynthJob.prepare) into input files under OUT/batches/, split to the provider's limits; each is
uploaded and submitted as one batch, polled until it ends, and its results are handled exactly
as online replies (SynthJob.handle_reply: records, rejects, or a repair turn needed). Repair
turns go into round 2's batches, whose replies SynthJob.handle_repair_reply finishes.

Resuming (see allava.synth.batch_state): every step is recorded in OUT/batches.json before the
next one starts. A batch with a recorded id is polled, never created again; one recorded as
uploaded but without an id may have been created just before a kill, so it is looked up by its
metadata (job key + batch name) before it is created. Results are applied once: an item whose
records or final reject exist is skipped by OutputStore.recover's finished set.

Failures: a `failed` batch rejects its items as teacher_batch_failed (a rerun retries them); an
`expired` (or cancelled) batch's finished requests are applied and the rest go into a new batch,
once, then are rejected as teacher_batch_expired; a request's own error is a teacher_<reason>
reject, as online.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Callable

import openai
from tqdm import tqdm

from allava.synth.batch_files import (ENDPOINT, UNFINISHED, BatchLimits, InputWriter,
                                      RequestTooLarge, lines_of, outcome, request_line,
                                      results_by_id)
from allava.synth.batch_state import BatchState, LocalBatch
from allava.synth.engine import RepairNeeded, SynthJob
from allava.synth.inputs import WorkItem
from allava.utils.chat_client import ChatRequestError, Completion, chat_body

log = logging.getLogger(__name__)
LOOKUP_MAX = 1000  # batches listed (newest first) when looking for one created before a kill


@dataclass
class BatchSettings:
    poll_seconds: float = 60.0
    limits: BatchLimits = field(default_factory=BatchLimits)
    max_attempts: int = 2  # an expired batch's unfinished requests are sent once more
    progress: bool = True


class BatchRun:
    def __init__(self, job: SynthJob, api: openai.AsyncOpenAI, model: str, job_key: str,
                 settings: BatchSettings, on_change: Callable[[], None] = lambda: None):
        self.job = job
        self.api = api
        self.model = model
        self.job_key = job_key  # in every batch's metadata: this job's batches among others
        self.settings = settings
        self.on_change = on_change  # saves usage.json: after a batch is created or applied
        self.state = BatchState.load(job.store.out)
        self.items: dict[str, WorkItem] = {}
        self.written_here: set[str] = set()  # batches this process wrote: surely not created
        # Structured output only when asked for outright: a batch cannot fall back to free text
        # mid-run as `--structured auto` does online.
        if job.settings.structured != "on":
            job.response_format = None

    async def run(self, items: list[WorkItem]) -> None:
        """Finishes `items` (the unfinished ones) and every batch a previous run left open."""
        self.items = {item.item_id: item for item in items}
        busy = self.state.busy_ids()
        await self.write_round(1, [item for item in items if item.item_id not in busy])
        while True:
            await self.write_repair_round()
            active = self.state.active()
            if not active:
                return
            for batch in active:
                await self.submit(batch)
            await self.wait(active)
            for batch in active:
                await self.apply(batch)

    # --- writing input files -----------------------------------------------------------------
    async def write_round(self, round_: int, items: list[WorkItem],
                          repairs: dict[str, dict[str, str]] | None = None) -> None:
        """Input files for `items` (round 2: their repair turns), recorded as local batches."""
        with self._writer() as writer:
            for item in items:
                prepared = await self.job.prepare(item)
                if prepared is None:  # rejected (unreadable image ...)
                    continue
                messages = prepared[0]
                if repairs is not None:
                    messages = self.job.repair_conversation(messages,
                                                            RepairNeeded(**repairs[item.item_id]))
                try:
                    writer.add(item.item_id, request_line(item.item_id, self._body(messages)))
                except RequestTooLarge as error:
                    self.job.reject(item, "request_too_large", str(error))
        self._record_files(round_, 1, writer.files, repairs or {})

    async def write_repair_round(self) -> None:
        waiting = self.state.pending_repairs
        if not waiting:
            return
        items = [self.items[i] for i in waiting if i in self.items]
        repairs = dict(waiting)
        self.state.pending_repairs = {}  # saved with the new batches that now hold them
        await self.write_round(2, items, repairs)

    def _body(self, messages: list[dict]) -> dict:
        prompts = self.job.prompts
        return chat_body(self.model, messages, prompts.max_tokens, prompts.temperature,
                         self.job.response_format)

    def _writer(self) -> InputWriter:
        """An InputWriter naming its files b0000, b0001, ... after the recorded batches."""
        names = iter(range(len(self.state.batches), 1 << 30))

        def new_path():
            name = f"b{next(names):04d}"
            self.written_here.add(name)
            return self.state.input_path(name)

        return InputWriter(self.settings.limits, new_path)

    def _record_files(self, round_: int, attempt: int, files, repairs: dict) -> None:
        for path, custom_ids in files:
            if not custom_ids:
                continue
            name = path.stem
            self.state.batches.append(LocalBatch(
                name=name, round=round_, attempt=attempt,
                input_file=str(path.relative_to(self.state.path.parent)), custom_ids=custom_ids,
                repairs={i: repairs[i] for i in custom_ids} if round_ == 2 else {}))
        self.state.save()

    # --- submitting and waiting --------------------------------------------------------------
    async def submit(self, batch: LocalBatch) -> None:
        """Uploads the input file and creates the batch, unless that was done before."""
        if batch.batch_id is not None:
            return
        if batch.file_id is None:
            uploaded = await self.api.files.create(
                file=self.state.path.parent / batch.input_file, purpose="batch")
            batch.file_id, batch.status = uploaded.id, "uploaded"
            self.state.save()
        elif batch.name not in self.written_here:
            found = await self.find(batch)  # created just before a kill, not recorded?
            if found is not None:
                log.info("batch %s found by its metadata: %s", batch.name, found.id)
                self._record_remote(batch, found)
                return
        created = await self.api.batches.create(
            input_file_id=batch.file_id, endpoint=ENDPOINT, completion_window="24h",
            metadata={"allava_job": self.job_key, "allava_batch": batch.name})
        self.job.usage.batches += 1
        self.on_change()
        self._record_remote(batch, created)

    async def find(self, batch: LocalBatch):
        seen = 0
        async for remote in self.api.batches.list(limit=100):
            metadata = remote.metadata or {}
            if (metadata.get("allava_job") == self.job_key
                    and metadata.get("allava_batch") == batch.name):
                return remote
            seen += 1
            if seen >= LOOKUP_MAX:
                break
        return None

    def _record_remote(self, batch: LocalBatch, remote) -> None:
        batch.batch_id, batch.status = remote.id, remote.status
        batch.output_file_id = remote.output_file_id
        batch.error_file_id = remote.error_file_id
        counts = remote.request_counts
        batch.done = (counts.completed + counts.failed) if counts is not None else 0
        errors = remote.errors.data if remote.errors is not None and remote.errors.data else []
        batch.error = "; ".join(f"{e.code}: {e.message}" for e in errors) or None
        self.state.save()

    async def wait(self, batches: list[LocalBatch]) -> None:
        """Polls until every batch has ended, with a bar of the requests done."""
        total = sum(len(batch.custom_ids) for batch in batches)
        rounds = sorted({batch.round for batch in batches})
        with tqdm(total=total, unit="request", desc=f"batch round {'+'.join(map(str, rounds))}",
                  disable=not self.settings.progress, dynamic_ncols=True) as bar:
            while True:
                for batch in batches:
                    if not batch.finished:
                        self._record_remote(batch, await self.api.batches.retrieve(batch.batch_id))
                bar.n = sum(len(b.custom_ids) if b.finished else b.done for b in batches)
                bar.refresh()
                if all(batch.finished for batch in batches):
                    return
                await asyncio.sleep(self.settings.poll_seconds)

    # --- applying results --------------------------------------------------------------------
    async def apply(self, batch: LocalBatch) -> None:
        """Writes the batch's records and rejects, queues repair turns and unfinished requests,
        then marks it applied (in the same state write as what it queued)."""
        todo = [i for i in batch.custom_ids if i in self.items]
        if batch.status == "failed":
            for custom_id in todo:
                self.job.reject(self.items[custom_id], "teacher_batch_failed",
                                f"batch {batch.batch_id} failed: {batch.error or 'no reason given'}")
        else:
            results = results_by_id(await self._download(batch.output_file_id),
                                    await self._download(batch.error_file_id))
            ended_early = batch.status in ("expired", "cancelled")
            unfinished = []
            for custom_id in todo:
                result = outcome(results.get(custom_id), ended_early)
                if result is UNFINISHED:
                    unfinished.append(custom_id)
                else:
                    self._apply_one(batch, self.items[custom_id], result)
            if unfinished:
                self._send_again_or_reject(batch, unfinished)
        batch.applied = True
        self.on_change()
        self.state.save()

    def _apply_one(self, batch: LocalBatch, item: WorkItem,
                   result: Completion | ChatRequestError) -> None:
        usage = self.job.usage
        usage.batch_requests += 1
        tokens = ((result.prompt_tokens, result.completion_tokens)
                  if isinstance(result, Completion) else result.tokens)
        usage.batch_prompt_tokens += tokens[0]
        usage.batch_completion_tokens += tokens[1]
        if batch.round == 2:
            repair = RepairNeeded(**batch.repairs[item.item_id])
            if isinstance(result, ChatRequestError):
                self.job.repair_failed(item, repair, str(result))
            else:
                self.job.handle_repair_reply(item, repair, result)
        elif isinstance(result, ChatRequestError):
            self.job.request_failed(item, result)
        else:
            repair = self.job.handle_reply(item, result)
            if repair is not None:
                self.state.pending_repairs[item.item_id] = asdict(repair)

    def _send_again_or_reject(self, batch: LocalBatch, unfinished: list[str]) -> None:
        why = f"batch {batch.batch_id} {batch.status} before running this request"
        if batch.status != "expired" or batch.attempt >= self.settings.max_attempts:
            for custom_id in unfinished:
                self.job.reject(self.items[custom_id], f"teacher_batch_{batch.status}", why)
            return
        source = self.state.path.parent / batch.input_file
        with self._writer() as writer:
            for custom_id, line in lines_of(source, set(unfinished)):
                writer.add(custom_id, line)
        log.info("%s; %d requests sent again", why, len(unfinished))
        self._record_files(batch.round, batch.attempt + 1, writer.files, batch.repairs)

    async def _download(self, file_id: str | None) -> str:
        if not file_id:
            return ""
        content = await self.api.files.content(file_id)
        return content.text
