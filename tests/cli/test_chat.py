"""`allava chat` driven as a person would: a real pseudo-terminal (pexpect), a tiny exported model.

The model has random weights, so its answers are gibberish; what is checked is the behaviour:
prompts, answers written between them, commands, the context budget, exit codes.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from PIL import Image

from tests.helpers.tiny_model import export_tiny_model

YOU = "you> "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # readline's terminal codes, if any


@pytest.fixture(scope="module")
def model_dir(toy_root, tmp_path_factory) -> Path:
    return export_tiny_model(toy_root, tmp_path_factory.mktemp("chat"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    paths = {"scene": root / "scene.png", "other": root / "other.png",
             "corrupt": root / "corrupt.png"}
    Image.effect_noise((32, 32), 64).convert("RGB").save(paths["scene"])
    Image.new("RGB", (48, 40), (200, 30, 30)).save(paths["other"])
    paths["corrupt"].write_bytes(b"not a png at all")
    return paths


def spawn_chat(model_dir: Path, *options: str) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "allava.cli.main", "chat", str(model_dir),
                                           "--device", "cpu", *options],
                          encoding="utf-8", timeout=90, dimensions=(40, 300))
    child.expect("chatting with")
    child.expect_exact(YOU)
    return child


def clean(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


def command(child: pexpect.spawn, line: str) -> str:
    """What the chat prints for `line` before its next prompt."""
    child.sendline(line)
    child.expect_exact(YOU)
    printed = clean(child.before)
    return printed.split("\n", 1)[1] if "\n" in printed else ""  # past the echoed line


def ask(child: pexpect.spawn, question: str) -> tuple[str, str]:
    """(notes printed before the answer, the answer) for `question`."""
    child.sendline(question)
    child.expect_exact("model> ")
    notes = clean(child.before).split("\n", 1)[1]
    child.expect_exact(YOU)
    return notes, clean(child.before).strip()


def leaves(child: pexpect.spawn) -> int:
    """The exit status, once the chat has ended and said nothing more (no traceback)."""
    child.expect(pexpect.EOF)
    assert clean(child.before).strip() in ("", "/exit")  # the echo of what was typed
    return child.wait()


def context(child: pexpect.spawn) -> tuple[int, int]:
    """(turns, tokens) the conversation holds, from /context."""
    found = re.search(r"\((\d+) turn\(s\), (\d+) of (\d+) tokens", command(child, "/context"))
    assert found, "no /context line"
    return int(found[1]), int(found[2])


@pytest.mark.slow
def test_a_chat_session_in_a_terminal(model_dir, images):
    child = spawn_chat(model_dir, "--image", str(images["scene"]), "--temperature", "0",
                       "--max-new-tokens", "6", "--max-length", "96")
    assert context(child) == (0, 0)
    # Multi-turn: each answer is written after `model> `, and joins the conversation.
    _, first = ask(child, "What shape is in the picture?")
    assert first
    turns, after_first = context(child)
    assert turns == 1 and after_first > 0
    _, second = ask(child, "And which colour is it?")
    assert second
    turns, tokens = context(child)
    assert turns == 2 and tokens > after_first  # the second prompt carried the first turn

    # Bad input is reported and the conversation goes on.
    missing = command(child, "/image no/such/file.png")
    assert "cannot open image no/such/file.png" in missing and "goes on unchanged" in missing
    assert "cannot open image" in command(child, f"/image {images['corrupt']}")
    assert "unknown command /frobnicate; /help lists them" in command(child, "/frobnicate")
    assert context(child) == (2, tokens)
    assert "/image PATH" in command(child, "/help")

    # A long conversation forgets its oldest turns, and says so, to stay within --max-length.
    notes = ""
    for question in ("Where is it in the picture, left or right?",) * 6:
        notes, _ = ask(child, question)
        if "forgot" in notes:
            break
    assert "context full: forgot the" in notes and "the image stays" in notes
    assert context(child)[1] <= 96

    assert "conversation reset; image" in command(child, "/reset")
    assert context(child) == (0, 0)
    ask(child, "What shape is in the picture?")
    attached = command(child, f"/image '{images['other']}'")
    assert "attached; new conversation" in attached
    assert context(child) == (0, 0)
    _, answer = ask(child, "What colour is it?")
    assert answer
    assert "text-only" in command(child, "/noimage")
    _, answer = ask(child, "Hello?")
    assert answer

    child.sendline("/exit")
    assert leaves(child) == 0


@pytest.mark.slow
def test_answers_are_bounded_stoppable_and_ctrl_d_leaves(model_dir, images):
    scene = ["--image", str(images["scene"]), "--temperature", "0"]
    question = "What shape is in the picture?"
    short = spawn_chat(model_dir, *scene, "--max-new-tokens", "3")
    _, bounded = ask(short, question)
    short.sendeof()  # Ctrl-D at the prompt
    assert leaves(short) == 0

    long = spawn_chat(model_dir, *scene, "--max-new-tokens", "450", "--max-length", "512")
    _, unbounded = ask(long, question)
    # Greedy: the same answer, cut after 3 tokens.
    assert unbounded.startswith(bounded) and len(unbounded) > len(bounded)
    # Ctrl-C while an answer is being written stops it; the chat goes on without it. A long
    # answer takes a fraction of a second here: should Ctrl-C come just after it, it only
    # prints a hint, and the question is asked again.
    for _ in range(5):
        command(long, "/reset")  # room for a long answer
        long.sendline("Describe everything you see, in detail.")
        long.expect_exact("model> ")
        long.sendintr()
        stopped = long.expect_exact(["[stopped; this answer is not kept]",
                                     "(/exit or Ctrl-D to leave)", "(stopped)"]) == 0
        long.expect_exact(YOU)
        if stopped:
            break
    assert stopped
    assert context(long) == (0, 0)
    long.sendeof()
    assert leaves(long) == 0


def test_a_model_dir_that_is_not_one_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "allava.cli.main", "chat", str(tmp_path),
                             "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is not an exported model directory" in result.stderr
