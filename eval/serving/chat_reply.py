"""A completion in OpenAI's response shapes: the ``chat.completion`` body, or the server-sent
``chat.completion.chunk`` events of a streamed reply, sent as the model produces its tokens.

The stream's events come from the model deployment (``ModelDeployment.complete_stream``):
``{"delta": text}`` per token (as decoded so far), then ``{"done": completion}``. A failure after
the first event can no longer change the HTTP status, so it is sent as an ``error`` event in
OpenAI's error object (the ``openai`` client raises it) and the stream ends without ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

from eval.serving.errors import current_request_id, error_body

log = logging.getLogger("amuse.serve")


def usage(done: dict) -> dict:
    out = {"prompt_tokens": done["prompt_tokens"], "completion_tokens": done["completion_tokens"],
           "total_tokens": done["prompt_tokens"] + done["completion_tokens"]}
    if done.get("usage_unit", "tokens") != "tokens":
        out["unit"] = done["usage_unit"]  # the baselines have no tokenizer: counted in words
    return out


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion_body(model: str, done: dict) -> dict:
    return {
        "id": new_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": done["text"]},
                     "finish_reason": done["finish_reason"], "logprobs": None}],
        "usage": usage(done),
    }


async def sse_stream(model: str, events: AsyncIterator[dict], include_usage: bool) -> AsyncIterator[str]:
    """``data: {chunk}`` events: the role, one content piece per model event, the finish reason, then
    (when asked) a usage chunk with no choices, then ``data: [DONE]`` (OpenAI's stream layout)."""
    cid, created = new_id(), int(time.time())

    def chunk(delta: dict | None, finish: str | None = None, use: dict | None = None) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if include_usage:
            body["usage"] = use
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in events:
            if "delta" in event:
                yield chunk({"content": event["delta"]})
            elif "done" in event:
                yield chunk({}, event["done"]["finish_reason"])
                if include_usage:
                    yield chunk(None, use=usage(event["done"]))
                yield "data: [DONE]\n\n"
                return
        raise RuntimeError("the completion stream ended without a reply")
    except TimeoutError as exc:
        yield f"data: {json.dumps(error_body(504, str(exc), 'timeout'))}\n\n"
    except Exception:
        log.exception("request %s: stream failed", current_request_id())
        body = error_body(500, "the stream failed (see the server log for this request_id)", "server_error")
        yield f"data: {json.dumps(body)}\n\n"


async def within(stream, timeout_s: float) -> AsyncIterator[dict]:
    """The events of a streaming handle call (``DeploymentResponseGenerator``) until ``timeout_s``
    from now; past it, ``TimeoutError``. The call is cancelled when the reader stops early (a
    timeout, or the client going away), so the replica's stream is not left unread."""
    deadline = time.monotonic() + timeout_s
    finished = False
    try:
        while True:
            try:
                event = await asyncio.wait_for(stream.__anext__(), timeout=max(deadline - time.monotonic(), 0.001))
            except StopAsyncIteration:
                finished = True
                return
            except TimeoutError:
                raise TimeoutError(f"no reply within {timeout_s:g} s") from None
            yield event
            finished = "done" in event
    finally:
        if not finished:
            stream.cancel()


async def prepend(first: dict, rest: AsyncIterator[dict]) -> AsyncIterator[dict]:
    yield first
    async for event in rest:
        yield event
