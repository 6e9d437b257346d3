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
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from eval.agent.tools import invoke_tool, load_tool
from eval.models.base import AgentContext
from eval.serving import batching

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
    ``batch_wait_timeout_s``) and run as one batch (``eval.serving.batching``): the hf policy decodes
    its requests in one padded forward per kind of media, streaming each reply's text as its tokens
    are produced; other adapters answer concurrently in threads. ``complete_stream`` is the stream
    (a ``handle.options(stream=True)`` call), ``complete`` its final reply."""

    def __init__(self, specs: list[dict], adapter_ctx: dict | None = None, batching: dict | None = None):
        from eval.config import ModelSpec
        from eval.models.registry import build_adapter

        self.adapters = {s["name"]: build_adapter(ModelSpec(**s), adapter_ctx) for s in specs}
        b = batching or {}
        self._stream_batch.set_max_batch_size(b.get("max_batch_size", 8))
        self._stream_batch.set_batch_wait_timeout_s(b.get("batch_wait_timeout_s", 0.005))
        self.batches = self.batched_requests = 0  # counters, not a log: a long-lived replica keeps no history
        self.finishes: Counter[str] = Counter()  # finish reasons: stop, length, cancelled (the reader left)

    def names(self) -> list[str]:
        return list(self.adapters)

    def stats(self) -> dict:
        """How the chat requests so far were served: batches, the requests in them, how they ended, and
        the forward passes (``generate`` calls) of each batching model."""
        forwards = {n: a.policy.forwards for n, a in self.adapters.items() if hasattr(a, "complete_batch")}
        return {"batches": self.batches, "requests": self.batched_requests, "finishes": dict(self.finishes),
                "forwards": forwards}

    async def generate(self, model: str, messages: list[dict], context: dict | None = None) -> str:
        self._check(model)
        ctx = AgentContext.from_dict(context) if context is not None else None
        # Generation is blocking torch/HTTP work: keep the replica's event loop free for other requests.
        return await asyncio.to_thread(self.adapters[model].generate, messages, ctx)

    async def complete_stream(self, model: str, messages: list[dict], context: dict | None = None,
                              params: dict | None = None, media: dict | None = None) -> AsyncIterator[dict]:
        """One chat completion as it is generated: ``{"delta": text}`` events as tokens are produced,
        then ``{"done": omni.completion.Completion as a dict}``; a failure raises."""
        self._check(model)
        cancel, finished = threading.Event(), False
        try:
            async for events in self._stream_batch((model, messages, context, params, media, cancel)):
                for event in events:
                    if "error" in event:
                        raise event["error"]
                    yield event
                    if "done" in event:
                        finished = True
                        return
        finally:
            if not finished:  # the caller went away (cancelled, timed out): its row stops decoding
                cancel.set()

    async def complete(self, model: str, messages: list[dict], context: dict | None = None,
                       params: dict | None = None, media: dict | None = None) -> dict:
        """The final reply of :meth:`complete_stream`."""
        async for event in self.complete_stream(model, messages, context, params, media):
            if "done" in event:
                return event["done"]
        raise RuntimeError("the completion stream ended without a reply")

    def _check(self, model: str) -> None:
        if model not in self.adapters:
            raise KeyError(f"model {model!r} is not served (served: {', '.join(self.adapters)})")

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)
    async def _stream_batch(self, requests: list[tuple]) -> AsyncIterator[list]:
        """Serve's batch protocol for generators: each step yields one item per request, here the list
        of that request's events since the last step (often empty), and ``StopIteration`` once its
        final event has gone out. The work runs in threads and hands events over thread-safely."""
        self.batches += 1
        self.batched_requests += len(requests)
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()

        def emit(i: int, event: dict) -> None:
            loop.call_soon_threadsafe(inbox.put_nowait, (i, event))

        work = asyncio.gather(*(asyncio.to_thread(job) for job in batching.jobs(self.adapters, requests, emit)))
        closed: set[int] = set()
        try:
            while len(closed) < len(requests):
                pending: list[list[dict]] = [[] for _ in requests]
                getter = asyncio.ensure_future(inbox.get())
                await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    ready = [getter.result()]
                    while not inbox.empty():
                        ready.append(inbox.get_nowait())
                    for i, event in ready:
                        pending[i].append(event)
                        if "done" in event:
                            self.finishes[event["done"]["finish_reason"]] += 1
                else:
                    # every job returned and its events came first (callbacks run in order): a request
                    # left without a final event gets an error rather than a wait without end
                    getter.cancel()
                    exc = work.exception() or RuntimeError("the batch ended without a reply to this request")
                    for i in set(range(len(requests))) - closed:
                        pending[i].append({"error": exc})
                yield [StopIteration if i in closed else pending[i] for i in range(len(requests))]
                closed |= {i for i, evs in enumerate(pending) if any("done" in e or "error" in e for e in evs)}
        finally:
            await asyncio.gather(work, return_exceptions=True)


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
