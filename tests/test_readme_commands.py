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
    video = min((REPO / "data" / "corpus" / "youtube").glob("*.mp4"), key=lambda p: p.stat().st_size).stem  # the shortest
    env = {**ENV, "AMUSE_API_KEY": "readme-test-key", "PWD": str(REPO)}
    # the README's command with one override: only the model the curl asks for (loading the tiny policy
    # and its processor adds nothing the curl checks)
    argv = shlex.split(_venv(serve).replace("serve.port=8000", f"serve.port={port}"))
    argv += ["--set", "eval.models=[{name: tool_only, kind: tool_only}]"]
    t0 = time.time()
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
        print(f"serve up in {time.time() - t0:.1f} s")
        cmd = curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("<video_id>", video) + " -w '\\n%{http_code}'"
        out = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        body, _, code = out.stdout.rpartition("\n")
        assert out.returncode == 0 and code == "200", (code, body[-2000:])
        reply = json.loads(body)
        assert reply["answer"] and "diarize" in reply["tools_called"] and reply["trace"]["act"], reply
        print(f"curl answered at {time.time() - t0:.1f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: serve shuts its app and Ray down
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("gpu", [True, False])
def test_makefile_installs_cuda_torch_only_where_a_gpu_is(tmp_path, gpu):
    """`make venv`'s torch step and import check, as make would run them (dry run, -B), with and without a
    GPU that nvidia-smi lists (a stand-in nvidia-smi prints what the real one prints for an H200)."""
    import shutil

    if not shutil.which("make"):
        pytest.skip("needs make")
    fake = tmp_path / "bin"
    fake.mkdir()
    if gpu:
        (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0000)'\n")
        (fake / "nvidia-smi").chmod(0o755)
    path = f"{fake}:{os.environ['PATH']}" if gpu else ":".join(
        p for p in os.environ["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())
    out = subprocess.run(["make", "-n", "-B", "venv"], cwd=REPO, env={**ENV, "PATH": path}, capture_output=True,
                         text=True, timeout=60).stdout
    torch_line = next(line for line in out.splitlines() if "'setuptools<82'" in line and "torch" in line)
    check = next(line for line in out.splitlines() if "import torch," in line)
    if gpu:
        assert "'torch===2.13.0'" in torch_line and "+cpu" not in torch_line
        assert "assert torch.cuda.is_available()" in check
    else:
        assert "'torch==2.13.0'" in torch_line and "===" not in torch_line
        assert "assert '+cpu' in torch.__version__ or not torch.cuda.is_available()" in check


def test_bench_gpu_step_is_safe_on_cpu(tmp_path):
    """`make bench` runs every bench script with no arguments: raft_gpu_step's default is the tiny shape,
    and the 7B shape refuses without a GPU instead of building an 8.9 B-parameter fp32 model."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("raft_gpu_step", REPO / "bench" / "raft_gpu_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the 7b shape is allowed here")
    with pytest.raises(SystemExit) as exc:
        mod.main(["--shape", "7b", "--out", str(tmp_path)])
    assert exc.value.code == 2 and not list(tmp_path.iterdir())
    # the default shape (what `make bench` runs) is the tiny one
    default = next(a.default for a in _parser_actions(mod) if "--shape" in a.option_strings)
    assert default == "tiny"


def _parser_actions(mod):
    """raft_gpu_step's argparse actions, captured by parsing --help-free arguments in a patched parser."""
    import argparse

    seen = []
    real = argparse.ArgumentParser.parse_args

    def capture(self, *a, **k):
        seen.extend(self._actions)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            mod.main([])
    finally:
        argparse.ArgumentParser.parse_args = real
    return seen
