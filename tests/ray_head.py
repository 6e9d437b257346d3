"""A `ray start --head` of the test's own, for tests that go through `ray job submit` as production does.

The head listens on loopback with free ports and a short temp dir, so it cannot collide with another
head on the machine. It is stopped by its own processes: `ray stop` has no address option and would
stop every Ray on the machine, other sessions' included.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.ray_utils import stop_head as infra_stop_head

RAY = str(Path(sys.executable).with_name("ray"))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def stop_head(temp: str, gcs: int) -> None:
    """Stop this head by its own processes, remove its temp dir, and check that nothing is left.

    A throwaway head's gcs_server and dashboard outlive SIGTERM by the full 15 s grace that a head
    holding state deserves: 3 s, then SIGKILL, saves that at every test head's teardown."""
    infra_stop_head(temp, gcs, timeout_s=3.0)
    shutil.rmtree(temp, ignore_errors=True)
    assert not infra_stop_head(temp, gcs), "the test head left processes behind"


@contextmanager
def local_head(extra_env: dict[str, str] | None = None) -> Iterator[dict]:
    """Start a 2-CPU head; yields {"gcs", "dashboard", "env"} where env is what `ray job submit` needs."""
    gcs, dash, client, agent, env_agent, metrics = free_ports(6)
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Token auth: a head enables it whenever ~/.ray/auth_token exists (any earlier ray.init writes one),
    # but `ray job submit` only sends the token in token mode; say the mode explicitly for both sides.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled",
           # The job's `python` is resolved on the head's PATH: the project's venv, as on a cluster image.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    cmd = [RAY, "start", "--head", "--num-cpus=2", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
           f"--dashboard-agent-listen-port={agent}", f"--runtime-env-agent-port={env_agent}",
           f"--metrics-export-port={metrics}", f"--temp-dir={temp}", "--disable-usage-stats"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        stop_head(temp, gcs)
        raise RuntimeError(f"ray start failed:\n{proc.stdout}\n{proc.stderr}")
    try:
        yield {"gcs": f"127.0.0.1:{gcs}", "dashboard": f"http://127.0.0.1:{dash}", "env": env}
    finally:
        agents = _agents(temp)
        stop_head(temp, gcs)
        # The raylet's agents rewrite their command line, so only their open files tie them to this head.
        left = [p.pid for p in agents if p.is_running() and p.status() != "zombie"]
        assert agents and not left, f"stopping the head left its agents running: {left}"


def _agents(temp: str) -> list:
    import psutil

    out = []
    for p in psutil.process_iter(["name"]):
        try:
            if p.info["name"].startswith("ray::") and any(f.path.startswith(temp + "/") for f in p.open_files()):
                out.append(p)
        except psutil.Error:
            pass
    return out
