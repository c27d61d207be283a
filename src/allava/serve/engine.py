"""The batching engine: one worker thread runs batched `generate` over the waiting requests.

Requests are encoded on the HTTP side (`jobs`) and queued (`request_queue`, bounded: a full
queue is a 503 at once). The worker takes the oldest request with up to `max_batch_size - 1`
others of its sampling group, left-pads their prompts into one batch and generates with the KV
cache until every row has ended at its own end of sequence, stop string or max_tokens; each
row's text goes back to its request as it comes (`batch_streamer`). While a batch runs, new
requests wait and form the next one; a batch that is not full waits up to `max_batch_wait` for
requests on their way (`arrivals`).

A batch that raises is rerun one request at a time (when nothing of it was sent yet), so a
request that breaks `generate` fails alone, with a 500, and the worker goes on.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import StoppingCriteriaList

from allava.models.build import VLMBundle
from allava.models.predictor import left_padded
from allava.serve.arrivals import Arrivals
from allava.serve.batch_streamer import BatchStreamer, FinishedRows, Row
from allava.serve.errors import APIError, internal_error, overloaded
from allava.serve.jobs import GenerationJob
from allava.serve.pending import Event, Failed, Finished, PendingAnswer, send_events
from allava.serve.request_queue import QueueFull, RequestQueue
from allava.serve.stats import EngineStats

log = logging.getLogger(__name__)


class BatchingEngine:
    def __init__(self, bundle: VLMBundle, max_batch_size: int = 32, max_queue: int = 256,
                 max_batch_wait: float = 0.05):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.model = bundle.model.eval()
        self.tokenizer = bundle.tokenizer
        self.max_batch_size = max_batch_size
        self.queue: RequestQueue[PendingAnswer] = RequestQueue(max_queue, lambda p: p.job.group)
        self.stats = EngineStats()
        self.eos_ids = _eos_ids(bundle)
        self._running: list[PendingAnswer] = []
        self.arrivals = Arrivals()
        self.max_batch_wait = max_batch_wait  # seconds a batch not full may wait for more
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> int:
        """Requests in the batch being generated."""
        return len(self._running)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="allava-serve-worker",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuses what still waits, ends the running batch at its next step, joins the worker."""
        left = self.queue.close()
        send_events([(p, Failed(APIError(503, "the server is shutting down",
                                         type="server_error", code="shutting_down")))
                     for p in left])
        for pending in list(self._running):
            pending.cancelled = True
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, job: GenerationJob) -> PendingAnswer:
        """Queues `job` (call on the event loop); 503 when the queue is full."""
        pending = PendingAnswer(job, asyncio.get_running_loop())
        try:
            self.queue.put(pending)
        except QueueFull:
            self.stats.count("rejected_queue_full")
            raise overloaded(len(self.queue)) from None
        return pending

    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around the HTTP side's work on a request up to `submit`: the worker may let a batch
        wait for it (`arrivals`)."""
        self.arrivals.preparing()
        try:
            yield
        finally:
            self.arrivals.prepared()

    def _work(self) -> None:
        while batch := self.queue.take_batch(self.max_batch_size, self.arrivals.more_coming,
                                             self.max_batch_wait):
            self._run([p for p in batch if not p.cancelled])

    def _run(self, batch: list[PendingAnswer]) -> None:
        if not batch:
            return
        self._running = batch
        try:
            self._generate(batch)
        except Exception as error:  # never lets a request take the worker down
            if len(batch) > 1 and not any(p.answered for p in batch):
                log.warning("a batch of %d failed (%s); running its requests one by one",
                            len(batch), error)
                for pending in batch:
                    self._run([pending])
                return
            log.exception("generation failed")
            self.stats.count("failed")
            send_events([(p, Failed(internal_error(f"generation failed: {error}")))
                         for p in batch])
        finally:
            self._running = []

    def _generate(self, batch: list[PendingAnswer]) -> None:
        jobs = [p.job for p in batch]
        input_ids, attention_mask = left_padded([j.prompt_ids for j in jobs],
                                                self.tokenizer.pad_token_id)
        images = [j.pixels for j in jobs if j.pixels is not None]
        device = self.device
        pixels = torch.stack(images).to(device) if images else None
        rows = [Row(p, self.tokenizer, self.eos_ids) for p in batch]
        streamer = BatchStreamer(rows, self._send)
        started = time.perf_counter()
        settings = jobs[0]
        if settings.seed is not None and settings.generate_kwargs["do_sample"]:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            # eos_token_id=None: each row ends at its own end of sequence (unless it asked for
            # ignore_eos); `generate` ends the batch when every row is done.
            self.model.generate(input_ids.to(device), attention_mask.to(device), pixels,
                                max_new_tokens=max(j.max_tokens for j in jobs),
                                eos_token_id=None, streamer=streamer,
                                stopping_criteria=StoppingCriteriaList([FinishedRows(streamer)]),
                                **settings.generate_kwargs)
        self.stats.count_batch(len(batch), streamer.generated, time.perf_counter() - started)

    def _send(self, events: list[tuple[PendingAnswer, Event]]) -> None:
        send_events(events)
        answers = sum(isinstance(event, Finished) for _, event in events)
        if answers:
            self.arrivals.answered(answers)


def _eos_ids(bundle: VLMBundle) -> frozenset[int]:
    """The tokens that end an answer: the tokenizer's EOS and the LLM's generation config's."""
    configured = bundle.model.llm.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(bundle.tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)
