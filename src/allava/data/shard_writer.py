"""Write ALLaVA-format records as WebDataset tar shards, with a manifest and a rejects log.

Each sample is `<key>.json` (the record) plus, for image records, `<key>.<ext>` holding the
image's original bytes. A shard is written under a temporary name and renamed only once complete,
and `manifest.json` is written last, so a crash never leaves a directory that looks finished.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import re
import tarfile
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

MANIFEST_NAME = "manifest.json"
REJECTS_NAME = "rejects.jsonl"
MANIFEST_VERSION = 1
IMAGE_EXTENSIONS = ("png", "jpg", "webp")
_EXTENSION_ALIASES = {"jpeg": "jpg"}
_MAX_KEY_CHARS = 120
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_-]")
# Fixed member mtime: the same records give byte-identical shards, which keeps reruns comparable.
_MEMBER_MTIME = 0


def sample_key(record_id: str) -> str:
    """A tar-safe WebDataset key for a record id.

    WebDataset splits a member name at the first '.' of its basename and treats '/' as a folder,
    so ids such as "vflan+img.v2/7" must be rewritten. A rewritten (or shortened) id gets a short
    hash of the original appended, so two ids that only differ in unsafe characters stay distinct.
    The original id is kept in the record's json.
    """
    if not isinstance(record_id, str) or not record_id:
        raise ValueError(f"record id must be a non-empty string, got {record_id!r}")
    safe = _UNSAFE_KEY_CHARS.sub("_", record_id)
    if safe == record_id and len(safe) <= _MAX_KEY_CHARS:
        return safe
    digest = hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:10]
    return f"{safe[:_MAX_KEY_CHARS - 11]}-{digest}"


def normalize_image_ext(ext: str) -> str:
    """"JPEG" / ".jpeg" -> "jpg"; raises for formats the shard schema does not carry."""
    clean = ext.lower().lstrip(".")
    clean = _EXTENSION_ALIASES.get(clean, clean)
    if clean not in IMAGE_EXTENSIONS:
        raise ValueError(f"unsupported image extension {ext!r}; expected one of {IMAGE_EXTENSIONS}")
    return clean


def _tar_member_size(payload_size: int) -> int:
    """Bytes a member takes in a tar: one header block plus data padded to 512-byte blocks."""
    return 512 + -(-payload_size // 512) * 512


class ShardWriter:
    """Stream records into `out_dir/<prefix>-NNNNNN.tar` shards.

    Use as a context manager; `close()` (on normal exit) writes `manifest.json`. On an exception
    the unfinished shard is deleted and no manifest is written.
    """

    def __init__(
        self,
        out_dir: str | Path,
        prefix: str = "shard",
        samples_per_shard: int = 1000,
        max_shard_bytes: int | None = None,
        overwrite: bool = False,
        metadata: dict[str, Any] | None = None,
        resume: dict[str, Any] | None = None,
        on_shard_closed: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`resume`: a `state()` saved by `on_shard_closed` during an interrupted run into this
        directory; the shards it lists are kept and writing continues after them. Anything
        written after that state (later shards, rejects) is discarded."""
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        if max_shard_bytes is not None and max_shard_bytes < 1:
            raise ValueError(f"max_shard_bytes must be positive or None, got {max_shard_bytes}")
        if _UNSAFE_KEY_CHARS.search(prefix):
            raise ValueError(f"shard prefix {prefix!r} may only contain letters, digits, '_' and '-'")
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.samples_per_shard = samples_per_shard
        self.max_shard_bytes = max_shard_bytes
        self.metadata = dict(metadata or {})
        self.on_shard_closed = on_shard_closed
        self._shards: list[dict[str, Any]] = []
        self._tar: tarfile.TarFile | None = None
        self._tar_tmp: Path | None = None
        self._shard_samples = 0
        self._keys: set[str] = set()  # duplicate ids would silently merge samples in a reader
        self._written = 0
        self._with_image = 0
        self._rejects: Counter[str] = Counter()
        self._rejects_file: io.TextIOWrapper | None = None
        self._closed = False
        self.manifest: dict[str, Any] | None = None
        if resume is None:
            self._prepare_dir(overwrite)
        else:
            self._restore(resume)

    # --- setup ----------------------------------------------------------------------------------

    def _existing_outputs(self) -> list[Path]:
        names = [MANIFEST_NAME, REJECTS_NAME]
        found = [self.out_dir / n for n in names if (self.out_dir / n).exists()]
        found += sorted(self.out_dir.glob(f"{self.prefix}-*.tar"))
        return found

    def _prepare_dir(self, overwrite: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.out_dir.glob(f"{self.prefix}-*.tar.tmp"):  # leftovers of a crash
            stale.unlink()
        existing = self._existing_outputs()
        if existing and not overwrite:
            raise FileExistsError(
                f"{self.out_dir} already holds shard output ({existing[0].name}, ...); "
                "choose an empty directory or pass overwrite=True"
            )
        for path in existing:
            path.unlink()

    def _restore(self, state: dict[str, Any]) -> None:
        kept = {shard["name"] for shard in state["shards"]}
        for path in self.out_dir.glob(f"{self.prefix}-*.tar*"):
            if path.name not in kept:  # written after the saved state, or unfinished
                path.unlink()
        for shard in state["shards"]:
            path = self.out_dir / shard["name"]
            if not path.is_file() or path.stat().st_size != shard["bytes"]:
                raise RuntimeError(f"cannot resume in {self.out_dir}: {shard['name']} is missing "
                                   "or changed since it was written; start over with overwrite")
            with tarfile.open(path) as tar:
                self._keys.update(name.split(".", 1)[0] for name in tar.getnames())
        self._shards = [dict(shard) for shard in state["shards"]]
        self._written = state["written"]
        self._with_image = state["with_image"]
        self._rejects = Counter(state["rejected_by_reason"])
        (self.out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        rejects = self.out_dir / REJECTS_NAME
        if rejects.is_file():  # keep the lines the state accounts for
            lines = rejects.read_text(encoding="utf-8").splitlines(keepends=True)
            rejects.write_text("".join(lines[: sum(self._rejects.values())]), encoding="utf-8")

    def state(self) -> dict[str, Any]:
        """What `resume` needs: everything written so far, as of the last finished shard."""
        return {"shards": [dict(shard) for shard in self._shards], "written": self._written,
                "with_image": self._with_image, "rejected_by_reason": dict(self._rejects)}

    # --- writing --------------------------------------------------------------------------------

    def _shard_name(self, number: int) -> str:
        return f"{self.prefix}-{number:06d}.tar"

    def _open_shard(self) -> tarfile.TarFile:
        name = self._shard_name(len(self._shards))
        self._tar_tmp = self.out_dir / f"{name}.tmp"
        self._tar = tarfile.open(self._tar_tmp, "w", format=tarfile.GNU_FORMAT)
        self._shard_samples = 0
        return self._tar

    def _finish_shard(self) -> None:
        if self._tar is None or self._tar_tmp is None:
            return
        self._tar.close()
        if self._shard_samples == 0:
            self._tar_tmp.unlink()
        else:
            final = self._tar_tmp.with_name(self._tar_tmp.name[: -len(".tmp")])
            self._tar_tmp.replace(final)  # atomic: the .tar name only ever holds a whole shard
            self._shards.append(
                {"name": final.name, "samples": self._shard_samples, "bytes": final.stat().st_size}
            )
        self._tar, self._tar_tmp = None, None
        if self.on_shard_closed is not None and self._shard_samples:
            if self._rejects_file is not None:
                self._rejects_file.flush()
            self.on_shard_closed(self.state())

    def _add_member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = _MEMBER_MTIME
        info.mode = 0o444
        assert self._tar is not None
        self._tar.addfile(info, io.BytesIO(data))

    def write(
        self, record: dict[str, Any], image_bytes: bytes | None = None, image_ext: str | None = None
    ) -> str | None:
        """Write one sample; returns its key, or None when rejected as a duplicate id."""
        if self._closed:
            raise RuntimeError(f"ShardWriter for {self.out_dir} is already closed")
        if (image_bytes is None) != (image_ext is None):
            raise ValueError("pass image_bytes and image_ext together (or neither, for text-only)")
        record_id = record.get("id")
        key = sample_key(record_id)  # type: ignore[arg-type]
        if key in self._keys:
            self.reject(record_id, "duplicate_id", detail=f"sample key {key!r} already written")
            return None
        payload = json.dumps(record, ensure_ascii=False).encode("utf-8")
        members = [(f"{key}.json", payload)]
        if image_bytes is not None:
            members.insert(0, (f"{key}.{normalize_image_ext(image_ext)}", image_bytes))  # type: ignore[arg-type]

        tar = self._tar or self._open_shard()
        sample_bytes = sum(_tar_member_size(len(data)) for _, data in members)
        full = self._shard_samples >= self.samples_per_shard or (
            self.max_shard_bytes is not None
            and self._shard_samples > 0
            and tar.offset + sample_bytes > self.max_shard_bytes
        )
        if full:
            self._finish_shard()
            self._open_shard()
        for name, data in members:
            self._add_member(name, data)
        self._keys.add(key)
        self._shard_samples += 1
        self._written += 1
        self._with_image += image_bytes is not None
        return key

    def reject(
        self, record_id: str | None, reason: str, input: str | None = None, detail: str | None = None
    ) -> None:
        """Count an input record that is not written, and log it to rejects.jsonl."""
        entry: dict[str, Any] = {"id": record_id, "reason": reason}
        if input is not None:
            entry["input"] = input
        if detail is not None:
            entry["detail"] = detail
        if self._rejects_file is None:
            self._rejects_file = (self.out_dir / REJECTS_NAME).open("a", encoding="utf-8")
        self._rejects_file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._rejects[reason] += 1

    # --- finishing ------------------------------------------------------------------------------

    def close(self) -> dict[str, Any]:
        """Finish the last shard and write manifest.json; returns the manifest."""
        if self._closed:
            assert self.manifest is not None
            return self.manifest
        self._finish_shard()
        if self._rejects_file is not None:
            self._rejects_file.close()
        rejected = sum(self._rejects.values())
        manifest = {
            "format_version": MANIFEST_VERSION,
            "shards": self._shards,
            "totals": {
                "records_in": self._written + rejected,
                "samples_written": self._written,
                "samples_with_image": self._with_image,
                "rejected": rejected,
                "rejected_by_reason": dict(sorted(self._rejects.items())),
                "shards": len(self._shards),
            },
            "prefix": self.prefix,
            "samples_per_shard": self.samples_per_shard,
            "max_shard_bytes": self.max_shard_bytes,
            "rejects_file": REJECTS_NAME if rejected else None,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "metadata": self.metadata,
        }
        tmp = self.out_dir / f"{MANIFEST_NAME}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.out_dir / MANIFEST_NAME)
        self._closed = True
        self.manifest = manifest
        return manifest

    def abort(self) -> None:
        """Stop without a manifest: drop the unfinished shard, keep the rejects log."""
        if self._tar is not None and self._tar_tmp is not None:
            self._tar.close()
            self._tar_tmp.unlink(missing_ok=True)
            self._tar, self._tar_tmp = None, None
        if self._rejects_file is not None:
            self._rejects_file.close()
        self._closed = True

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Load `directory/manifest.json`, with an error that says what to do when it is missing."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no shard manifest at {path}; generate or convert the dataset into {Path(directory)} "
            "first (a directory without manifest.json is missing or was not finished)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def shard_paths(directory: str | Path) -> list[Path]:
    """The shard files listed in a directory's manifest, in order."""
    manifest = read_manifest(directory)
    return [Path(directory) / shard["name"] for shard in manifest["shards"]]
