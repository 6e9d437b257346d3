"""`ray job submit --working-dir . -- python pipelines/curate.py` against a local head started with `ray start`.

The head runs on loopback with free ports and its own short temp dir, so it cannot collide with
another head on the machine; the test stops it (and only it) at the end.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from corpus_fixtures import write_ami, write_youtube

from infra import storage
from tests.ray_head import RAY, local_head

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def ray_head():
    with local_head() as head:
        yield head


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
