"""Whether an ingress replica can still answer: its media-check threads and its deployments.

``/healthz`` used to answer 200 from a cached model list, so a replica whose media-check threads
were all stuck (a storage endpoint or file system that stopped answering) or whose model and tool
deployments did not answer still looked healthy to a load balancer, while every answer hung.
:class:`WatchedPool` knows how long each running check has run; :func:`problems` combines that with
one cheap call to each deployment under a short timeout. A check still running past its own
timeout has already cost its client a 504 and holds a thread nobody waits for: when every thread
is held that way, no new check can start, and the replica is wedged.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class WatchedPool:
    """A thread pool that records when each running call started (queued calls do not count)."""

    def __init__(self, workers: int, prefix: str):
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix)
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future:
        """``fn(*args)`` in a pool thread, as an awaitable of the running event loop."""
        return asyncio.get_running_loop().run_in_executor(self._pool, self._timed, fn, args)

    def _timed(self, fn: Callable[..., Any], args: tuple) -> Any:
        key = next(self._ids)
        with self._lock:
            self._started[key] = time.monotonic()
        try:
            return fn(*args)
        finally:
            with self._lock:
                del self._started[key]

    def running_longer_than(self, seconds: float) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(now - t > seconds for t in self._started.values())


async def probe(name: str, call: Awaitable, timeout_s: float) -> tuple[str | None, Any]:
    """(problem or None, result) of one cheap deployment call awaited for at most ``timeout_s``."""
    try:
        return None, await asyncio.wait_for(call, timeout=timeout_s)
    except TimeoutError:
        return f"{name}: no answer within {timeout_s:g} s", None
    except Exception as exc:  # a dead or failing deployment: the kind is enough for a health check
        return f"{name}: {type(exc).__name__}", None


def pool_problem(pool: WatchedPool, check_timeout_s: float) -> str | None:
    stuck = pool.running_longer_than(check_timeout_s)
    if stuck >= pool.workers:
        return (f"media checks: all {pool.workers} threads busy past the {check_timeout_s:g} s check timeout; "
                "no new check can start")
    return None
