"""Building real `allava synth` job folders for the tests: images of known colours, a scripted
teacher behind the loopback server (tests/helpers/synth_server.py), and the run's arguments.
Shared by tests/synth/test_engine.py and tests/synth/test_reparse.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

from tests.helpers.synth_server import Reply, image_colours

GREEN, RED, BLUE, YELLOW, MAGENTA = (0, 200, 0), (220, 0, 0), (0, 0, 220), (230, 230, 0), (200, 0, 200)
CYAN = (0, 200, 200)
PALETTE = (GREEN, RED, BLUE, YELLOW, MAGENTA, CYAN)
KEY_ENV = "SYNTH_TEST_KEY"  # the variable synth_args tells the run to read its API key from
SECRET = "sk-test-SECRET-4242"  # the key a run reads from KEY_ENV; no file may contain it
ROOT = Path(__file__).resolve().parents[2]


def laion_answer(tag: str) -> str:
    """A well-formed laion reply about a `tag`-coloured square."""
    questions = "\n".join(f"{n}. What does detail number {n} of the {tag} scene suggest?"
                          for n in range(1, 6))
    return (f"### Description\nA plain {tag} square fills the frame, evenly lit, with no other "
            f"object, text or texture anywhere in view.\n\n### Questions\n{questions}\n\n"
            f"### Chosen question\nWhat does detail number 2 of the {tag} scene suggest?\n\n"
            f"### Answer\nThe evenly lit {tag} surface suggests a synthetic test pattern rather "
            "than a photograph, since real scenes show texture, shadows and noise.")


class ScriptedTeacher:
    """Behaviour by image colour: green answers well; red leaves out the answer; blue refuses;
    yellow is rate-limited once (Retry-After: 1); magenta fails once with a 500."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.seen: dict[tuple, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict, index: int) -> Reply:
        colours = image_colours(request)
        colour = nearest_colour(colours[0]) if colours else None
        with self.lock:
            count = self.seen[colour] = self.seen.get(colour, 0) + 1
        if colour == YELLOW and count == 1:
            return Reply(status=429, headers={"Retry-After": "1"}, content="slow down")
        if colour == MAGENTA and count == 1:
            return Reply(status=500, content="server hiccup")
        if colour == RED:
            return Reply(content=laion_answer("red").split("### Answer")[0], delay=self.delay)
        if colour == BLUE:
            return Reply(content="I'm sorry, but I can't help with describing this image.",
                         delay=self.delay)
        return Reply(content=laion_answer("green"), delay=self.delay)


def nearest_colour(rgb: tuple) -> tuple:
    """The colour of PALETTE closest to `rgb` (a JPEG or resize shifts pixels a little)."""
    return min(PALETTE, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, rgb)))


def make_images(folder: Path, colours: dict[str, tuple]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, colour in colours.items():
        Image.new("RGB", (64, 48), colour).save(folder / f"{name}.png")
    return folder


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def synth_args(server, images: Path, out: Path, *extra: str) -> list[str]:
    """`allava synth` arguments for a laion run of `images` against the loopback `server`."""
    return ["--input", str(images), "--out", str(out), "--mode", "laion",
            "--base-url", server.base_url, "--model", "gpt-4o", "--api-key-env", KEY_ENV,
            "--no-progress", *extra]


def assert_secret_absent(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"API key written to {path}"


def run_cli(server, images, out, *extra, **popen):
    env = {**os.environ, KEY_ENV: SECRET, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "allava.synth.cli",
                             *synth_args(server, images, out, *extra)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_sigint, **popen)


def default_sigint() -> None:
    """A job started in the background (nohup, `cmd &`) inherits SIGINT ignored, and Python
    then leaves it ignored: give the child the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_lines(path: Path, count: int, process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().count("\n") >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"finished early: {process.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} lines")
