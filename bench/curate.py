"""Curation throughput: a plain serial loop versus the Ray Data pipeline, on the same clips.

    .venv/bin/python bench/curate.py [--corpus data/corpus] [--max-clips N] [--repeat N] [--per-stage]
                                     [--serial-threads 1[,2]] [--quiet-wait S] [--no-readme]

Measures clip-seconds of media processed per wall-second with the embedded perception backends:
- serial: ``perception.actors.run_all`` clip after clip in a fresh Python process, so it pays its
  own imports and model loading the way each Ray actor does; every intra-op pool pinned to
  ``--serial-threads`` threads (1 by default, the same as each actor: ``set_threads``);
- Ray: the curation pipeline (``pipelines.curation.pipeline.curate_clips``) in its default fused
  layout (each actor decodes and runs every stage on one clip at a time) with 1 and then 2 actors
  on a private 2-CPU local cluster; with ``--per-stage`` also one actor pool per stage.
Both paths see the same clip references (Friends-MMC media stitched once beforehand, so neither
pays for it) and do the same work: the pipeline's decode-verify pass is off here, since the serial
loop has none; both warm their models on the same synthetic clip before the first real one.

Two walls per row:
- cold: everything a user waits for once the Ray cluster is up: scan, imports, model loading and
  warm-up, every clip, the writes. Ray's own start is excluded, and so are Ray Data's per-cluster
  helper actors (stats, autoscaling coordinator, locality tracker), started once beforehand by a
  tiny dataset as any long-lived cluster has them; they cost about 6 s of CPU on first use;
- warm: from the moment models are loaded and warmed (for Ray, the moment the last actor is
  ready; clips are only handed out then) to the last clip. This is the rate a long corpus sees.
"CPU s" is the CPU time of the run's own process tree (driver, raylet, GCS, workers); "others" is
the average number of cores the rest of the machine used meanwhile, i.e. how contended the
figure is. Peak RSS is the peak summed RSS of the tree. Writes bench/results/curate.json and the
"Curation" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import psutil  # noqa: E402
from _readme import replace_section  # noqa: E402
from tabulate import tabulate  # noqa: E402

from infra import storage  # noqa: E402
from pipelines.config import load_app_config  # noqa: E402


class TreeMeter:
    """Samples a process (this one by default) and its descendants every 0.25 s: peak summed RSS, their
    CPU seconds, and the CPU seconds the rest of the machine used over the same time."""

    def __init__(self, root: int | None = None):
        self.root = psutil.Process(root) if root else psutil.Process()
        self.peak = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:  # the root has exited
            return []

    def _sample(self) -> None:
        total = 0
        for p in self._tree():
            try:
                with p.oneshot():
                    total += p.memory_info().rss
                    ct = p.cpu_times()
                    self._cpu[p.pid] = ct.user + ct.system  # children_* would count an exited child twice
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.25)

    def __enter__(self):
        self._cpu0 = dict(self._cpu_now())
        self._sys0 = _busy_cpu_s()
        self._t0 = time.perf_counter()
        self._t.start()
        return self

    def _cpu_now(self):
        for p in self._tree():
            try:
                ct = p.cpu_times()
                yield p.pid, ct.user + ct.system
            except psutil.Error:
                pass

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()
        wall = time.perf_counter() - self._t0
        # Processes that were there at the start count from their CPU then; later ones from zero.
        self.cpu_s = sum(max(0.0, c - self._cpu0.get(pid, 0.0)) for pid, c in self._cpu.items())
        self.others_cores = max(0.0, (_busy_cpu_s() - self._sys0) - self.cpu_s) / wall if wall > 0 else 0.0


def _busy_cpu_s() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)


def wait_for_quiet(max_wait_s: float, cores: float = 0.3, window_s: float = 5.0) -> float:
    """Wait (at most ``max_wait_s``) until the rest of the machine uses under ``cores`` over ``window_s``;
    returns what it used in the last window. The machine is shared: a figure taken while someone else's
    job holds a core says more about them than about this pipeline."""
    deadline = time.monotonic() + max_wait_s
    while True:
        with TreeMeter() as meter:
            time.sleep(window_s)
        if meter.others_cores < cores or time.monotonic() > deadline:
            return meter.others_cores


def prepared_refs(cfg) -> list:
    """Clip references of the corpus, with stitched media built once so no measured path pays for it."""
    from pipelines.curation.assemble import concat_media
    from pipelines.curation.refs import scan_sources

    scan = scan_sources(cfg)
    for ref in scan.refs:
        if ref.media_parts and not storage.exists(ref.media_uri):
            concat_media(ref.media_parts, ref.media_uri)
    return scan.refs


def serial_worker(sets: list[str], threads: int) -> dict:
    """The serial loop, in its own process (``--serial-worker``): imports, models, warm-up, clips."""
    t0 = time.perf_counter()
    cfg = load_app_config(REPO / "configs" / "demo.yaml", [*sets, f"perception.torch_threads={threads}"])
    from pipelines.curation.refs import scan_sources

    refs = scan_sources(cfg).refs
    from perception.actors import STAGE_ORDER, get_stage, run_all, set_threads, warm_up

    applied = set_threads(cfg.perception)
    warm_up([get_stage(name, cfg.perception) for name in STAGE_ORDER])
    t_ready = time.perf_counter()
    failures = 0
    for ref in refs:
        row = ref.to_row()
        row["fps"] = 0.0 if row["media_uri"].endswith((".wav", ".m4a")) else cfg.perception.fps_sample
        failures += bool(run_all(row, cfg.perception).get("errors"))
    t_end = time.perf_counter()
    return {"clips": len(refs), "media_s": sum(r.end_s - r.start_s for r in refs), "startup_s": t_ready - t0,
            "warm_s": t_end - t_ready, "failures": failures, "threads": applied}


def serial_run(sets: list[str], threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serial-worker", json.dumps(sets), "--serial-threads",
           str(threads)]
    t0 = time.perf_counter()
    # Metered on its own process only: the idle Ray cluster of this bench is not the serial loop's.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    with TreeMeter(proc.pid) as meter:
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"serial worker failed:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    out = json.loads(stdout.strip().splitlines()[-1])
    return {"path": f"serial loop ({threads} thread{'s' if threads > 1 else ''})", "actors": "-",
            "clips": out["clips"], "media_s": out["media_s"], "cold_s": wall, "warm_s": out["warm_s"],
            "startup_s": wall - out["warm_s"], "cpu_s": meter.cpu_s, "others_cores": meter.others_cores,
            "peak_rss_mb": meter.peak / 2**20, "failures": out["failures"], "threads": out["threads"]}


def ray_run(sets: list[str], actors: int, fused: bool, out_dir: str) -> dict:
    from pipelines.curation.pipeline import curate_clips

    cfg = load_app_config(REPO / "configs" / "demo.yaml", [
        *sets, f"run.output_dir={out_dir}", "curate.resume=false", f"curate.fuse_stages={str(fused).lower()}",
        f"curate.fused_actors={actors}", f"perception.audio.concurrency={actors}",
        f"perception.video.concurrency={actors}"])
    with TreeMeter() as meter:
        t0 = time.perf_counter()
        summary, _ = curate_clips(cfg)
        wall = time.perf_counter() - t0
    failures = sum(s.failures for s in summary.stages if s.stage != "scan")
    return {"path": "Ray Data pipeline", "actors": f"{actors} fused" if fused else f"{actors} per stage (5 pools)",
            "clips": summary.clips_written, "media_s": summary.media_s_written, "cold_s": wall,
            "warm_s": summary.warm_wall_s, "startup_s": summary.actor_start_s, "cpu_s": meter.cpu_s,
            "others_cores": meter.others_cores, "peak_rss_mb": meter.peak / 2**20, "failures": failures,
            "stage_s": {s.stage: round(s.seconds, 1) for s in summary.stages}}


def prewarm_ray_data() -> None:
    """Start Ray Data's per-cluster helper actors with a trivial actor-pool dataset."""
    import ray.data

    class Identity:  # defined here so it is pickled by value, whatever module name this file runs under
        def __call__(self, batch):
            return batch

    ray.data.range(2, override_num_blocks=2).map_batches(
        Identity, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5).materialize()


def quietest_row(runs: list[dict]) -> dict:
    """The run during which other processes used the least CPU (a real run, not a blend), with every
    run's walls and contention listed: on a shared machine the spread between runs is mostly other
    people's jobs, and the target is about this pipeline on 2 cores."""
    row = dict(min(runs, key=lambda r: r["others_cores"]))
    row["cold_runs"] = [round(r["cold_s"], 1) for r in runs]
    row["warm_runs"] = [round(r["warm_s"], 1) if r["warm_s"] else None for r in runs]
    row["others_runs"] = [round(r["others_cores"], 2) for r in runs]
    return row


def render(rows: list[dict]) -> str:
    base = rows[0]

    def rate(r, key):
        return r["media_s"] / r[key] if r.get(key) else None

    def ratio(r, key):
        a, b = rate(r, key), rate(base, key)
        return f"{a / b:.2f}x" if a and b else "-"

    def f(v, spec):
        return format(v, spec) if v is not None else "-"

    table = [[r["path"], r["actors"], r["clips"], f"{r['media_s']:.0f}", f(r.get("startup_s"), ".1f"),
              f"{r['cold_s']:.1f}", ratio(r, "cold_s"), f(r.get("warm_s"), ".1f"), f(rate(r, "warm_s"), ".2f"),
              ratio(r, "warm_s"), f"{r['cpu_s']:.0f}", f"{r['others_cores']:.2f}", f"{r['peak_rss_mb']:.0f}",
              r["failures"]] for r in rows]
    head = ["path", "perception actors", "clips", "media s", "start-up s", "cold wall s", "cold vs serial",
            "warm wall s", "warm clip-s / wall-s", "warm vs serial", "CPU s", "others (cores)", "peak RSS MB",
            "failures"]
    return tabulate(table, headers=head, tablefmt="github")


def verdict(rows: list[dict]) -> str:
    base = rows[0]
    ray_rows = [r for r in rows if r["path"].startswith("Ray")]
    best = min(ray_rows, key=lambda r: r["cold_s"])
    cold = base["cold_s"] / best["cold_s"]
    warm = base["warm_s"] / best["warm_s"] if best.get("warm_s") else None
    met = "met" if cold >= 1.6 else "**not met**"
    lines = [f"- Best Ray configuration ({best['actors']}): **{cold:.2f}x** the 1-thread serial loop cold, "
             + (f"**{warm:.2f}x** warm " if warm else "")
             + f"(target >= 1.6x on 2 cores, cold: {met} in this run)."]
    if len(rows[0].get("cold_runs", [])) > 1:
        every = "; ".join(f"{r['path'].split(' (')[0]} {r['actors']}: {r['cold_runs']} s with others at {r['others_runs']} "
                          "cores" for r in rows).replace(" -:", ":")
        lines.append(f"- Every run's cold wall: {every}.")
    for r in rows[1:]:
        if r["path"].startswith("serial"):
            lines.append(f"- Against the {r['path']}: {r['cold_s'] / best['cold_s']:.2f}x cold"
                         + (f", {r['warm_s'] / best['warm_s']:.2f}x warm." if warm else "."))
    return "\n".join(lines)


# What the profile of this pipeline showed; true of the code, not of one run, so kept with the bench.
NOTES = """
What the profile showed (per-stage times, `ds.stats()`, per-process CPU of the Ray tree, actor timelines):
- **Where the work is.** Serial, 1 thread, warm: faces ~48% of the stage time, ASR ~25%, active speaker ~13%,
  diarization ~11%, VAD ~3%. Video decoding is ~10% of the total, inside faces and active speaker; audio
  decoding is negligible. Imports, model loading and a warm-up clip take ~6-8 s per process. The hardware
  scales: two plain Python processes running this loop side by side each kept ~97% of their solo speed.
- **Layout.** One pool per stage (5 pools) pipelines only as well as its slowest pool on 2 cores, starts
  5-10 processes and moves each clip through 5 actors: 1.15x (1 per stage) and 0.92x (2 per stage) in the
  previous run of this bench. Fused actors (decode, every stage and the write in one actor, one clip at a
  time) are now the default (`curate.fuse_stages`), one per CPU (`curate.fused_actors`).
- **Object store.** Decoded media never crossed it: actors decode from the files themselves, and the decode
  task only verified media. Blocks are one clip of labels (<100 KB). Not a cost.
- **Ray's own CPU.** Per run, before: ~23 s of CPU outside the actors (~0.25 of a core): the write tasks
  landed on 4-5 fresh workers that each imported Ray Data, pandas and pyarrow (~2 s each); Ray Data's helper
  actors (stats, autoscaling coordinator, locality tracker) started on first use (~6 s); the driver's
  scheduling loop (~5 s). After: writes happen in the actors, the helpers exist before timing (a long-lived
  cluster has them), leaving ~9 s (driver ~4 s, raylet, GCS and agents ~2.5 s, helpers ~2 s). The driver
  also imported every perception backend just to learn the stage names (~1.3 s before any actor could
  start); the stages now import their backends when built.
- **Dispatch.** Ray Data's default of 2 tasks in flight per actor queued a clip behind a busy actor; with 1 in
  flight and clips ordered by estimated work (video clips cost ~2.5x audio-only ones per media second), the
  two actors finished within 2 s of each other.
- **Start-up.** An actor spawns a worker (~1 s), imports Ray Data and the pipeline modules (~1.5 s of CPU),
  then perception, its models and the warm-up (~3-5 s); the pool waits for both before handing out clips.
- **Threads.** Each actor and the serial loop pin torch (intra- and inter-op), OpenCV and the BLAS/OpenMP
  pools (threadpoolctl, plus OMP/MKL/OPENBLAS variables) to 1 thread (`perception.torch_threads`); onnxruntime
  (silero) uses 1 by itself; FFmpeg's decoder keeps its automatic threads in both (worth ~1.5 s to the serial
  loop, which has an idle core for them). `--serial-threads 2` runs the same loop with every pool at 2
  threads: 166 s against 99 s for 1 thread in one run while another user's job held ~1 core.
- **Memory.** Peak RSS of a Ray row counts every process of the local cluster (raylet, GCS, agents, Ray
  Data's helper actors, idle workers: ~1.7 GB before any actor); each fused actor adds ~0.8 GB, about what
  the serial process holds (its own interpreter and models).
"""


def write_readme(table: str, meta: str, rows: list[dict]) -> None:
    section = f"## Curation\n\n`.venv/bin/python bench/curate.py`: {meta}\n\n{table}\n\n{verdict(rows)}\n{NOTES}\n"
    replace_section("Curation", section)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    p.add_argument("--max-clips", type=int, default=None, help="per source")
    p.add_argument("--repeat", type=int, default=1, help="runs per configuration; the quietest run is reported")
    p.add_argument("--per-stage", action="store_true", help="also run one actor pool per stage (slow on 2 cores)")
    p.add_argument("--serial-threads", default="1", help="comma list of thread counts for serial loops")
    p.add_argument("--quiet-wait", type=float, default=0.0,
                   help="before each run, wait up to this many seconds for other processes to use < 0.3 cores")
    p.add_argument("--serial-worker", help=argparse.SUPPRESS)
    p.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    p.add_argument("--from-json", help="re-render the table and README section from a results file, running nothing")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        rows = [quietest_row(v) for v in saved["runs"].values()]
        table, meta = render(rows), saved["meta"]
        print(table)
        print(verdict(rows))
        if not args.no_readme:
            write_readme(table, meta, rows)
        return 0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.serial_worker:
        print(json.dumps(serial_worker(json.loads(args.serial_worker), int(args.serial_threads))))
        return 0
    work = tempfile.mkdtemp(prefix="amuse-bench-curate-")
    # Every run reads the same prepared tree, so the stitched Friends-MMC media are built once.
    sets = [f"run.corpus_dir={args.corpus}", f"run.output_dir={work}/prep", "run.name=bench", "ray.address=local",
            "ray.num_cpus=2", "curate.progress_bars=false", "curate.verify_decode=false", "curate.build_tasks=false"]
    if args.max_clips:
        sets.append(f"curate.max_clips_per_source={args.max_clips}")
    load0 = os.getloadavg()
    runs: dict[tuple, list[dict]] = {}
    order = [("serial", int(t)) for t in args.serial_threads.split(",")] + [("ray", 1, True), ("ray", 2, True)]
    if args.per_stage:
        order.append(("ray", 1, False))
    try:
        refs = prepared_refs(load_app_config(REPO / "configs" / "demo.yaml", sets))
        print(f"{len(refs)} clips, {sum(r.end_s - r.start_s for r in refs):.0f} s of media; load {load0}", flush=True)
        import ray

        from infra.ray_utils import init_ray

        init_ray(load_app_config(REPO / "configs" / "demo.yaml", sets).ray)
        prewarm_ray_data()
        time.sleep(5.0)  # let the prestarted idle workers finish importing before anything is timed
        for rep in range(args.repeat):
            for key in order:  # interleaved, so a burst of load from elsewhere hits every configuration alike
                if args.quiet_wait:
                    wait_for_quiet(args.quiet_wait)
                row = serial_run(sets, key[1]) if key[0] == "serial" else ray_run(sets, key[1], key[2], f"{work}/prep")
                runs.setdefault(key, []).append(row)
                print(f"[{rep + 1}/{args.repeat}] {row['path']} {row['actors']}: cold {row['cold_s']:.1f} s, "
                      f"warm {row['warm_s'] or 0:.1f} s, others {row['others_cores']:.2f} cores, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [quietest_row(runs[k]) for k in order]
    table = render(rows)
    load1 = os.getloadavg()
    others = statistics.mean(r["others_cores"] for rs in runs.values() for r in rs)
    meta = (f"{rows[0]['clips']} clips ({rows[0]['media_s']:.0f} s of media) of `{Path(args.corpus).name}`, embedded "
            f"backends, 2-CPU local Ray, {args.repeat} run(s) per configuration, interleaved; each row is the run "
            "during which other processes used the least CPU (all runs are in bench/results/curate.json); load average "
            f"(1/5/15 min) {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f} before and {load1[0]:.1f}/{load1[1]:.1f}/"
            f"{load1[2]:.1f} after; other users' processes took {others:.2f} cores on average meanwhile "
            "(the machine is shared, so figures move between runs).")
    print(table)
    print(verdict(rows))
    out = REPO / "bench" / "results" / "curate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "runs": {str(k): v for k, v in runs.items()}, "load_before": load0,
                               "load_after": load1, "meta": meta}, indent=2))
    if not args.no_readme:
        write_readme(table, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
