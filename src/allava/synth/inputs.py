"""What the engine works on: images from a folder, a JSON / JSONL / text list, or WebDataset
shards, each with a stable id (the key of resuming) and, per mode, a question or instruction."""
from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from allava.data.image_decode import READABLE_IMAGE_EXTENSIONS

MODES = ("laion", "vflan", "text")


class InputError(ValueError):
    """The input cannot be read at all (as opposed to one bad item, which is a reject)."""


@dataclass(frozen=True)
class WorkItem:
    """One request's worth of input. Images come as a file (`image_file`) or as a member of a
    shard (`image_in_tar`: tar path, data offset, size; read when the item is processed, so a
    large shard input is never held in memory); `image_name` is what the output records'
    `image` field will say."""

    item_id: str
    image_name: str | None = None
    image_file: Path | None = None
    image_in_tar: tuple[Path, int, int] | None = None
    question: str | None = None
    instruction: str | None = None
    problem: str | None = None  # a reason to reject it without asking the teacher


def read_items(path: str | Path, mode: str, image_root: str | Path | None = None) -> list[WorkItem]:
    """Every item of the input, in a stable order (resuming relies on the ids, not the order)."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose among {list(MODES)}")
    source = Path(path)
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if source.is_dir() and not any(source.glob("*.tar")):
        if mode == "text":
            raise InputError("--mode text reads instructions from a JSON, JSONL or .txt file")
        items = _image_folder(source)
    elif source.is_dir() or source.suffix == ".tar":
        items = _shards(sorted(source.glob("*.tar")) if source.is_dir() else [source])
    else:
        items = _listed(source, mode, Path(image_root) if image_root else source.parent)
    _check_unique(items)
    return [_with_problem(item, mode) for item in items]


def _image_folder(folder: Path) -> list[WorkItem]:
    files = sorted(p for p in folder.rglob("*")
                   if p.is_file() and p.suffix.lower().lstrip(".") in READABLE_IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"no images ({', '.join(READABLE_IMAGE_EXTENSIONS)}) under {folder}")
    return [WorkItem(item_id=_id_from_path(p.relative_to(folder)),
                     image_name=p.relative_to(folder).as_posix(), image_file=p) for p in files]


def _id_from_path(relative: Path) -> str:
    return relative.with_suffix("").as_posix().replace("/", "__")


def _listed(path: Path, mode: str, image_root: Path) -> list[WorkItem]:
    entries = _read_entries(path)
    items = []
    for position, entry in enumerate(entries):
        if isinstance(entry, str):  # a bare instruction (text mode)
            entry = {"instruction": entry}
        if not isinstance(entry, dict):
            items.append(WorkItem(item_id=f"{path.stem}_{position}", problem="malformed_input"))
            continue
        item_id = str(entry.get("id", entry.get("idx", f"{path.stem}_{position}")))
        image = entry.get("image")
        image_file = image_root / image if isinstance(image, str) and mode != "text" else None
        items.append(WorkItem(
            item_id=item_id, image_name=image if image_file else None, image_file=image_file,
            question=_text(entry.get("question")), instruction=_text(entry.get("instruction"))))
    return items


def _read_entries(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as error:
            raise InputError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, list):
            raise InputError(f"{path} must hold a JSON list of items")
        return data
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            entries.append(None)  # one broken line is one rejected item, not a failed job
    return entries


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _shards(paths: list[Path]) -> list[WorkItem]:
    """Images (and an optional `json` with id / question / instruction) of each tar sample; only
    the small `json` members are read now, images are located by offset."""
    samples: dict[str, dict[str, tuple[Path, int, int] | bytes]] = {}
    for path in paths:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.rpartition(".")
                ext = ext.lower()
                samples.setdefault(key, {})[ext] = (tar.extractfile(member).read() if ext == "json"
                                                    else (path, member.offset_data, member.size))
    items = []
    for key, members in samples.items():
        meta = {}
        if "json" in members:
            try:
                meta = json.loads(members["json"])
            except ValueError:
                meta = None
        ext = next((e for e in READABLE_IMAGE_EXTENSIONS if e in members), None)
        item_id = str((meta or {}).get("id", key.replace("/", "__")))
        items.append(WorkItem(
            item_id=item_id, image_name=f"images/{item_id}.{ext}" if ext else None,
            image_in_tar=members.get(ext) if ext else None,
            question=_text((meta or {}).get("question")),
            instruction=_text((meta or {}).get("instruction")),
            problem="malformed_input" if meta is None else None))
    return items


def read_image_bytes(item: WorkItem) -> bytes | None:
    """The item's image bytes (from its file or its shard), None when the file is missing."""
    if item.image_in_tar is not None:
        path, offset, size = item.image_in_tar
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)
    return item.image_file.read_bytes() if item.image_file.is_file() else None


def _check_unique(items: list[WorkItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise InputError(f"item id {item.item_id!r} occurs twice in the input; ids must be "
                             "unique, since resuming a run relies on them")
        seen.add(item.item_id)


def _with_problem(item: WorkItem, mode: str) -> WorkItem:
    """Marks an item that lacks what its mode needs: it becomes a reject, not a failed job."""
    if item.problem:
        return item
    problem = None
    if mode == "text" and not item.instruction:
        problem = "missing_instruction"
    elif mode != "text" and item.image_file is None and item.image_in_tar is None:
        problem = "missing_image"
    elif mode == "vflan" and not item.question:
        problem = "missing_question"
    if problem is None:
        return item
    return WorkItem(**{**item.__dict__, "problem": problem})
