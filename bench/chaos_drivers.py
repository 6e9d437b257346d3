"""Driver kills for bench/chaos.py: a job's driver process SIGKILLed on its own private local Ray, then rerun.

Each scenario runs the job as the CLI does (``pipelines/cli.py``) with its own RAY_TMPDIR, so the
Ray processes of that run are found by it (``infra.ray_utils.head_processes``) and counted after the
kill; then the same command is rerun and what it resumed and left behind is counted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos import REPO, _metric_lines, _registered_step, clip_counts, curate_sets, expected_clip_ids


def kill_driver(proc, temp: str, grace_s: float) -> dict:
    """SIGKILL the driver process alone (as an OOM kill or a lost login session would), then watch its Ray
    session's processes: how many were running, how many are left 2 s later, how long until all are gone
    (``grace_s`` at most; what outlives it is stopped and counted)."""
    from infra.ray_utils import head_processes, stop_head

    before = len(head_processes(temp))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t_kill = time.monotonic()
    time.sleep(2)
    left = head_processes(temp)
    n_left, left_names = len(left), sorted({p.name() for p in left if p.is_running()})
    while left and time.monotonic() - t_kill < grace_s:
        time.sleep(1)
        left = [p for p in left if p.is_running() and p.status() != "zombie"]
    return {"t_kill": t_kill, "ray_processes_before_kill": before, "left_2s_after_kill": n_left,
            "left_names": left_names, "all_gone_after_s": round(time.monotonic() - t_kill, 1) if not left else None,
            "grace_s": grace_s, "killed_after_grace": len(stop_head(temp)) if left else 0}


def curate_driver_kill(out_dir: str, grace_s: float = 120.0) -> dict:
    """``amuse curate`` on its own private Ray; SIGKILL the driver process alone once 2 clips are written."""
    from infra.ray_utils import head_processes, stop_head

    sets = [*curate_sets(out_dir), "ray.address=local", "ray.num_cpus=2", "curate.records_per_file=1"]
    cmd = [sys.executable, str(REPO / "pipelines" / "cli.py"), "curate", *[a for x in sets for a in ("--set", x)]]
    clips_dir = Path(out_dir) / "chaos" / "clips"
    expected = expected_clip_ids(sets)

    def run(temp: str, wait: bool):
        env = {**os.environ, "RAY_TMPDIR": temp}  # this run's Ray processes all name (or hold files in) it
        log = open(Path(out_dir) / f"{Path(temp).name}.log", "w")
        return (subprocess.run if wait else subprocess.Popen)(cmd, env=env, cwd=REPO, stdout=log,
                                                               stderr=subprocess.STDOUT, start_new_session=True)

    temp = tempfile.mkdtemp(prefix="ck", dir="/tmp")  # short: Ray's socket paths have a length limit
    proc = run(temp, wait=False)
    deadline = time.monotonic() + 600
    while len(list(clips_dir.rglob("part-*.parquet"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = kill_driver(proc, temp, grace_s)
    killed.pop("t_kill")
    partial = clip_counts(str(clips_dir), expected)["clips_written"]
    assemble_after_kill = len(list(Path(out_dir).rglob(".assemble-*")))

    temp2 = tempfile.mkdtemp(prefix="ck", dir="/tmp")
    rc = run(temp2, wait=True).returncode
    time.sleep(2)
    after_rerun = head_processes(temp2)
    for t in (temp, temp2):
        stop_head(t)
        shutil.rmtree(t, ignore_errors=True)
    return {**killed, "clips_before_rerun": partial, "assemble_dirs_after_kill": assemble_after_kill,
            "rerun_rc": rc, **clip_counts(str(clips_dir), expected),
            "assemble_dirs_after_rerun": len(list(Path(out_dir).rglob(".assemble-*"))),
            "ray_processes_after_rerun": len(after_rerun)}


def train_driver_kill(out_dir: str, steps: int = 6, kill_after_checkpoint: int = 2, grace_s: float = 120.0) -> dict:
    """``amuse train`` as its own process on a private local Ray; SIGKILL the driver alone once the step-2
    checkpoint is registered and step 3 is logged; rerun the same command, which resumes from storage."""
    import torch
    from raft_synth import build_dataset

    from infra.ray_utils import head_processes, stop_head

    samples, clips = build_dataset(Path(out_dir) / "data")
    storage_path = Path(out_dir) / "train"
    exp_dir = storage_path / "chaos"
    metrics = exp_dir / "logs" / "metrics.jsonl"
    sets = [f"run.output_dir={out_dir}", "run.name=chaos", "ray.address=local", "ray.num_cpus=2",
            f"train.samples_uri={samples}", f"train.clips_uri={clips}", f"train.storage_path={storage_path}",
            "train.experiment_name=chaos", "train.k=3", "train.max_new_tokens=12", f"train.steps={steps}",
            f"train.checkpoint_every={kill_after_checkpoint}", "train.reward_actors=1"]
    cmd = [sys.executable, str(REPO / "pipelines" / "cli.py"), "train", *[a for x in sets for a in ("--set", x)]]

    def run(temp: str, wait: bool):
        env = {**os.environ, "RAY_TMPDIR": temp}
        log = open(Path(out_dir) / f"{Path(temp).name}.log", "w")
        return (subprocess.run if wait else subprocess.Popen)(cmd, env=env, cwd=REPO, stdout=log,
                                                               stderr=subprocess.STDOUT, start_new_session=True)

    temp = tempfile.mkdtemp(prefix="tk", dir="/tmp")
    t0 = time.monotonic()
    proc = run(temp, wait=False)
    deadline = time.monotonic() + 900
    while not (_registered_step(exp_dir) == kill_after_checkpoint
               and kill_after_checkpoint + 1 in [x["step"] for x in _metric_lines(metrics)]):
        if proc.poll() is not None or time.monotonic() > deadline:
            return {"error": f"the first run ended (rc {proc.returncode}) or stalled before the kill point"}
        time.sleep(0.2)
    resumed_from = _registered_step(exp_dir)
    first = {x["step"]: x for x in _metric_lines(metrics)}
    killed = kill_driver(proc, temp, grace_s)
    t_kill = killed.pop("t_kill")

    temp2 = tempfile.mkdtemp(prefix="tk", dir="/tmp")
    rc = run(temp2, wait=True).returncode
    t_end = time.monotonic()
    # the trainer's rank 0 says where it started (a rerun from scratch would log steps 0..N again, identically)
    said = re.findall(r"resumed from the step-(\d+) checkpoint", (Path(out_dir) / f"{Path(temp2).name}.log").read_text())
    time.sleep(2)
    after_rerun = head_processes(temp2)
    for t in (temp, temp2):
        stop_head(t)
        shutil.rmtree(t, ignore_errors=True)
    lines = _metric_lines(metrics)
    logged = [x["step"] for x in lines]
    ckpts = sorted(p for p in exp_dir.glob("checkpoint_*") if p.is_dir())
    final = torch.load(ckpts[-1] / "state_rank0.pt", weights_only=False)["step"] if ckpts else None
    by_step = {x["step"]: x for x in lines}
    rerun = [st for st in first if st > resumed_from]
    same = all(abs(by_step[st][k] - first[st][k]) <= 1e-5 * max(1.0, abs(first[st][k]))
               for st in rerun if st in by_step for k in ("loss/total", "reward/mean"))
    return {"steps": steps, **killed, "registered_step_at_kill": resumed_from, "resumed_from_step": int(said[0]) if said else None,
            "final_checkpoint_step": final, "rerun_rc": rc,
            "steps_logged_twice": len(logged) - len(set(logged)),
            "steps_missing": sorted(set(range(steps + 1)) - set(logged)), "rerun_steps": rerun,
            "rerun_steps_identical": same if rerun else None, "ray_processes_after_rerun": len(after_rerun),
            "kill_to_end_s": round(t_end - t_kill, 1), "wall_s": round(t_end - t0, 1)}


def evaluate_driver_kill(out_dir: str, videos: int = 12, grace_s: float = 120.0) -> dict:
    """``amuse evaluate`` (in-process models, fake tools) on its own private local Ray over synthetic samples;
    SIGKILL the driver alone once some predictions are cached; rerun: the cached ones are not run again."""
    import pyarrow as pa
    from serve_fixtures import write_wav
    from synthetic import corpus

    from eval.tasks.build import build_all
    from eval.tasks.config import TasksConfig
    from infra import storage
    from infra.ray_utils import head_processes, stop_head
    from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
    from infra.validate import to_table

    root = Path(out_dir)
    (root / "media").mkdir(parents=True)
    clips = corpus(write_wav(root / "media" / "ep.wav", 40.0), videos=videos, scenes=2)
    built = build_all(clips, TasksConfig(test_fraction=0.5), seed=0)
    storage.write_parquet(to_table(built.rows, SAMPLE_SCHEMA), str(root / "samples.parquet"))
    storage.write_parquet(pa.Table.from_pylist(clips, schema=CLIP_SCHEMA), str(root / "clips" / "part-0.parquet"))
    sets = [f"run.output_dir={root / 'out'}", "run.name=chaos", "ray.address=local", "ray.num_cpus=2",
            f"eval.samples_uri={root / 'samples.parquet'}", f"eval.clips_uri={root / 'clips'}", "eval.split=all",
            "eval.via_http=false", "eval.concurrency=1", "serve.tools_module=fake_tools",
            "eval.models=[{name: tool_only, kind: tool_only}, {name: random, kind: random}]",
            "eval.tasks=[AVSA,NSP,SRID,STG,CSNL]"]  # AVDS's METEOR JVM would dominate the run
    cmd = [sys.executable, str(REPO / "pipelines" / "cli.py"), "evaluate", *[a for x in sets for a in ("--set", x)]]
    cache = root / "out" / "chaos" / "eval" / "cache"

    def run(temp: str, wait: bool):
        env = {**os.environ, "RAY_TMPDIR": temp}
        log = open(root / f"{Path(temp).name}.log", "w")
        return (subprocess.run if wait else subprocess.Popen)(cmd, env=env, cwd=REPO, stdout=log,
                                                               stderr=subprocess.STDOUT, start_new_session=True)

    temp = tempfile.mkdtemp(prefix="ek", dir="/tmp")
    t0 = time.monotonic()
    proc = run(temp, wait=False)
    deadline = time.monotonic() + 600
    while len(list(cache.glob("part-*.parquet"))) < 3:
        if proc.poll() is not None or time.monotonic() > deadline:
            return {"error": f"the first run ended (rc {proc.returncode}) or stalled before 3 shards were cached"}
        time.sleep(0.1)
    killed = kill_driver(proc, temp, grace_s)
    t_kill = killed.pop("t_kill")
    cached_at_kill = sum(len(storage.read_parquet(str(p))) for p in cache.glob("part-*.parquet"))

    temp2 = tempfile.mkdtemp(prefix="ek", dir="/tmp")
    rc = run(temp2, wait=True).returncode
    t_end = time.monotonic()
    said = re.findall(r"evaluate: (\d+) predictions cached, (\d+) to run", (root / f"{Path(temp2).name}.log").read_text())
    time.sleep(2)
    after_rerun = head_processes(temp2)
    for t in (temp, temp2):
        stop_head(t)
        shutil.rmtree(t, ignore_errors=True)
    preds = storage.read_parquet(str(root / "out" / "chaos" / "eval" / "predictions.parquet")).to_pylist() if rc == 0 else []
    keys = [(p["sample_id"], p["mode"], p["model"]) for p in preds]
    expected = len([s for s in built.rows if s["task"] != "AVDS"]) * 3 * 2  # samples x modes x models
    return {"predictions_expected": expected, **killed, "cached_at_kill": cached_at_kill, "rerun_rc": rc, "rerun_cached": int(said[0][0]) if said else None,
            "rerun_ran": int(said[0][1]) if said else None, "predictions": len(preds),
            "duplicated": len(keys) - len(set(keys)), "failed": sum(p.get("error") is not None for p in preds),
            "ray_processes_after_rerun": len(after_rerun), "kill_to_end_s": round(t_end - t_kill, 1),
            "wall_s": round(t_end - t0, 1)}
