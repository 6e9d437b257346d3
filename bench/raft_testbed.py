"""A learnable text-only RAFT testbed: thousands of task samples from the corpus generator's scene model.

What it is:
- Scenes follow the corpus generator's dialogue model (``infra.corpus.dialogue``): the cast are the
  corpus identities (``infra.corpus.identities.DEMO_IDENTITIES``, by name), lines come from the
  genre banks (``infra.corpus.lines``), the next speaker is drawn among everyone but the last one,
  favouring whoever has talked least, gaps of 0.15-0.75 s, sometimes an overlap. Turn durations come
  from the line's word count (``TestbedConfig.words_per_s``) instead of the synthesized audio, so no
  TTS runs and thousands of scenes cost a second.
- **Oracle perception**: the clip's ``pred_turns`` / ``pred_transcript`` are the generator's exact
  turns and lines (the tool outputs a perfect perception would give), optionally corrupted by
  ``speaker_noise`` (a turn's speaker swapped for another cast member) and ``time_noise_s`` (bounds
  jittered): the difficulty knobs of the calibration gate.
- Samples are built by the *real* task builders (``eval.tasks``: STG, SRID, NSP ...) from these
  clip records, and a policy sees them through ``raft.data.build_prompt``, the evaluator's prompt.

What it leaves out: no audio, no frames (so the encoders, f_a and f_v of L_temp, and the sync / face
reward components have nothing to read), no face tracks or active-speaker cues, no ASR or
diarization errors other than the two noise knobs, and no speech rhythm beyond words-per-second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from eval.tasks import get_task
from eval.tasks.base import Skip
from eval.tasks.config import TasksConfig
from infra.config import doc_field
from infra.corpus import lines
from infra.corpus.dialogue import Turn as CorpusTurn
from infra.corpus.dialogue import overlap_ratio
from infra.corpus.identities import DEMO_IDENTITIES

SOURCE = "friends_mmc"  # a named source: questions and cues call people by their (corpus identity) names


@dataclass
class TestbedConfig:
    """Size and difficulty of the generated testbed."""

    __test__ = False  # not a pytest class

    tasks: list[str] = doc_field(doc="Registered tasks to build (eval.tasks).", factory=lambda: ["STG", "SRID", "NSP"])
    clips: dict[str, int] = doc_field(doc="Scenes per split (train / val / test); each gives <= 1 sample per task.",
                                      factory=lambda: {"train": 1500, "val": 60, "test": 150})
    speakers: tuple[int, int] = doc_field((2, 3), "Cast size per scene, min and max (inclusive).")
    clip_s: tuple[float, float] = doc_field((10.0, 14.0), "Wanted scene length range in seconds.")
    genres: list[str] = doc_field(doc="Line banks (infra.corpus.lines.GENRES).",
                                  factory=lambda: ["sitcom", "meeting", "podcast", "film"])
    num_options: int = doc_field(3, "Options per multiple-choice question (eval.tasks' TasksConfig.num_options).")
    words_per_s: float = doc_field(2.8, "Speaking rate that turns a line's word count into its duration.")
    p_overlap: float = doc_field(0.15, "Chance that a turn starts before the previous one ends.")
    speaker_noise: float = doc_field(0.0, "Chance a perceived turn carries another cast member's name (oracle: 0).")
    time_noise_s: float = doc_field(0.0, "Std of the jitter added to perceived turn bounds, seconds (oracle: 0).")
    seed: int = doc_field(0, "Seed: split s, scene i always get the same content.")


def _script(rng: np.random.Generator, names: list[str], genre: str, target: float, cfg: TestbedConfig) -> list[CorpusTurn]:
    """The corpus generator's turn-taking rule (infra.corpus.dialogue._script), durations from word counts."""
    bank = lines.GENRES[genre]
    talk = {n: 0.0 for n in names}
    turns: list[CorpusTurn] = []
    t, last_end, prev = float(rng.uniform(0.4, 0.9)), 0.0, None
    while True:
        cands = [n for n in names if n != prev]
        w = np.array([1.0 / (1.0 + talk[c]) ** 2 for c in cands])
        spk = cands[int(rng.choice(len(cands), p=w / w.sum()))]
        text = str(bank[int(rng.integers(len(bank)))])
        dur = len(text.split()) / cfg.words_per_s * float(rng.uniform(0.85, 1.15)) + 0.3
        if turns and rng.random() < cfg.p_overlap:
            start = max(last_end - float(rng.uniform(0.3, 0.8)), turns[-1].start + 0.3 * (turns[-1].end - turns[-1].start))
        else:
            start = last_end + float(rng.uniform(0.15, 0.75)) if turns else t
        turns.append(CorpusTurn(round(start, 2), round(start + dur, 2), spk, text))
        talk[spk] += dur
        last_end, prev = max(last_end, start + dur), spk
        if last_end >= target and len({x.speaker for x in turns}) == len(names):
            return turns


def _perceived(turns: list[CorpusTurn], names: list[str], rng: np.random.Generator, cfg: TestbedConfig,
               offset: float) -> list[dict]:
    """pred_turns as an oracle perception with the configured noise, on the media-file timeline."""
    out = []
    for t in turns:
        spk = t.speaker
        if cfg.speaker_noise and rng.random() < cfg.speaker_noise:
            spk = str(rng.choice([n for n in names if n != t.speaker]))
        j = rng.normal(0.0, cfg.time_noise_s, 2) if cfg.time_noise_s else (0.0, 0.0)
        s, e = t.start + j[0], max(t.start + j[0] + 0.1, t.end + j[1])
        out.append({"start": round(offset + s, 2), "end": round(offset + e, 2), "speaker": spk, "text": t.text})
    return out


def make_clip(cfg: TestbedConfig, split: str, i: int) -> dict:
    """One clip record (CLIP_SCHEMA-like: the fields the task builders and the reward read)."""
    rng = np.random.default_rng([cfg.seed, ["train", "val", "test"].index(split), i])
    n = int(rng.integers(cfg.speakers[0], cfg.speakers[1] + 1))
    names = [DEMO_IDENTITIES[j].name for j in rng.choice(len(DEMO_IDENTITIES), n, replace=False)]
    genre = cfg.genres[int(rng.integers(len(cfg.genres)))]
    turns = _script(rng, names, genre, float(rng.uniform(*cfg.clip_s)), cfg)
    offset = round(float(rng.uniform(5.0, 60.0)), 1)  # clips start away from 0 s, as real cuts do
    end = max(t.end for t in turns) + 0.5
    pred = _perceived(turns, names, rng, cfg, offset)
    cid = f"tb-{split}-{i:05d}"
    return {
        "clip_id": cid, "source": SOURCE, "source_video_id": cid, "start_s": offset, "end_s": round(offset + end, 2),
        "duration_s": round(end, 2), "fps": 0.0, "media_uri": "", "audio_uri": None,
        "gt_turns": [{"start": round(offset + t.start, 2), "end": round(offset + t.end, 2), "speaker": t.speaker,
                      "text": t.text} for t in turns],
        "gt_overlap_ratio": overlap_ratio(turns),
        "pred_turns": [{k: p[k] for k in ("start", "end", "speaker")} for p in pred],
        "pred_transcript": [{**p, "words": []} for p in pred],
        "pred_face_tracks": None, "pred_active_speaker": None, "pred_speech": None,
    }


@dataclass
class Testbed:
    __test__ = False

    samples: dict[str, list[dict]] = field(default_factory=dict)  # split -> sample rows
    clips: dict[str, dict] = field(default_factory=dict)  # clip_id -> clip record
    skipped: dict[str, int] = field(default_factory=dict)  # "task: reason" -> count


def build_testbed(cfg: TestbedConfig) -> Testbed:
    """Sample rows per split, built by the registered task builders from the generated clips."""
    tcfg = TasksConfig(tasks=list(cfg.tasks), num_options=cfg.num_options, per_clip=1)
    builders = {t: get_task(t)(tcfg, seed=cfg.seed) for t in cfg.tasks}
    tb = Testbed()
    for split, count in cfg.clips.items():
        rows = tb.samples.setdefault(split, [])
        for i in range(count):
            clip = make_clip(cfg, split, i)
            tb.clips[clip["clip_id"]] = clip
            for name, b in builders.items():
                try:
                    built = b.build_clip(clip, b.rng_for(clip["clip_id"]))
                except Skip as s:
                    key = f"{name}: {s.reason}"
                    tb.skipped[key] = tb.skipped.get(key, 0) + 1
                    continue
                rows += [s.to_row(split) for s in built]
    return tb


def subsample(rows: list[dict], per_task: int, seed: int) -> list[dict]:
    """At most ``per_task`` rows of each task, drawn with a fixed seed (order kept)."""
    rng = random.Random(seed)
    by_task: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_task.setdefault(r["task"], []).append(i)
    keep = sorted(i for idx in by_task.values() for i in rng.sample(idx, min(per_task, len(idx))))
    return [rows[i] for i in keep]
