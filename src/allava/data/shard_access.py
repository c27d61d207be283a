"""Reading shards and manifests from where clusters keep them.

A location is a local path, an `http://` / `https://` URL, an fsspec URL (`s3://`, `gs://`, ...;
needs the fsspec package and its filesystem's extra), or `pipe:<shell command>` whose standard
output is the file. A shard that cannot be read (a refused connection, a connection dropped
half-way, a truncated tar) is retried with exponential backoff; a retry skips the samples
already delivered, so none is repeated. When the retries run out, the rest of the shard is
given up and reported as one marker sample (`UNREADABLE_SHARD` key), which the sample processor
counts as a reject: a bad shard costs its samples, never the run.
"""
from __future__ import annotations

import http.client
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from typing import IO, Callable, Iterator

from webdataset.tariterators import group_by_keys, tar_file_iterator

UNREADABLE_SHARD = "__unreadable_shard__"
RETRIES = 3  # after the first try, for remote locations (a local file is read once)
BACKOFF_S = 1.0  # first wait; doubles at every retry
TIMEOUT_S = 60.0
READ_ERRORS = (OSError, EOFError, tarfile.TarError, http.client.HTTPException,
               urllib.error.URLError, subprocess.SubprocessError)


def is_url(location: str) -> bool:
    return "://" in location or location.startswith("pipe:")


def join(base: str, name: str) -> str:
    """`name` inside the directory `base` (a local path or a URL)."""
    return f"{base.rstrip('/')}/{name}"


def parent(location: str) -> str:
    """The directory that holds `location` (a local path or a URL)."""
    return location.rstrip("/").rsplit("/", 1)[0] if "/" in location else "."


class _PipeStream:
    """A `pipe:` command's standard output; closing it checks that the command succeeded."""

    def __init__(self, command: str):
        self.command = command
        self.process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)

    def read(self, size: int = -1) -> bytes:
        data = self.process.stdout.read(size)
        if not data and self.process.wait() != 0:  # end of output: did the command succeed?
            error = self.process.stderr.read().decode(errors="replace").strip()[-300:]
            raise OSError(f"pipe:{self.command} exited with {self.process.returncode}: {error}")
        return data

    def close(self) -> None:
        self.process.stdout.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stderr.close()


def open_location(location: str) -> IO[bytes]:
    """A binary stream of the file at `location`."""
    if location.startswith("pipe:"):
        return _PipeStream(location[len("pipe:"):])  # type: ignore[return-value]
    if location.startswith(("http://", "https://")):
        return urllib.request.urlopen(location, timeout=TIMEOUT_S)
    if "://" in location:
        try:
            import fsspec
        except ImportError as error:
            raise ImportError(f"reading {location} needs fsspec and the filesystem's package "
                              "(pip install 'allava[remote]', plus s3fs or gcsfs)") from error
        return fsspec.open(location, "rb").open()
    return open(location, "rb")


def _retrying(location: str, retries: int | None, backoff_s: float | None,
              sleep: Callable[[float], None]) -> Iterator[int]:
    """Yields the attempt number until the caller stops; waits between attempts."""
    retries = (RETRIES if is_url(location) else 0) if retries is None else retries
    backoff_s = BACKOFF_S if backoff_s is None else backoff_s
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        yield attempt


def _definitive(error: Exception) -> bool:
    """Errors that a retry cannot fix: the file is not there."""
    return (isinstance(error, FileNotFoundError)
            or isinstance(error, urllib.error.HTTPError) and error.code in (401, 403, 404, 410))


def read_bytes(location: str, retries: int | None = None, backoff_s: float | None = None,
               sleep: Callable[[float], None] = time.sleep) -> bytes:
    """The whole file at `location` (a manifest), with the same retries as shards; a file
    that is not there raises FileNotFoundError."""
    error: Exception | None = None
    for _ in _retrying(location, retries, backoff_s, sleep):
        try:
            with closing(open_location(location)) as stream:
                return stream.read()
        except READ_ERRORS as caught:
            if _definitive(caught):
                raise FileNotFoundError(f"{location}: {caught}") from caught
            error = caught
    raise OSError(f"could not read {location}: {error}") from error


def shard_samples(url: str, retries: int | None = None, backoff_s: float | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> Iterator[dict]:
    """The samples of the tar shard at `url`, grouped by key as WebDataset does, each once."""
    delivered = 0
    error: Exception | None = None
    for _ in _retrying(url, retries, backoff_s, sleep):
        try:
            with closing(open_location(url)) as stream:
                members = ({**member, "__url__": url} for member in tar_file_iterator(stream))
                for index, sample in enumerate(group_by_keys(members)):
                    if index < delivered:  # read before the failure: already delivered
                        continue
                    yield sample
                    delivered += 1
            return
        except READ_ERRORS as caught:
            error = caught
            if _definitive(caught):
                break
    yield {"__key__": UNREADABLE_SHARD, "__url__": url, UNREADABLE_SHARD: f"{type(error).__name__}: {error}"[:300]}
