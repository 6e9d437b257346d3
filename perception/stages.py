"""The five perception stages as row functions: one clip row in, its pred_* columns out.

Both the Ray actor wrappers (``perception.actors``) and the in-process paths (``run_all``,
``perception.tools``) call these, so the batch and serial paths compute exactly the same thing.
Rows hold file-relative times (the schema's convention); backends see clip-relative ones.

Each stage imports its capability module when it is built, not when this module is imported: the
curation driver imports this module only to learn the stage names, and the backends' imports
(torch, scikit-learn, scipy, dlib: about 1.3 s) would delay every run's start for nothing.
"""

from __future__ import annotations

import functools
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from perception.config import PerceptionConfig
from perception.media_io import has_video, load_audio, load_frames
from perception.records import shift_times


def plain(x: Any) -> Any:
    """Arrow/pandas nested values (numpy arrays of dicts) -> plain Python lists and dicts."""
    if isinstance(x, np.ndarray):
        return [plain(v) for v in x.tolist()] if x.dtype == object else x.tolist()
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _start(row: dict) -> float:
    return float(row.get("start_s") or 0.0)


def _video_row(row: dict) -> bool:
    fps = row.get("fps")
    if not _missing(fps) and float(fps) == 0.0:
        return False  # the schema's marker for an audio-only clip
    return has_video(row)


def _serialized(run: Callable[[Stage, dict], dict]) -> Callable[[Stage, dict], dict]:
    @functools.wraps(run)
    def locked(self: Stage, row: dict) -> dict:
        with self._run_lock:
            return run(self, row)

    locked.serialized = True  # type: ignore[attr-defined]
    return locked


class Stage(ABC):
    """One capability bound to its configured backend; ``run(row)`` returns the columns it adds.

    ``run`` holds a per-instance lock, for every subclass (``__init_subclass__`` wraps it), so one
    instance is safe to call from several threads. It has to be: ``perception.actors.get_stage``
    hands one instance per process to every caller (the agent's tool calls run in a thread pool,
    Ray Serve replicas run sync requests in threads), and the backends keep per-call state that
    concurrent calls corrupt: silero VAD's recurrent state (``reset_states`` then chunk by chunk),
    pocketsphinx's single decoder (``start_utt`` fails, or two utterances mix), dlib's embedder.
    A lock rather than a backend per thread: models load once (a copy per thread would multiply
    memory and start-up by the pool size), and on a few cores concurrent inference in one process
    gains little. Different stages still run concurrently. Ray Data actors take one batch at a
    time, so there the lock is never contended.
    """

    name: str = ""
    group: str = "audio"  # which ActorResources sizes it: audio | video
    columns: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "serialized", False):
            cls.run = _serialized(run)  # type: ignore[method-assign]

    def __init__(self, cfg: PerceptionConfig):
        self.cfg = cfg
        self._run_lock = threading.RLock()  # re-entrant: a subclass's run may call super().run

    @abstractmethod
    def run(self, row: dict) -> dict:
        """The columns this stage adds for one clip row (raises on failure; the caller records it)."""

    def empty(self) -> dict:
        """Values written when the stage fails on a row: nulls, so a failure is never mistaken for 'nothing found'."""
        return {c: None for c in self.columns}


class VadStage(Stage):
    name, group, columns = "vad", "audio", ("pred_speech",)

    def __init__(self, cfg: PerceptionConfig):
        from perception.vad import VAD_BACKENDS

        super().__init__(cfg)
        self.backend = VAD_BACKENDS.create(cfg.vad, cfg)

    def run(self, row: dict) -> dict:
        audio = load_audio(row, self.cfg.sample_rate)
        return {"pred_speech": shift_times(self.backend(audio, self.cfg.sample_rate), _start(row))}


class DiarizationStage(Stage):
    name, group = "diarization", "audio"
    columns = ("pred_turns", "pred_num_speakers", "pred_overlap_ratio")

    def __init__(self, cfg: PerceptionConfig):
        from perception.diarization import DIARIZATION_BACKENDS, overlap_ratio

        super().__init__(cfg)
        self.backend = DIARIZATION_BACKENDS.create(cfg.diarization, cfg)
        self.overlap_ratio = overlap_ratio

    def run(self, row: dict) -> dict:
        audio = load_audio(row, self.cfg.sample_rate)
        speech = row.get("pred_speech")
        speech = None if _missing(speech) else shift_times(plain(speech), -_start(row))
        turns = self.backend(audio, self.cfg.sample_rate, speech=speech, num_speakers=self.cfg.num_speakers)
        return {
            "pred_turns": shift_times(turns, _start(row)),
            "pred_num_speakers": len({t["speaker"] for t in turns}),
            "pred_overlap_ratio": self.overlap_ratio(turns),
        }


class AsrStage(Stage):
    name, group, columns = "asr", "audio", ("pred_transcript",)

    def __init__(self, cfg: PerceptionConfig):
        from perception.asr import ASR_BACKENDS

        super().__init__(cfg)
        self.backend = ASR_BACKENDS.create(cfg.backend("asr"), cfg)

    def run(self, row: dict) -> dict:
        audio = load_audio(row, self.cfg.sample_rate)
        turns = row.get("pred_turns")
        if _missing(turns):
            speech = row.get("pred_speech")
            turns = None if _missing(speech) else [dict(s, speaker="", text="") for s in plain(speech)]
        turns = None if turns is None else shift_times(plain(turns), -_start(row))
        segs = shift_times(self.backend(audio, self.cfg.sample_rate, turns=turns), _start(row))
        out: dict[str, Any] = {"pred_transcript": segs}
        if turns is not None and not _missing(row.get("pred_turns")):
            # One segment per turn: give each turn its text.
            out["pred_turns"] = [dict(t, text=s["text"]) for t, s in zip(plain(row["pred_turns"]), segs, strict=True)]
        return out


class FacesStage(Stage):
    name, group, columns = "faces", "video", ("pred_face_tracks", "pred_num_visible")

    def __init__(self, cfg: PerceptionConfig):
        from perception.faces import FACE_BACKENDS, track_faces

        super().__init__(cfg)
        self.backend = FACE_BACKENDS.create(cfg.faces, cfg)
        self.track_faces = track_faces

    def run(self, row: dict) -> dict:
        if not _video_row(row):
            return {"pred_face_tracks": [], "pred_num_visible": 0}
        frames = load_frames(row, self.cfg.fps_sample, self.cfg.max_height)
        tracks = self.track_faces(self.backend, frames, self.cfg)
        return {"pred_face_tracks": shift_times(tracks, _start(row)), "pred_num_visible": len(tracks)}


class ActiveSpeakerStage(Stage):
    name, group, columns = "active_speaker", "video", ("pred_active_speaker",)

    def __init__(self, cfg: PerceptionConfig):
        from perception.active_speaker import ASD_BACKENDS

        super().__init__(cfg)
        self.backend = ASD_BACKENDS.create(cfg.active_speaker, cfg)
        self._faces: FacesStage | None = None

    def run(self, row: dict) -> dict:
        if not _video_row(row):
            return {"pred_active_speaker": []}
        tracks = row.get("pred_face_tracks")
        if _missing(tracks):
            # Run standalone (a tool call): track faces first, with the configured face backend.
            self._faces = self._faces or FacesStage(self.cfg)
            tracks = self._faces.run(row)["pred_face_tracks"]
        tracks = shift_times(plain(tracks), -_start(row))
        if not tracks:
            return {"pred_active_speaker": []}
        audio = load_audio(row, self.cfg.sample_rate)
        frames = load_frames(row, self.backend.fps, self.cfg.max_height)
        res = self.backend(audio, self.cfg.sample_rate, frames, tracks)
        return {"pred_active_speaker": shift_times(res, _start(row))}


STAGE_CLASSES: dict[str, type[Stage]] = {
    s.name: s for s in (VadStage, DiarizationStage, AsrStage, FacesStage, ActiveSpeakerStage)
}
