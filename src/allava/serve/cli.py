"""`allava serve MODEL_DIR`: an OpenAI-compatible HTTP server for a trained (exported) model.

Prints `listening on http://HOST:PORT` once the socket accepts requests (`--port 0`: a free
port, the real one printed). SIGINT or SIGTERM: requests in flight finish (up to
GRACEFUL_SECONDS), then the server stops and exits 0.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import torch
import uvicorn

from allava.models.device import device_problem, pick_device
from allava.models.model_dir import load_exported
from allava.serve.app import ServerSettings, create_app
from allava.serve.engine import BatchingEngine
from allava.serve.jobs import JobLimits

GRACEFUL_SECONDS = 10
DTYPES = ("float32", "bfloat16", "float16")

EXAMPLES = """examples:
  allava serve logs/train/runs/<run>/finetune/export
  allava serve MODEL_DIR --host 0.0.0.0 --port 8000 --api-key-env ALLAVA_API_KEY
  allava serve MODEL_DIR --port 0 --model-name toy      # a free port; `listening on ...` names it

then, with any OpenAI client:
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "export", "messages": [{"role": "user", "content": "Hello"}]}'
  allava synth ... --base-url http://127.0.0.1:8000/v1 --model export

routes: POST /v1/chat/completions, GET /v1/models, GET /health, GET /stats (batching counters)
"""


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve a trained (exported) model over an OpenAI-compatible HTTP API:\n"
                    "chat completions with an image, streamed or not; concurrent requests are\n"
                    "answered in batches by one generation worker.",
        epilog=EXAMPLES)
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="an exported model directory (<run dir>/<stage>/export)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; "
                             "file:// image URLs read any file the server can, so on other "
                             "addresses set --api-key-env)")
    parser.add_argument("--port", type=int, default=8000,
                        help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="cast the model's weights (default: as saved)")
    parser.add_argument("--model-name", default=None,
                        help="the name requests must give as `model` (default: the model "
                             "directory's name)")
    parser.add_argument("--api-key-env", metavar="NAME", default=None,
                        help="require `Authorization: Bearer <key>`, the key read from this "
                             "environment variable (default: no key)")
    parser.add_argument("--max-batch-size", type=int, default=32,
                        help="most requests answered in one batch (default: 32)")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="most requests waiting; beyond, requests get 503 at once "
                             "(default: 256)")
    parser.add_argument("--max-batch-wait-ms", type=float, default=50,
                        help="how long a batch that is not full may wait for requests on their "
                             "way, e.g. clients just answered (default: 50; 0: never waits)")
    parser.add_argument("--max-tokens-default", type=int, default=512,
                        help="answer length for requests that set no max_tokens (default: 512, "
                             "fewer when the context is short)")
    parser.add_argument("--max-request-mb", type=float, default=20,
                        help="largest request body in MiB, images included; larger ones get "
                             "413 (default: 20, OpenAI's image limit)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens of prompt and answer together (default: the model's "
                             "max_length, capped by its position embeddings)")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        parser.error("--port must be in 0..65535")
    for name in ("max_batch_size", "max_queue", "max_tokens_default"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.max_batch_wait_ms < 0:
        parser.error("--max-batch-wait-ms must be >= 0")
    if args.max_length is not None and args.max_length < 2:
        parser.error("--max-length must be >= 2")
    if problem := device_problem(args.device):
        parser.error(problem)
    if args.api_key_env is not None and not os.environ.get(args.api_key_env):
        parser.error(f"--api-key-env {args.api_key_env}: the environment variable is unset or "
                     "empty; export the key in it first")


def main(argv: list[str] | None = None, prog: str = "allava serve") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    try:  # before loading the model: a port in use is reported at once
        listener = bind(args.host, args.port)
    except OSError as error:
        print(f"{prog}: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
              file=sys.stderr)
        return 2
    with listener:
        return serve(args, prog, listener)


def serve(args: argparse.Namespace, prog: str, listener: socket.socket) -> int:
    device = pick_device(args.device)
    print(f"loading {args.model_dir} on {device} ...", file=sys.stderr, flush=True)
    try:
        bundle = load_exported(args.model_dir, device=device)
    except FileNotFoundError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.dtype:
        bundle.model.to(getattr(torch, args.dtype))
    settings = ServerSettings(
        model_name=args.model_name or Path(args.model_dir).resolve().name,
        limits=JobLimits(bundle.context_length(args.max_length), args.max_tokens_default),
        api_key=os.environ[args.api_key_env] if args.api_key_env else None,
        max_request_bytes=int(args.max_request_mb * 2**20))
    engine = BatchingEngine(bundle, args.max_batch_size, args.max_queue,
                            args.max_batch_wait_ms / 1000)
    server = uvicorn.Server(uvicorn.Config(create_app(bundle, engine, settings),
                                           log_level="warning",
                                           timeout_graceful_shutdown=GRACEFUL_SECONDS))

    def stop(*_) -> None:
        server.should_exit = True

    # While it serves, uvicorn handles SIGINT/SIGTERM itself (a graceful shutdown), then raises
    # the signal again for the handler that was there before: this one, so that a signalled
    # stop exits 0 (and a signal before uvicorn's handlers are in place stops it too).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    asyncio.run(_serve(server, listener, settings.model_name))
    return 0


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that its port (a free one for 0) is known."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart on the same port
    listener.bind((host, port))
    return listener


async def _serve(server: uvicorn.Server, listener: socket.socket, model_name: str) -> None:
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        host, port = listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"serving {model_name!r}", file=sys.stderr, flush=True)
        print(f"listening on http://{shown}:{port}", flush=True)
    await serving


if __name__ == "__main__":
    raise SystemExit(main())
