"""Curation throughput: a plain serial loop versus the Ray Data pipeline, on the same clips.

    .venv/bin/python bench/curate.py [--corpus data/corpus] [--max-clips N] [--no-readme]

Measures clip-seconds of media processed per wall-second with the embedded perception backends:
- serial: one process, ``perception.actors.run_all`` clip after clip (models loaded once);
- Ray: the curation pipeline (``pipelines.curation.pipeline.curate_clips``) with 1 actor per
  perception stage, then 2 per stage, then 2 fused actors that each run every stage
  (``curate.fuse_stages``), on a private 2-CPU local cluster.
Both paths see the same clip references (Friends-MMC media stitched once beforehand, so neither
pays for it) and do the same work: the pipeline's decode-verify pass is off here, since the serial
loop has none. Model loading counts in both walls; Ray's cluster start does not. Peak memory is
the peak summed RSS of the process tree (driver, and for Ray every raylet/worker process).
Prints a table, writes bench/results/curate.json and the "Curation" section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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


class PeakRss:
    """Samples the summed RSS of this process and all its descendants every 0.25 s."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.25)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def prepared_refs(cfg) -> list:
    """Clip references of the corpus with stitched media built, and the perception row of each."""
    from pipelines.curation.assemble import concat_media
    from pipelines.curation.refs import scan_sources

    scan = scan_sources(cfg)
    for ref in scan.refs:
        if ref.media_parts and not storage.exists(ref.media_uri):
            concat_media(ref.media_parts, ref.media_uri)
    return scan.refs


def serial_run(cfg, refs) -> dict:
    import torch

    from perception.actors import run_all

    torch.set_num_threads(1)
    media_s = sum(r.end_s - r.start_s for r in refs)
    with PeakRss() as mem:
        t0 = time.perf_counter()
        failures = 0
        for ref in refs:
            row = ref.to_row()
            row["fps"] = 0.0 if row["media_uri"].endswith((".wav", ".m4a")) else cfg.perception.fps_sample
            out = run_all(row, cfg.perception)
            failures += bool(out.get("errors"))
        wall = time.perf_counter() - t0
    return {"path": "serial loop", "actors": "-", "clips": len(refs), "media_s": media_s, "wall_s": wall,
            "clip_s_per_wall_s": media_s / wall, "peak_rss_mb": max(mem.peak, _maxrss()) / 2**20, "failures": failures}


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def ray_run(cfg, actors: int, out_dir: str) -> dict:
    from pipelines.curation.pipeline import curate_clips

    cfg.run.output_dir = out_dir
    cfg.curate.resume = False
    cfg.perception.audio.concurrency = actors
    cfg.perception.video.concurrency = actors
    cfg.curate.fused_actors = actors
    with PeakRss() as mem:
        t0 = time.perf_counter()
        summary, _ = curate_clips(cfg)
        wall = time.perf_counter() - t0
    failures = sum(s.failures for s in summary.stages if s.stage not in ("scan",))
    kind = f"{actors} fused (all stages each)" if cfg.curate.fuse_stages else f"{actors} per stage"
    return {"path": "Ray Data pipeline", "actors": kind, "clips": summary.clips_written,
            "media_s": summary.media_s_written, "wall_s": wall, "clip_s_per_wall_s": summary.media_s_written / wall,
            "peak_rss_mb": mem.peak / 2**20, "failures": failures}


def render(rows: list[dict]) -> str:
    base = rows[0]["clip_s_per_wall_s"]
    table = [[r["path"], r["actors"], r["clips"], f"{r['media_s']:.0f}", f"{r['wall_s']:.1f}",
              f"{r['clip_s_per_wall_s']:.2f}", f"{r['clip_s_per_wall_s'] / base:.2f}x", f"{r['peak_rss_mb']:.0f}",
              r["failures"]] for r in rows]
    head = ["path", "perception actors", "clips", "media s", "wall s", "clip-s / wall-s", "vs serial",
            "peak RSS MB", "failures"]
    return tabulate(table, headers=head, tablefmt="github")


def verdict(rows: list[dict]) -> str:
    base = rows[0]["clip_s_per_wall_s"]
    best = max(rows[1:], key=lambda r: r["clip_s_per_wall_s"])
    ratio = best["clip_s_per_wall_s"] / base
    met = "met" if ratio >= 1.6 else "**not met**"
    return (f"- Best Ray configuration ({best['actors']}): **{ratio:.2f}x** the serial loop "
            f"(target >= 1.6x on 2 cores: {met} in this run).\n"
            "- Peak RSS counts every Ray process (raylet, GCS, dashboard-less workers, one per actor): each "
            "actor loads its own interpreter and models, which is where the extra memory goes.")


def write_readme(table: str, meta: str, rows: list[dict]) -> None:
    section = f"## Curation\n\n`.venv/bin/python bench/curate.py`: {meta}\n\n{table}\n\n{verdict(rows)}\n\n"
    replace_section("Curation", section)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=str(REPO / "data" / "corpus"))
    p.add_argument("--max-clips", type=int, default=None, help="per source")
    p.add_argument("--no-readme", action="store_true", help="print only; leave bench/README.md alone")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = tempfile.mkdtemp(prefix="amuse-bench-curate-")
    sets = [f"run.corpus_dir={args.corpus}", f"run.output_dir={work}/prep", "run.name=bench", "ray.address=local",
            "ray.num_cpus=2", "curate.progress_bars=false", "curate.verify_decode=false", "curate.build_tasks=false"]
    if args.max_clips:
        sets.append(f"curate.max_clips_per_source={args.max_clips}")
    cfg = load_app_config(REPO / "configs" / "demo.yaml", sets)
    try:
        refs = prepared_refs(cfg)
        print(f"{len(refs)} clips, {sum(r.end_s - r.start_s for r in refs):.0f} s of media", flush=True)
        rows = [serial_run(cfg, refs)]
        print(render(rows), flush=True)
        import ray

        from infra.ray_utils import init_ray

        init_ray(cfg.ray)
        for actors, fused in ((1, False), (2, False), (2, True)):
            # Same output tree as the prep, so the stitched media is found and not rebuilt.
            rcfg = load_app_config(REPO / "configs" / "demo.yaml", [*sets, f"curate.fuse_stages={str(fused).lower()}"])
            rows.append(ray_run(rcfg, actors, f"{work}/prep"))
            print(render(rows), flush=True)
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = render(rows)
    load = os.getloadavg()[0]
    meta = (f"{rows[0]['clips']} clips ({rows[0]['media_s']:.0f} s of media) of `{Path(args.corpus).name}`, "
            f"embedded backends, 2-CPU local Ray, one run; load average at the end {load:.1f} "
            "(the machine is shared, so figures move between runs).")
    print(table)
    print(verdict(rows))
    out = REPO / "bench" / "results" / "curate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "load_avg": load, "meta": meta}, indent=2))
    if not args.no_readme:
        write_readme(table, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
