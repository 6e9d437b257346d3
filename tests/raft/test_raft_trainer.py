"""End to end, as production runs it: `ray job submit ... python pipelines/train.py` on a local head.

One job covers the whole trainer (one Ray Train + DeepSpeed startup, plus the restart it provokes):
2 DeepSpeed workers (ZeRO-2, gloo), SRA 0.5%, the reward actor pool, checkpoints in s3:// storage
(moto on loopback), rank 0 killed once at step 3, Ray Train restarting the group, resume restoring
model, optimizer, data position and RNG (so the re-run step 3 repeats the first one exactly), metrics
in JSONL and TensorBoard, and the HF export, in which only theta_cross differs from the base model.
LoRA through the same objective and its merge for export are covered in test_raft_sra.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import torch

from infra import storage
from raft.model import OmniPolicy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
SRA_05 = ["train.sra.patterns=[]", r"train.sra.layer_patterns=['self_attn\.v_proj\.weight$']", "train.sra.top_layers=1"]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def stop_head(temp: str, gcs: int) -> None:
    """Stop this head only: `ray stop` stops every Ray on the machine (it has no --address option), so end
    the processes whose command line names this head's temp dir or GCS port, then remove the temp dir."""
    import psutil

    mine = [p for p in psutil.process_iter(["cmdline"])
            if any(temp in a or f"127.0.0.1:{gcs}" in a or f"port={gcs}" in a for a in (p.info["cmdline"] or []))]
    for p in mine:
        p.terminate()
    _, alive = psutil.wait_procs(mine, timeout=10)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=10)
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def ray_head(s3_bucket):
    """A head on loopback with free ports and a short temp dir; the job sees the S3 endpoint through its env.

    Same pattern as tests/pipelines/test_curate_job_submit.py (token auth off explicitly, the venv first on
    PATH so the job's `python` is the project's); stopped by its own processes, never `ray stop` for all."""
    ports = free_ports(6)
    gcs, dash = ports[0], ports[1]
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "disabled", "DS_ACCELERATOR": "cpu",
           # the job runs in an uploaded copy of the repo without .cache/: reuse the compiled DeepSpeed ops
           "TORCH_EXTENSIONS_DIR": str(REPO / ".cache" / "torch_extensions"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    cmd = [RAY, "start", "--head", "--num-cpus=2", "--node-ip-address=127.0.0.1", f"--port={gcs}",
           "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--ray-client-server-port={ports[2]}",
           f"--dashboard-agent-listen-port={ports[3]}", f"--runtime-env-agent-port={ports[4]}",
           f"--metrics-export-port={ports[5]}", f"--temp-dir={temp}", "--disable-usage-stats"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield {"dashboard": f"http://127.0.0.1:{dash}", "env": env}
    finally:
        stop_head(temp, gcs)


def _lines(path):
    return [json.loads(x) for x in Path(path).read_text().splitlines()]


def test_job_submit_trains_checkpoints_resumes_after_kill_and_exports(ray_head, s3_bucket, train_cfg, dataset,
                                                                       policy, tmp_path):
    samples, clips = dataset
    sets = [f"run.output_dir={tmp_path}", "run.name=job", f"train.samples_uri={samples}", f"train.clips_uri={clips}",
            f"train.model_cache_dir={train_cfg.model_cache_dir}", "train.k=3", "train.batch_size=2",
            "train.max_new_tokens=12", f"train.experiment_name=raft-{uuid.uuid4().hex[:8]}", *SRA_05,
            "train.steps=4", "train.checkpoint_every=2", "train.fail_at_step=3", "train.max_failures=1",
            f"train.storage_path={s3_bucket}/train", "train.reward_actors=2"]
    cmd = [RAY, "job", "submit", "--address", ray_head["dashboard"], "--working-dir", ".", "--",
           "python", "pipelines/train.py", "--config", "configs/demo.yaml", *[a for s in sets for a in ("--set", s)]]
    proc = subprocess.run(cmd, cwd=REPO, env=ray_head["env"], capture_output=True, text=True, timeout=540)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "succeeded" in log, log[-6000:]
    out = {}
    for line in proc.stdout.splitlines():  # the job prints "<name>  <uri>" per output
        for name in ("train checkpoint", "train metrics", "train tensorboard", "aligned model"):
            if line.startswith(name + " "):
                out[name] = line[len(name):].strip()
    assert set(out) == {"train checkpoint", "train metrics", "train tensorboard", "aligned model"}, log[-3000:]

    # metrics: trainable fraction, then every step; the worker really died once, step 3 ran twice, identically
    lines = _lines(out["train metrics"])
    assert lines[0]["step"] == 0 and 0.004 < lines[0]["sra/trainable_fraction"] < 0.006
    assert Path(out["train metrics"]).with_name(".fault_injected").exists()
    assert [x["step"] for x in lines if x["step"] > 0] == [1, 2, 3, 3, 4]
    assert all("rro/ess" in x and "loss/temp" in x and 1.0 <= x["rro/ess"] <= 3.0 + 1e-4 for x in lines[1:])
    first, again = [x for x in lines if x["step"] == 3]
    for k in ("loss/total", "loss/align", "loss/rro", "reward/mean", "gen/tokens"):
        assert again[k] == pytest.approx(first[k], rel=1e-5, abs=1e-6), k
    assert list(Path(out["train tensorboard"]).glob("events.out.tfevents*"))

    # checkpoint in s3: both workers' shards and RNG/data-position states, at the last step
    assert out["train checkpoint"].startswith(s3_bucket)
    files = storage.list_files(out["train checkpoint"])
    assert any(f.endswith("state_rank0.pt") for f in files) and any(f.endswith("state_rank1.pt") for f in files)
    fs, path = storage.filesystem(out["train checkpoint"])
    with fs.open(f"{path}/state_rank0.pt", "rb") as f:
        assert torch.load(f, weights_only=False)["step"] == 4

    # export: HF format, loads; only theta_cross (the top layer's v_proj) differs from the base weights
    local = tmp_path / "export"
    fs, path = storage.filesystem(out["aligned model"])
    fs.get(path, str(local), recursive=True)
    aligned = OmniPolicy.from_pretrained(local)
    base = dict(policy.model.named_parameters())
    changed = [n for n, p in aligned.model.named_parameters() if not torch.equal(p, base[n])]
    assert changed == ["model.language_model.layers.1.self_attn.v_proj.weight"]
