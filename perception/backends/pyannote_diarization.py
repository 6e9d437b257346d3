"""Full diarization and VAD backends: pyannote.audio ``SpeakerDiarization`` and ``VoiceActivityDetection``
built from local checkpoints.

pyannote.audio needs torchaudio, and PyPI's only torchaudio for torch 2.13 is a CUDA build whose
compiled extension does not load on CPU. pyannote therefore lives in its own package folder
(``make pyannote-env`` -> ``perception.pyannote.site_dir``): pyannote.audio and its deps installed
with ``--no-deps`` and torchaudio with its ``.so`` files removed; pyannote only uses torchaudio's
pure-torch parts (kaldi fbank, resampling). The folder goes on ``sys.path`` when this backend
loads, never for the rest of the process's imports, and the main venv never holds torchaudio.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from perception.config import PerceptionConfig
from perception.diarization import Diarizer
from perception.records import Segment, Turn
from perception.registry import BackendUnavailable
from perception.vad import VAD
from perception.weights import weights_file, weights_folder

REPO = Path(__file__).resolve().parents[2]
SEGMENTATION_FILE = "pyannote/segmentation/pytorch_model.bin"
EMBEDDING_FILE = "pyannote/embedding/pytorch_model.bin"
PLDA_DIR = "pyannote/plda"
PLDA_FILES = ("xvec_transform.npz", "plda.npz")


def site_path(cfg: PerceptionConfig) -> Path:
    p = Path(os.path.expanduser(cfg.pyannote.site_dir))
    return p if p.is_absolute() else REPO / p


def import_pyannote(cfg: PerceptionConfig):
    """``pyannote.audio`` from the optional package folder; BackendUnavailable names what is missing."""
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    site = site_path(cfg)
    try:
        import pyannote.audio  # noqa: F401  (already importable: nothing to add)
    except ImportError:
        if not (site / "pyannote" / "audio").is_dir():
            raise BackendUnavailable(
                f"backend 'pyannote' needs pyannote.audio in {site} (run `make pyannote-env`, or set "
                f"perception.pyannote.site_dir)"
            ) from None
        if str(site) not in sys.path:
            sys.path.append(str(site))  # appended: the venv's own packages keep precedence
        import pyannote

        extra = str(site / "pyannote")
        if extra not in pyannote.__path__:  # pyannote is a namespace package split over two folders
            pyannote.__path__.append(extra)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchcodec absent: pyannote warns, in-memory waveforms need none
        from pyannote.audio import Model
        from pyannote.audio.core.plda import PLDA
        from pyannote.audio.pipelines import SpeakerDiarization
    return Model, PLDA, SpeakerDiarization


class PyannoteDiarizer(Diarizer):
    """pyannote's segmentation + embedding + VBx (PLDA) pipeline, on in-memory waveforms."""

    def __init__(self, cfg: PerceptionConfig):
        import torch

        c = cfg.pyannote
        seg_path = weights_file(cfg, "pyannote.segmentation", c.segmentation, SEGMENTATION_FILE)
        emb_path = weights_file(cfg, "pyannote.embedding", c.embedding, EMBEDDING_FILE)
        plda_dir = weights_folder(cfg, "pyannote.plda", c.plda, PLDA_DIR, PLDA_FILES)
        Model, PLDA, SpeakerDiarization = import_pyannote(cfg)
        seg = Model.from_pretrained(seg_path, strict=False)
        emb = Model.from_pretrained(emb_path, strict=False)
        plda = PLDA(Path(plda_dir) / PLDA_FILES[0], Path(plda_dir) / PLDA_FILES[1])
        self._pipeline = SpeakerDiarization(
            segmentation=seg, segmentation_step=c.segmentation_step, embedding=emb, plda=plda, clustering="VBxClustering",
            embedding_batch_size=c.embedding_batch_size, segmentation_batch_size=c.segmentation_batch_size,
        )
        params = {"segmentation": {"min_duration_off": c.min_duration_off},
                  "clustering": {"threshold": c.clustering_threshold, "Fa": c.fa, "Fb": c.fb}}
        self._pipeline.instantiate(params)
        if torch.cuda.is_available() and cfg.audio.num_gpus > 0:
            self._pipeline.to(torch.device("cuda"))
        self._torch = torch

    def __call__(self, audio: np.ndarray, sr: int, speech: list[Segment] | None = None,
                 num_speakers: int | None = None) -> list[Turn]:
        # pyannote runs its own segmentation (VAD + overlap); external VAD segments are not needed.
        wav = self._torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        out = self._pipeline({"waveform": wav, "sample_rate": sr}, num_speakers=num_speakers)
        ann = getattr(out, "speaker_diarization", out)
        names: dict[str, str] = {}
        turns = []
        dur = len(audio) / sr  # the last sliding window is zero-padded past the end: crop to the clip
        for seg, _, label in ann.itertracks(yield_label=True):
            start, end = float(seg.start), min(float(seg.end), dur)
            if end - start <= 0:
                continue
            spk = names.setdefault(label, f"SPEAKER_{len(names):02d}")
            turns.append(Turn(start=round(start, 3), end=round(end, 3), speaker=spk, text=""))
        return sorted(turns, key=lambda t: (t["start"], t["speaker"]))


class PyannoteVAD(VAD):
    """pyannote's segmentation model as a VAD (``VoiceActivityDetection``): speech where any speaker is active."""

    def __init__(self, cfg: PerceptionConfig):
        c = cfg.pyannote
        seg_path = weights_file(cfg, "pyannote.segmentation", c.segmentation, SEGMENTATION_FILE)
        Model, _, _ = import_pyannote(cfg)
        import torch
        from pyannote.audio.pipelines import VoiceActivityDetection

        self._pipeline = VoiceActivityDetection(segmentation=Model.from_pretrained(seg_path, strict=False),
                                                batch_size=c.segmentation_batch_size)
        self._pipeline.instantiate({"min_duration_on": cfg.silero.min_speech_s,
                                    "min_duration_off": cfg.silero.min_silence_s})
        self._torch = torch

    def __call__(self, audio: np.ndarray, sr: int) -> list[Segment]:
        if audio.size < sr // 10:
            return []
        wav = self._torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        ann = self._pipeline({"waveform": wav, "sample_rate": sr})
        dur = len(audio) / sr
        out = [Segment(start=round(float(s.start), 3), end=round(min(float(s.end), dur), 3))
               for s in ann.get_timeline().support()]
        return [s for s in out if s["end"] > s["start"]]
