"""Chaos on a 3-node Ray cluster on one machine: kill nodes and replicas under load, count what is lost.

Starts Ray's own ``ray.cluster_utils.Cluster``: a head (1 CPU, no work resource) and two worker nodes
(2 CPUs each), so curation actors and Serve replicas land on the worker nodes. Then, under load:

- ``curation_node_kill``: curation (``curate.stages=[vad]``, the sample corpus in data/corpus) runs;
  once 2 clips are on disk a worker node is removed without grace (its processes SIGKILLed, as a lost
  machine); the run goes on with the nodes left. If the run fails it is rerun with
  resume, as an operator would. Counts clips expected (the adapters' references), written, lost and
  duplicated, and the seconds from the kill to the end.
- ``serve_replica_kill``: the Serve app (fake-backend tools, the ``tool_only`` model, 2 model replicas)
  gets 100 agentic requests at concurrency 8; after 20 answers one model replica is killed. Counts
  failures at the first attempt and after up to 3 client retries, and p50/p99 latency.

Not covered here (see "left" in the JSON): killing a training worker's node, and a killed job driver
(``tests/pipelines/test_curate_pipeline.py`` kills a curation driver and reruns it in CI).

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
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "eval")]
# Serve replicas and Ray workers are fresh processes: they find the repo and fake_tools through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests" / "eval"),
                                            *filter(None, [os.environ.get("PYTHONPATH")])])
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1",
             "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}.items():
    os.environ.setdefault(k, v)

from _readme import replace_section  # noqa: E402

OUT = REPO / "bench" / "results" / "chaos.json"


def start_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    return cluster, workers


def curation_node_kill(cluster, workers, out_dir: str) -> dict:
    from infra import storage
    from infra.schemas import CLIP_SCHEMA
    from pipelines.config import load_app_config
    from pipelines.curation.pipeline import curate_clips
    from pipelines.curation.refs import clips_root, scan_sources

    sets = [f"run.corpus_dir={REPO / 'data' / 'corpus'}", f"run.output_dir={out_dir}", "run.name=chaos",
            "curate.sources=[ami,youtube,friends_mmc]", "curate.stages=[vad]", "curate.progress_bars=false",
            "curate.fused_actors=2", "curate.build_tasks=false"]
    cfg = load_app_config(None, sets)
    expected = {r.clip_id for r in scan_sources(cfg).refs}
    clips_dir = clips_root(cfg)
    killed: dict = {}

    def killer():
        while not killed.get("stop"):
            if len(list(Path(clips_dir).rglob("part-*.parquet"))) >= 2:
                victim = workers[0]
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
    rows = storage.read_parquet(clips_dir, schema=CLIP_SCHEMA).to_pylist()
    got = [r["clip_id"] for r in rows]
    return {"clips_expected": len(expected), "clips_written": len(got), "lost": len(expected - set(got)),
            "duplicated": len(got) - len(set(got)), "unexpected": len(set(got) - expected),
            "node_killed": "at" in killed, "runs": runs, "run_errors": errors,
            "kill_to_end_s": round(t_end - killed["at"], 1) if "at" in killed else None,
            "wall_s": round(t_end - t0, 1)}


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


def render(res: dict) -> str:
    c, s = res.get("curation_node_kill") or {}, res.get("serve_replica_kill") or {}
    lines = ["## Chaos", "",
             f"`python bench/chaos.py` on {res['machine']}: a `ray.cluster_utils.Cluster` of 3 nodes on one machine "
             f"(head 1 CPU, 2 workers of 2 CPUs). {res['note']}", "",
             "| scenario | load | killed | counts | recovery |", "|---|---|---|---|---|"]
    if c:
        lines.append(f"| worker node lost during curation | {c['clips_expected']} clips, VAD, 2 fused actors | "
                     f"{'a worker node (SIGKILL), not replaced' if c['node_killed'] else 'nothing (run ended first)'} | "
                     f"written {c['clips_written']}, lost {c['lost']}, duplicated {c['duplicated']}; runs {c['runs']} | "
                     f"{c['kill_to_end_s']} s kill to end ({c['wall_s']} s wall) |")
    if s:
        lines.append(f"| model replica killed | {s['requests']} agentic requests at concurrency {s['concurrency']} | "
                     f"{'1 of 2 replicas' if s['replica_killed'] else 'nothing'} | "
                     f"failed first try {s['failures_first_attempt']}, after <= {s['retries_max']} retries "
                     f"{s['failures_after_retries']} | p50 {s['p50_s']} s, p99 {s['p99_s']} s; healthz {s['healthz_after']} |")
    if res.get("left"):
        lines += ["", "Not run here: " + "; ".join(res["left"]) + "."]
    if res.get("errors"):
        lines += ["", "Scenarios that crashed: " + "; ".join(f"{k}: `{v}`" for k, v in res["errors"].items())]
    if c.get("run_errors"):
        lines += ["", "Curation run errors before the rerun: " + "; ".join(f"`{e}`" for e in c["run_errors"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--from-json", help="re-render the README section from a results file, running nothing")
    args = p.parse_args(argv)
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
    else:
        import ray

        cluster, workers = start_cluster()
        ray.init(address=cluster.address)
        res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_avg": os.getloadavg(),
               "note": "Run on a shared 2-core machine with other work running: times are under contention.",
               "left": ["a training worker's node killed (resume to the exact step is tested with a killed worker "
                        "in tests/raft/test_raft_trainer.py)", "each job's driver killed and rerun (curation: "
                        "tests/pipelines/test_curate_pipeline.py)"]}
        try:
            for name, fn in (("curation_node_kill", lambda out: curation_node_kill(cluster, workers, out)),
                             ("serve_replica_kill", lambda out: serve_replica_kill())):
                with tempfile.TemporaryDirectory(prefix="chaos-") as out:
                    try:
                        res[name] = fn(out)
                    except Exception as exc:  # one scenario's crash still leaves the others' counts
                        res.setdefault("errors", {})[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
        finally:
            ray.shutdown()
            cluster.shutdown()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(res, indent=2))
    section = render(res)
    print(section)
    replace_section("Chaos", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
