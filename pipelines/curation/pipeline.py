"""The curation pipeline on Ray Data: clip references -> decode -> perception actors -> Parquet.

Fused layout (``curate.fuse_stages``, the default)::

    from_items(refs not yet written)        one block per clip, most work first, so work streams clip by clip
      .map_batches(FusedStages)             N actors, each: stitch + decode-verify (quarantine bad media),
                                            every perception stage, validate + write the clip's part file
                                            atomically; one clip in flight per actor; emits stats rows
    driver iterates the stats rows          drives the streaming executor; Ray shows progress bars

Per-stage layout: ``.map_batches(decode_batch)`` as a task, one actor pool per stage from
``perception.actors.STAGES`` (pipeline parallel; slower on a few cores, see ``fused.py``), then
``.map_batches(write_batch)`` as a task writing ``curate.records_per_file`` clips per part file.

Actors reserve fractional CPUs and their sum is kept below the cluster's CPUs minus
``curate.cpu_reserve``: at a full CPU each, Ray Data's tasks starve and the run hangs (PLATFORM).
The reservation is bookkeeping only; each fused actor still runs on a whole core, because its
thread pools are pinned to one thread (``perception.actors.set_threads``) and nothing else runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from infra import storage
from infra.config import to_dict
from pipelines.config import AppConfig
from pipelines.curation.assemble import sweep_stale_builds
from pipelines.curation.decode import decode_batch
from pipelines.curation.fused import FusedStages
from pipelines.curation.manifest import resumable_clip_ids, write_manifest
from pipelines.curation.quarantine import write_quarantine_table
from pipelines.curation.records import write_batch
from pipelines.curation.refs import Scan, clips_root, ref_row, scan_sources
from pipelines.curation.summary import RunSummary, StageStats, stage_stats_from_rows

log = logging.getLogger(__name__)


def selected_stages(cfg: AppConfig) -> list[str]:
    from perception.actors import STAGES

    if cfg.curate.stages is None:
        return list(STAGES)
    unknown = [s for s in cfg.curate.stages if s not in STAGES]
    if unknown:
        raise ValueError(f"curate.stages: unknown stages {unknown} (perception.actors.STAGES: {list(STAGES)})")
    return [s for s in STAGES if s in cfg.curate.stages]  # always in pipeline order


def actor_resources(cfg: AppConfig, stages: list[str], cluster_cpus: float) -> dict[str, dict]:
    """Per-stage map_batches sizing, with CPU reservations scaled to leave room for the tasks."""
    from perception.actors import resources

    res = {s: dict(resources(cfg.perception, s)) for s in stages}
    wanted = sum(r["num_cpus"] * r["concurrency"] for r in res.values())
    budget = max(cluster_cpus - cfg.curate.cpu_reserve, 0.1)
    if wanted > budget:
        scale = budget / wanted
        log.info("actor CPU reservations %.2f exceed the budget %.2f: scaling by %.2f", wanted, budget, scale)
        for r in res.values():
            r["num_cpus"] = r["num_cpus"] * scale
    return res


def fused_actors(cfg: AppConfig, cluster_cpus: float) -> int:
    """Actors in the fused pool: ``curate.fused_actors``, or one per whole CPU of the cluster."""
    return cfg.curate.fused_actors or max(1, int(cluster_cpus))


# Seconds of work per second of media, relative to an audio-only clip, for clips with video when
# the face stages run: measured on the demo corpus (serial loop: about 0.5 s/s with video, 0.2 s/s
# audio-only). Only the order of clips depends on it.
VIDEO_COST = 2.5


def work_order(refs: list, stages: list[str]) -> list:
    """Clips most expensive first (longest-processing-time-first): with clips handed to free actors
    one at a time, a long clip started last would leave one actor working alone at the end."""
    from pipelines.curation.decode import AUDIO_ONLY

    video_stages = bool({"faces", "active_speaker"} & set(stages))

    def cost(r) -> float:
        video = video_stages and not r.media_uri.lower().endswith(AUDIO_ONLY)
        return (r.end_s - r.start_s) * (VIDEO_COST if video else 1.0)

    return sorted(refs, key=lambda r: (-cost(r), r.clip_id))


def build_dataset(cfg: AppConfig, rows: list[dict], stages: list[str], cluster_cpus: float):
    """The lazy Dataset of the run; iterating it executes the pipeline and yields the stats rows."""
    import ray.data

    from perception.actors import STAGES

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = cfg.curate.progress_bars
    storage_cfg = asdict(cfg.storage.resolved())
    pc = cfg.perception
    decode_kwargs = {"quarantine_dir": cfg.output_uri("quarantine_parts"), "storage_cfg": storage_cfg,
                     "sample_rate": pc.sample_rate, "fps": pc.fps_sample, "max_height": pc.max_height,
                     "tolerance_s": cfg.curate.truncation_tolerance_s, "verify": cfg.curate.verify_decode}
    write_kwargs = {"clips_dir": clips_root(cfg), "quarantine_dir": cfg.output_uri("quarantine_parts"),
                    "storage_cfg": storage_cfg, "stages": stages}
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    pcfg = to_dict(pc)
    if cfg.curate.fuse_stages and stages:
        n = fused_actors(cfg, cluster_cpus)
        # Start every actor (models loaded and warmed) before the first clip is handed out, so the
        # summary can tell start-up from warm throughput; nothing else could use the cores meanwhile.
        ctx.wait_for_min_actors_s = cfg.curate.actor_start_timeout_s
        return ds.map_batches(
            FusedStages, batch_format="pandas", batch_size=1,
            fn_constructor_kwargs={"cfg": pcfg, "stages": stages, "decode": decode_kwargs, "write": write_kwargs,
                                   "warm_up": cfg.curate.warm_up},
            num_cpus=min(1.0, max(cluster_cpus - cfg.curate.cpu_reserve, 0.1) / n),
            compute=ray.data.ActorPoolStrategy(size=n, max_tasks_in_flight_per_actor=1),
        )
    ctx.wait_for_min_actors_s = -1  # Ray's default: pools start while decode tasks already run
    ds = ds.map_batches(decode_batch, batch_format="pandas", batch_size=1, num_cpus=cfg.curate.decode_num_cpus,
                        fn_kwargs=decode_kwargs)
    for name, r in actor_resources(cfg, stages, cluster_cpus).items():
        ds = ds.map_batches(
            STAGES[name], fn_constructor_kwargs={"cfg": pcfg}, batch_format="pandas", batch_size=r["batch_size"],
            num_cpus=r["num_cpus"], num_gpus=r["num_gpus"] or None,
            compute=ray.data.ActorPoolStrategy(size=r["concurrency"]),
        )
    return ds.map_batches(write_batch, batch_format="pandas", batch_size=cfg.curate.records_per_file,
                          num_cpus=cfg.curate.write_num_cpus, fn_kwargs=write_kwargs)


def scan_summary(scan: Scan, todo: list) -> RunSummary:
    """The run summary's scan-side counts: clips found and already done, per source, and the labelled
    turns the adapters could place in no clip (so dropped speech is reported, not silent)."""
    return RunSummary(clips_total=len(scan.refs), clips_skipped=len(scan.refs) - len(todo),
                      per_source=dict(scan.per_source),
                      turns_left_out={name: asdict(n) for name, n in scan.left_out.items()})


def curate_clips(cfg: AppConfig) -> tuple[RunSummary, dict[str, str]]:
    """Run adapters and the Ray Data pipeline; write clips/ and quarantine.parquet. Ray must be initialized."""
    import ray

    t0 = time.perf_counter()
    stages = selected_stages(cfg)
    clips_dir = clips_root(cfg)
    if not cfg.curate.resume:
        fs, path = storage.filesystem(clips_dir, cfg.storage)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    # Checked before the scan, so a changed config stops the run at once; the manifest is written
    # before any clip, so every clip on disk was made with the config it records.
    done = resumable_clip_ids(cfg, stages) if cfg.curate.resume else set()
    write_manifest(cfg, stages)
    stale = sweep_stale_builds(cfg.output_uri("media"))
    if stale:
        log.info("removed %d stitching folder(s) a killed run left: %s", len(stale), stale[:3])
    scan = scan_sources(cfg)
    todo = work_order([r for r in scan.refs if r.clip_id not in done], stages)
    summary = scan_summary(scan, todo)
    scan_stats = StageStats("scan", clips=len(scan.refs), media_s=sum(r.end_s - r.start_s for r in scan.refs),
                            seconds=scan.seconds, failures=len(scan.quarantined))
    print(f"curate: {len(scan.refs)} clips from {dict(scan.per_source)}; {len(done & {r.clip_id for r in scan.refs})} "
          f"already written; {len(todo)} to do; {len(scan.quarantined)} quarantined by the adapters", flush=True)
    stats_rows: list[dict] = []
    if todo:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        ds = build_dataset(cfg, [ref_row(r) for r in todo], stages, cpus)
        t_exec = time.time()
        for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
            stats_rows += batch.to_dict("records")
        pool = fused_actors(cfg, cpus) if cfg.curate.fuse_stages and stages else None
        summary.set_actor_timing(stats_rows, t_exec, time.time(), pool)
    summary.stages = [scan_stats, *stage_stats_from_rows(stats_rows, stages, len(todo),
                                                         sum(r.end_s - r.start_s for r in todo))]
    written = [r for r in stats_rows if r["status"] == "ok"]
    summary.clips_written = len(written)
    summary.media_s_written = sum(r["duration_s"] for r in written)
    quarantine_uri = cfg.output_uri("quarantine.parquet")
    qrows = write_quarantine_table(scan.quarantined, cfg.output_uri("quarantine_parts"), quarantine_uri, cfg.storage)
    summary.clips_quarantined = len(todo) - len(written)
    summary.wall_s = time.perf_counter() - t0
    summary_uri = cfg.output_uri("curation_summary.json")
    storage.write_bytes(summary_uri, summary.to_json().encode(), cfg.storage)
    log.info("quarantine: %d rows", len(qrows))
    return summary, {"clips": clips_dir, "quarantine": quarantine_uri, "curation summary": summary_uri}
