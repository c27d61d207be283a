"""`allava serve` as a real subprocess on loopback, for the tests and the benchmark.

    with ServeProcess(model_dir, "--max-batch-size", "8") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none")
    a, b = start_together(ServeProcess(model_dir), ServeProcess(model_dir, "--max-queue", "1"))

The server is started with `--port 0`; its `listening on http://HOST:PORT` line gives the URL.
Its stderr goes to a temporary file, shown when it fails to start.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

LISTENING = "listening on "
ROOT = Path(__file__).resolve().parents[2]


class ServeProcess:
    def __init__(self, model_dir: Path | str, *options: str, env: dict | None = None,
                 start_timeout: float = 120.0):
        self.command = [sys.executable, "-m", "allava.serve.cli", str(model_dir),
                        "--port", "0", "--device", "cpu", *options]
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.url = ""
        self.process: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile("w+")
        self._lines: queue.Queue[str | None] = queue.Queue()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> "ServeProcess":
        self.launch()
        return self.wait_listening()

    def launch(self) -> None:
        """Starts the process without waiting for it (servers start faster side by side)."""
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                        stderr=self._stderr, text=True, env=self.env, cwd=ROOT)
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def wait_listening(self) -> "ServeProcess":
        while True:
            try:
                line = self._lines.get(timeout=self.start_timeout)
            except queue.Empty:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"no `{LISTENING}` line in {self.start_timeout} s:\n"
                                   f"{self.stderr()}") from None
            if line is None:
                raise RuntimeError(f"the server exited with {self.process.wait()} before "
                                   f"listening:\n{self.stderr()}")
            if line.startswith(LISTENING):
                self.url = line[len(LISTENING):].strip()
                return self

    def _read_stdout(self) -> None:
        for line in self.process.stdout:  # drained to the end, so the server never blocks
            self._lines.put(line)
        self._lines.put(None)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.load(response)

    def stats(self) -> dict:
        return self.get("/stats")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Sends `sig` (when still running) and returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def close(self) -> int:
        status = self.stop()
        self._stderr.close()
        return status

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def start_together(*servers: ServeProcess) -> list[ServeProcess]:
    for server in servers:
        server.launch()
    return [server.wait_listening() for server in servers]
