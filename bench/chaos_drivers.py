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


def cli(job: str, sets: list[str]) -> list[str]:
    """The ``amuse <job>`` command line with ``--set`` overrides, as the CLI entry point runs it."""
    return [sys.executable, str(REPO / "pipelines" / "cli.py"), job, *[a for x in sets for a in ("--set", x)]]


def launch(cmd: list[str], log_dir: Path, prefix: str, wait: bool):
    """Run ``cmd`` with a Ray temp dir of its own (every Ray process of this run names or holds files in
    it, so ``head_processes`` finds them); returns (the process, or its completed run; the temp dir)."""
    temp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")  # short: Ray's socket paths have a length limit
    log = open(log_dir / f"{Path(temp).name}.log", "w")
    run = subprocess.run if wait else subprocess.Popen
    return run(cmd, env={**os.environ, "RAY_TMPDIR": temp}, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
               start_new_session=True), temp


def run_again(cmd: list[str], log_dir: Path, prefix: str, killed_temp: str) -> dict:
    """Run ``cmd`` again to the end, as an operator would after the kill; count its Ray processes left 2 s
    after it exits, then stop what is left of both runs and remove their temp dirs."""
    from infra.ray_utils import head_processes, stop_head

    done, temp = launch(cmd, log_dir, prefix, wait=True)
    t_end = time.monotonic()
    log = (log_dir / f"{Path(temp).name}.log").read_text()
    time.sleep(2)
    left = len(head_processes(temp))
    for t in (killed_temp, temp):
        stop_head(t)
        shutil.rmtree(t, ignore_errors=True)
    return {"rc": done.returncode, "t_end": t_end, "log": log, "processes_left": left}


def curate_driver_kill(out_dir: str, grace_s: float = 120.0) -> dict:
    """``amuse curate`` on its own private Ray; SIGKILL the driver process alone once 2 clips are written."""
    sets = [*curate_sets(out_dir), "ray.address=local", "ray.num_cpus=2", "curate.records_per_file=1"]
    cmd = cli("curate", sets)
    clips_dir = Path(out_dir) / "chaos" / "clips"
    expected = expected_clip_ids(sets)
    proc, temp = launch(cmd, Path(out_dir), "ck", wait=False)
    deadline = time.monotonic() + 600
    while len(list(clips_dir.rglob("part-*.parquet"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = kill_driver(proc, temp, grace_s)
    killed.pop("t_kill")
    partial = clip_counts(str(clips_dir), expected)["clips_written"]
    assemble_after_kill = len(list(Path(out_dir).rglob(".assemble-*")))

    again = run_again(cmd, Path(out_dir), "ck", temp)
    return {**killed, "clips_before_rerun": partial, "assemble_dirs_after_kill": assemble_after_kill,
            "rerun_rc": again["rc"], **clip_counts(str(clips_dir), expected),
            "assemble_dirs_after_rerun": len(list(Path(out_dir).rglob(".assemble-*"))),
            "ray_processes_after_rerun": again["processes_left"]}


def train_driver_kill(out_dir: str, steps: int = 6, kill_after_checkpoint: int = 2, grace_s: float = 120.0) -> dict:
    """``amuse train`` as its own process on a private local Ray; SIGKILL the driver alone once the step-2
    checkpoint is registered and step 3 is logged; rerun the same command, which resumes from storage."""
    import torch
    from raft_synth import build_dataset

    samples, clips = build_dataset(Path(out_dir) / "data")
    storage_path = Path(out_dir) / "train"
    exp_dir = storage_path / "chaos"
    metrics = exp_dir / "logs" / "metrics.jsonl"
    sets = [f"run.output_dir={out_dir}", "run.name=chaos", "ray.address=local", "ray.num_cpus=2",
            f"train.samples_uri={samples}", f"train.clips_uri={clips}", f"train.storage_path={storage_path}",
            "train.experiment_name=chaos", "train.k=3", "train.max_new_tokens=12", f"train.steps={steps}",
            f"train.checkpoint_every={kill_after_checkpoint}", "train.reward_actors=1"]
    cmd = cli("train", sets)
    t0 = time.monotonic()
    proc, temp = launch(cmd, Path(out_dir), "tk", wait=False)
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

    again = run_again(cmd, Path(out_dir), "tk", temp)
    # the trainer's rank 0 says where it started (a rerun from scratch would log steps 0..N again, identically)
    said = re.findall(r"resumed from the step-(\d+) checkpoint", again["log"])
    lines = _metric_lines(metrics)
    logged = [x["step"] for x in lines]
    ckpts = sorted(p for p in exp_dir.glob("checkpoint_*") if p.is_dir())
    final = torch.load(ckpts[-1] / "state_rank0.pt", weights_only=False)["step"] if ckpts else None
    by_step = {x["step"]: x for x in lines}
    rerun = [st for st in first if st > resumed_from]
    same = all(abs(by_step[st][k] - first[st][k]) <= 1e-5 * max(1.0, abs(first[st][k]))
               for st in rerun if st in by_step for k in ("loss/total", "reward/mean"))
    return {"steps": steps, **killed, "registered_step_at_kill": resumed_from, "resumed_from_step": int(said[0]) if said else None,
            "final_checkpoint_step": final, "rerun_rc": again["rc"],
            "steps_logged_twice": len(logged) - len(set(logged)),
            "steps_missing": sorted(set(range(steps + 1)) - set(logged)), "rerun_steps": rerun,
            "rerun_steps_identical": same if rerun else None, "ray_processes_after_rerun": again["processes_left"],
            "kill_to_end_s": round(again["t_end"] - t_kill, 1), "wall_s": round(again["t_end"] - t0, 1)}


def evaluate_driver_kill(out_dir: str, videos: int = 12, grace_s: float = 120.0) -> dict:
    """``amuse evaluate`` (in-process models, fake tools) on its own private local Ray over synthetic samples;
    SIGKILL the driver alone once some predictions are cached; rerun: the cached ones are not run again."""
    import pyarrow as pa
    from serve_fixtures import write_wav
    from synthetic import corpus

    from eval.tasks.build import build_all
    from eval.tasks.config import TasksConfig
    from infra import storage
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
    cmd = cli("evaluate", sets)
    cache = root / "out" / "chaos" / "eval" / "cache"
    t0 = time.monotonic()
    proc, temp = launch(cmd, root, "ek", wait=False)
    deadline = time.monotonic() + 600
    while len(list(cache.glob("part-*.parquet"))) < 3:
        if proc.poll() is not None or time.monotonic() > deadline:
            return {"error": f"the first run ended (rc {proc.returncode}) or stalled before 3 shards were cached"}
        time.sleep(0.1)
    killed = kill_driver(proc, temp, grace_s)
    t_kill = killed.pop("t_kill")
    cached_at_kill = sum(len(storage.read_parquet(str(p))) for p in cache.glob("part-*.parquet"))

    again = run_again(cmd, root, "ek", temp)
    said = re.findall(r"evaluate: (\d+) predictions cached, (\d+) to run", again["log"])
    preds = (storage.read_parquet(str(root / "out" / "chaos" / "eval" / "predictions.parquet")).to_pylist()
             if again["rc"] == 0 else [])
    keys = [(p["sample_id"], p["mode"], p["model"]) for p in preds]
    expected = len([s for s in built.rows if s["task"] != "AVDS"]) * 3 * 2  # samples x modes x models
    return {"predictions_expected": expected, **killed, "cached_at_kill": cached_at_kill, "rerun_rc": again["rc"], "rerun_cached": int(said[0][0]) if said else None,
            "rerun_ran": int(said[0][1]) if said else None, "predictions": len(preds),
            "duplicated": len(keys) - len(set(keys)), "failed": sum(p.get("error") is not None for p in preds),
            "ray_processes_after_rerun": again["processes_left"], "kill_to_end_s": round(again["t_end"] - t_kill, 1),
            "wall_s": round(again["t_end"] - t0, 1)}
