"""One answer's text, as its token ids arrive.

The answer is `decode(ids)` without special tokens, stripped, and cut before the first stop
string: with no stop string, what `VLMPredictor.answer` returns for the same ids. Streamed
pieces add up to exactly that text, so a piece is sent only once later tokens cannot change it:
- a character still missing bytes (decoded as U+FFFD) waits for the rest of its bytes;
- whitespace at the end waits for what follows (the final answer drops trailing whitespace);
- text that could be the start of a stop string waits until it is known not to be one;
- after a symbol, text waits for the next space: tokenizers that tidy spaces around
  punctuation when decoding may still change it (TextStreamer's rule). Letters, digits and
  marks of any script go out at once.
"""
from __future__ import annotations

import unicodedata

PARTIAL_CHARACTER = "\ufffd"


class AnswerText:
    def __init__(self, tokenizer, stop: tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.stop = stop
        self.ids: list[int] = []
        self.sent = ""  # text already streamed
        self._decoded = ("", 0)  # (text, number of ids it decodes), so each step decodes once

    def add(self, token: int) -> None:
        self.ids.append(token)

    def decoded(self) -> str:
        text, count = self._decoded
        if count != len(self.ids):
            text = self.tokenizer.decode(self.ids, skip_special_tokens=True).lstrip()
            self._decoded = (text, len(self.ids))
        return text

    def _stop_index(self, text: str) -> int | None:
        found = [index for index in (text.find(stop) for stop in self.stop) if index >= 0]
        return min(found) if found else None

    def hit_stop(self) -> bool:
        return bool(self.stop) and self._stop_index(self.decoded()) is not None

    def final(self) -> str:
        text = self.decoded()
        cut = self._stop_index(text)
        return (text if cut is None else text[:cut]).rstrip()

    def fresh(self) -> str:
        """The text to stream now (may be empty); remembered as sent."""
        ready = self._settled()
        if not ready.startswith(self.sent):  # decoding changed sent text: wait for `rest`
            return ""
        piece, self.sent = ready[len(self.sent):], ready
        return piece

    def rest(self) -> str:
        """The last piece, once the answer is complete: the final text not streamed yet."""
        final = self.final()
        return final[len(self.sent):] if final.startswith(self.sent) else ""

    def _settled(self) -> str:
        text = self.decoded()
        cut = self._stop_index(text)
        if cut is not None:
            text = text[:cut]
        else:
            text = text.rstrip(PARTIAL_CHARACTER)
            text = text[:len(text) - self._stop_prefix_length(text)]
        text = text.rstrip()
        if not text.startswith(self.sent):
            return text
        pending = text[len(self.sent):]
        if not all(char.isspace() or unicodedata.category(char)[0] in "LMN" for char in pending):
            last_space = max(pending.rfind(" "), pending.rfind("\n"))
            text = self.sent + pending[:max(last_space, 0)]
        return text

    def _stop_prefix_length(self, text: str) -> int:
        """Length of the longest end of `text` that begins a stop string."""
        for length in range(min(len(text), max(map(len, self.stop), default=1) - 1), 0, -1):
            if any(stop.startswith(text[-length:]) for stop in self.stop):
                return length
        return 0
