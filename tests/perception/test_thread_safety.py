"""Stages shared between threads give the serial answers (the agent calls tools from a thread pool)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from perception import tools
from perception.media_io import load_audio

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
MEETING = CORPUS / "ami" / "amicorpus" / "ES2004a" / "audio" / "ES2004a.Mix-Headset.wav"
SPAN = (0.0, 4.5)  # two speakers taking turns (data/corpus/ami/rttm/ES2004a.rttm)


@pytest.fixture(scope="module")
def meeting() -> str:
    if not MEETING.exists():
        pytest.skip("data/corpus is missing (make corpus)")
    return str(MEETING)


def test_concurrent_diarize_and_transcribe_match_serial(meeting, perception_cfg):
    diarized = tools.diarize(meeting, *SPAN, cfg=perception_cfg)
    transcribed = tools.transcribe(meeting, *SPAN, cfg=perception_cfg)
    assert len(diarized["turns"]) >= 2 and len(transcribed["text"].split()) >= 5  # real speech, real work

    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = [(pool.submit(tools.diarize, meeting, *SPAN, cfg=perception_cfg),
                 pool.submit(tools.transcribe, meeting, *SPAN, cfg=perception_cfg)) for _ in range(10)]
        results = [(d.result(), t.result()) for d, t in runs]
    for d, t in results:
        assert d == diarized
        assert t == transcribed


def test_pocketsphinx_rerun_after_other_audio_is_identical(meeting, perception_cfg):
    """The decoder's state from earlier audio (cepstral mean, Gaussian shortlists) must not leak into a call."""
    from perception.asr import ASR_BACKENDS

    asr = ASR_BACKENDS.create("pocketsphinx", perception_cfg)  # the fast profile's ASR
    sr = perception_cfg.sample_rate
    audio = load_audio({"media_uri": meeting, "audio_uri": None, "start_s": 0.0, "end_s": 4.0}, sr)
    turns = [{"start": 0.4, "end": 3.4, "speaker": "FEE008"}]
    first = asr(audio, sr, turns)
    asr(np.random.default_rng(2).normal(0, 0.3, 3 * sr).astype(np.float32), sr)  # 3 s of loud noise in between
    again = asr(audio, sr, turns)
    assert first[0]["words"] and again == first
