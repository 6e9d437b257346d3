"""Ray Serve deployments: one per perception tool, and one holding the model adapters.

Tool replicas load their backends once (``perception.tools`` caches stages per process) and run
the same :func:`eval.agent.tools.invoke_tool` as in-process evaluation. The model deployment
holds every configured adapter by name, like an OpenAI server hosting several models.
:class:`ServeTools` and :class:`RemoteModel` adapt the handles to the loop's interfaces.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from typing import Any

from ray import serve

from eval.agent.tools import invoke_tool, load_tool
from eval.models.base import AgentContext, GenParams, complete

log = logging.getLogger("amuse.serve")


@serve.deployment
class ToolDeployment:
    def __init__(self, tool_name: str, module: str, extra: dict | None = None, cache_size: int = 256):
        self.tool_name = tool_name
        self.fn = load_tool(module, tool_name)
        self.extra = extra or {}
        # Tools are deterministic per (media, span): samples of one clip ask the same questions of it,
        # and perception costs seconds, so a replica remembers its recent answers.
        self.cache: OrderedDict[tuple, dict] = OrderedDict()
        self.cache_size = cache_size
        # Serve runs this sync method in request threads, several at once: the perception stages
        # serialize themselves (perception.stages.Stage), the cache is guarded here.
        self._cache_lock = threading.Lock()

    async def ping(self) -> str:
        """/healthz's cheap call: answers while the replica's event loop and request slots are free."""
        return self.tool_name

    def call(self, clip_uri: str, start_s: float | None, end_s: float | None, audio_uri: str | None = None) -> dict:
        key = (clip_uri, start_s, end_s, audio_uri)
        with self._cache_lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        out = invoke_tool(self.fn, clip_uri, start_s, end_s, audio_uri, **self.extra)
        with self._cache_lock:
            self.cache[key] = out
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return out


@serve.deployment
class ModelDeployment:
    """Chat completions are gathered by ``@serve.batch`` (size and wait from ``serve.batch_max_size`` /
    ``batch_wait_timeout_s``) and a batch's requests run concurrently in threads: adapters hold no
    lock (the hf policy samples from a generator per request), and torch releases the GIL."""

    def __init__(self, specs: list[dict], adapter_ctx: dict | None = None, batching: dict | None = None):
        from eval.config import ModelSpec
        from eval.models.registry import build_adapter

        self.adapters = {s["name"]: build_adapter(ModelSpec(**s), adapter_ctx) for s in specs}
        b = batching or {}
        self._complete_batch.set_max_batch_size(b.get("max_batch_size", 8))
        self._complete_batch.set_batch_wait_timeout_s(b.get("batch_wait_timeout_s", 0.005))

    def names(self) -> list[str]:
        return list(self.adapters)

    async def generate(self, model: str, messages: list[dict], context: dict | None = None) -> str:
        if model not in self.adapters:
            raise KeyError(f"model {model!r} is not served (served: {', '.join(self.adapters)})")
        ctx = AgentContext.from_dict(context) if context is not None else None
        # Generation is blocking torch/HTTP work: keep the replica's event loop free for other requests.
        return await asyncio.to_thread(self.adapters[model].generate, messages, ctx)

    async def complete(self, model: str, messages: list[dict], context: dict | None = None,
                       params: dict | None = None, media: dict | None = None) -> dict:
        """One chat completion (``omni.completion.Completion`` as a dict) through the batcher."""
        if model not in self.adapters:
            raise KeyError(f"model {model!r} is not served (served: {', '.join(self.adapters)})")
        ok, out = await self._complete_batch((model, messages, context, params, media))
        if not ok:
            raise out
        return out

    def _complete_one(self, model: str, messages: list[dict], context: dict | None, params: dict | None,
                      media: dict | None) -> tuple[bool, Any]:
        try:
            ctx = AgentContext.from_dict(context) if context is not None else None
            done = complete(self.adapters[model], messages, ctx, GenParams(**(params or {})), media)
            return True, done.to_dict()
        except Exception as exc:  # this request's failure, not its batch-mates'
            return False, exc

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _complete_batch(self, requests: list[tuple]) -> list[tuple[bool, Any]]:
        return list(await asyncio.gather(*(asyncio.to_thread(self._complete_one, *r) for r in requests)))


class ToolFailed(RuntimeError):
    """A tool deployment raised; the message is short and names the request id, not the traceback."""


class ServeTools:
    """The loop's ToolRunner over tool deployment handles (used from a worker thread of the ingress)."""

    def __init__(self, handles: dict[str, Any], request_id: str = "-"):
        self.handles = handles
        self.request_id = request_id

    def __call__(
        self, name: str, clip_uri: str, start_s: float | None, end_s: float | None, timeout_s: float,
        audio_uri: str | None = None,
    ) -> dict:
        resp = self.handles[name].call.remote(clip_uri, start_s, end_s, audio_uri)
        try:
            return resp.result(timeout_s=timeout_s)
        except TimeoutError:
            resp.cancel()  # free the replica: nobody will read this result
            raise TimeoutError(f"tool {name!r} did not finish within {timeout_s:g} s") from None
        except Exception as exc:
            # The trace goes back to the client: a Ray task error's text is the replica's whole traceback
            # (paths, pid, actor id, colour codes). Log it here; the client gets the kind and the request id.
            cause = getattr(exc, "cause", None) or exc
            log.error("request %s: tool %s failed on %s", self.request_id, name, clip_uri, exc_info=exc)
            raise ToolFailed(f"tool {name!r} failed ({type(cause).__name__}); "
                             f"details in the server log under request_id {self.request_id}") from None


class RemoteModel:
    """The loop's ModelAdapter over the model deployment handle."""

    def __init__(self, handle: Any, name: str, timeout_s: float):
        self.handle, self.name, self.timeout_s = handle, name, timeout_s

    def generate(self, messages: list[dict], context: AgentContext | None = None) -> str:
        ctx = context.to_dict() if context is not None else None
        return self.handle.generate.remote(self.name, messages, ctx).result(timeout_s=self.timeout_s)
