"""Streamed pieces add up to the final answer, whatever the tokens split: characters cut in the
middle of their bytes, stop strings across tokens, trailing spaces. The tokenizer here is
byte-level (one token per byte, decoded as UTF-8), the hardest case for streaming."""
from __future__ import annotations

import pytest

from allava.serve.answer_text import AnswerText


class ByteTokenizer:
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def stream(text: str, stop: tuple[str, ...] = ()) -> tuple[list[str], AnswerText]:
    """Feeds `text` byte by byte as the worker does; returns the pieces streamed."""
    answer = AnswerText(ByteTokenizer(), stop)
    pieces = []
    for byte in text.encode():
        answer.add(byte)
        if answer.hit_stop():
            break
        pieces.append(answer.fresh())
    pieces.append(answer.rest())
    return [piece for piece in pieces if piece], answer


@pytest.mark.parametrize("text", ["  The cat sat.  ", "naïve café — 東京 🙂 done", "a\nb\n\n",
                                  "x = f(y) + 2; print(x)", "\ufffd ok"])
def test_pieces_add_up_to_the_stripped_answer(text):
    pieces, answer = stream(text)
    assert "".join(pieces) == answer.final() == text.strip()
    assert all("\ufffd" not in piece for piece in pieces) or "\ufffd" in text


def test_a_character_is_sent_only_once_all_its_bytes_are_in():
    answer = AnswerText(ByteTokenizer())
    for byte in "ab 東".encode()[:-1]:  # the last byte of 東 still missing
        answer.add(byte)
    assert answer.fresh() == "ab"
    answer.add("東".encode()[-1])
    assert answer.fresh() == " 東"


def test_text_that_may_start_a_stop_string_waits_and_the_answer_ends_before_it():
    pieces, answer = stream("Sure. The answer is 42.\nUser: more", stop=("\nUser:",))
    assert answer.final() == "Sure. The answer is 42."
    assert "".join(pieces) == answer.final()
    held = AnswerText(ByteTokenizer(), ("STOP",))
    for byte in b"go ST":
        held.add(byte)
    assert held.fresh() == "go"  # "ST" may begin STOP
    for byte in b"AR":
        held.add(byte)
    assert held.fresh() == " STAR"
