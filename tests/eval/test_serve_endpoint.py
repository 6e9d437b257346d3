"""The HTTP endpoint on a real Ray Serve app on 127.0.0.1: openai client and raw HTTP."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from serve_fixtures import API_KEY, HungStorage, media_dir, serve_config, start_ray, tiny_policy_path

pytestmark = pytest.mark.slow

OPTIONS = ["the person on the left", "the person on the right"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import ray
    from ray import serve

    from eval.serving.app import free_port, start

    media = media_dir(tmp_path_factory.mktemp("media"))
    hung = HungStorage()  # answers 404 at once unless a test hangs it
    start_ray()
    try:
        models = f"[{{name: tool_only, kind: tool_only}}, {{name: random, kind: random}}, {{name: policy, kind: hf, path: {tiny_policy_path()}}}]"
        # Under a route prefix, as a shared Serve cluster hosts it: every test below also checks that the
        # key, the routes and the errors hold there (a prefix once let /<prefix>/v1 through without a key).
        # Media checks time out after 2 s (10 by default) so the wedge test below waits little.
        cfg = serve_config(media, free_port(), models=models, extra_roots=(f"s3://{hung.bucket}",), sets=hung.settings(),
                           media_check_timeout_s=2, route_prefix="/amuse")
        url = start(cfg) + "/amuse"
        yield {"url": url, "media": media, "hung": hung, "app": cfg.serve.app_name}
    finally:
        serve.shutdown()
        ray.shutdown()
        hung.close()


def post(server, path, body, key=API_KEY, timeout=30.0):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(server["url"] + path, json=body, headers=headers, timeout=timeout)


def answer_body(server, clip="ok", mode="agentic", **kw):
    body = {"model": "tool_only", "task": "AVSA", "mode": mode, "question": "Who speaks between 2 s and 4 s?",
            "options": OPTIONS, "clip_uris": [server["media"][clip]], "sample_id": "s1"}
    body.update(kw)
    return body


def test_healthz_needs_no_key(server):
    r = httpx.get(server["url"] + "/healthz", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and set(body["models"]) == {"tool_only", "random", "policy"}
    assert set(body["tools"]) == {"diarize", "transcribe", "detect_faces", "track_faces", "sync_check", "active_speaker"}


def test_healthz_is_503_while_every_media_check_is_stuck_and_200_after(server):
    """A storage endpoint that stops answering holds each media check's thread past its timeout; once all
    of them are held, no answer can start: /healthz says so (503 and why) instead of 200, and says 200
    again when the checks end."""
    from concurrent.futures import ThreadPoolExecutor

    hung, url = server["hung"], server["url"]
    wedge = [answer_body(server, clip_uris=[f"s3://{hung.bucket}/clip{i}.wav"]) for i in range(4)]  # 4 check threads
    hung.hang()
    try:
        with ThreadPoolExecutor(5) as pool:
            stuck = [pool.submit(post, server, "/v1/amuse/answer", body) for body in wedge]
            deadline = time.monotonic() + 20
            while hung.held < len(wedge):  # every check thread is inside a request to the hung endpoint
                assert time.monotonic() < deadline, f"{hung.held} checks reached the endpoint"
                time.sleep(0.05)
            ordinary = pool.submit(post, server, "/v1/amuse/answer", answer_body(server))
            assert [f.result().status_code for f in stuck] == [504] * len(wedge)
            assert ordinary.result().status_code == 504  # a good clip waits for a thread that never frees
        r = httpx.get(url + "/healthz", timeout=15)
        assert r.status_code == 503, r.text
        assert len(r.content) < 600 and r.json()["problems"][0].startswith("media checks: all 4 threads"), r.text
    finally:
        hung.answer()
    deadline = time.monotonic() + 20
    while (r := httpx.get(url + "/healthz", timeout=15)).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert post(server, "/v1/amuse/answer", answer_body(server)).status_code == 200


def test_openai_client_chat_and_models(server):
    from openai import OpenAI

    client = OpenAI(base_url=server["url"] + "/v1", api_key=API_KEY)
    assert {m.id for m in client.models.list().data} == {"tool_only", "random", "policy"}
    resp = client.chat.completions.create(model="random", messages=[{"role": "user", "content": "Who speaks? A. x B. y"}])
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == "A"  # the random baseline without structured context
    assert resp.model == "random"


def test_openai_client_wrong_key_is_401(server):
    import openai

    client = openai.OpenAI(base_url=server["url"] + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model="random", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 401


def test_agentic_answer_happy_path(server):
    r = post(server, "/v1/amuse/answer", answer_body(server))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] and '"answer": "B"' in body["answer"] or body["answer"] == "B"
    trace = body["trace"]
    assert set(trace) >= {"plan", "act", "reflect", "answer"}
    assert trace["plan"].startswith("AVSA") and trace["reflect"] == "answered from tool outputs"
    assert [a["tool"] for a in trace["act"]] == ["diarize", "track_faces", "active_speaker"]
    assert all(a["ok"] for a in trace["act"])
    assert body["tools_called"] == ["diarize", "track_faces", "active_speaker"]
    # the clip span defaulted to the whole 2 s file
    assert trace["act"][0]["result"]["end_s"] == pytest.approx(2.0, abs=0.05)


def test_guided_without_cues_gets_tool_cues(server):
    r = post(server, "/v1/amuse/answer", answer_body(server, mode="guided"))
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "B"


@pytest.mark.parametrize("key", [None, "wrong-key", API_KEY + "x"])
def test_missing_or_wrong_key_is_401(server, key):
    r = post(server, "/v1/amuse/answer", answer_body(server), key=key)
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"


def test_non_bearer_scheme_is_401(server):
    r = httpx.post(server["url"] + "/v1/amuse/answer", json=answer_body(server), timeout=10,
                   headers={"Authorization": f"Basic {API_KEY}"})
    assert r.status_code == 401


def test_no_key_wins_over_bad_body(server):
    assert post(server, "/v1/amuse/answer", {"nonsense": 1}, key=None).status_code == 401


@pytest.mark.parametrize(
    "change,field",
    [
        ({"mode": "telepathic"}, "mode"),
        ({"question": ""}, "question"),
        ({"clip_uris": []}, "clip_uris"),
        ({"unexpected": 1}, "unexpected"),
        ({"clip_spans": [[3.0, 1.0]]}, "clip_spans"),
    ],
)
def test_malformed_body_is_422_naming_the_field(server, change, field):
    r = post(server, "/v1/amuse/answer", answer_body(server, **change))
    assert r.status_code == 422
    assert field in r.text


def test_malformed_chat_body_is_422(server):
    assert post(server, "/v1/chat/completions", {"model": "random", "messages": Q, "n": 2}).status_code == 422
    r = post(server, "/v1/chat/completions", {"model": "random", "messages": "hello"})
    assert r.status_code == 422 and "messages" in r.text
    raw = httpx.post(server["url"] + "/v1/chat/completions", content=b"{not json", timeout=10,
                     headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert raw.status_code == 422


def test_media_outside_roots_is_403(server):
    for uri in [server["media"]["outside"], "/etc/passwd", server["media"]["root"] + "/../outside/clip.wav", "s3://other-bucket/x.mp4"]:
        r = post(server, "/v1/amuse/answer", answer_body(server, clip_uris=[uri]))
        assert r.status_code == 403, (uri, r.text)
        assert "outside the allowed roots" in r.json()["error"]["message"]


def test_oversized_or_too_long_media_is_413(server):
    r = post(server, "/v1/amuse/answer", answer_body(server, clip="big"))
    assert r.status_code == 413 and "bytes" in r.json()["error"]["message"]
    r = post(server, "/v1/amuse/answer", answer_body(server, clip="long"))
    assert r.status_code == 413 and "lasts 4.5 s" in r.json()["error"]["message"]
    r = post(server, "/v1/amuse/answer", answer_body(server, clip_uris=[server["media"]["root"] + "/missing.wav"]))
    assert r.status_code == 404


def test_tool_timeout_is_reported_in_trace_and_server_keeps_serving(server):
    t0 = time.perf_counter()
    r = post(server, "/v1/amuse/answer", answer_body(server, clip="slow"))
    assert r.status_code == 200, r.text
    body = r.json()
    act = body["trace"]["act"]
    assert len(act) == 3 and all(not a["ok"] for a in act)
    assert all(a["error"].startswith("timeout: tool") and "0.5 s" in a["error"] for a in act)
    assert body["trace"]["reflect"].startswith("tool errors")
    assert time.perf_counter() - t0 < 10
    # still serving, promptly
    ok = post(server, "/v1/amuse/answer", answer_body(server))
    assert ok.status_code == 200 and ok.json()["trace"]["act"][0]["ok"]
    assert httpx.get(server["url"] + "/healthz", timeout=10).status_code == 200


def test_unknown_model_is_404(server):
    r = post(server, "/v1/amuse/answer", answer_body(server, model="gpt-17"))
    assert r.status_code == 404


def test_openai_adapter_against_our_endpoint(server):
    from eval.models.openai_compat import OpenAIAdapter

    a = OpenAIAdapter("remote-random", server["url"] + "/v1", remote_model="random", api_key=API_KEY)
    assert a.generate([{"role": "user", "content": "Pick one."}]) == "A"


def test_llm_judge_through_an_openai_compatible_endpoint(server, monkeypatch):
    from eval.metrics.judge import Judge, parse_score

    monkeypatch.setenv("JUDGE_KEY", API_KEY)
    judge = Judge(server["url"] + "/v1", "random", api_key_env="JUDGE_KEY")
    # the random model answers "A": no number, so the score is missing (None), never 0
    assert judge.score("Bob thanks Alice.", ["Bob thanks Alice for the report."]) is None
    assert [parse_score(t) for t in ["7", "Score: 8/10", "10", "I'd say 6.5", "none"]] == [7.0, 8.0, 10.0, 6.5, None]


def _short_error(r, status, limit=600):
    """A short JSON error with the request id of the X-Request-ID header, no traceback."""
    assert r.status_code == status, r.text[:500]
    assert len(r.content) < limit, len(r.content)
    err = r.json()["error"]
    assert err["code"] == status and err["request_id"] == r.headers["x-request-id"]
    assert "Traceback" not in r.text and "\x1b[" not in r.text
    return err["message"]


def test_nul_byte_uri_and_lone_surrogate_question_are_4xx(server):
    r = post(server, "/v1/amuse/answer", answer_body(server, clip_uris=[server["media"]["root"] + "/a\x00.wav"]))
    assert "NUL" in _short_error(r, 400)
    raw = json.dumps(answer_body(server, question="who?")).replace("who?", "who\\ud800?").encode()
    r = httpx.post(server["url"] + "/v1/amuse/answer", content=raw, timeout=30,
                   headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert "question" in _short_error(r, 422)


def test_failing_tool_reports_a_short_error_and_the_request_id(server):
    r = post(server, "/v1/amuse/answer", answer_body(server, clip="broken"))
    assert r.status_code == 200, r.text
    rid = r.headers["x-request-id"]
    act = r.json()["trace"]["act"]
    assert act and all(not a["ok"] for a in act)
    for a in act:
        assert "RuntimeError" in a["error"] and rid in a["error"] and len(a["error"]) < 200, a["error"]
        assert server["media"]["root"] not in a["error"] and "internal-state" not in a["error"]


def test_bodies_and_fields_are_bounded(server):
    for big in [answer_body(server, question="x" * 2_000_000), answer_body(server, options=["a"] * 500_000),
                answer_body(server, mode="guided", cues={"diarize": "y" * 2_000_000})]:
        assert "max_body_bytes" in _short_error(post(server, "/v1/amuse/answer", big), 413)
    for change, field in [({"question": "q" * 5000}, "question"), ({"options": ["o" * 2000, "b"]}, "options.0"),
                          ({"clip_uris": ["u" * 5000]}, "clip_uris.0")]:
        msg = _short_error(post(server, "/v1/amuse/answer", answer_body(server, **change)), 422)
        assert msg.startswith(field), msg
    ok = post(server, "/v1/amuse/answer", answer_body(server))
    assert ok.status_code == 200 and ok.headers["x-request-id"]


def test_fifo_in_a_media_root_is_415_and_the_server_keeps_answering(server):
    fifo = Path(server["media"]["root"]) / "pipe.wav"
    os.mkfifo(fifo)
    for _ in range(10):  # more than the default thread pool: a hang would show on the answer below
        assert "regular file" in _short_error(post(server, "/v1/amuse/answer", answer_body(server, clip_uris=[str(fifo)]),
                                                   timeout=10), 415)
    ok = post(server, "/v1/amuse/answer", answer_body(server), timeout=10)
    assert ok.status_code == 200


def test_unreadable_media_415_does_not_pass_on_the_decoder_message(server):
    bad = Path(server["media"]["root"]) / "random.wav"
    bad.write_bytes(os.urandom(4000))
    msg = _short_error(post(server, "/v1/amuse/answer", answer_body(server, clip_uris=[str(bad)])), 415)
    assert msg == f"media {str(bad)!r} is not readable audio/video"


# Marks of a leak: a traceback, a source line, or a path of this machine (the media roots, the repo, the venv).
LEAK_MARKS = ("Traceback (most recent call last)", 'File "', "site-packages", "/tmp/", "/work/", "/home/", "\x1b[")


def test_fuzz_from_the_openapi_schema_gives_no_5xx_and_no_leak(server):
    """Schemathesis generates requests for every operation of the app's own OpenAPI schema (fixed seed,
    fixed budget): no 5xx, no response that names a server path or carries a traceback, and the server
    still answers afterwards."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings

    headers = {"Authorization": f"Bearer {API_KEY}"}
    doc = httpx.get(server["url"] + "/openapi.json", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    marks = (*LEAK_MARKS, server["media"]["root"], str(Path.cwd()))
    seen: dict[str, list[int]] = {}
    bad: list[str] = []
    def check(case) -> None:
        resp = case.call(base_url=server["url"], headers=headers, timeout=30)
        seen.setdefault(case.operation.label, []).append(resp.status_code)
        leaked = [m for m in marks if m in resp.text]
        if resp.status_code >= 500 or leaked:
            bad.append(f"{case.operation.label} -> {resp.status_code} {leaked} {resp.text[:300]!r} for {case.body!r:.300}")

    for result in schema.get_all_operations():
        settings(max_examples=25, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))(given(case=result.ok().as_strategy())(check))()
    assert len(seen) >= 4 and sum(map(len, seen.values())) >= 50, seen
    assert not bad, "\n".join(bad[:10])
    assert httpx.get(server["url"] + "/healthz", timeout=10).status_code == 200
    assert post(server, "/v1/amuse/answer", answer_body(server)).status_code == 200


# --- the OpenAI surface: streaming, usage, finish reason, sampling settings, content parts ---------

def _client(server):
    from openai import OpenAI

    return OpenAI(base_url=server["url"] + "/v1", api_key=API_KEY, max_retries=0)


def _wav_b64(seconds: float, sr: int = 16000) -> str:
    import base64
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, (0.1 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)).astype(np.float32), sr,
             format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


def _png_data_url(w: int = 70, h: int = 50) -> str:
    import base64
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


Q = [{"role": "user", "content": "Who speaks? A. left B. right"}]


def test_policy_usage_finish_reason_and_stop(server):
    client = _client(server)
    long = client.chat.completions.create(model="policy", messages=Q, max_tokens=24, temperature=0)
    assert long.choices[0].finish_reason == "length"
    assert long.usage.completion_tokens == 24 and long.usage.prompt_tokens > 10
    assert long.usage.total_tokens == long.usage.prompt_tokens + 24
    text = long.choices[0].message.content
    short = client.chat.completions.create(model="policy", messages=Q, max_tokens=3, temperature=0)
    assert short.usage.completion_tokens == 3 and text.startswith(short.choices[0].message.content)
    # a stop string taken from the greedy reply: the reply ends before it, and finish_reason says stop
    words = text.split()
    stop = next(w for w in words[1:] if text.find(w) > 0 and w.isprintable())
    cut = client.chat.completions.create(model="policy", messages=Q, max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[: text.find(stop)]


def test_policy_seed_and_temperature_are_honoured(server):
    client = _client(server)

    def sample(seed, top_p=1.0):
        return client.chat.completions.create(model="policy", messages=Q, max_tokens=12, temperature=1.0,
                                              top_p=top_p, seed=seed).choices[0].message.content

    a = sample(1)
    assert sample(1) == a and sample(2) != a
    greedy = client.chat.completions.create(model="policy", messages=Q, max_tokens=12, temperature=0)
    assert greedy.choices[0].message.content != a
    assert sample(1, top_p=1e-6) == greedy.choices[0].message.content  # top_p that small keeps the argmax only


def test_openai_client_streams_with_usage(server):
    client = _client(server)
    whole = client.chat.completions.create(model="policy", messages=Q, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(model="policy", messages=Q, max_tokens=16, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and len([c for c in chunks if c.choices]) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 16
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_stream_sends_each_token_as_it_is_generated(server):
    """The first piece arrives while the reply is still being generated: pieces arrive spread over the
    decode (one per token, a few held back while a UTF-8 character or a stop string is incomplete),
    not all at once after it. A stop string ends the stream as it ends the plain reply."""
    client = _client(server)
    reply = client.chat.completions.create(model="policy", messages=Q, max_tokens=64, temperature=0)  # warms up too
    t0, arrivals, pieces = time.perf_counter(), [], []
    for c in client.chat.completions.create(model="policy", messages=Q, max_tokens=64, temperature=0, stream=True,
                                            stream_options={"include_usage": True}):
        if c.choices and c.choices[0].delta.content:
            arrivals.append(time.perf_counter() - t0)
            pieces.append(c.choices[0].delta.content)
    assert c.usage.completion_tokens == 64 and len(pieces) >= 32
    # decoding 63 more tokens after the first takes most of the request's time
    assert arrivals[-1] - arrivals[0] > 0.5 * arrivals[-1], (arrivals[0], arrivals[-1])
    whole = "".join(pieces)
    assert whole == reply.choices[0].message.content
    stop = next(w for w in whole.split()[1:] if whole.find(w) > 0 and w.isprintable())
    plain = client.chat.completions.create(model="policy", messages=Q, max_tokens=64, temperature=0, stop=[stop])
    chunks = list(client.chat.completions.create(model="policy", messages=Q, max_tokens=64, temperature=0, stop=[stop],
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.choices[0].message.content == whole[: whole.find(stop)]
    assert chunks[-1].choices[0].finish_reason == plain.choices[0].finish_reason == "stop"


def test_a_stream_closed_early_stops_decoding(server):
    """A client that leaves after the first piece frees the model: its row stops decoding (finish
    ``cancelled`` in the replica's count) instead of running on to 1,500 tokens nobody reads."""
    from ray import serve

    model = serve.get_deployment_handle("ModelDeployment", app_name=server["app"])
    before = model.stats.remote().result()["finishes"].get("cancelled", 0)
    client = _client(server)
    stream = client.chat.completions.create(model="policy", messages=Q, max_tokens=1500, temperature=0, stream=True)
    next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 10
    while model.stats.remote().result()["finishes"].get("cancelled", 0) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model.stats.remote().result()["finishes"].get("cancelled", 0) == before + 1


def test_concurrent_chat_requests_share_one_forward(server):
    """Requests that arrive together are decoded in one padded forward (@serve.batch) and get what
    each gets alone."""
    import concurrent.futures as cf

    from ray import serve

    client = _client(server)
    asks = [f"Who speaks at {i} s? A. left B. right" for i in range(6)]

    def ask(q):
        return client.chat.completions.create(model="policy", messages=[{"role": "user", "content": q}],
                                              max_tokens=6, temperature=0).choices[0].message.content

    alone = [ask(q) for q in asks]
    model = serve.get_deployment_handle("ModelDeployment", app_name=server["app"])
    before = model.stats.remote().result()
    with cf.ThreadPoolExecutor(len(asks)) as pool:
        assert list(pool.map(ask, asks)) == alone
    after = model.stats.remote().result()
    batches, requests = after["batches"] - before["batches"], after["requests"] - before["requests"]
    assert requests == len(asks) and batches < len(asks), (batches, requests)
    assert after["forwards"]["policy"] - before["forwards"]["policy"] == batches


def test_raw_http_stream_is_server_sent_events(server):
    body = {"model": "random", "messages": Q, "stream": True}
    with httpx.stream("POST", server["url"] + "/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "A"


def test_baseline_usage_is_counted_in_words(server):
    r = post(server, "/v1/chat/completions", {"model": "random", "messages": Q})
    assert r.json()["usage"] == {"prompt_tokens": 6, "completion_tokens": 1, "total_tokens": 7, "unit": "words"}


def test_models_have_created(server):
    r = httpx.get(server["url"] + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert all(isinstance(m["created"], int) and m["created"] > 1_600_000_000 for m in r.json()["data"])


def test_openai_client_sends_audio_image_and_clip_parts(server):
    client = _client(server)
    plain = client.chat.completions.create(model="policy", messages=Q, max_tokens=2, temperature=0).usage.prompt_tokens

    def prompt_tokens(*parts):
        content = [{"type": "text", "text": Q[0]["content"]}, *parts]
        resp = client.chat.completions.create(model="policy", messages=[{"role": "user", "content": content}],
                                              max_tokens=2, temperature=0)
        return resp.usage.prompt_tokens

    audio = {"type": "input_audio", "input_audio": {"data": _wav_b64(2.0), "format": "wav"}}
    audio_8k = {"type": "input_audio", "input_audio": {"data": _wav_b64(2.0, sr=8000), "format": "wav"}}
    image = {"type": "image_url", "image_url": {"url": _png_data_url()}}
    clip = {"type": "amuse_clip", "amuse_clip": {"uri": server["media"]["ok"], "start_s": 0.5, "end_s": 1.5}}
    # 2 s of audio is 50 audio tokens (25/s) plus its two markers, resampled from 8 kHz alike
    assert prompt_tokens(audio) == plain + 52 == prompt_tokens(audio_8k)
    with_image = prompt_tokens(image)
    assert with_image > plain + 2
    import base64

    png = Path(server["media"]["root"]) / "frame.png"  # the same image as a file under the allowed root
    png.write_bytes(base64.b64decode(image["image_url"]["url"].split(",", 1)[1]))
    assert prompt_tokens({"type": "image_url", "image_url": {"url": str(png)}}) == with_image
    assert prompt_tokens(audio, image) == with_image + 52
    assert prompt_tokens(clip) == plain + 27  # the clip's 1 s span: 25 audio tokens and markers (a wav: no frames)


@pytest.mark.parametrize("part,status,words", [
    ({"type": "input_audio", "input_audio": {"data": "not base64!", "format": "wav"}}, 400, "base64"),
    ({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, 403, "http"),
    ({"type": "image_url", "image_url": {"url": "/etc/passwd"}}, 403, "outside the allowed roots"),
    ({"type": "amuse_clip", "amuse_clip": {"uri": "/etc/passwd"}}, 403, "outside the allowed roots"),
    ({"type": "video_url", "video_url": {"url": "x"}}, 422, "content"),
])
def test_bad_content_parts_get_openai_errors(server, part, status, words):
    import openai

    with pytest.raises(openai.APIStatusError) as exc:
        _client(server).chat.completions.create(
            model="policy", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}])
    assert exc.value.status_code == status
    err = exc.value.body
    assert words in err["message"] and err["code"] == status and err["type"]
