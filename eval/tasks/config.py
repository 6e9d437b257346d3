"""Task-builder settings (``curate.tasks``): which tasks to build, option counts, strata buckets, split."""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import doc_field


def _task_names() -> list[str]:
    from eval.tasks import task_names  # the registry imports the task modules, which import this config

    return task_names()


@dataclass
class TasksConfig:
    tasks: list[str] = doc_field(doc="Tasks to build samples for: registered task names (AVSA, NSP, SRID, STG, AVDS, CSNL).",
                                 factory=lambda: _task_names())
    num_options: int = doc_field(4, "Options per multiple-choice question (fewer when a clip has fewer candidates, never under 2).")
    test_fraction: float = doc_field(
        0.3, "Share of source videos (episodes/meetings/videos) per source put in the test split; whole videos, never clips."
    )
    overlap_edges: list[float] = doc_field(
        doc="Overlap-ratio bucket edges: [0.05, 0.3] gives buckets low (<0.05), mid (0.05-0.3) and high (>=0.3).",
        factory=lambda: [0.05, 0.3],
    )
    length_edges: list[float] = doc_field(
        doc="Clip-length bucket edges in seconds: [20, 40] gives 0-20, 20-40 and >40 (the paper's strata).",
        factory=lambda: [20.0, 40.0],
    )
    per_clip: int = doc_field(1, "Samples built per clip and task (each asks about a different turn, speaker or segment).")
    min_turn_s: float = doc_field(0.5, "Turns shorter than this (backchannels) are not asked about.")
    srid_min_segment_s: float = doc_field(1.0, "SRID reference and candidate segments are turns at least this long.")
    csnl_max_pairs_per_video: int = doc_field(6, "CSNL scene pairs drawn per source video at most.")

    def validate(self) -> None:
        unknown = [t for t in self.tasks if t not in _task_names()]
        if unknown:
            raise ValueError(f"curate.tasks.tasks: unknown tasks {unknown} (known: {_task_names()})")
        if not 2 <= self.num_options <= 26:
            raise ValueError(f"curate.tasks.num_options: {self.num_options} is not in 2..26")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"curate.tasks.test_fraction: {self.test_fraction} is not in [0, 1)")
        for name in ("overlap_edges", "length_edges"):
            edges = getattr(self, name)
            if list(edges) != sorted(edges) or not edges:
                raise ValueError(f"curate.tasks.{name}: {edges} must be a non-empty ascending list")
