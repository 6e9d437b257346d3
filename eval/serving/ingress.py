"""The HTTP ingress: authenticated, validated, limited routes over the model and tool deployments.

Routes:
- ``GET /healthz`` (no key): what is served, or 503 with the reasons when this replica cannot answer
  (every media-check thread stuck past its timeout, or a deployment not answering a cheap call in
  ``serve.health_probe_timeout_s``; ``eval.serving.health``);
- ``GET /v1/models``: the served model names (OpenAI shape);
- ``POST /v1/chat/completions``: OpenAI-compatible chat: streaming (SSE), usage, finish reason,
  sampling settings, and audio / image / clip content parts (``eval.serving.chat_media``);
- ``POST /v1/amuse/answer``: a clip question in a mode -> answer + whole trace.

Every ``/v1`` route needs ``Authorization: Bearer <key>`` (401 otherwise). Bodies are pydantic
models (422 names the field). Media URIs must lie under an allowed root (403), exist (404) and
fit the size and duration limits (413). The agent loop runs in a worker thread with a deadline,
so a slow tool or model yields an error in the trace (tool timeout) or a 504 (request timeout)
while the server keeps serving other requests. Bodies over ``serve.max_body_bytes`` get 413; every
error is a short JSON body with the request id (``eval.serving.errors``), never a traceback.
"""


# No `from __future__ import annotations` here: FastAPI must see real classes in the route
# signatures (string annotations on Serve ingress methods are not resolved, and every body 422s).
import asyncio
import hmac
import time

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from eval.agent.loop import Limits
from eval.agent.tools import ToolArgs, timed_call
from eval.models.base import AgentContext
from eval.runner import answer as run_answer
from eval.serving import chat_media, chat_reply, health
from eval.serving.deployments import RemoteModel, ServeTools
from eval.serving.errors import (
    BodyLimit,
    current_request_id,
    error,
    request_id_middleware,
    validation_error_handler,
)
from eval.serving.media_policy import MediaPolicy, MediaRefused
from eval.serving.schemas import AnswerRequest, AnswerResponse, ChatRequest
from infra.storage import StorageConfig

# Guided requests without cues get these tools' outputs as cues (the same pred_* kinds curation uses).
GUIDED_CUE_TOOLS = ("diarize", "transcribe", "track_faces", "active_speaker")

app = FastAPI(title="amuse-raft", description="AMUSE agentic multi-speaker endpoint (Ray Serve).")


def route_path(scope) -> str:
    """The path the app routes on. Serve's proxy passes the whole path, with ``serve.route_prefix`` as
    ``root_path`` (Starlette strips it before routing); a check on the whole path would miss
    ``/<prefix>/v1/...`` and serve it without a key."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


@app.middleware("http")
async def require_api_key(request: Request, call_next):
    """Every /v1 route needs the bearer key; checked before the body is parsed, so 401 beats 422."""
    if route_path(request.scope).startswith("/v1"):
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = getattr(request.app.state, "api_key", None)
        if not key or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            resp = error(401, "missing or invalid API key (send Authorization: Bearer <key>)", "authentication_error")
            resp.headers["WWW-Authenticate"] = "Bearer"
            return resp
    return await call_next(request)


# Starlette runs the last added middleware first: the body limit, then the request id, then the key.
app.middleware("http")(request_id_middleware)
app.add_middleware(BodyLimit)
app.add_exception_handler(RequestValidationError, validation_error_handler)


@serve.deployment
@serve.ingress(app)
class Ingress:
    def __init__(self, model_handle, tool_handles: dict, settings: dict):
        self.model_handle = model_handle
        self.tools = ServeTools(tool_handles)
        self.s = settings
        app.state.api_key = settings["api_key"]  # read by the auth middleware in this replica
        app.state.max_body_bytes = settings["max_body_bytes"]  # read by BodyLimit
        # Media checks get their own threads: a check stuck on a bad file must not starve the agent's.
        # /healthz watches how long each has run (eval.serving.health).
        self._media_pool = health.WatchedPool(settings["media_check_threads"], "media-check")
        self.policy = MediaPolicy(
            settings["allowed_media_roots"], settings["max_media_bytes"], settings["max_media_duration_s"],
            StorageConfig(**settings["storage"]) if settings.get("storage") else None,
        )
        self.models: list[str] | None = None
        self.created = int(time.time())  # /v1/models: when this deployment started serving them

    # -- helpers ------------------------------------------------------------------------------
    async def _served(self) -> list[str]:
        if self.models is None:
            self.models = await self.model_handle.names.remote()
        return self.models

    def _limits(self, started: float) -> Limits:
        return Limits(self.s["max_steps"], self.s["max_tool_calls"], self.s["tool_timeout_s"],
                      deadline=started + self.s["request_timeout_s"])

    # -- routes -------------------------------------------------------------------------------
    @app.get("/healthz")
    async def healthz(self):
        timeout = self.s["health_probe_timeout_s"]
        calls = {"model deployment": self.model_handle.names.remote(),
                 **{f"tool {n}": h.ping.remote() for n, h in self.tools.handles.items()}}
        probed = await asyncio.gather(*(health.probe(name, call, timeout) for name, call in calls.items()))
        problems = [p for p, _ in probed if p]
        if (stuck := health.pool_problem(self._media_pool, self.s["media_check_timeout_s"])) is not None:
            problems.insert(0, stuck)
        if problems:
            return JSONResponse({"status": "unavailable", "problems": problems[:4]}, status_code=503)
        return {"status": "ok", "models": probed[0][1], "tools": sorted(self.tools.handles)}

    @app.get("/v1/models")
    async def list_models(self):
        return {"object": "list", "data": [{"id": m, "object": "model", "created": self.created, "owned_by": "amuse"}
                                           for m in await self._served()]}

    @app.post("/v1/chat/completions")
    async def chat(self, body: ChatRequest):
        if body.model not in await self._served():
            return error(404, f"model {body.model!r} is not served", "invalid_request_error")
        work = self._media_pool.run(chat_media.gather, body.messages, self.policy)
        try:
            messages, media = await asyncio.wait_for(work, timeout=self.s["media_check_timeout_s"])
        except MediaRefused as exc:
            return error(exc.status, exc.message, "invalid_request_error" if exc.status == 400 else "media_refused")
        except TimeoutError:
            return error(504, f"media parts were not read within {self.s['media_check_timeout_s']:g} s", "timeout")
        params = {"max_tokens": body.max_completion_tokens or body.max_tokens, "temperature": body.temperature,
                  "top_p": body.top_p, "seed": body.seed, "stop": body.stops()}
        args = (body.model, messages, None, params, media)
        if not body.stream:
            try:
                done = await asyncio.wait_for(self.model_handle.complete.remote(*args), timeout=self.s["request_timeout_s"])
            except TimeoutError:
                return error(504, f"no reply within {self.s['request_timeout_s']:g} s", "timeout")
            return chat_reply.completion_body(body.model, done)
        # Token by token: the replica yields each piece of text as it is decoded. The first one is
        # awaited here, so a failure before any output still gets an HTTP status.
        events = chat_reply.within(self.model_handle.options(stream=True).complete_stream.remote(*args),
                                   self.s["request_timeout_s"])
        try:
            first = await events.__anext__()
        except TimeoutError as exc:  # the generator has ended and cancelled the call
            return error(504, str(exc), "timeout")
        include = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(chat_reply.sse_stream(body.model, chat_reply.prepend(first, events), include),
                                 media_type="text/event-stream")

    @app.post("/v1/amuse/answer", response_model=AnswerResponse)
    async def amuse_answer(self, body: AnswerRequest):
        started = time.monotonic()
        if body.model not in await self._served():
            return error(404, f"model {body.model!r} is not served", "invalid_request_error")
        uris, spans = [], []
        for i, uri in enumerate(body.clip_uris):
            check = self._media_pool.run(self.policy.check, uri)
            try:
                info = await asyncio.wait_for(check, timeout=self.s["media_check_timeout_s"])
            except MediaRefused as exc:
                return error(exc.status, exc.message, "media_refused")
            except TimeoutError:
                return error(504, f"clip_uris[{i}]: media check did not finish within "
                                  f"{self.s['media_check_timeout_s']:g} s", "timeout")
            uris.append(info.uri)
            if body.clip_spans is not None:
                spans.append(tuple(body.clip_spans[i]))
            else:
                spans.append((0.0, float(info.duration_s or 0.0)))
        context = AgentContext(
            task=body.task, mode=body.mode, question=body.question, options=list(body.options),
            sample_id=body.sample_id, clip_uris=uris, clip_spans=spans, clip_audio_uris=[None] * len(uris),
            cues=body.cues, target_speaker=body.target_speaker,
        )
        limits = self._limits(started)
        model = RemoteModel(self.model_handle, body.model, self.s["request_timeout_s"])
        tools = ServeTools(self.tools.handles, current_request_id())

        def work():
            if context.mode == "guided" and context.cues is None:
                context.cues = self._guided_cues(context, limits, tools)
            return run_answer(model, context, tools, limits)

        remaining = limits.deadline - time.monotonic()
        try:
            # The deadline inside the loop stops it cleanly; wait_for is the backstop for a hung model.
            episode = await asyncio.wait_for(asyncio.to_thread(work), timeout=max(remaining, 0.001) + 1.0)
        except TimeoutError:
            return error(504, f"request exceeded {self.s['request_timeout_s']:g} s", "timeout")
        return AnswerResponse(
            model=body.model, sample_id=body.sample_id, mode=body.mode, answer=episode.raw_output,
            trace=episode.trace, tools_called=episode.tools_called, error=episode.error,
            latency_s=round(time.monotonic() - started, 4),
        )

    def _guided_cues(self, context: AgentContext, limits: Limits, tools: ServeTools) -> dict:
        cues: dict = {}
        for i, uri in enumerate(context.clip_uris):
            for name in GUIDED_CUE_TOOLS:
                entry = timed_call(tools, name, uri, ToolArgs(clip=i), limits.tool_timeout_s, context.clip_spans[i])
                key = name if len(context.clip_uris) == 1 else f"clip{i}_{name}"
                cues[key] = entry["result"] if entry["ok"] else {"error": entry["error"]}
        return cues
