"""`predictions.jsonl`: the model's answers, appended per batch so that a crashed evaluation
resumes where it stopped.

A run writes `run.json` beside it (benchmark, layout, prompt style, generation length, model):
rerunning into the same directory with the same settings continues the file; with other settings
it is refused, since mixing answers made under two prompts would score neither.

Score-only mode reads the same file, and also hand-made or LLaVA-style answer files: the index may
be `index` or `question_id`, the answer `prediction` or `text`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from allava.utils.jsonl_files import complete_lines, rewrite_lines

PREDICTIONS = "predictions.jsonl"
RUN_FILE = "run.json"
_INDEX_KEYS = ("index", "question_id")
_ANSWER_KEYS = ("prediction", "text", "answer")


class PredictionsFile:
    """Appends `{"index", "prediction"}` lines to DIR/predictions.jsonl, flushed per batch."""

    def __init__(self, directory: Path, identity: Mapping[str, Any]):
        self.path = directory / PREDICTIONS
        self.run_file = directory / RUN_FILE
        self.identity = json.loads(json.dumps(dict(identity), default=str))  # as it reads back
        self._handle = None

    def load(self) -> dict[str, str]:
        """The answers already made by an earlier run with the same settings ({str(index): text});
        a torn last line (killed mid-write) is cut off. Raises if the settings differ."""
        if self.run_file.is_file():
            saved = json.loads(self.run_file.read_text(encoding="utf-8"))
            if saved != self.identity:
                changed = sorted(k for k in set(saved) | set(self.identity) if saved.get(k) != self.identity.get(k))
                raise FileExistsError(
                    f"{self.path.parent} holds predictions made with other settings (differ in "
                    f"{changed}); evaluate into a new directory, or delete it to start over")
        elif self.path.is_file():
            raise FileExistsError(f"{self.path} exists without {RUN_FILE}: not written by this "
                                  "evaluator; move it away, or score it with predictions_dir=")
        self.run_file.write_text(json.dumps(self.identity, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        if not self.path.is_file():
            return {}
        lines, torn = complete_lines(self.path)
        if torn:
            rewrite_lines(self.path, lines)
        return {str(entry["index"]): entry["prediction"] for entry in map(json.loads, lines)}

    def append(self, answers: Sequence[tuple[int | str, str]]) -> None:
        if self._handle is None:
            self._handle = self.path.open("a", encoding="utf-8")
        for index, prediction in answers:
            self._handle.write(json.dumps({"index": index, "prediction": prediction}, ensure_ascii=False) + "\n")
        self._handle.flush()  # a crash loses at most the batch in flight

    def __enter__(self) -> "PredictionsFile":
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def read_predictions(path: Path) -> dict[str, str]:
    """{str(index): prediction} from a predictions file (see the module docstring for the keys)."""
    if not path.is_file():
        raise FileNotFoundError(f"no predictions file {path}; score-only mode reads "
                                "<predictions_dir>/<benchmark>/predictions.jsonl")
    predictions: dict[str, str] = {}
    # A hand-written file may end without a newline; nothing is appended to it here.
    lines, torn = complete_lines(path, unterminated_is_torn=False)
    for number, line in enumerate(lines, 1):
        entry = json.loads(line)
        index = next((entry[key] for key in _INDEX_KEYS if key in entry), None)
        answer = next((entry[key] for key in _ANSWER_KEYS if key in entry), None)
        if index is None or not isinstance(answer, str):
            raise ValueError(f"{path}, line {number}: expected an object with `index` (or "
                             f"`question_id`) and a string `prediction` (or `text`), got {line[:200]}")
        if str(index) in predictions:
            raise ValueError(f"{path}, line {number}: index {index!r} is answered twice")
        predictions[str(index)] = answer
    if torn:
        raise ValueError(f"{path}: {torn} line(s) are not JSON (a torn write?); fix or remove them")
    return predictions
