"""How one ``@serve.batch`` of chat requests runs on the model replica, as jobs for worker threads.

Requests are grouped by model. An adapter that batches (``complete_batch``: the hf policy) gets all
its requests in one call, where rows with the same kinds of media share one padded forward and each
row's text is streamed as its tokens are produced. Any other adapter (the baselines, a remote
endpoint) answers each request in its own thread and its reply is sent in one piece.

Each request receives, through ``emit(i, event)``: zero or more ``{"delta": text}`` events, then
exactly one final event, ``{"done": Completion as a dict}`` or ``{"error": exception}`` (one
request's failure, never its batch-mates').
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from eval.models.base import AgentContext, GenParams, complete

Request = tuple  # (model, messages, context dict | None, params dict | None, media dict | None, cancel Event)
Emit = Callable[[int, dict], None]


def _args(req: Request) -> tuple[list[dict], AgentContext | None, GenParams, dict | None]:
    _, messages, context, params, media, _ = req
    ctx = AgentContext.from_dict(context) if context is not None else None
    return messages, ctx, GenParams(**(params or {})), media


def _one(adapter: Any, i: int, req: Request, emit: Emit) -> None:
    try:
        done = complete(adapter, *_args(req))
    except Exception as exc:
        emit(i, {"error": exc})
        return
    if done.text:
        emit(i, {"delta": done.text})
    emit(i, {"done": done.to_dict()})


def _batched(adapter: Any, items: list[tuple[int, Request]], emit: Emit) -> None:
    rows, index = [], []
    for i, req in items:
        try:
            row = adapter.row(*_args(req))  # encoding: a bad request fails alone
        except Exception as exc:
            emit(i, {"error": exc})
            continue
        row.cancel = req[5]  # set when its reader goes away: the row stops decoding
        rows.append(row)
        index.append(i)
    if not rows:
        return
    try:
        done = adapter.complete_batch(rows, lambda j, piece: emit(index[j], {"delta": piece}))
    except Exception as exc:
        for i in index:
            emit(i, {"error": exc})
        return
    for i, c in zip(index, done, strict=True):
        emit(i, {"done": c.to_dict()})


def jobs(adapters: dict[str, Any], requests: list[Request], emit: Emit) -> list[Callable[[], None]]:
    """The batch's work: one job per batching model, one per request of any other model."""
    by_model: dict[str, list[int]] = {}
    for i, req in enumerate(requests):
        by_model.setdefault(req[0], []).append(i)
    out: list[Callable[[], None]] = []
    for model, idx in by_model.items():
        adapter = adapters[model]
        if hasattr(adapter, "complete_batch"):
            out.append(partial(_batched, adapter, [(i, requests[i]) for i in idx], emit))
        else:
            out += [partial(_one, adapter, i, requests[i], emit) for i in idx]
    return out
