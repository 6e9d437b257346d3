"""An OpenAI-compatible chat server on 127.0.0.1 that fails on cue: not ours, a plain ``http.server``.

``srv.script`` lists how the next requests are answered, one entry each: an HTTP status with
optional headers (``(503, {"Retry-After": "1"})``) or ``"ok"``; once it runs out every request is
answered with ``srv.answer``. ``srv.times`` holds each request's arrival (monotonic seconds).
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: dict, headers: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.times.append(time.monotonic())
            srv.requests.append(body)
            step = srv.script.pop(0) if srv.script else "ok"
        if step != "ok":
            status, headers = step if isinstance(step, tuple) else (step, {})
            return self._send(status, {"error": {"message": f"scripted {status}", "type": "server_error"}}, headers)
        self._send(200, {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": srv.answer}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})


@contextmanager
def fake_openai(answer: str = "A"):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.script, srv.times, srv.requests, srv.answer, srv.lock = [], [], [], answer, threading.Lock()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
