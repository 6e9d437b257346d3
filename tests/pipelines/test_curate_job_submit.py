"""`ray job submit --working-dir . -- python pipelines/curate.py` against a local head started with `ray start`.

The head runs on loopback with free ports and its own short temp dir, so it cannot collide with
another head on the machine; the test stops it (and only it) at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from corpus_fixtures import write_ami, write_youtube

from infra import storage

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
pytestmark = pytest.mark.slow


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def ray_head():
    gcs, dash, client, agent, env_agent, metrics = free_ports(6)
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Token auth: a head enables it whenever ~/.ray/auth_token exists (any earlier ray.init writes one),
    # but `ray job submit` only sends the token in token mode. Say the mode explicitly for both sides;
    # this head listens on loopback only.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled",
           # The job's `python` is resolved on the head's PATH: the project's venv, as on a real cluster image.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    cmd = [RAY, "start", "--head", "--num-cpus=2", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
           f"--dashboard-agent-listen-port={agent}", f"--runtime-env-agent-port={env_agent}",
           f"--metrics-export-port={metrics}", f"--temp-dir={temp}", "--disable-usage-stats"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield {"gcs": f"127.0.0.1:{gcs}", "dashboard": f"http://127.0.0.1:{dash}", "env": env}
    finally:
        stop_head(temp)


def stop_head(temp_dir: str) -> None:
    """Stop this head only. `ray stop` has no address option and stops every Ray process on the
    machine, other sessions' included; this head's processes all name its own temp dir."""
    import psutil

    def ours() -> list[psutil.Process]:
        procs = []
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(temp_dir in part for part in proc.info["cmdline"] or []):
                    procs.append(proc)
            except psutil.Error:
                pass
        return procs

    procs = ours()
    for proc in procs:
        proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive + ours():
        proc.kill()
    psutil.wait_procs(alive, timeout=10)
    assert not ours(), "the test head left processes behind"


def test_curate_job_submit_on_local_head(tmp_path, ray_head):
    corpus, out = tmp_path / "corpus", tmp_path / "out"
    write_ami(corpus, duration=40.0, video=False)
    write_youtube(corpus, duration=30.0)
    sets = [f"run.corpus_dir={corpus}", f"run.output_dir={out}", "run.name=job", "curate.sources=[ami,youtube]",
            "curate.stages=[vad]", "curate.progress_bars=false"]
    cmd = [RAY, "job", "submit", "--address", ray_head["dashboard"], "--working-dir", ".", "--",
           "python", "pipelines/curate.py", "--config", "configs/demo.yaml", *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.run(cmd, cwd=REPO, env=ray_head["env"], capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "succeeded" in log and "| stage" in log  # the job's own summary table reached the submitter
    clips = [f for f in storage.list_files(str(out / "job" / "clips"), ".parquet")]
    assert {Path(f).parent.name for f in clips} == {"ami", "youtube"}
    samples = storage.read_parquet(str(out / "job" / "samples.parquet"))
    assert samples.num_rows > 0 and set(samples.column("task").to_pylist()) >= {"NSP", "STG", "SRID"}
