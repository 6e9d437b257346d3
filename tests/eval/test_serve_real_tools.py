"""The endpoint with the real perception backends behind its tool deployments, on a corpus clip.

The other endpoint tests use stand-in tools to reach timeouts and limits deterministically; this one
checks that the production wiring (Serve tool deployments -> perception.tools -> embedded models)
answers a real agentic question with real tool outputs.
"""

from __future__ import annotations

import json

import httpx
import pytest
from serve_fixtures import API_KEY, start_ray

from pipelines.config import REPO_ROOT, load_app_config

pytestmark = pytest.mark.slow

CLIP = REPO_ROOT / "data" / "corpus" / "youtube" / "_tRNU-PHGGI.mp4"


@pytest.fixture(scope="module")
def server():
    import ray
    from ray import serve

    from eval.serving.app import free_port, start

    start_ray()
    try:
        cfg = load_app_config(None, [
            "serve.host=127.0.0.1", f"serve.port={free_port()}", f"serve.api_key={API_KEY}",
            "serve.tools_module=perception.tools", f"serve.allowed_media_roots=[{REPO_ROOT / 'data' / 'corpus'}]",
            "serve.tool_timeout_s=120", "serve.request_timeout_s=300",
            "eval.models=[{name: tool_only, kind: tool_only}]",
        ])
        yield start(cfg)
    finally:
        serve.shutdown()
        ray.shutdown()


def test_agentic_stg_with_real_tools(server):
    body = {"model": "tool_only", "task": "STG", "mode": "agentic", "sample_id": "real-stg",
            "question": "When does the person on the left speak? Answer with [start, end] intervals in seconds.",
            "clip_uris": [str(CLIP)], "clip_spans": [[0.0, 12.0]]}
    r = httpx.post(f"{server}/v1/amuse/answer", json=body, headers={"Authorization": f"Bearer {API_KEY}"},
                   timeout=300)
    assert r.status_code == 200, r.text
    out = r.json()
    act = out["trace"]["act"]
    assert act and all(a["ok"] for a in act), act
    diar = next(a["result"] for a in act if a["tool"] == "diarize")
    # Real diarization of a 3-person podcast excerpt: several speakers, turns inside the 12 s span.
    assert len({t["speaker"] for t in diar["turns"]}) >= 2
    assert all(-0.05 <= t["start"] < t["end"] <= 12.05 for t in diar["turns"])
    intervals = json.loads(out["trace"]["answer"]) if out["trace"]["answer"].startswith("[") else None
    answer = intervals if intervals is not None else json.loads(out["answer"])
    assert answer and all(0.0 <= a < b <= 12.05 for a, b in answer)
