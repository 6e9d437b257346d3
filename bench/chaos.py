"""Chaos on a 3-node Ray cluster on one machine: kill nodes, replicas and drivers under load, count what is lost.

Starts Ray's own ``ray.cluster_utils.Cluster``: a head with no CPUs (it runs drivers and controllers,
no work) and two worker nodes (2 CPUs each), so curation actors, training workers and Serve replicas
land on the worker nodes. A node removed in one scenario is replaced (in the main thread: ``add_node``
sets signal handlers) before the next. Then, under load:

- ``curation_node_kill``: curation (``curate.stages=[vad]``, the sample corpus in data/corpus) runs;
  once 2 clips are on disk a worker node is removed without grace (its processes SIGKILLed, as a lost
  machine); the run goes on with the nodes left. If the run fails it is rerun with
  resume, as an operator would. Counts clips expected (the adapters' references), written, lost and
  duplicated, and the seconds from the kill to the end.
- ``sink_node_kill``: a Ray Data job (a 2-actor pool, one actor per worker node, then curation's own
  ``write_batch`` sink) over synthetic clip rows; the node of one actor is removed mid-run. Counts
  records lost and duplicated in the part files. ``tests/infra/test_node_kill.py`` runs it small in CI.
- ``training_node_kill``: RAFT training (2 Ray Train workers, DeepSpeed, the reward actor pool) on the
  synthetic clips of tests/raft/raft_synth.py; once the step-2 checkpoint is registered and step 3 is
  logged, the node of a Ray Train worker is removed. Counts the step resumed from, the final step (in
  the last checkpoint), steps logged twice or missing, and whether re-run steps repeat their first run.
- ``serve_replica_kill``: the Serve app (fake-backend tools, the ``tool_only`` model, 2 model replicas)
  gets 100 agentic requests at concurrency 8; after 20 answers one model replica is killed. Counts
  failures at the first attempt and after up to 3 client retries, and p50/p99 latency.
- ``curate_driver_kill``: ``amuse curate`` as its own process on a private local Ray (the default
  ``ray.address``); once 2 clips are on disk the driver alone gets SIGKILL. Counts that run's Ray
  processes (found by its RAY_TMPDIR, ``infra.ray_utils.head_processes``) left after the kill and how
  long they live, ``.assemble-*`` build folders left, then reruns and counts clips lost and duplicated,
  and processes and build folders left after the rerun.

- ``train_driver_kill``: ``amuse train`` as its own process on a private local Ray; once the step-2
  checkpoint is registered and step 3 logged, the driver alone gets SIGKILL; counts the Ray processes
  left, then reruns the same command and counts the step it resumed from (Ray Train restores the run
  from its storage path), the final step, steps logged twice or missing, and processes left.
- ``evaluate_driver_kill``: ``amuse evaluate`` (in-process tool_only and random models, fake tools) on
  synthetic samples; once 3 prediction shards are cached the driver alone gets SIGKILL; the rerun
  counts what it found cached and ran, and the predictions lost, duplicated and failed.
Writes bench/results/chaos.json and the "Chaos" section of bench/README.md from it.
Usage: python bench/chaos.py [--from-json bench/results/chaos.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "eval"), str(REPO / "tests" / "raft")]
# Serve replicas and Ray workers are fresh processes: they find the repo, fake_tools and this module's
# classes (pickled by reference) through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "bench"), str(REPO / "tests" / "eval"),
                                            *filter(None, [os.environ.get("PYTHONPATH")])])
# The nodes are children of this process: training workers inherit DeepSpeed's CPU accelerator and op cache.
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
             "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "DS_ACCELERATOR": "cpu",
             "TORCH_EXTENSIONS_DIR": str(REPO / ".cache" / "torch_extensions")}.items():
    os.environ.setdefault(k, v)

from _readme import replace_section  # noqa: E402

OUT = REPO / "bench" / "results" / "chaos.json"


def start_cluster(workers: int = 2, cpus: float = 2, detect_s: float | None = None, head_cpus: float = 0):
    """A head with ``head_cpus`` (none: it runs drivers and controllers only) and ``workers`` nodes of ``cpus``
    CPUs; returns (cluster, worker nodes). Only worker nodes are ever removed.

    ``detect_s``: about how long the GCS takes to declare a killed node dead (Ray's default health
    checks: 5 missed checks 3 s apart, about 15 s); a CI test sets it short, the bench keeps the default."""
    from ray.cluster_utils import Cluster

    head: dict = {"num_cpus": head_cpus, "include_dashboard": False}
    if detect_s is not None:
        head["_system_config"] = {"health_check_period_ms": int(detect_s * 1000 / 3), "health_check_failure_threshold": 3,
                                  "health_check_initial_delay_ms": 0}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    nodes = [cluster.add_node(num_cpus=cpus) for _ in range(workers)]
    cluster.wait_for_nodes()
    return cluster, nodes


def alive_actor_nodes(class_name: str) -> set[str]:
    """Node ids hosting a live actor of ``class_name`` (from the GCS: the state API needs a dashboard)."""
    import ray._private.state as state

    return {a["Address"]["NodeID"] for a in state.actors().values()
            if a["ActorClassName"] == class_name and a["State"] == "ALIVE"}


def actors_on(node_id: str) -> list[str]:
    """Classes of the live actors on one node (what its loss takes down with it)."""
    import ray._private.state as state

    return sorted({a["ActorClassName"] for a in state.actors().values()
                   if a["Address"]["NodeID"] == node_id and a["State"] == "ALIVE"})


def curate_sets(out_dir: str) -> list[str]:
    return [f"run.corpus_dir={REPO / 'data' / 'corpus'}", f"run.output_dir={out_dir}", "run.name=chaos",
            "curate.sources=[ami,youtube,friends_mmc]", "curate.stages=[vad]", "curate.progress_bars=false"]


def expected_clip_ids(sets: list[str]) -> set[str]:
    from pipelines.config import load_app_config
    from pipelines.curation.refs import scan_sources

    return {r.clip_id for r in scan_sources(load_app_config(None, sets)).refs}


def clip_counts(clips_dir: str, expected: set[str]) -> dict:
    from infra import storage
    from infra.schemas import CLIP_SCHEMA

    got = [r["clip_id"] for r in storage.read_parquet(clips_dir, schema=CLIP_SCHEMA).to_pylist()] \
        if Path(clips_dir).exists() else []
    return {"clips_expected": len(expected), "clips_written": len(got), "lost": len(expected - set(got)),
            "duplicated": len(got) - len(set(got)), "unexpected": len(set(got) - expected)}


def curation_node_kill(cluster, workers, out_dir: str) -> dict:
    from pipelines.config import load_app_config
    from pipelines.curation.pipeline import curate_clips
    from pipelines.curation.refs import clips_root

    sets = [*curate_sets(out_dir), "curate.fused_actors=2", "curate.build_tasks=false"]
    cfg = load_app_config(None, sets)
    expected = expected_clip_ids(sets)
    clips_dir = clips_root(cfg)
    killed: dict = {}

    def killer():
        while not killed.get("stop"):
            if len(list(Path(clips_dir).rglob("part-*.parquet"))) >= 2:
                victim = workers.pop(0)
                cluster.remove_node(victim, allow_graceful=False)
                killed["at"] = time.monotonic()
                return  # no replacement joins: Cluster.add_node must run in the main thread (it sets signal handlers)
            time.sleep(0.2)

    t = threading.Thread(target=killer, daemon=True)
    t0 = time.monotonic()
    t.start()
    runs, errors = 0, []
    while runs < 3:
        runs += 1
        try:
            curate_clips(cfg)
            break
        except Exception as exc:  # a run the node loss broke: rerun with resume, as an operator would
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    killed["stop"] = True
    t_end = time.monotonic()
    return {**clip_counts(clips_dir, expected), "node_killed": "at" in killed, "runs": runs, "run_errors": errors,
            "kill_to_end_s": round(t_end - killed["at"], 1) if "at" in killed else None,
            "wall_s": round(t_end - t0, 1)}


class _GatedStage:
    """A stand-in perception stage. The first ``free`` clips pass at once; the rest wait until the gate
    file exists (the kill has happened) and then take ``hold_s`` each, so the node is always lost with
    work in flight, however slow the machine is."""

    def __init__(self, gate: str, free: int, hold_s: float):
        self.gate, self.free, self.hold_s = Path(gate), free, hold_s

    def __call__(self, batch):
        if any(int(json.loads(r)["clip_id"][len("clip"):]) >= self.free for r in batch["ref_json"]):
            deadline = time.monotonic() + 300
            while not self.gate.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(self.hold_s)
        return batch


def sink_node_kill(cluster, workers: list, out_dir: str, n_clips: int = 24, kill_after: int = 4,
                   hold_s: float = 0.2) -> dict:
    """Synthetic clip rows through a 2-actor pool (one per node, of 1 CPU each) into curation's ``write_batch``
    sink; once both actors are up and ``kill_after`` records are written, the worker node of one actor is
    removed (the other records wait for it). Counts records lost and duplicated in the part files."""
    import ray
    from raft_synth import clip_row

    from pipelines.curation.records import write_batch

    clips_dir, gate = str(Path(out_dir) / "clips"), Path(out_dir) / "killed"
    rows = [{"ref_json": json.dumps(clip_row(i, f"/media/m{i}.mp4"))} for i in range(n_clips)]
    ds = ray.data.from_items(rows, override_num_blocks=n_clips).map_batches(
        _GatedStage, fn_constructor_kwargs={"gate": str(gate), "free": kill_after, "hold_s": hold_s}, batch_size=1,
        batch_format="pandas", num_cpus=0.6, compute=ray.data.ActorPoolStrategy(size=2),  # 0.6 of 1 CPU: one per node
    ).map_batches(write_batch, batch_size=1, batch_format="pandas", num_cpus=0.1,
                  fn_kwargs={"clips_dir": clips_dir, "quarantine_dir": str(Path(out_dir) / "quarantine"),
                             "storage_cfg": {}, "stages": []})
    killed: dict = {}

    def killer():  # remove_node may run in a thread (add_node may not)
        while not killed.get("stop"):
            hosts = alive_actor_nodes("MapWorker(MapBatches(_GatedStage))")
            victim = next((n for n in workers if n.node_id in hosts), None)
            if len(hosts) == 2 and victim and len(list(Path(clips_dir).rglob("part-*.parquet"))) >= kill_after:
                killed["nodes_used"] = len(hosts)
                workers.remove(victim)
                cluster.remove_node(victim, allow_graceful=False)
                killed["at"] = time.monotonic()
                break
            time.sleep(0.05)
        gate.touch()  # the held records go on (also when no kill happened, so the job ends)

    t0 = time.monotonic()
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        for _ in ds.iter_batches(batch_size=None):  # the sink's stats rows; the records are in the part files
            pass
    finally:
        killed["stop"] = True
        thread.join(timeout=30)
    t_end = time.monotonic()
    counts = clip_counts(clips_dir, {f"clip{i}" for i in range(n_clips)})
    return {"records": n_clips, **{k: counts[k] for k in ("lost", "duplicated", "unexpected")},
            "written": counts["clips_written"], "actor_nodes_before_kill": killed.get("nodes_used"),
            "node_killed": "at" in killed, "kill_to_end_s": round(t_end - killed["at"], 1) if "at" in killed else None,
            "wall_s": round(t_end - t0, 1)}


def _registered_step(exp_dir: Path) -> int:
    """Step of the latest checkpoint Ray Train's controller has registered (0: none): a restart resumes there."""
    try:
        latest = json.loads((exp_dir / "checkpoint_manager_snapshot.json").read_text()).get("latest_checkpoint_result")
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(latest["metrics"]["step"]) if latest else 0


def _metric_lines(path: Path) -> list[dict]:
    """Complete lines of rank 0's metrics.jsonl (it is being appended to)."""
    return [json.loads(x) for x in path.read_text().split("\n")[:-1]] if path.exists() else []


def training_node_kill(cluster, workers: list, out_dir: str, steps: int = 6, kill_after_checkpoint: int = 2) -> dict:
    import torch
    from raft_synth import build_dataset

    from pipelines.config import load_app_config
    from raft.trainer import fit

    samples, clips = build_dataset(Path(out_dir) / "data")
    cfg = load_app_config(None, [f"run.output_dir={out_dir}", "run.name=chaos", "train.k=3",
                                 "train.max_new_tokens=12", f"train.steps={steps}", "train.experiment_name=chaos",
                                 f"train.checkpoint_every={kill_after_checkpoint}", "train.max_failures=3",
                                 f"train.model_cache_dir={REPO / '.cache' / 'raft_tiny'}"])
    storage_path = str(Path(out_dir) / "train")
    exp_dir = Path(storage_path) / "chaos"
    metrics = exp_dir / "logs" / "metrics.jsonl"
    state: dict = {}

    def killer():
        while not state.get("stop"):
            if (_registered_step(exp_dir) == kill_after_checkpoint
                    and kill_after_checkpoint + 1 in [x["step"] for x in _metric_lines(metrics)]):
                hosts = alive_actor_nodes("RayTrainWorker")
                victim = next((n for n in workers if n.node_id in hosts), None)
                if victim is None:
                    state["error"] = "no Ray Train worker on a worker node"
                    return
                state["resumed_from"] = _registered_step(exp_dir)
                state["first_run"] = {x["step"]: x for x in _metric_lines(metrics)}
                state["actors_lost"] = actors_on(victim.node_id)
                workers.remove(victim)
                cluster.remove_node(victim, allow_graceful=False)
                state["at"] = time.monotonic()
                return
            time.sleep(0.2)

    threading.Thread(target=killer, daemon=True).start()
    t0, runs, errors, out = time.monotonic(), 0, [], {}
    while runs < 2 and not out:
        runs += 1
        try:
            out = fit(cfg.train, samples, clips, storage_path, str(exp_dir / "logs"), progress=False)
        except Exception as exc:  # the group ran out of restarts: rerun, resuming from storage, as an operator would
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    state["stop"] = True
    t_end = time.monotonic()
    lines = _metric_lines(metrics)
    logged = [x["step"] for x in lines]
    final = None
    if out.get("train checkpoint"):
        final = torch.load(Path(out["train checkpoint"]) / "state_rank0.pt", weights_only=False)["step"]
    first = state.get("first_run", {})
    rerun = [s for s in first if s > state.get("resumed_from", steps)]
    by_step = {x["step"]: x for x in lines}
    same = all(abs(by_step[s][k] - first[s][k]) <= 1e-5 * max(1.0, abs(first[s][k]))
               for s in rerun if s in by_step for k in ("loss/total", "reward/mean"))
    return {"steps": steps, "node_killed": "at" in state, "kill_error": state.get("error"),
            "actors_lost": state.get("actors_lost"),
            "resumed_from_step": state.get("resumed_from"), "final_checkpoint_step": final,
            "steps_logged_twice": len(logged) - len(set(logged)),
            "steps_missing": sorted(set(range(steps + 1)) - set(logged)), "rerun_steps": rerun,
            "rerun_steps_identical": same if rerun else None, "runs": runs, "run_errors": errors,
            "kill_to_end_s": round(t_end - state["at"], 1) if "at" in state else None, "wall_s": round(t_end - t0, 1)}


def serve_replica_kill(n: int = 100, concurrency: int = 8, kill_after: int = 20, retries: int = 3) -> dict:
    import httpx
    import ray
    from ray import serve
    from serve_fixtures import API_KEY, media_dir, serve_config

    from eval.serving.app import free_port, start

    media = media_dir(Path(tempfile.mkdtemp(prefix="chaos-media-")))
    cfg = serve_config(media, free_port(), num_replicas=2, request_timeout_s=60, tool_timeout_s=10)
    url = start(cfg)
    body = {"model": "tool_only", "task": "AVSA", "mode": "agentic", "question": "Who speaks between 0 s and 1 s?",
            "options": ["the person on the left", "the person on the right"], "clip_uris": [media["ok"]],
            "sample_id": "s1"}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    done = {"n": 0}
    lock = threading.Lock()
    kill = {}

    def one(i: int) -> dict:
        first_ok, attempts, t0 = None, 0, time.perf_counter()
        while attempts <= retries:
            attempts += 1
            try:
                ok = httpx.post(url + "/v1/amuse/answer", json=body, headers=headers, timeout=60).status_code == 200
            except httpx.HTTPError:
                ok = False
            first_ok = ok if first_ok is None else first_ok
            if ok:
                break
        with lock:
            done["n"] += 1
            if done["n"] == kill_after:
                # Serve names its replica actors in the "serve" namespace (the state API needs a dashboard).
                victims = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                           if a["namespace"] == "serve" and "ModelDeployment" in a["name"]]
                if victims:
                    ray.kill(ray.get_actor(victims[0], namespace="serve"), no_restart=True)
                    kill["name"] = victims[0]
        return {"first_ok": first_ok, "ok": ok, "attempts": attempts, "s": time.perf_counter() - t0}

    with ThreadPoolExecutor(concurrency) as pool:
        res = list(pool.map(one, range(n)))
    lat = sorted(r["s"] for r in res)
    alive = httpx.get(url + "/healthz", timeout=10).status_code
    serve.shutdown()
    return {"requests": n, "concurrency": concurrency, "replica_killed": bool(kill),
            "failures_first_attempt": sum(not r["first_ok"] for r in res),
            "failures_after_retries": sum(not r["ok"] for r in res), "retries_max": retries,
            "p50_s": round(lat[len(lat) // 2], 3), "p99_s": round(lat[int(0.99 * (len(lat) - 1))], 3),
            "healthz_after": alive}


def _gone(d: dict) -> str:
    """How long a killed driver's Ray processes outlived it."""
    if d["all_gone_after_s"] is not None:
        return f"all gone {d['all_gone_after_s']} s after the kill"
    return f"{d['killed_after_grace']} still alive after {d['grace_s']:g} s (then killed)"


def render(res: dict) -> str:
    c, s = res.get("curation_node_kill") or {}, res.get("serve_replica_kill") or {}
    k, t, d = res.get("sink_node_kill") or {}, res.get("training_node_kill") or {}, res.get("curate_driver_kill") or {}
    td, ed = res.get("train_driver_kill") or {}, res.get("evaluate_driver_kill") or {}
    for name in ("train_driver_kill", "evaluate_driver_kill"):
        if (res.get(name) or {}).get("error"):
            res.setdefault("errors", {})[name] = res[name]["error"]
    td, ed = ({} if x.get("error") else x for x in (td, ed))
    lines = ["## Chaos", "",
             f"`python bench/chaos.py` on {res['machine']}: a `ray.cluster_utils.Cluster` of 3 nodes on one machine "
             f"({res.get('layout', 'head 1 CPU, 2 workers of 2 CPUs')}); killed nodes are removed without grace "
             f"(their processes SIGKILLed) and replaced before the next scenario. Synthetic or committed sample "
             f"data only. {res['note']}", "",
             "| scenario | load | killed | counts | recovery |", "|---|---|---|---|---|"]
    if c:
        lines.append(f"| worker node lost during curation | {c['clips_expected']} clips, VAD, 2 fused actors | "
                     f"{'a worker node, not replaced' if c['node_killed'] else 'nothing (run ended first)'} | "
                     f"written {c['clips_written']}, lost {c['lost']}, duplicated {c['duplicated']}; runs {c['runs']} | "
                     f"{c['kill_to_end_s']} s kill to end ({c['wall_s']} s wall) |")
    if k:
        lines.append(f"| worker node lost under a Ray Data sink | {k['records']} synthetic clip rows, 2-actor pool on "
                     f"{k['actor_nodes_before_kill']} nodes, curation's `write_batch` | "
                     f"{'the node of a pool actor' if k['node_killed'] else 'nothing'} | written {k['written']}, "
                     f"lost {k['lost']}, duplicated {k['duplicated']} | {k['kill_to_end_s']} s kill to end "
                     f"({k['wall_s']} s wall) |")
    if t:
        lines.append(f"| training worker's node lost | RAFT, 2 Ray Train workers, {t['steps']} steps, checkpoint every 2 | "
                     f"{'the node of a Ray Train worker (with ' + ', '.join(t.get('actors_lost') or []) + ')' if t['node_killed'] else 'nothing: ' + str(t['kill_error'])} | "
                     f"resumed from step {t['resumed_from_step']}, final checkpoint step {t['final_checkpoint_step']}, "
                     f"steps logged twice {t['steps_logged_twice']}, missing {len(t['steps_missing'])}; re-run steps "
                     f"{t['rerun_steps']} identical: {t['rerun_steps_identical']}; runs {t['runs']} | "
                     f"{t['kill_to_end_s']} s kill to end ({t['wall_s']} s wall) |")
    if s:
        lines.append(f"| model replica killed | {s['requests']} agentic requests at concurrency {s['concurrency']} | "
                     f"{'1 of 2 replicas' if s['replica_killed'] else 'nothing'} | "
                     f"failed first try {s['failures_first_attempt']}, after <= {s['retries_max']} retries "
                     f"{s['failures_after_retries']} | p50 {s['p50_s']} s, p99 {s['p99_s']} s; healthz {s['healthz_after']} |")
    if d:
        gone = _gone(d)
        lines.append(f"| curation driver SIGKILLed, then rerun | `amuse curate`, private local Ray, "
                     f"{d['clips_expected']} clips | the driver process alone ({d['ray_processes_before_kill']} Ray "
                     f"processes running) | left 2 s after: {d['left_2s_after_kill']} ({', '.join(d['left_names']) or '-'}), "
                     f"{gone}; `.assemble-*` after kill {d['assemble_dirs_after_kill']}, after rerun "
                     f"{d['assemble_dirs_after_rerun']}; rerun: written {d['clips_written']}, lost {d['lost']}, "
                     f"duplicated {d['duplicated']}, Ray processes left {d['ray_processes_after_rerun']} | "
                     f"rerun exit {d['rerun_rc']} |")
    if td:
        gone = _gone(td)
        lines.append(f"| training driver SIGKILLed, then rerun | `amuse train`, private local Ray, {td['steps']} steps, "
                     f"checkpoint every 2 | the driver process alone ({td['ray_processes_before_kill']} Ray processes "
                     f"running) after the step-{td['registered_step_at_kill']} checkpoint | left 2 s after: "
                     f"{td['left_2s_after_kill']}, {gone}; rerun resumed from step {td['resumed_from_step']} (the trainer's own line), final "
                     f"checkpoint step {td['final_checkpoint_step']}, steps logged twice {td['steps_logged_twice']}, "
                     f"missing {len(td['steps_missing'])}; re-run steps {td['rerun_steps']} identical: "
                     f"{td['rerun_steps_identical']}; Ray processes left {td['ray_processes_after_rerun']} | "
                     f"rerun exit {td['rerun_rc']}, {td['kill_to_end_s']} s kill to end ({td['wall_s']} s wall) |")
    if ed:
        lines.append(f"| evaluation driver SIGKILLed, then rerun | `amuse evaluate`, private local Ray, in-process "
                     f"tool_only and random, fake tools, {ed['predictions_expected']} predictions | the driver process "
                     f"alone ({ed['ray_processes_before_kill']} Ray processes running) with {ed['cached_at_kill']} "
                     f"predictions cached | left 2 s after: {ed['left_2s_after_kill']}, {_gone(ed)}; rerun: "
                     f"{ed['rerun_cached']} cached, {ed['rerun_ran']} run; predictions {ed['predictions']}, "
                     f"duplicated {ed['duplicated']}, failed {ed['failed']}; Ray processes left "
                     f"{ed['ray_processes_after_rerun']} | rerun exit {ed['rerun_rc']}, {ed['kill_to_end_s']} s kill "
                     f"to end ({ed['wall_s']} s wall) |")
    if res.get("left"):
        lines += ["", "Not run here: " + "; ".join(res["left"]) + "."]
    if res.get("errors"):
        lines += ["", "Scenarios that crashed: " + "; ".join(f"{k}: `{v}`" for k, v in res["errors"].items())]
    for name, r in (("Curation", c), ("Training", t)):
        if r.get("run_errors"):
            lines += ["", f"{name} run errors before the rerun: " + "; ".join(f"`{e}`" for e in r["run_errors"])]
    return "\n".join(lines) + "\n"


CLUSTER_SCENARIOS = {  # name -> fn(cluster, worker nodes, out_dir); each may remove a node
    "curation_node_kill": curation_node_kill,
    "sink_node_kill": lambda cluster, workers, out: sink_node_kill(cluster, workers, out, n_clips=200, kill_after=40),
    "training_node_kill": training_node_kill,
    "serve_replica_kill": lambda cluster, workers, out: serve_replica_kill(),
}


DRIVER_SCENARIOS = ("curate_driver_kill", "train_driver_kill", "evaluate_driver_kill")  # bench/chaos_drivers.py: fn(out_dir), private Ray


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from-json", help="re-render the README section from a results file, running nothing")
    p.add_argument("--only", nargs="*", help="run only these scenarios (a smoke run; the JSON is not written)")
    p.add_argument("--merge", action="store_true", help="with --only: replace those scenarios' entries in the "
                   "committed JSON (the others keep theirs, with the load they were measured at) and re-render")
    args = p.parse_args(argv)
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
    else:
        wanted = args.only or [*DRIVER_SCENARIOS, *CLUSTER_SCENARIOS]
        res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_avg_start": os.getloadavg(),
               "layout": "head with 0 CPUs, 2 workers of 2 CPUs",
               "note": "Run on a shared 2-core machine with other work running: times are under contention."}

        def attempt(name, fn):
            with tempfile.TemporaryDirectory(prefix="chaos-") as out:
                try:
                    res[name] = fn(out)
                except Exception as exc:  # one scenario's crash still leaves the others' counts
                    res.setdefault("errors", {})[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            print(name, json.dumps(res.get(name) or res["errors"][name]), flush=True)

        import chaos_drivers

        for name in DRIVER_SCENARIOS:  # their own private Ray, before the cluster starts
            if name in wanted:
                attempt(name, getattr(chaos_drivers, name))
        if any(name in wanted for name in CLUSTER_SCENARIOS):
            import ray

            cluster, workers = start_cluster()
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                for name, fn in CLUSTER_SCENARIOS.items():
                    if name not in wanted:
                        continue
                    while len(workers) < 2:  # replace what the last scenario removed (main thread only)
                        workers.append(cluster.add_node(num_cpus=2))
                    cluster.wait_for_nodes()
                    attempt(name, lambda out, fn=fn: fn(cluster, workers, out))
            finally:
                ray.shutdown()
                cluster.shutdown()
        res["load_avg_end"] = os.getloadavg()
        if args.only and not args.merge:
            print(json.dumps(res, indent=2))
            return 0
        if args.only:  # merged into the full run's results
            full = json.loads(OUT.read_text())
            full.pop("left", None)
            for name in args.only:
                full[name] = res.get(name)
                full.setdefault("errors", {}).pop(name, None)
                if name in res.get("errors", {}):
                    full["errors"][name] = res["errors"][name]
            full.setdefault("load_avg_by_scenario", {}).update(
                {name: [res["load_avg_start"], res["load_avg_end"]] for name in args.only})
            res = full
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2))
    section = render(res)
    print(section)
    replace_section("Chaos", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
