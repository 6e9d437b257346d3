"""``curate`` section of the config: what the curation job reads, how it cuts, runs, resumes and writes."""

from __future__ import annotations

from dataclasses import dataclass

from eval.tasks.config import TasksConfig
from infra.config import doc_field
from infra.schemas import SOURCES
from pipelines.sources.ava import MERGE_GAP_S


@dataclass
class CurateConfig:
    sources: list[str] = doc_field(doc="Source adapters to run (ava, ami, voxceleb2, friends_mmc, youtube).", factory=lambda: list(SOURCES))
    source_dirs: dict[str, str] = doc_field(
        doc="Per-source root overrides (local or s3://); a source not named reads <run.corpus_dir>/<source>.", factory=dict
    )
    min_clip_s: float = doc_field(10.0, "Shortest clip, seconds. Clips are cut on turn boundaries between min and max.")
    max_clip_s: float = doc_field(50.0, "Longest clip, seconds.")
    max_clips_per_source: int | None = doc_field(None, "Keep only the first N clips of each source (stable order); None keeps all.")
    stages: list[str] | None = doc_field(
        None, "Perception stages to run, in perception.actors.STAGES order; None runs all, [] none (pred_* left empty)."
    )
    fuse_stages: bool = doc_field(
        True, "Decode and run all perception stages in each actor of one pool (data-parallel, one clip per actor at "
        "a time) instead of a decode task and one actor pool per stage (pipelined). Fused is faster on a few CPU "
        "cores: fewer processes and model loads, and every core busy whatever the stage mix (bench/README.md)."
    )
    fused_actors: int | None = doc_field(
        None, "Actors in the fused pool (curate.fuse_stages); None: one per whole CPU of the cluster. Each gets an "
        "equal share of the CPU budget (cluster CPUs minus curate.cpu_reserve)."
    )
    warm_up: bool = doc_field(
        True, "Fused actors run their models once on a 2 s synthetic clip before taking work, so one-off first-call "
        "costs land in start-up rather than in the first clip."
    )
    actor_start_timeout_s: int = doc_field(
        600, "Fused layout: how long to wait for every actor to start (models loaded) before the run fails."
    )
    resume: bool = doc_field(
        True, "Skip clip ids already written under <output>/clips/; false rewrites the clips table. The clips must have "
        "been made with this run's perception config (recorded in <output>/curation_manifest.json, thread and actor "
        "counts left out): a changed config stops the run with the changed keys; use a new run.name, or false."
    )
    verify_decode: bool = doc_field(
        True, "Check each clip span before perception (decode its audio and first sampled frame, walk its video packets "
        "to the clip end), so corrupt or truncated media is quarantined up front instead of failing every stage."
    )
    truncation_tolerance_s: float = doc_field(1.0, "Decoded media may end this much before the clip end before it counts as truncated.")
    decode_num_cpus: float = doc_field(0.25, "CPUs reserved per decode/assemble task in the per-stage layout (fractional: see PLATFORM's Ray Data deadlock); fused actors decode themselves.")
    write_num_cpus: float = doc_field(0.1, "CPUs reserved per record-writing task.")
    cpu_reserve: float = doc_field(
        0.5, "CPUs kept free of actor reservations for the read, decode and write tasks; actor num_cpus are scaled down to fit."
    )
    records_per_file: int = doc_field(4, "Clip records per Parquet part file in the per-stage layout (each part is written atomically); fused actors write one part file per clip.")
    ava_merge_gap_s: float = doc_field(
        MERGE_GAP_S, "AVA: runs of one face's SPEAKING_AUDIBLE labels at most this many seconds apart form one turn "
        "(the labels flicker within a sentence; 0 keeps every run as its own turn)."
    )
    friends_frame_size: list[int] = doc_field(
        doc="Friends-MMC annotation frame size [w, h] its pixel boxes refer to.", factory=lambda: [1280, 720]
    )
    progress_bars: bool = doc_field(True, "Show Ray Data's progress bars.")
    build_tasks: bool = doc_field(True, "Build task samples (samples.parquet) after the clips.")
    tasks: TasksConfig = doc_field(doc="Task-builder settings.", factory=TasksConfig)

    def validate(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"curate.sources: unknown sources {unknown} (known: {list(SOURCES)})")
        if not 0 < self.min_clip_s < self.max_clip_s:
            raise ValueError(f"curate.min_clip_s/max_clip_s: need 0 < {self.min_clip_s} < {self.max_clip_s}")
        if self.ava_merge_gap_s < 0:
            raise ValueError(f"curate.ava_merge_gap_s: {self.ava_merge_gap_s} is negative")
        if len(self.friends_frame_size) != 2 or min(self.friends_frame_size) <= 0:
            raise ValueError(f"curate.friends_frame_size: {self.friends_frame_size} is not [w, h]")
        if self.fused_actors is not None and self.fused_actors < 1:
            raise ValueError("curate.fused_actors: must be >= 1 or null")
        if self.actor_start_timeout_s < 1:
            raise ValueError("curate.actor_start_timeout_s: must be >= 1")
        if self.records_per_file < 1:
            raise ValueError("curate.records_per_file: must be >= 1")
