"""A real HTTP server on loopback that serves a directory of shards, with the faults object
storage shows: a connection dropped half-way through a file, a first request that fails."""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator


class FaultyHandler(SimpleHTTPRequestHandler):
    faults: dict[str, str]  # URL path -> "drop_half" (every time) or "fail_first"
    requests: Counter

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.requests[self.path] += 1
        fault = self.faults.get(self.path)
        if fault == "fail_first" and self.requests[self.path] == 1:
            self.send_error(503, "try again")
            return
        if fault == "drop_half":
            data = Path(self.translate_path(self.path)).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@contextmanager
def serve_directory(root: Path, faults: dict[str, str] | None = None) -> Iterator[tuple[str, Counter]]:
    """Yields (base URL, request counts per path) while a server serves `root`."""
    requests: Counter = Counter()
    handler = type("Handler", (FaultyHandler,), {"faults": faults or {}, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
