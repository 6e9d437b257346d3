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
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from infra import storage
from raft.model import OmniPolicy
from tests.ray_head import RAY, local_head

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SRA_05 = ["train.sra.patterns=[]", r"train.sra.layer_patterns=['self_attn\.v_proj\.weight$']", "train.sra.top_layers=1"]


@pytest.fixture
def ray_head(s3_bucket):
    """The job sees the S3 endpoint through the env the head inherits from the s3_bucket fixture."""
    # The job runs in an uploaded copy of the repo without .cache/: reuse the compiled DeepSpeed ops.
    with local_head({"DS_ACCELERATOR": "cpu", "TORCH_EXTENSIONS_DIR": str(REPO / ".cache" / "torch_extensions")}) as head:
        yield head


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
