"""`allava synth`: distil captions and QA (or text answers) from an OpenAI-compatible teacher.

Rerun the same command after an interruption to continue; `--shards DIR` also converts the
records into training shards (as `allava data convert` does). `allava synth reparse OUT`
re-parses the rejected replies of a job that is not running (allava.synth.reparse).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import openai
from tqdm import tqdm

from allava.data.convert import ConvertOptions, convert
from allava.synth import costs, reparse
from allava.synth.batch import BatchRun, BatchSettings
from allava.synth.batch_files import BatchLimits
from allava.synth.engine import (JobSettings, SynthJob, TeacherUnavailable, image_data_url,
                                 job_identity, load_usage, save_usage)
from allava.synth.inputs import MODES, InputError, WorkItem, read_items
from allava.synth.output_store import OutputStore, record_files
from allava.synth.prompts import PROMPT_SETS, build_messages, load_prompts
from allava.synth.structured import STRUCTURED_CHOICES, StructuredOutputRefused, response_format
from allava.utils.chat_client import NO_KEY, ChatClient
from allava.utils.rate_limit import RateLimiter


EXAMPLES = """examples:
  allava synth --input images/ --out data/synth/laion --mode laion \\
      --base-url https://api.openai.com/v1 --model gpt-4o --concurrency 16 --rpm 500
  allava synth --input questions.jsonl --out data/synth/vflan --mode vflan \\
      --base-url http://localhost:8000/v1 --model Qwen/Qwen2-VL-7B-Instruct
  allava synth ... --dry-run             # one request and the estimated cost, no call
  allava synth ... --batch               # through the Batch API: half the price, within 24 h
  allava synth reparse data/synth/laion  # after a parser update: no request, see --help

Rerun the same command after an interruption to continue. `allava synth reparse OUT` runs the
current parser over OUT/rejects.jsonl and turns the replies it now accepts into records.
"""


def build_parser(prog: str = "allava-synth") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="image folder, JSON/JSONL/.txt list, or "
                        "WebDataset shards (a .tar or a folder of them)")
    parser.add_argument("--out", required=True, help="output folder (rerun to resume)")
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible API root, e.g. "
                        "https://api.openai.com/v1 or http://localhost:8000/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the API key (default OPENAI_API_KEY); "
                        "the key is read from there only")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--rpm", type=float, help="client-side limit, requests per minute")
    parser.add_argument("--tpm", type=float, help="client-side limit, tokens per minute")
    parser.add_argument("--limit", type=int, help="only the first N items of the input")
    parser.add_argument("--max-image-side", type=int, default=1024,
                        help="images are resized to this longest side before sending")
    parser.add_argument("--image-root", help="folder that image paths in a JSON list are "
                        "relative to (default: the list's folder)")
    parser.add_argument("--source", help="prefix of record ids (default synth_<mode>)")
    parser.add_argument("--prompt-set", choices=sorted(PROMPT_SETS), default="headings",
                        help="packaged prompts: headings (### Description ...) or allava_tags "
                        "(<start of description> ... as ALLaVA asked); the parser reads both")
    parser.add_argument("--structured", choices=STRUCTURED_CHOICES, default="auto",
                        help="ask for a JSON object of the sections (response_format): auto "
                        "(default; free text if the endpoint refuses it), on, off")
    parser.add_argument("--prompts", help="folder of your own prompt files <mode>.yaml "
                        "(replaces --prompt-set)")
    parser.add_argument("--prices", help="your own prices file (default: the package's "
                        "allava/synth/resources/prices.yaml)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--max-retries", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0, help="picks each caption instruction")
    parser.add_argument("--batch", action="store_true",
                        help="send the requests through the OpenAI Batch API (about half the "
                        "price, answers within 24 h); rerun the same command to continue a "
                        "killed run. Structured output only with --structured on (auto sends "
                        "free text)")
    parser.add_argument("--batch-poll-seconds", type=float, default=60.0,
                        help="seconds between checks of the batches' status (default 60)")
    parser.add_argument("--batch-max-requests", type=int, default=50_000,
                        help="requests per batch input file (default 50000, OpenAI's limit)")
    parser.add_argument("--batch-max-mb", type=float, default=200.0,
                        help="MB per batch input file (default 200, OpenAI's limit)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print one request and the estimated cost; call nothing")
    parser.add_argument("--shards", help="also convert the records into shards under this folder")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None, prog: str = "allava-synth") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["reparse"]:  # the one subcommand; everything else is the flags-only run
        return reparse.main(argv[1:], prog=f"{prog} reparse")
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except (InputError, FileExistsError, FileNotFoundError, ValueError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except (TeacherUnavailable, StructuredOutputRefused) as error:
        print(f"{prog}: stopped: {error}", file=sys.stderr)
        return 3
    except openai.APIError as error:  # only the Batch API's calls raise these here
        print(f"{prog}: stopped: a Batch API call failed ({error}); rerun the same command to "
              "continue", file=sys.stderr)
        return 3


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    source = args.source or f"synth_{args.mode}"
    prompts = load_prompts(args.mode, Path(args.prompts) if args.prompts else None,
                           prompt_set=args.prompt_set)
    prices = costs.load_prices(args.model, args.prices)
    settings = JobSettings(mode=args.mode, source=source, concurrency=args.concurrency,
                           max_image_side=args.max_image_side, seed=args.seed, prices=prices,
                           structured=args.structured)
    items = read_items(args.input, args.mode, args.image_root)
    if args.limit is not None:
        items = items[:args.limit]
    if args.dry_run:
        return dry_run(args, settings, prompts, items)

    store = OutputStore(out, args.mode, source)
    identity = job_identity(settings, args.input, args.model, prompts) | {"limit": args.limit}
    store.check_job(identity)
    finished, removed = store.recover()
    pending = [item for item in items if item.item_id not in finished]
    if finished:
        print(f"resuming: {len(finished)} of {len(items)} items already done"
              + (f"; cleaned up {removed}" if any(removed.values()) else ""))
    usage = load_usage(out)
    api_key = os.environ.get(args.api_key_env)
    client = ChatClient(args.base_url, args.model, api_key, timeout=args.timeout,
                           max_retries=args.max_retries, usage=usage,
                           rate_limiter=RateLimiter(args.rpm, args.tpm) if args.rpm or args.tpm else None)
    job = SynthJob(settings, prompts, client, store, usage)
    if args.batch:
        completed = _run_batches(job, pending, usage, prices, args, out, identity)
    else:
        completed = _run_with_progress(job, pending, usage, prices, args, out)
    tally = job.tally
    print(json.dumps({"items": len(items), "done_before": len(finished), "written": tally.written,
                      "rejected": tally.rejected, "rejected_by_reason": tally.rejected_by_reason,
                      "requests": usage.requests, "retries": usage.retries,
                      "repairs": usage.repairs,
                      "batches": usage.batches, "batch_requests": usage.batch_requests,
                      "batch_cost_usd": usage.batch_cost(prices) if prices else None,
                      "structured_output": tally.structured_output or (
                          "json_schema" if job.response_format else "off"),
                      "estimated_cost_usd": usage.cost(prices)}, indent=2))
    if not completed:
        print("interrupted: rerun the same command to continue", file=sys.stderr)
        return 130
    unanswered = sum(n for reason, n in tally.rejected_by_reason.items()
                     if reason.startswith("teacher_"))
    if unanswered:
        print(f"{unanswered} items got no answer from the teacher; rerun the same command to "
              "retry them", file=sys.stderr)
    if args.shards:
        convert_to_shards(out, args, items)
    return 0


def _run_with_progress(job: SynthJob, pending: list[WorkItem], usage, prices, args, out: Path) -> bool:
    bar = tqdm(total=len(pending), unit="item", disable=args.no_progress, dynamic_ncols=True)
    last_save = [time.monotonic()]

    def on_progress() -> None:
        bar.update(1)
        cost = usage.cost(prices)
        bar.set_postfix(rejected=job.tally.rejected, retries=usage.retries,
                        cost=f"${cost:.2f}" if cost is not None else "n/a", refresh=False)
        if time.monotonic() - last_save[0] > 2.0:
            save_usage(out, usage, prices, args.model)
            last_save[0] = time.monotonic()

    async def go() -> None:
        try:
            await job.run(pending, on_progress)
        finally:
            await job.client.aclose()

    def close() -> None:
        bar.close()
        job.store.close()
        save_usage(out, usage, prices, args.model)

    return _run_to_the_end(go(), close)


def _run_batches(job: SynthJob, pending: list[WorkItem], usage, prices, args, out: Path,
                 identity: dict[str, Any]) -> bool:
    """The job through the Batch API (allava.synth.batch); False when interrupted."""
    # The key in each batch's metadata: this job in this folder, among the account's batches.
    job_key = hashlib.sha256(json.dumps({**identity, "out": str(out.resolve())},
                                        sort_keys=True).encode()).hexdigest()[:16]
    api = openai.AsyncOpenAI(base_url=args.base_url,
                             api_key=os.environ.get(args.api_key_env) or NO_KEY,
                             max_retries=args.max_retries, timeout=args.timeout)
    settings = BatchSettings(poll_seconds=args.batch_poll_seconds, progress=not args.no_progress,
                             limits=BatchLimits(args.batch_max_requests,
                                                int(args.batch_max_mb * 1000 * 1000)))
    run = BatchRun(job, api, args.model, job_key, settings,
                   on_change=lambda: save_usage(out, usage, prices, args.model))

    async def go() -> None:
        try:
            await run.run(pending)
        finally:
            await api.close()
            await job.client.aclose()

    def close() -> None:
        job.store.close()
        save_usage(out, usage, prices, args.model)

    return _run_to_the_end(go(), close)


def _run_to_the_end(main, close) -> bool:
    """Runs coroutine `main`; False when interrupted (Ctrl-C). `close` runs either way, so the
    records and usage.json are saved whatever happens."""
    try:
        asyncio.run(main)
        return True
    except KeyboardInterrupt:
        return False
    finally:
        close()


def dry_run(args, settings: JobSettings, prompts, items: list[WorkItem]) -> int:
    """Prints the first item's request (image data shortened) and the job's estimated cost."""
    usable = [item for item in items if not item.problem]
    if not usable:
        print("no usable item in the input")
        return 1
    first = usable[0]
    image_url, image = (None, None)
    if args.mode != "text":
        image_url, image = image_data_url(first, settings.max_image_side)
    messages = build_messages(prompts, image_data_url=image_url, question=first.question,
                              instruction=first.instruction)
    request = {"model": args.model, "max_tokens": prompts.max_tokens,
               "temperature": prompts.temperature, "messages": _shorten_images(messages)}
    if settings.structured != "off" and response_format(args.mode) is not None:
        request["response_format"] = response_format(args.mode)
    prompt_tokens = SynthJob.estimated_prompt_tokens(messages, image)
    total_prompt = prompt_tokens * len(usable)
    total_completion = prompts.max_tokens * len(usable)
    cost = costs.request_cost(settings.prices, total_prompt, total_completion)
    print(f"POST {args.base_url.rstrip('/')}/chat/completions")
    print(json.dumps(request, indent=2, ensure_ascii=False))
    print(f"\nitems: {len(usable)} usable of {len(items)}; per request ~{prompt_tokens} prompt "
          f"tokens, at most {prompts.max_tokens} completion tokens")
    print("estimated cost (completions at max_tokens: an upper bound): "
          + (f"${cost:,.2f}" if cost is not None else
             f"unknown, {args.model!r} has no price in "
             + (args.prices or "the package's prices table (pass --prices FILE)")))
    return 0


def _shorten_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = json.loads(json.dumps(messages))
    for message in shown:
        for part in message["content"] if isinstance(message["content"], list) else []:
            if part.get("type") == "image_url":
                url = part["image_url"]["url"]
                head, _, data = url.partition(",")
                part["image_url"]["url"] = f"{head},<{len(data)} base64 characters>"
    return shown


def convert_to_shards(out: Path, args, items: list[WorkItem]) -> None:
    """Converts each record file into `<shards>/<caption|instruct|text>` with the converter."""
    if args.mode == "text":
        image_root = out
    elif any(item.image_in_tar is not None for item in items):
        image_root = out  # images from shards were saved under out/images
    elif Path(args.input).is_dir():
        image_root = Path(args.input)
    else:
        image_root = Path(args.image_root) if args.image_root else Path(args.input).parent
    for name in record_files(args.mode):
        target = Path(args.shards) / name.removesuffix(".jsonl")
        manifest = convert([out / name], target, ConvertOptions(image_root=str(image_root),
                                                                source=args.source or f"synth_{args.mode}"),
                           progress=not args.no_progress)
        totals = manifest.get("totals", {})
        print(f"shards: {target} ({totals.get('samples_written')} samples, "
              f"{totals.get('rejected')} rejected)")


if __name__ == "__main__":
    raise SystemExit(main())
