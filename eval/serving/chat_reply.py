"""A finished completion in OpenAI's response shapes: the ``chat.completion`` body, or the
server-sent ``chat.completion.chunk`` events of a streamed reply.

The model deployment produces the whole reply before anything is sent (generation is batched on
the replica), so a stream carries it in word-sized pieces after it is done: clients that read
``stream=true`` work unchanged, but the first piece arrives when the reply is complete.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator


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


def sse_events(model: str, done: dict, include_usage: bool) -> Iterator[str]:
    """``data: {chunk}`` events: the role, the text in pieces, the finish reason, then (when asked)
    a usage chunk with no choices, then ``data: [DONE]`` (OpenAI's stream layout)."""
    cid, created = new_id(), int(time.time())

    def chunk(delta: dict | None, finish: str | None = None, use: dict | None = None) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if include_usage:
            body["usage"] = use
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r"\s*\S+\s*|\s+", done["text"]):
        yield chunk({"content": piece})
    yield chunk({}, done["finish_reason"])
    if include_usage:
        yield chunk(None, use=usage(done))
    yield "data: [DONE]\n\n"
