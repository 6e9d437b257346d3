"""The curation pipeline on Ray Data: clip references -> decode -> perception actor pools -> Parquet.

    from_items(refs not yet written)        one block per clip, so work streams clip by clip
      .map_batches(decode_batch)            task: stitch, decode-verify, quarantine bad media
      .map_batches(<perception stage>)...   actor pools, one per stage, from perception.actors.STAGES
      .map_batches(write_batch)             task: validate, write part files atomically, emit stats
    driver iterates the stats rows          drives the streaming executor; Ray shows progress bars

Actors reserve fractional CPUs and their sum is kept below the cluster's CPUs minus
``curate.cpu_reserve``: at a full CPU each, Ray Data's tasks starve and the run hangs (PLATFORM).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from infra import storage
from infra.config import to_dict
from pipelines.config import AppConfig
from pipelines.curation.decode import decode_batch
from pipelines.curation.fused import FusedStages
from pipelines.curation.quarantine import write_quarantine_table
from pipelines.curation.records import write_batch
from pipelines.curation.refs import clips_root, done_clip_ids, ref_row, scan_sources
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


def build_dataset(cfg: AppConfig, rows: list[dict], stages: list[str], cluster_cpus: float):
    """The lazy Dataset of the run; iterating it executes the pipeline and yields the stats rows."""
    import ray.data

    from perception.actors import STAGES

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = cfg.curate.progress_bars
    storage_cfg = asdict(cfg.storage.resolved())
    pc = cfg.perception
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    ds = ds.map_batches(
        decode_batch, batch_format="pandas", batch_size=1, num_cpus=cfg.curate.decode_num_cpus,
        fn_kwargs={"quarantine_dir": cfg.output_uri("quarantine_parts"), "storage_cfg": storage_cfg,
                   "sample_rate": pc.sample_rate, "fps": pc.fps_sample, "max_height": pc.max_height,
                   "tolerance_s": cfg.curate.truncation_tolerance_s, "verify": cfg.curate.verify_decode},
    )
    pcfg = to_dict(pc)
    fused = cfg.curate.fuse_stages and bool(stages)
    if fused:
        n = cfg.curate.fused_actors
        ds = ds.map_batches(
            FusedStages, fn_constructor_kwargs={"cfg": pcfg, "stages": stages}, batch_format="pandas", batch_size=1,
            num_cpus=min(1.0, max(cluster_cpus - cfg.curate.cpu_reserve, 0.1) / n),
            compute=ray.data.ActorPoolStrategy(size=n),
        )
    for name, r in actor_resources(cfg, [] if fused else stages, cluster_cpus).items():
        ds = ds.map_batches(
            STAGES[name], fn_constructor_kwargs={"cfg": pcfg}, batch_format="pandas", batch_size=r["batch_size"],
            num_cpus=r["num_cpus"], num_gpus=r["num_gpus"] or None,
            compute=ray.data.ActorPoolStrategy(size=r["concurrency"]),
        )
    return ds.map_batches(
        write_batch, batch_format="pandas", batch_size=cfg.curate.records_per_file, num_cpus=cfg.curate.write_num_cpus,
        fn_kwargs={"clips_dir": clips_root(cfg), "quarantine_dir": cfg.output_uri("quarantine_parts"),
                   "storage_cfg": storage_cfg, "stages": stages},
    )


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
    scan = scan_sources(cfg)
    done = done_clip_ids(cfg) if cfg.curate.resume else set()
    # Longest first: with actors working in parallel, a long clip started last would run alone at the end.
    todo = sorted((r for r in scan.refs if r.clip_id not in done), key=lambda r: (r.start_s - r.end_s, r.clip_id))
    summary = RunSummary(clips_total=len(scan.refs), clips_skipped=len(scan.refs) - len(todo),
                         per_source=dict(scan.per_source))
    scan_stats = StageStats("scan", clips=len(scan.refs), media_s=sum(r.end_s - r.start_s for r in scan.refs),
                            seconds=scan.seconds, failures=len(scan.quarantined))
    print(f"curate: {len(scan.refs)} clips from {dict(scan.per_source)}; {len(done & {r.clip_id for r in scan.refs})} "
          f"already written; {len(todo)} to do; {len(scan.quarantined)} quarantined by the adapters", flush=True)
    stats_rows: list[dict] = []
    if todo:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        ds = build_dataset(cfg, [ref_row(r) for r in todo], stages, cpus)
        for batch in ds.iter_batches(batch_format="pandas", batch_size=None):
            stats_rows += batch.to_dict("records")
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
