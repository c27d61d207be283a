"""`allava chat MODEL_DIR [--image PATH]`: talk with a trained model in the terminal.

Multi-turn, answers streamed token by token; the image goes with the first turn. Commands
inside the chat are lines starting with `/` (COMMANDS below); Ctrl-D leaves, Ctrl-C stops an
answer being written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, TextIO

import torch
from PIL import Image

from allava.models.chat_session import ChatSession, ContextFull, Sampling
from allava.models.device import device_problem, pick_device
from allava.models.model_dir import load_exported

try:  # line editing and history for input(), where the platform has it
    import readline  # noqa: F401
except ImportError:
    readline = None

YOU = "you> "
MODEL = "model> "

EXAMPLES = """examples:
  allava chat logs/train/runs/<run>/finetune/export --image scene.png
  allava chat MODEL_DIR --temperature 0 --max-new-tokens 64      # greedy, short answers
  allava chat MODEL_DIR --device cpu --temperature 0.7 --top-p 0.9 --seed 0

inside the chat:
{commands}
  Ctrl-D leaves too; Ctrl-C stops the answer being written.
"""

COMMANDS = {
    "/image PATH": "attach an image (starts a new conversation: the image goes with its first turn)",
    "/noimage": "drop the image (starts a new, text-only conversation)",
    "/reset": "forget the conversation (the image stays attached)",
    "/context": "how many turns and tokens the conversation holds",
    "/help": "this list",
    "/exit": "leave (also /quit)",
}


def commands_help() -> str:
    width = max(len(name) for name in COMMANDS)
    return "\n".join(f"  {name:<{width}}  {what}" for name, what in COMMANDS.items())


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Chat with a trained (exported) model in the terminal: multi-turn, answers\n"
                    "streamed as they are written, an optional image attached to the first turn.",
        epilog=EXAMPLES.format(commands=commands_help()))
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="an exported model directory (<run dir>/<stage>/export)")
    parser.add_argument("--image", metavar="PATH", help="image for the first turn")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    parser.add_argument("--temperature", type=float, default=0.2,
                        help="0 is greedy (deterministic); above 0 samples (default: 0.2)")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus sampling: keep the likeliest tokens that make up this "
                             "probability (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=512,
                        help="most tokens per answer (default: 512; fewer when the "
                             "conversation fills the model's context)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="tokens of context, prompt and answer together; older turns are "
                             "forgotten beyond it (default: the model's max_length)")
    parser.add_argument("--seed", type=int, default=None, help="seed for sampling")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.temperature < 0:
        parser.error("--temperature must be >= 0")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        parser.error("--top-p must be in (0, 1]")
    if args.max_new_tokens < 1:
        parser.error("--max-new-tokens must be >= 1")
    if args.max_length is not None and args.max_length < 2:
        parser.error("--max-length must be >= 2")
    if problem := device_problem(args.device):
        parser.error(problem)


def open_image(path: str) -> Image.Image:
    """The image at `path`, loaded now so that a bad file is reported before any question."""
    with Image.open(Path(path).expanduser()) as image:
        return image.convert("RGB")


class ChatTerminal:
    """The read-answer loop: lines from `read` (input() by default), text to `out`."""

    def __init__(self, session: ChatSession, sampling: Sampling, out: TextIO = sys.stdout,
                 read: Callable[[str], str] = input):
        self.session = session
        self.sampling = sampling
        self.out = out
        self.read = read
        self.image_name: str | None = None
        self.handlers = {"/image": self.cmd_image, "/noimage": self.cmd_noimage,
                         "/reset": self.cmd_reset, "/context": self.cmd_context,
                         "/help": self.cmd_help}

    def say(self, text: str = "", end: str = "\n") -> None:
        print(text, end=end, file=self.out, flush=True)

    def run(self) -> int:
        while True:
            try:
                line = self.read(YOU).strip()
            except EOFError:  # Ctrl-D
                self.say()
                return 0
            except KeyboardInterrupt:
                self.say("\n(/exit or Ctrl-D to leave)")
                continue
            if line in ("/exit", "/quit"):
                return 0
            try:
                self.handle(line)
            except KeyboardInterrupt:  # while a prompt is being built or an image read
                self.say("\n(stopped)")

    def handle(self, line: str) -> None:
        if not line.startswith("/"):
            if line:
                self.answer(line)
            return
        name, _, rest = line.partition(" ")
        handler = self.handlers.get(name)
        if handler is None:
            self.say(f"unknown command {name}; /help lists them")
        else:
            handler(rest.strip())

    def answer(self, question: str) -> None:
        try:
            answer = self.session.ask(question, self.sampling)
        except (ContextFull, ValueError) as error:
            self.say(f"(not sent: {error})")
            return
        if answer.forgotten_turns:
            self.say(f"(context full: forgot the {answer.forgotten_turns} oldest turn(s)"
                     f"{'; the image stays' if self.session.image is not None else ''})")
        pieces = iter(answer)
        try:  # from the first output on, so that Ctrl-C always lands here
            self.say(MODEL, end="")
            for piece in pieces:
                self.say(piece, end="")
        except KeyboardInterrupt:
            pieces.close()  # stops and joins the generating thread now
            self.say(" [stopped; this answer is not kept]")
            return
        self.say("" if answer.text.strip() else "(no answer)")

    def cmd_image(self, argument: str) -> None:
        if not argument:
            self.say("usage: /image PATH")
            return
        path = argument.strip("'\"")  # a path pasted in quotes
        try:
            image = open_image(path)
        except (OSError, SyntaxError, ValueError) as error:  # missing, unreadable, not an image
            self.say(f"cannot open image {path}: {error}; the conversation goes on unchanged")
            return
        self.session.attach_image(image)
        self.image_name = path
        self.say(f"(image {path} attached; new conversation: the image goes with its first turn)")

    def cmd_noimage(self, _: str) -> None:
        self.session.attach_image(None)
        self.image_name = None
        self.say("(image dropped; new text-only conversation)")

    def cmd_reset(self, _: str) -> None:
        self.session.reset()
        kept = f"; image {self.image_name} still attached" if self.image_name else ""
        self.say(f"(conversation reset{kept})")

    def cmd_context(self, _: str) -> None:
        session = self.session
        image = self.image_name or "none"
        self.say(f"({len(session.turns)} turn(s), {session.context_tokens()} of "
                 f"{session.max_length} tokens; image: {image})")

    def cmd_help(self, _: str) -> None:
        self.say(commands_help())


def main(argv: list[str] | None = None, prog: str = "allava chat") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    device = pick_device(args.device)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    image = None
    if args.image:
        try:
            image = open_image(args.image)
        except (OSError, SyntaxError, ValueError) as error:
            print(f"{prog}: cannot open --image {args.image}: {error}", file=sys.stderr)
            return 2
    print(f"loading {args.model_dir} on {device} ...", flush=True)
    try:
        bundle = load_exported(args.model_dir, device=device)
    except FileNotFoundError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    session = ChatSession(bundle, max_length=args.max_length)
    terminal = ChatTerminal(session, Sampling(args.temperature, args.top_p, args.max_new_tokens))
    if image is not None:
        session.attach_image(image)
        terminal.image_name = args.image
    attached = f"image {args.image}" if args.image else "no image"
    terminal.say(f"chatting with {args.model_dir} ({device}, {attached}, context "
                 f"{session.max_length} tokens). /help for commands, /exit or Ctrl-D to leave.")
    return terminal.run()


if __name__ == "__main__":
    raise SystemExit(main())
