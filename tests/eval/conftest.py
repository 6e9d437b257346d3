"""Eval test helpers: the fake tools module is importable here and in Ray workers (PYTHONPATH)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
# Ray Serve replicas are fresh processes: they find fake_tools (and the repo) through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])


import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def meteor_tables_load_in_the_background():
    """METEOR's JVM loads its tables (15-30 s) while the eval tests before the METEOR test run."""
    from eval.metrics.text import prewarm_meteor

    prewarm_meteor()


@pytest.fixture(scope="session")
def evaluated_run(tmp_path_factory):
    """A small evaluated run without Ray: synthetic clips over a 40 s wav, samples from the real task
    builders (all six tasks in samples.parquet; every task but AVDS evaluated), tool-only and random predictions in every mode (agentic through the fake tools), and the
    outputs of ``pipelines.evaluate.write_outputs`` (predictions, results, report.md, report.html)."""
    import time

    import pyarrow as pa
    from serve_fixtures import write_wav
    from synthetic import corpus

    from eval.agent.loop import Limits
    from eval.agent.tools import InProcessTools
    from eval.config import ModelSpec
    from eval.models.registry import build_adapter
    from eval.runner import predict_in_process
    from eval.tasks import task_names
    from eval.tasks.build import build_all
    from eval.tasks.config import TasksConfig
    from eval.tasks.kinds import ScoringParams
    from infra import storage
    from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
    from infra.validate import to_table
    from pipelines import evaluate
    from pipelines.config import load_app_config

    root = tmp_path_factory.mktemp("evaluated_run")
    (root / "media").mkdir()
    wav = write_wav(root / "media" / "ep.wav", 40.0)
    clips = corpus(wav, videos=4, scenes=2)
    built = build_all(clips, TasksConfig(test_fraction=0.5), seed=0)
    samples_uri, clips_dir = str(root / "samples.parquet"), root / "clips"
    storage.write_parquet(to_table(built.rows, SAMPLE_SCHEMA), samples_uri)
    storage.write_parquet(pa.Table.from_pylist(clips, schema=CLIP_SCHEMA), str(clips_dir / "part-0.parquet"))
    cfg = load_app_config(None, [f"run.output_dir={root / 'out'}", "run.name=t", f"eval.samples_uri={samples_uri}",
                                 f"eval.clips_uri={clips_dir}", "eval.bootstrap_samples=50",
                                 # AVDS is scored with METEOR's JVM, 20+ s to start on a busy 2-core machine
                                 f"eval.tasks=[{','.join(t for t in task_names() if t != 'AVDS')}]"])
    samples, clip_rows = evaluate.load_inputs(cfg)
    tools = InProcessTools("fake_tools", None)
    params = ScoringParams(cfg.eval.iou_thresholds, cfg.eval.stg_tolerance_s, 50, 0)
    rows = []
    for kind in ("tool_only", "random"):
        model = build_adapter(ModelSpec(name=kind, kind=kind), None)
        for sample in samples:
            for mode in ("zero_shot", "guided", "agentic"):
                limits = Limits(4, 8, 10.0, time.monotonic() + 30)
                rows.append(predict_in_process(model, sample, clip_rows, mode, tools, limits, params, model_key=kind))
    report_dir = str(root / "out" / "t" / "eval")
    out = evaluate.write_outputs(cfg, samples, report_dir, rows, path="in-process")
    return {"root": root, "cfg": cfg, "samples": samples, "clips": clips, "rows": rows, **out}
