"""A real OpenAI-style Batch API on loopback, for the `allava synth --batch` tests: `/v1/files`
(multipart upload, content) and `/v1/batches` (create, retrieve, list), in a thread.

Each request line of a batch is answered by a scripted `responder(request_json, index) -> Reply`
exactly as tests/helpers/synth_server.py's teacher answers online requests (NO_LINE: the request
gets no result line at all). `fate(batch_index, lines) -> Fate` decides how each created batch
ends: completed, failed (validation), or expired / cancelled after its first N requests.
A batch runs when it is first retrieved after `release` is set; until then it stays in_progress.

    with LoopbackBatchAPI(lambda req, i: Reply(content="hello")) as server:
        ... server.base_url, server.created (batch ids, in order), server.calls
"""
from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from tests.helpers.synth_server import (JsonHandler, LoopbackServer, Reply, completion_body,
                                        error_body, scripted_reply)

NO_LINE = Reply(status=0)  # a responder's answer meaning "leave this request out of the files"


@dataclass(frozen=True)
class Fate:
    status: str = "completed"   # completed, failed, expired or cancelled
    finished: int | None = None  # expired / cancelled: how many requests ran, in file order
    message: str = "line 1: the model field is required"  # failed: the validation error


class LoopbackBatchAPI:
    def __init__(self, responder: Callable[[dict, int], Reply],
                 fate: Callable[[int, list[dict]], Fate] = lambda index, lines: Fate()):
        self.responder = responder
        self.fate = fate
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.created: list[str] = []     # batch ids in order of creation
        self.requests: list[dict] = []   # the chat-completions bodies answered
        self.calls: list[str] = []       # "GET /v1/batches/batch_0", ...: every HTTP round trip
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()
        self._server = LoopbackServer(("127.0.0.1", 0), self._handler_class())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "LoopbackBatchAPI":
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def input_lines(self, batch_id: str) -> list[dict]:
        data = self.files[self.batches[batch_id]["input_file_id"]]
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    # --- the API -----------------------------------------------------------------------------
    def upload(self, content_type: str, raw: bytes) -> tuple[int, dict]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"):
                  (part.get_filename(), part.get_payload(decode=True))
                  for part in message.iter_parts()}
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"batch":
            return 400, error_body(400, "expected a file and purpose=batch")
        filename, data = fields["file"]
        return 200, self._add_file(data, filename or "upload.jsonl", "batch")

    def create(self, request: dict) -> tuple[int, dict]:
        if request.get("input_file_id") not in self.files:
            return 400, error_body(400, f"no file {request.get('input_file_id')!r}")
        if request.get("endpoint") != "/v1/chat/completions" or request.get("completion_window") != "24h":
            return 400, error_body(400, "unsupported endpoint or completion_window")
        batch_id = f"batch_{len(self.created)}"
        self.created.append(batch_id)
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": request["endpoint"],
            "input_file_id": request["input_file_id"], "completion_window": "24h",
            "status": "validating", "created_at": int(time.time()), "output_file_id": None,
            "error_file_id": None, "errors": None, "metadata": request.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0}}
        return 200, self.batches[batch_id]

    def retrieve(self, batch_id: str) -> tuple[int, dict]:
        batch = self.batches.get(batch_id)
        if batch is None:
            return 404, error_body(404, f"no batch {batch_id!r}")
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
            batch["request_counts"]["total"] = len(self.input_lines(batch_id))
        elif batch["status"] == "in_progress" and self.release.is_set():
            self._run(batch)
        return 200, batch

    def listing(self) -> tuple[int, dict]:
        newest_first = [self.batches[i] for i in reversed(self.created)]
        return 200, {"object": "list", "data": newest_first, "has_more": False,
                     "first_id": newest_first[0]["id"] if newest_first else None,
                     "last_id": newest_first[-1]["id"] if newest_first else None}

    def content(self, file_id: str) -> tuple[int, bytes]:
        if file_id not in self.files:
            return 404, json.dumps(error_body(404, f"no file {file_id!r}")).encode()
        return 200, self.files[file_id]

    # --- running a batch ---------------------------------------------------------------------
    def _run(self, batch: dict) -> None:
        lines = self.input_lines(batch["id"])
        fate = self.fate(self.created.index(batch["id"]), lines)
        if fate.status == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "message": fate.message, "line": 1, "param": None}]}
            return
        ran = lines if fate.finished is None else lines[:fate.finished]
        output, errors = [], []
        for line in ran:
            answer = self._answer(line)
            if answer is not None:
                (output if answer["response"]["status_code"] == 200 else errors).append(answer)
        for line in lines[len(ran):]:
            errors.append({"id": f"batch_req_{line['custom_id']}", "custom_id": line["custom_id"],
                           "response": None, "error": {
                               "code": f"batch_{fate.status}",
                               "message": "This request could not be executed before the "
                                          "completion window expired."}})
        if output:
            batch["output_file_id"] = self._add_file(_jsonl(output), "output.jsonl",
                                                     "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self._add_file(_jsonl(errors), "errors.jsonl",
                                                    "batch_output")["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(output),
                                   "failed": len(lines) - len(output)}
        batch["status"] = fate.status

    def _answer(self, line: dict) -> dict | None:
        request = line["body"]
        with self._lock:
            self.requests.append(request)
            index = len(self.requests) - 1
        reply = scripted_reply(self.responder, request, index)
        if reply.status == 0:
            return None
        body = (completion_body(request, reply.content, reply.finish_reason)
                if reply.status == 200 else error_body(reply.status, reply.content))
        return {"id": f"batch_req_{index}", "custom_id": line["custom_id"], "error": None,
                "response": {"status_code": reply.status, "request_id": f"req_{index}",
                             "body": body}}

    def _add_file(self, data: bytes, filename: str, purpose: str) -> dict:
        with self._lock:
            file_id = f"file-{len(self.files)}"
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}

    def _handler_class(self):
        owner = self

        class Handler(JsonHandler):
            def _reply(self, status: int, body: dict | bytes) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                headers = {"Content-Type": "application/octet-stream"} if isinstance(body, bytes) else {}
                self._send(status, data, headers)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = urlsplit(self.path).path.rstrip("/")
                with owner._lock:
                    owner.calls.append(f"POST {path}")
                if path == "/v1/files":
                    return self._reply(*owner.upload(self.headers.get("Content-Type", ""), raw))
                if path == "/v1/batches":
                    with owner._lock:
                        return self._reply(*owner.create(json.loads(raw)))
                self._reply(404, error_body(404, f"no route {path}"))

            def do_GET(self):
                path = urlsplit(self.path).path.rstrip("/")
                with owner._lock:
                    owner.calls.append(f"GET {path}")
                parts = path.split("/")[1:]  # v1, batches|files, ...
                if parts == ["v1", "batches"]:
                    return self._reply(*owner.listing())
                if len(parts) == 3 and parts[1] == "batches":
                    return self._reply(*owner.retrieve(parts[2]))
                if len(parts) == 4 and parts[1] == "files" and parts[3] == "content":
                    return self._reply(*owner.content(parts[2]))
                self._reply(404, error_body(404, f"no route {path}"))

        return Handler


def _jsonl(entries: list[dict]) -> bytes:
    return "".join(json.dumps(entry) + "\n" for entry in entries).encode()
