"""Ray actor stages for Ray Data ``map_batches``, plus the serial path ``run_all``.

Contract (the curation pipeline codes against it)::

    from perception.actors import STAGES, resources
    for name, cls in STAGES.items():
        r = resources(cfg, name)
        ds = ds.map_batches(cls, fn_constructor_kwargs={"cfg": to_dict(cfg)}, batch_format="pandas",
                            num_cpus=r["num_cpus"], num_gpus=r["num_gpus"], concurrency=r["concurrency"],
                            batch_size=r["batch_size"])

- ``STAGES``: ordered ``vad, diarization, asr, faces, active_speaker``. Each class loads its model
  once in ``__init__(cfg: dict)`` (a PerceptionConfig as a dict, ``infra.config.to_dict``).
- ``__call__(batch)`` takes a **pandas DataFrame** (a dict of columns is accepted and converted)
  with at least ``clip_id, media_uri, audio_uri (nullable), start_s, end_s`` plus earlier stages'
  columns, and returns a DataFrame with its ``pred_*`` columns added, a float ``t_<stage>``
  column (seconds spent on that row), and ``errors`` (list of {stage, message}) extended for rows
  that failed. A failing row gets null pred columns; the batch never fails.
- ``resources(cfg, stage)`` sizes the pool from ``perception.audio`` / ``perception.video``.
- ``run_all(row, cfg)`` runs every stage on one row in process and returns the added columns.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from typing import Any

import pandas as pd

from infra.config import from_dict, to_dict
from perception.config import PerceptionConfig
from perception.stages import STAGE_CLASSES, Stage, plain

STAGE_ORDER = ("vad", "diarization", "asr", "faces", "active_speaker")
log = logging.getLogger(__name__)


def as_config(cfg: PerceptionConfig | dict | None) -> PerceptionConfig:
    if cfg is None:
        return PerceptionConfig()
    if isinstance(cfg, PerceptionConfig):
        return cfg
    return from_dict(PerceptionConfig, cfg, prefix="perception")


THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_threads(cfg: PerceptionConfig) -> dict[str, int]:
    """Pin every intra-op thread pool of this process to ``cfg.torch_threads``; returns what was set.

    Two actors on two cores must not each spawn a pool per library: torch (intra- and inter-op),
    OpenCV, and the BLAS/OpenMP pools behind numpy, scipy and scikit-learn (clustering), which size
    themselves to the machine's cores when the process loads them. The environment variables cover
    libraries loaded later. The serial benchmark loop calls this too, so both paths run with the
    same thread counts. onnxruntime (silero) pins itself to 1 thread. PyAV's video decoder
    (``infra.media``) keeps FFmpeg's automatic frame threads in both paths; decoding is about a
    tenth of the work.
    """
    import os

    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    n = int(cfg.torch_threads)
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only settable before the first inter-op parallel work; keep what is there
        pass
    cv2.setNumThreads(n)
    threadpool_limits(limits=n)  # applies to the pools already loaded, for the life of the process
    return {"torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads(),
            "opencv": cv2.getNumThreads(), "blas_openmp": n}


def warm_up(stages: list[Stage]) -> float:
    """Run ``stages`` once on a 2 s synthetic clip with a real face; returns the seconds it took.

    The first call of each model pays one-off costs (torch's first forward, dlib's detector and
    embedder buffers, pocketsphinx's search setup): about 2 s per process here. Paying them at
    start-up keeps them out of the first real clip and out of throughput figures measured warm.
    """
    import os
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amuse-warmup-") as tmp:
        row = _synthetic_clip(os.path.join(tmp, "warmup.mp4"))
        for stage in stages:
            row.update(apply_stage(stage, row))
            if stage.name == "vad":  # noise holds no speech: claim some, so diarization and ASR run their models
                row["pred_speech"] = [{"start": 0.1, "end": row["end_s"] - 0.1}]
    for err in row["errors"]:  # not fatal: real clips will show the same failure in their own errors
        log.warning("warm-up: %s", err["message"])
    return time.perf_counter() - t0


def _synthetic_clip(path: str, seconds: float = 2.0, fps: int = 10, sr: int = 16000) -> dict:
    """A small mp4 (a committed face crop over grey, noise audio), written by the corpus's own
    H.264 + AAC writer, and its clip row."""
    from pathlib import Path

    import cv2
    import numpy as np

    from infra.corpus.media import HEIGHT, WIDTH, write_mp4

    face = cv2.imread(str(Path(__file__).resolve().parents[1] / "infra" / "corpus" / "assets" / "grace.png"))
    img = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    img[94:266, 264:376] = cv2.resize(face, (112, 172))  # centred, at a size the detectors find
    audio = (np.random.default_rng(0).standard_normal(int(seconds * sr)) * 0.1).astype(np.float32)
    write_mp4(Path(path), (img for _ in range(int(seconds * fps))), audio, sr, fps=fps)
    return {"clip_id": "warmup", "media_uri": path, "audio_uri": None, "start_s": 0.0, "end_s": seconds,
            "fps": float(fps), "errors": []}


def apply_stage(stage: Stage, row: dict) -> dict:
    """Run ``stage`` on one row; return its columns plus t_<stage> and the row's extended errors."""
    t0 = time.perf_counter()
    errors = plain(row.get("errors")) or []
    try:
        out = stage.run(row)
    except Exception as exc:  # any per-row failure is recorded, never raised: one bad clip must not sink a batch
        out = stage.empty()
        errors = [*errors, {"stage": stage.name,
                            "message": f"clip {row.get('clip_id')!s}: {stage.name}: {type(exc).__name__}: {exc}"}]
    out[f"t_{stage.name}"] = time.perf_counter() - t0
    out["errors"] = errors
    return out


class _ActorStage:
    """Ray Data callable class around one Stage; see the module doc for the batch contract."""

    stage_name = ""

    def __init__(self, cfg: dict | PerceptionConfig | None = None):
        t0 = time.perf_counter()
        self.cfg = as_config(cfg)
        self.threads = set_threads(self.cfg)
        self.stage = STAGE_CLASSES[self.stage_name](self.cfg)
        self.load_s = time.perf_counter() - t0  # model load, reported by the curation summary

    def __call__(self, batch: pd.DataFrame | dict) -> pd.DataFrame:
        df = batch if isinstance(batch, pd.DataFrame) else pd.DataFrame(dict(batch))
        df = df.reset_index(drop=True)
        rows = [apply_stage(self.stage, r) for r in df.to_dict("records")]
        out = df.copy()
        keys = dict.fromkeys(k for r in rows for k in r)
        for k in keys:
            out[k] = pd.Series([r.get(k) for r in rows], index=out.index, dtype=object)
        tcol = f"t_{self.stage_name}"
        out[tcol] = out[tcol].astype(float)
        return out


class VadActor(_ActorStage):
    """Ray Data actor: VAD -> pred_speech."""

    stage_name = "vad"


class DiarizationActor(_ActorStage):
    """Ray Data actor: diarization -> pred_turns, pred_num_speakers, pred_overlap_ratio."""

    stage_name = "diarization"


class AsrActor(_ActorStage):
    """Ray Data actor: ASR -> pred_transcript (and each pred_turns entry's text)."""

    stage_name = "asr"


class FacesActor(_ActorStage):
    """Ray Data actor: face detection + tracking -> pred_face_tracks, pred_num_visible."""

    stage_name = "faces"


class ActiveSpeakerActor(_ActorStage):
    """Ray Data actor: AV sync / active speaker -> pred_active_speaker."""

    stage_name = "active_speaker"


STAGES: dict[str, type] = {
    "vad": VadActor,
    "diarization": DiarizationActor,
    "asr": AsrActor,
    "faces": FacesActor,
    "active_speaker": ActiveSpeakerActor,
}


def resources(cfg: PerceptionConfig | dict | None, stage: str) -> dict[str, Any]:
    """map_batches sizing for ``stage``: num_cpus, num_gpus, concurrency, batch_size."""
    if stage not in STAGE_CLASSES:
        raise KeyError(f"unknown perception stage {stage!r} (known: {', '.join(STAGE_ORDER)})")
    c = as_config(cfg)
    r = c.audio if STAGE_CLASSES[stage].group == "audio" else c.video
    return {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus, "concurrency": r.concurrency, "batch_size": r.batch_size}


_CACHE: dict[tuple[str, str], Stage] = {}
_CACHE_LOCK = threading.Lock()


def release_stages() -> None:
    """Drop every cached stage and collect it now.

    Registered with atexit: the native models behind the stages (CTranslate2, dlib, onnxruntime,
    pocketsphinx) are then freed while the interpreter is whole, not during its finalization, when
    the order in which extension modules are torn down is undefined. A full test session that had
    loaded them all once ended in a segmentation fault after its last test had passed.
    """
    import gc

    with _CACHE_LOCK:
        _CACHE.clear()
    gc.collect()


atexit.register(release_stages)


def get_stage(name: str, cfg: PerceptionConfig) -> Stage:
    """A process-wide instance of stage ``name`` for this config (models load once per process).

    Safe to share between threads: a stage serializes its own ``run`` (``perception.stages.Stage``),
    and two threads asking for a stage at once get the same instance, loaded once.
    """
    key = (name, json.dumps(to_dict(cfg), sort_keys=True, default=str))
    with _CACHE_LOCK:
        if key not in _CACHE:
            set_threads(cfg)
            _CACHE[key] = STAGE_CLASSES[name](cfg)
        return _CACHE[key]


def run_all(clip_row: dict, cfg: PerceptionConfig | dict | None = None, stages: tuple[str, ...] = STAGE_ORDER) -> dict:
    """Every stage, in order, on one clip row in process: the pred_* columns, t_<stage> and errors.

    The serial path of the curation benchmark and the serving tools; same code as the actors.
    """
    c = as_config(cfg)
    row = dict(clip_row)
    added: dict[str, Any] = {}
    for name in stages:
        out = apply_stage(get_stage(name, c), row)
        row.update(out)
        added.update(out)
    return added
