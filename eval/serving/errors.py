"""What clients see when a request fails: short JSON errors with a request id, never a traceback.

Every response carries ``X-Request-ID``; error bodies carry the same id as ``error.request_id``.
Details (tracebacks, server paths, probe complaints) go to the server log under that id only.
Bodies over ``serve.max_body_bytes`` get 413 before anything parses them, and 422 replies name the
field with at most a short excerpt of what was sent (never the whole value).
"""

from __future__ import annotations

import contextvars
import logging
import uuid

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("amuse.serve")

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("amuse_request_id", default="-")
EXCERPT_CHARS = 80  # of a rejected value, in a 422 reply
MAX_ERRORS = 5  # field errors listed in one 422 reply


def current_request_id() -> str:
    """This request's id (a function, so callers pickled by value by Serve never capture the ContextVar)."""
    return REQUEST_ID.get()


def safe_text(value: object, limit: int = 300) -> str:
    """``value`` as text that always encodes to UTF-8 (lone surrogates escaped), cut to ``limit``."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text)} chars)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_body(status: int, message: str, kind: str) -> dict:
    """OpenAI's error object, with this request's id (also what a stream sends when it fails midway)."""
    return {"error": {"message": safe_text(message), "type": kind, "code": status, "request_id": REQUEST_ID.get()}}


def error(status: int, message: str, kind: str) -> JSONResponse:
    """The OpenAI-shaped error response, with this request's id."""
    return JSONResponse(status_code=status, content=error_body(status, message, kind))


def _scope_request_id(scope) -> tuple[str, bool]:
    """(id, whether the proxy already sends it back). Serve's proxy puts its request id (the client's
    X-Request-ID when sent) in the request headers and adds it to the response: reuse it, so our log
    lines and Serve's access log agree. Without a proxy (plain ASGI), make one and send it ourselves."""
    sent = dict(scope.get("headers") or []).get(b"x-request-id")
    if sent:
        return safe_text(sent.decode("latin-1"), 64), True
    return uuid.uuid4().hex[:16], False


async def request_id_middleware(request: Request, call_next):
    """Give the request an id (in the log, the X-Request-ID header and error bodies); turn any uncaught
    exception into a short 500 whose traceback stays in the server log."""
    rid, echoed = _scope_request_id(request.scope)
    REQUEST_ID.set(rid)  # copied into the route's task and its worker threads
    try:
        response = await call_next(request)
    except Exception:
        log.exception("request %s %s %s failed", rid, request.method, request.url.path)
        response = error(500, "internal server error (see the server log for this request_id)", "server_error")
    if echoed:
        del response.headers["x-request-id"]  # the proxy adds it
    else:
        response.headers["X-Request-ID"] = rid
    return response


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field, with a short excerpt of the rejected value (the default echoes it whole)."""
    parts = []
    for e in exc.errors()[:MAX_ERRORS]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        got = e.get("input")
        shown = "" if got is None or isinstance(got, (dict, list)) else f" (got {safe_text(got, EXCERPT_CHARS)!s})"
        parts.append(f"{loc}: {safe_text(e.get('msg', 'invalid'), 200)}{shown}")
    more = len(exc.errors()) - MAX_ERRORS
    message = "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    return error(422, message, "invalid_request_error")


class BodyLimit:
    """Pure ASGI middleware: 413 for a body over ``app.state.max_body_bytes``, read in chunks before
    the app sees it (Content-Length when sent, else counted), so no huge body is ever parsed."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        limit = getattr(scope.get("app") and scope["app"].state, "max_body_bytes", None) if scope["type"] == "http" else None
        if not limit:
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._reject(scope, receive, send, limit)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":  # client went away
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > limit:
                return await self._reject(scope, receive, send, limit)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(scope, receive, send, limit: int) -> None:
        rid, echoed = _scope_request_id(scope)
        log.warning("request %s %s: body over %d bytes refused", rid, scope.get("path"), limit)
        REQUEST_ID.set(rid)
        resp = error(413, f"request body is over the limit of {limit} bytes (serve.max_body_bytes)", "request_too_large")
        if not echoed:
            resp.headers["X-Request-ID"] = rid
        await resp(scope, receive, send)
