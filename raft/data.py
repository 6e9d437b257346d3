"""Training data: samples.parquet + clips.parquet -> prompts, references and media for the policy.

The trainer reads curation's two tables by URI, unchanged. A prompt is the sample's question and
lettered options, plus (guided mode) compact cues rendered from the clip's ``pred_*`` columns;
the transcript lines are kept as (text, t0, t1) so the model adapter can place f_t(t) on the grid.
The reference response follows the plan / act / reflect / answer format that the format reward
checks, with the sample's label as the answer.

Data order is a pure function of (seed, rank, step), so resume needs only the step number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from infra import storage
from infra.storage import StorageConfig
from raft.config import TrainConfig

log = logging.getLogger(__name__)

SYSTEM = ("You reason about who speaks when, to whom and about what in multi-party audio-visual dialogue. "
          "Reply with lines plan:, act:, reflect:, answer:.")
DEFAULT_TOOLS = {"AVSA": ["active_speaker", "sync_check"], "NSP": ["diarize", "transcribe"],
                 "SRID": ["diarize"], "STG": ["diarize", "active_speaker"], "AVDS": ["transcribe", "diarize"],
                 "CSNL": ["transcribe", "diarize"]}


@dataclass
class Prompt:
    sample: dict
    text: str
    transcript_lines: list[tuple[str, float, float]]  # times relative to the clip start
    reference: str
    clip: dict  # the first clip of the sample (media for the encoders)


def _rel(t: float, clip: dict) -> float:
    return round(float(t) - float(clip["start_s"]), 1)


def render_cues(clip: dict, max_lines: int = 12) -> tuple[list[str], list[tuple[str, float, float]]]:
    """Cue lines from pred_* only: transcript with speakers, then per-track sync/activity."""
    lines, timed = [], []
    for seg in (clip.get("pred_transcript") or [])[:max_lines]:
        line = f"[{_rel(seg['start'], clip)}-{_rel(seg['end'], clip)}] {seg.get('speaker') or '?'}: {seg['text']}"
        lines.append(line)
        timed.append((line, _rel(seg["start"], clip), _rel(seg["end"], clip)))
    for a in clip.get("pred_active_speaker") or []:
        mean = float(np.mean(a["scores"])) if a["scores"] else 0.0
        lines.append(f"track {a['track_id']}: active {mean:.2f} sync {float(a['sync_confidence'] or 0):.2f}")
    return lines, timed


def build_prompt(sample: dict, clips: dict[str, dict], mode: str) -> Prompt:
    clip = clips[sample["clip_ids"][0]]
    parts = [sample["question"]]
    for i, opt in enumerate(sample.get("options") or []):
        parts.append(f"{chr(65 + i)}. {opt}")
    timed: list[tuple[str, float, float]] = []
    if mode == "guided":
        cue_lines = []
        for cid in sample["clip_ids"]:
            if cid in clips:
                lines, t = render_cues(clips[cid])
                cue_lines += lines
                timed += t if cid == clip["clip_id"] else []
        parts += ["cues:", *cue_lines]
    elif mode == "agentic":
        parts.append("tools: diarize transcribe detect_faces track_faces sync_check active_speaker")
    return Prompt(sample, "\n".join(parts), timed, reference_response(sample), clip)


def reference_response(sample: dict) -> str:
    tools = list(sample.get("required_tools") or DEFAULT_TOOLS.get(sample["task"], []))
    # STG's `answer` is already JSON in clip-relative seconds, the time base the question uses;
    # `answer_intervals` are media-file seconds and must not leak into the reference text.
    answer = sample["answer"]
    return f"plan: {' '.join(tools) or 'none'}\nact: {' '.join(tools) or 'none'}\nreflect: ok\nanswer: {answer}"


def load_media(clip: dict, cfg: TrainConfig, scfg: StorageConfig | None = None):
    """(audio 16 kHz mono, [(t_rel, frame)]) for the first ``max_audio_s`` of the clip; failures -> silence."""
    # PyAV is imported here, not at module level, so the policy and the objective import without it
    # (bench/raft_gpu_step.py runs them on a GPU machine whose image has no PyAV)
    from infra.media import decode_audio, iter_frames

    start = float(clip["start_s"])
    end = min(float(clip["end_s"]), start + cfg.max_audio_s)
    audio, frames = None, []
    try:
        audio = decode_audio(clip.get("audio_uri") or clip["media_uri"], start, end, 16000, scfg)
    except Exception as exc:  # a missing track must not stop training; the prompt keeps its text
        log.warning("no audio for %s: %s", clip["clip_id"], exc)
        audio = np.zeros(int((end - start) * 16000), np.float32)
    if cfg.num_frames > 0 and (clip.get("fps") or 0) > 0:
        try:
            fps = cfg.num_frames / (end - start)
            for t, frame in iter_frames(clip["media_uri"], start, end, fps, cfg.frame_size * 2, scfg):
                frames.append((t - start, frame))
                if len(frames) == cfg.num_frames:
                    break
        except Exception as exc:
            log.warning("no frames for %s: %s", clip["clip_id"], exc)
    return audio, frames


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
