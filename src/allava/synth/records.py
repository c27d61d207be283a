"""Build output records in the ALLaVA-4V release schema from parsed teacher replies.

A record is `{"id", "image", "conversations": [human turn, gpt turn]}`; text-only records have
no `image`. Ids carry the source and the record kind (`cap`, `inst`, `text`), so that the caption
and the instruction record made from one image never collide.
"""
from __future__ import annotations

import hashlib
from typing import Any

from allava.synth.inputs import WorkItem

IMAGE_TOKEN = "<image>"


def caption_record(source: str, item_id: str, image: str, description: str,
                   instruction: str) -> dict[str, Any]:
    """A caption record: a describe-this-image instruction and the teacher's description."""
    return _record(f"{source}_cap_{item_id}", f"{IMAGE_TOKEN}\n{instruction}", description, image)


def instruct_record(source: str, item_id: str, image: str, question: str,
                    answer: str) -> dict[str, Any]:
    """An instruction record: a question about the image and the teacher's detailed answer."""
    return _record(f"{source}_inst_{item_id}", f"{IMAGE_TOKEN}\n{question}", answer, image)


def text_record(source: str, item_id: str, instruction: str, answer: str) -> dict[str, Any]:
    """A text-only record: no image key, no image token."""
    return _record(f"{source}_text_{item_id}", instruction, answer)


def pick_caption_instruction(instructions: list[str], item_id: str, seed: int = 0) -> str:
    """One of `instructions`, the same one for the same (seed, item id) in every process.

    Python's hash() is salted per process, so a resumed run would pick differently; a digest
    of the id is not.
    """
    if not instructions:
        raise ValueError("no caption instructions to pick from")
    digest = hashlib.sha256(f"{seed}:{item_id}".encode("utf-8")).digest()
    return instructions[int.from_bytes(digest[:8], "big") % len(instructions)]


def item_records(mode: str, source: str, item: WorkItem, parsed: dict[str, Any],
                 instructions: list[str], seed: int) -> list[dict[str, Any]]:
    """The records of one item from its parsed reply, in record-file order: a text record, or
    a Caption (instruction picked by seed and id) and an Instruct record. The engine and
    `allava synth reparse` both call this, so a re-parsed reply gives the same records."""
    if mode == "text":
        return [text_record(source, item.item_id, item.instruction, parsed["answer"])]
    instruction = pick_caption_instruction(instructions, item.item_id, seed)
    question = parsed.get("question") or item.question
    return [caption_record(source, item.item_id, item.image_name, parsed["description"],
                           instruction),
            instruct_record(source, item.item_id, item.image_name, question, parsed["answer"])]


def _record(record_id: str, human: str, gpt: str, image: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"id": record_id}
    if image is not None:
        record["image"] = image
    record["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return record
