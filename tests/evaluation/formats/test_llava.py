"""What the readers of LLaVA-1.5's layout share: the short-answer instruction removed from a question."""

from __future__ import annotations

from allava.evaluation.formats.llava import strip_short_answer_suffix

from tests.helpers.eval_llava_files import SUFFIX


def test_suffix_is_removed_once_and_only_at_the_end() -> None:
    assert strip_short_answer_suffix("Q?" + SUFFIX) == "Q?"
    assert strip_short_answer_suffix("Q?" + SUFFIX + SUFFIX) == "Q?" + SUFFIX
    assert strip_short_answer_suffix("Q?" + SUFFIX + "\n") == "Q?"
    middle = "Answer the question using a single word or phrase. Then what?"
    assert strip_short_answer_suffix(middle) == middle
