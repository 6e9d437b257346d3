"""The AVDS LLM judge against an independent OpenAI-compatible server on 127.0.0.1.

The server here is not ours (not the Serve app): a plain ``http.server`` that speaks the chat
completions wire format and grades by a fixed rule, so the test checks what the judge sends
(path, model, messages, bearer key) and how it reads what comes back, including replies a real
judge can give that hold no usable score.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

KEY = "judge-secret-42"


def rule(prompt: str) -> int:
    """The fixed grading rule: 10 x the share of reference words the candidate repeats (rounded)."""
    refs = prompt.split("References:\n", 1)[1].split("\n\nCandidate:\n", 1)[0]
    cand = prompt.split("\n\nCandidate:\n", 1)[1].rsplit("\n\nScore:", 1)[0]
    words = lambda s: set(re.findall(r"[a-z']+", s.lower()))  # noqa: E731
    ref = words(refs)
    return round(10 * len(ref & words(cand)) / len(ref)) if ref else 0


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, code: int, body: bytes, ctype: str = "application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            return self._send(401, json.dumps({"error": {"message": "bad key", "type": "invalid_request_error"}}).encode())
        mode = self.server.mode
        if self.server.fail_next > 0:  # transient overload: the next N requests fail
            self.server.fail_next -= 1
            mode = "500"
        if mode == "500":
            return self._send(500, json.dumps({"error": {"message": "judge overloaded"}}).encode())
        if mode == "not_json":
            return self._send(200, b"<html>gateway says hi</html>", "text/html")
        content = {"rule": f"Score: {rule(body['messages'][-1]['content'])}/10", "no_number": "I cannot grade this summary.",
                   "out_of_range": "42"}[mode]
        reply = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        self._send(200, json.dumps(reply).encode())


@pytest.fixture
def judge_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.mode, srv.fail_next = [], "rule", 0
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _judge(srv, monkeypatch, key=KEY, max_attempts=2):
    from eval.metrics.judge import Judge

    monkeypatch.setenv("MY_JUDGE_KEY", key)
    return Judge(f"http://127.0.0.1:{srv.server_address[1]}/v1", "judge-model-x", api_key_env="MY_JUDGE_KEY", timeout_s=10,
                 max_attempts=max_attempts)


REFS = ["Alice asks Bob for the report and Bob promises it by Friday."]


def test_request_format_and_score(judge_server, monkeypatch):
    judge = _judge(judge_server, monkeypatch)
    cand = "Alice asks Bob for the report."
    assert judge.rate(cand, REFS) == (float(rule(f"References:\n- {REFS[0]}\n\nCandidate:\n{cand}\n\nScore:")), None)
    assert judge.score(cand, REFS) == 5.0  # 6 of the 11 distinct reference words, x10, rounded (hand-counted)
    req = judge_server.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["model"] == "judge-model-x"
    assert body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["user"]
    prompt = body["messages"][0]["content"]
    assert "0" in prompt and "10" in prompt and f"- {REFS[0]}" in prompt and prompt.rstrip().endswith("Score:")
    assert judge.score(REFS[0], REFS) == 10.0 and judge.score("", REFS) == 0.0


@pytest.mark.parametrize("mode, why, calls", [
    ("no_number", "no 0-10 score: 'I cannot grade this summary.'", 1),
    ("out_of_range", "no 0-10 score: '42'", 1),
    ("not_json", "judge call failed", 1),
    ("500", "judge call failed: InternalServerError", 2),  # retried up to max_attempts, then missing
])
def test_malformed_or_failed_reply_is_missing_with_a_reason(judge_server, monkeypatch, mode, why, calls):
    judge_server.mode = mode
    score, err = _judge(judge_server, monkeypatch).rate("Bob thanks Alice.", REFS)
    assert score is None and why in err
    assert len(judge_server.requests) == calls  # a reply is final; only a server error is tried again


def test_transient_server_errors_are_retried(judge_server, monkeypatch):
    judge_server.fail_next = 2
    assert _judge(judge_server, monkeypatch, max_attempts=3).score(REFS[0], REFS) == 10.0
    assert len(judge_server.requests) == 3


def test_wrong_key_is_missing_with_a_reason(judge_server, monkeypatch):
    score, err = _judge(judge_server, monkeypatch, key="wrong").rate("Bob thanks Alice.", REFS)
    assert score is None and "AuthenticationError" in err
    assert len(judge_server.requests) == 1  # a 401 is not retried
    assert judge_server.requests[-1]["auth"] == "Bearer wrong"


def test_harness_records_the_score_or_why_it_is_missing(judge_server, monkeypatch):
    from eval import harness

    monkeypatch.setenv("MY_JUDGE_KEY", KEY)
    monkeypatch.setattr(harness, "_JUDGE", {})
    settings = {"judge": {"base_url": f"http://127.0.0.1:{judge_server.server_address[1]}/v1", "model": "m",
                          "api_key_env": "MY_JUDGE_KEY", "timeout_s": 10}}
    sample = {"task": "AVDS", "answer": REFS[0], "references": REFS}
    row = {"parsed_answer": REFS[0], "metrics": json.dumps({"sentence_bleu": 100.0})}
    harness._judge(row, sample, settings)
    assert json.loads(row["metrics"]) == {"sentence_bleu": 100.0, "judge": 10.0}
    judge_server.mode = "no_number"
    row = {"parsed_answer": "Bob.", "metrics": "{}"}
    harness._judge(row, sample, settings)
    m = json.loads(row["metrics"])
    assert m["judge"] is None and "no 0-10 score" in m["judge_error"]
