"""Per-stage summary of a curation run: clips, media seconds, seconds spent, throughput, failures."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from tabulate import tabulate


@dataclass
class StageStats:
    stage: str
    clips: int = 0
    media_s: float = 0.0
    seconds: float = 0.0  # summed over rows: time the stage's workers spent, not wall time
    failures: int = 0

    @property
    def throughput(self) -> float:
        """Clip-seconds of media per second of stage work (per worker)."""
        return self.media_s / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunSummary:
    stages: list[StageStats] = field(default_factory=list)
    clips_total: int = 0  # clip references the sources produced
    clips_skipped: int = 0  # already written by an earlier run (resume)
    clips_written: int = 0
    clips_quarantined: int = 0
    media_s_written: float = 0.0
    wall_s: float = 0.0
    per_source: dict[str, int] = field(default_factory=dict)
    # Per source, labelled turns no clip holds (pipelines.sources.base.TurnsLeftOut as a dict):
    # turns / turn_s wholly outside every clip, cut_turns / cut_s partly outside.
    turns_left_out: dict[str, dict] = field(default_factory=dict)
    # Fused actors only (they stamp their rows): how many ran, how long until the last was ready
    # (process start, imports, model load, warm-up), and the wall from then to the last record.
    actors: int = 0
    actor_start_s: float | None = None
    actor_restarts: int = 0  # actors Ray started again after one died (new pids beyond the pool)
    actor_load_s: float | None = None  # mean per actor: models loaded and warmed, inside the start-up
    warm_wall_s: float | None = None
    warm_media_s: float = 0.0

    def set_actor_timing(self, stats_rows: list[dict], t_exec: float, t_end: float,
                         pool_size: int | None = None) -> None:
        """Start-up and warm wall from the actors' stamps (epoch seconds) on the stats rows.

        The warm wall runs from when the first ``pool_size`` actors (the pool the run started) were
        all ready. An actor Ray restarts after a crash stamps a later ready time; measuring from it
        would leave out the clips done before it and overstate throughput, so it only counts as a
        restart (its start-up stays inside the warm wall, where the run paid for it).
        """
        ready = {r["actor_pid"]: r for r in stats_rows if _num(r.get("actor_ready_at")) is not None}
        if not ready:
            return
        n = min(pool_size or len(ready), len(ready))
        last_ready = sorted(r["actor_ready_at"] for r in ready.values())[n - 1]
        self.actors = n
        self.actor_restarts = len(ready) - n
        self.actor_start_s = last_ready - t_exec
        self.actor_load_s = sum(r["actor_load_s"] for r in ready.values()) / len(ready)
        self.warm_wall_s = t_end - last_ready
        self.warm_media_s = sum(r["duration_s"] for r in stats_rows if r["status"] == "ok")

    @property
    def warm_clip_s_per_wall_s(self) -> float | None:
        return self.warm_media_s / self.warm_wall_s if self.warm_wall_s else None

    @property
    def clip_s_per_wall_s(self) -> float:
        return self.media_s_written / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stages"] = [{**asdict(s), "throughput": s.throughput} for s in self.stages]
        d["clip_s_per_wall_s"] = self.clip_s_per_wall_s
        d["warm_clip_s_per_wall_s"] = self.warm_clip_s_per_wall_s
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def table(self) -> str:
        rows = [[s.stage, s.clips, f"{s.media_s:.1f}", f"{s.seconds:.2f}", f"{s.throughput:.1f}", s.failures]
                for s in self.stages]
        head = ["stage", "clips", "media s", "seconds spent", "media s / s", "failures"]
        lines = [tabulate(rows, headers=head, tablefmt="github")]
        lines.append(
            f"clips: {self.clips_total} found, {self.clips_skipped} already done, {self.clips_written} written, "
            f"{self.clips_quarantined} quarantined; {self.media_s_written:.1f} media s in {self.wall_s:.1f} s wall "
            f"= {self.clip_s_per_wall_s:.2f} clip-s per wall-s"
        )
        left = {k: v for k, v in sorted(self.turns_left_out.items()) if v["turns"] or v["cut_turns"]}
        if left:
            lines.append("labelled turns in no clip: " + "; ".join(
                f"{k} {v['turns']} ({v['turn_s']:.1f} s), {v['cut_turns']} cut at a clip edge ({v['cut_s']:.1f} s outside)"
                for k, v in left.items()))
        if self.warm_wall_s is not None:
            lines.append(
                f"actors: {self.actors} fused, all ready after {self.actor_start_s:.1f} s (models loaded and warmed in "
                f"{self.actor_load_s:.1f} s each); warm: {self.warm_media_s:.1f} media s in {self.warm_wall_s:.1f} s "
                f"= {self.warm_clip_s_per_wall_s:.2f} clip-s per wall-s"
                + (f"; {self.actor_restarts} actor restart(s)" if self.actor_restarts else "")
            )
        return "\n".join(lines)


def _num(x) -> float | None:
    """A float, or None for a missing or NaN stamp (per-stage layouts do not stamp rows)."""
    return None if x is None or x != x else float(x)


def stage_stats_from_rows(stats_rows: list[dict], stages: list[str], todo: int, todo_media_s: float) -> list[StageStats]:
    """Aggregate the write stage's per-clip stats rows into one StageStats per stage (decode first)."""
    out = {s: StageStats(s) for s in ["decode", *stages, "write"]}
    for r in stats_rows:
        timings = json.loads(r["timings_json"])
        failed = set(json.loads(r["failed_stages_json"]))
        for s, secs in timings.items():
            if s in out:
                out[s].clips += 1
                out[s].media_s += r["duration_s"]
                out[s].seconds += secs
        for s in failed:
            if s in out:
                out[s].failures += 1
        if r["status"] != "ok":
            out["write"].failures += 1  # quarantined by the record validator
    # Rows that never reached the write stage were quarantined by decode.
    out["decode"].failures += max(0, todo - len(stats_rows))
    return list(out.values())
