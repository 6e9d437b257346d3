"""Every command in README.md's ```bash blocks is either run here (on the committed demo corpus) or listed
in DOC_ONLY with the reason it cannot run in a test. A new README command fails
``test_every_readme_command_is_run_or_explained`` until it is one or the other."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # README says .venv/bin/...; the test runs the same venv's scripts
# This checkout first on the path: a shared venv's console script may point at another checkout.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}

# (start of a command) -> why it is documentation only
DOC_ONLY = {
    "make demo": "the whole demo job (minutes); CI's own entry point, run by `make demo`",
    "make test": "this test suite itself",
    "ray up": "needs cloud credentials", "ray dashboard": "needs a launched cluster", "ray down": "needs a launched cluster",
    "export RAY_ADDRESS=": "shell state for the cluster commands",
    "ray job submit": "needs a running Ray job server; tests/pipelines/test_curate_job_submit.py submits a job the same way",
    ".venv/bin/python -m perception.realdev": "needs the real-data folder (../shared/data/real); tests/perception/test_realdev_* cover it",
    ".venv/bin/python bench/perception.py": "a benchmark (minutes), run by `make bench`",
    "python3.11 -m venv": "builds a second venv (GPU install by hand)", ".venv/bin/pip install": "installs packages (GPU install by hand)",
    "make full": "installs packages (run by `make venv`)",
    ".venv/bin/amuse export": "needs `make demo`'s outputs; tests/eval/test_exports.py runs `amuse export` on an evaluated run",
    ".venv/bin/python -c \"import datasets": "reads `amuse export`'s output (see above); tests/eval/test_exports.py loads it the same way",
}
RUN_HERE = ("export AMUSE_API_KEY=", ".venv/bin/amuse serve", "curl ", ".venv/bin/amuse config")


def _strip_comment(line: str) -> str:
    """The line up to a `#` that starts a shell comment (after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def commands() -> list[str]:
    """The commands of README.md's bash blocks: continuation lines joined, comments and blanks dropped."""
    text = (REPO / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        joined = re.sub(r"'\{([^']*)\n\s*", r"'{\1 ", joined)  # a JSON body spread over lines inside quotes
        for line in joined.splitlines():
            line = _strip_comment(line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def _venv(cmd: str) -> str:
    return cmd.replace(".venv/bin/", f"{BIN}/")


def test_every_readme_command_is_run_or_explained():
    unexplained = [c for c in commands() if not c.startswith(tuple(DOC_ONLY)) and not c.startswith(RUN_HERE)]
    assert not unexplained, f"README commands neither run by this test nor listed in DOC_ONLY: {unexplained}"
    assert any(c.startswith("curl ") for c in commands()) and any(c.startswith(".venv/bin/amuse serve") for c in commands())


def test_readme_config_commands():
    for cmd in (c for c in commands() if c.startswith(".venv/bin/amuse config")):
        proc = subprocess.run(_venv(cmd), shell=True, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
        if "--set eval.concurrency=many" in cmd:  # the README's example of a config error
            assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
            assert "eval.concurrency: expected int, got str 'many'" in proc.stderr
        else:
            assert proc.returncode == 0, (cmd, proc.stderr[-2000:])
            assert "perception.asr" in proc.stdout or "asr: whisper" in proc.stdout, cmd


@pytest.mark.slow
def test_readme_serve_and_curl(tmp_path):
    """`amuse serve` as the README starts it, then the README's curl against it (its headers, its body)."""
    import socket

    cmds = commands()
    serve = next(c for c in cmds if c.startswith(".venv/bin/amuse serve"))
    curl = next(c for c in cmds if c.startswith("curl "))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    video = sorted((REPO / "data" / "corpus" / "youtube").glob("*.mp4"))[0].stem
    env = {**ENV, "AMUSE_API_KEY": "readme-test-key", "PWD": str(REPO)}
    argv = shlex.split(_venv(serve).replace("serve.port=8000", f"serve.port={port}"))
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=open(tmp_path / "serve.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("amuse serve did not answer /healthz in 240 s:\n" + (tmp_path / "serve.log").read_text()[-3000:])
        cmd = curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("<video_id>", video) + " -w '\\n%{http_code}'"
        out = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        body, _, code = out.stdout.rpartition("\n")
        assert out.returncode == 0 and code == "200", (code, body[-2000:])
        reply = json.loads(body)
        assert reply["answer"] and "diarize" in reply["tools_called"] and reply["trace"]["act"], reply
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: serve shuts its app and Ray down
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
