"""Stop a private local Ray once its driver is gone, SIGKILL included.

``ray.init(address="local")`` starts the GCS and a raylet beside the driver. When the driver is
SIGKILLed (an OOM kill, a lost login session), those two follow it, but the raylet's
``DashboardAgent`` and ``RuntimeEnvAgent`` and the idle workers linger, orphaned under PID 1, for
about a minute, the agents ignoring SIGTERM (bench/chaos.py ``curate_driver_kill``: 5 processes, all
gone only after 62 s). :func:`start` launches a detached watcher beside the driver; when the driver
ends, however it ends, the watcher stops what is left of the driver's Ray session
(:func:`infra.ray_utils.stop_head` on the session folder, SIGKILL after a short grace).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

# The session folder travels in the environment, not argv: a process whose command line names the
# folder counts as one of the session's own (infra.ray_utils.head_processes).
SESSION_ENV = "AMUSE_REAP_RAY_SESSION"


def start(session_dir: str, pid: int | None = None) -> subprocess.Popen:
    """Watch ``pid`` (default: this process) and stop ``session_dir``'s processes once it has exited."""
    return subprocess.Popen([sys.executable, "-m", "infra.ray_reaper", str(pid or os.getpid())],
                            env={**os.environ, SESSION_ENV: session_dir}, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _alive(proc) -> bool:
    import psutil

    try:  # is_running also checks the pid was not reused; a zombie is a driver that has ended
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def watch(pid: int, session_dir: str, poll_s: float = 0.5, grace_s: float = 2.0, session_poll_s: float = 10.0
          ) -> list[int]:
    """Block until ``pid`` exits, then stop the session's processes; returns their pids. Returns at once
    (nothing stopped) when the session ends first: a driver that called ``ray.shutdown()`` and lives on."""
    import psutil

    from infra.ray_utils import head_processes, stop_head

    try:
        driver, checked = psutil.Process(pid), time.monotonic()
        while _alive(driver):
            time.sleep(poll_s)
            if time.monotonic() - checked > session_poll_s:
                if not head_processes(session_dir):
                    return []
                checked = time.monotonic()
    except psutil.NoSuchProcess:
        pass
    return stop_head(session_dir, timeout_s=grace_s)


if __name__ == "__main__":  # started by start(): `python -m infra.ray_reaper PID` with the session in SESSION_ENV
    watch(int(sys.argv[1]), os.environ[SESSION_ENV])
