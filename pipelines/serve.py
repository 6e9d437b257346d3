"""`amuse serve`: host the model and the six perception tools behind an authenticated HTTP API.

The Ray Serve application (``eval.serving``) holds one deployment per tool (``tool_diarize``,
``tool_transcribe``, ``tool_detect_faces``, ``tool_track_faces``, ``tool_sync_check``,
``tool_active_speaker``; each runs ``perception.tools`` with the configured backends), a model
deployment with every model in ``eval.models``, and a FastAPI ingress:

- ``GET  /healthz``                 health (no key): 200 with what is served, 503 with reasons when wedged
- ``GET  /v1/models``               served model names
- ``POST /v1/chat/completions``     OpenAI-compatible chat (no streaming)
- ``POST /v1/amuse/answer``         {model, task, mode, question, options, clip_uris[, clip_spans, cues]}
                                    -> {answer, trace: {plan, act, reflect, answer, steps, stop}, tools_called}

Every ``/v1`` route needs ``Authorization: Bearer $AMUSE_API_KEY`` (``serve.api_key_env``). Media
is read only under ``serve.allowed_media_roots`` (local folders or ``s3://bucket/prefix``), up to
``serve.max_media_bytes`` and ``serve.max_media_duration_s`` (only regular files; each check times
out after ``serve.media_check_timeout_s``, 10 s by default); request bodies are capped at
``serve.max_body_bytes`` (1 MiB by default; 413 above). Errors are short JSON bodies
``{"error": {message, type, code, request_id}}``; every response carries ``X-Request-ID`` and
tracebacks stay in the server log under that id. The agent gets ``serve.max_steps``
turns and ``serve.max_tool_calls`` tool calls; each tool call times out after
``serve.tool_timeout_s`` (reported in the trace) and each request after ``serve.request_timeout_s``.

Run it locally (the server stays up until Ctrl-C):

    export AMUSE_API_KEY=$(openssl rand -hex 16)
    amuse serve --config configs/demo.yaml --set serve.port=8000

or on a Ray cluster (the job keeps the app up until `ray job stop`):

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env-json '{"env_vars": {"AMUSE_API_KEY": "<key>"}}' \
        -- python pipelines/serve.py --config configs/demo.yaml --set serve.host=0.0.0.0

then call it with any OpenAI client or plain HTTP:

    curl -s -H "Authorization: Bearer $AMUSE_API_KEY" -H "Content-Type: application/json" \
        http://127.0.0.1:8000/v1/amuse/answer \
        -d '{"model": "tool_only", "task": "STG", "mode": "agentic", "clip_uris": ["data/corpus/ami/..."],
             "question": "When does the person on the left speak?"}'

    python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='<key>'); \
        print(c.chat.completions.create(model='policy', messages=[{'role': 'user', 'content': 'hi'}]))"

Binding anything but loopback exposes the API: keep the key secret and the media roots narrow.
"""

from __future__ import annotations

import os
import sys
import time

if not __package__:  # run as a script (ray job submit): make the repo importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from infra.ray_utils import init_ray  # noqa: E402
from pipelines.args import parse_job_args  # noqa: E402
from pipelines.config import AppConfig  # noqa: E402
from pipelines.policies import resolve_policy_paths  # noqa: E402


def run(cfg: AppConfig, block: bool = True) -> dict[str, str]:
    """Start the app; with ``block`` wait until interrupted, then shut Serve down."""
    from eval.serving import app as serve_app

    serve_app.resolve_api_key(cfg.serve)  # fail before starting anything when no key is configured
    init_ray(cfg.ray, env=cfg.storage.env())
    resolve_policy_paths(cfg)  # hf models without a trained export get the base model
    url = serve_app.start(cfg)
    print(f"serve: {', '.join(m.name for m in cfg.eval.models)} and 6 tools at {url} (health: {url}/healthz)", flush=True)
    if block:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            serve_app.stop(cfg)
    return {"endpoint": url}


def main(argv: list[str] | None = None) -> int:
    from infra.config import ConfigError

    _, cfg = parse_job_args("amuse serve", "Serve the model and perception tools over HTTP (Ray Serve).", argv)
    try:
        run(cfg)
    except ConfigError as exc:
        print(f"amuse serve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
