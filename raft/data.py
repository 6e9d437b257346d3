"""Training data: samples.parquet + clips.parquet -> prompts, references and media for the policy.

The trainer reads curation's two tables by URI, unchanged. A prompt is the *evaluator's* prompt:
the sample's task renders its chat messages (``Task.render_prompt``, eval/tasks) with the same
clip spans and the same stored cues the evaluator uses, so a policy is trained on exactly the
bytes it is evaluated on (tests/raft/test_contract.py). The reference reply is the task's own
(``Task.reference_response``), in the reply format the prompt asks for. The guided prompt's
transcript lines are kept with their clip-relative times so the model adapter can place f_t(t).

Data order is a pure function of (seed, rank, step), so resume needs only the step number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.prompting import transcript_lines
from eval.tasks import get_task
from infra import storage
from infra.storage import StorageConfig
from raft.config import TrainConfig


@dataclass
class Prompt:
    sample: dict
    messages: list[dict[str, str]]  # the evaluator's messages for (sample, mode): system, then user
    transcript_lines: list[tuple[str, float, float]]  # (line as shown, start, end), clip-relative seconds
    reference: str  # the task's reference reply
    clip: dict  # the first clip of the sample (media for the encoders)
    mode: str = "guided"

    @property
    def task(self):
        return get_task(self.sample["task"])

    def reference_intervals(self) -> list[tuple[float, float]]:
        """Clip-relative intervals the reference answer claims (STG's gold; none for other kinds)."""
        return self.task.kind.intervals_of(self.task.gold(self.sample))


def build_prompt(sample: dict, clips: dict[str, dict], mode: str) -> Prompt:
    """The evaluator's prompt for ``sample`` in ``mode`` (same spans, same cues), with its reference."""
    missing = [c for c in sample["clip_ids"] if c not in clips]
    if missing:
        raise KeyError(f"sample {sample['sample_id']}: clip_ids {missing} not in the clip records")
    task = get_task(sample["task"])
    spans = [(float(clips[c]["start_s"]), float(clips[c]["end_s"])) for c in sample["clip_ids"]]
    cues = task.cues_of(sample) if mode == "guided" else None
    messages = task.render_prompt(sample, mode, spans=spans, cues=cues)
    timed = transcript_lines(cues) if mode == "guided" else []
    return Prompt(sample, messages, timed, task.reference_response(sample, mode), clips[sample["clip_ids"][0]], mode)


def load_media(clip: dict, cfg: TrainConfig, scfg: StorageConfig | None = None):
    """(audio 16 kHz mono or None, [(t_rel, frame)]) of the clip as evaluation shows it (``infra.clip_view``):
    the first ``max_audio_s`` of the span, ``num_frames`` square frames over that window. Unreadable media
    leaves the prompt its text, with a warning naming the file."""
    # PyAV is imported here, not at module level, so the policy and the objective import without it
    # (bench/raft_gpu_step.py runs them on a GPU machine whose image has no PyAV)
    from infra.clip_view import ClipView, clip_view

    return clip_view(clip["media_uri"], clip.get("audio_uri"), float(clip["start_s"]), float(clip["end_s"]),
                     ClipView(cfg.max_audio_s, cfg.num_frames, cfg.frame_size), scfg,
                     frames=(clip.get("fps") or 0) > 0)


def load_tables(cfg: TrainConfig, samples_uri: str, clips_uri: str, scfg: StorageConfig | None = None,
                split: str = "train") -> tuple[list[dict], dict[str, dict]]:
    samples = storage.read_parquet(samples_uri, scfg).to_pylist()
    clips = {c["clip_id"]: c for c in storage.read_parquet(clips_uri, scfg).to_pylist()}
    keep = [s for s in samples if s["split"] == split and (not cfg.tasks or s["task"] in cfg.tasks)
            and all(c in clips for c in s["clip_ids"])]
    keep.sort(key=lambda s: s["sample_id"])
    return keep, clips


def batch_indices(n: int, step: int, batch_size: int, seed: int, rank: int, world: int) -> list[int]:
    """Indices of this rank's batch at ``step``: its shard, reshuffled each epoch, read in order."""
    shard = list(range(rank % max(n, 1), n, world)) or list(range(n))
    out = []
    pos = step * batch_size
    for p in range(pos, pos + batch_size):
        epoch, i = divmod(p, len(shard))
        perm = np.random.default_rng([seed, rank, epoch]).permutation(len(shard))
        out.append(shard[perm[i]])
    return out
