"""Embedded audio stack on real speech files: silero VAD, resemblyzer diarization, pocketsphinx."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from perception.actors import get_stage
from perception.asr import ASR_BACKENDS
from perception.diarization import DIARIZATION_BACKENDS
from perception.scoring import der, wer
from perception.vad import VAD_BACKENDS

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "pyannote_sample"


def test_vad_finds_speech_not_silence(three_speaker_clip, perception_cfg):
    d = three_speaker_clip["dialogue"]
    vad = VAD_BACKENDS.create("silero", perception_cfg)
    segs = vad(d.audio, 16000)
    fs = 0.01
    n = int(d.duration / fs)
    ref = np.zeros(n, bool)
    hyp = np.zeros(n, bool)
    for s, e, _ in d.turns:
        ref[int(s / fs) : int(e / fs)] = True
    for s in segs:
        hyp[int(s["start"] / fs) : int(s["end"] / fs)] = True
    assert (ref & hyp).sum() / ref.sum() > 0.95  # speech recall
    assert (hyp & ~ref).sum() / (~ref).sum() < 0.3  # little silence taken as speech
    assert vad(np.zeros(16000 * 2, np.float32), 16000) == []


def test_diarization_estimates_count_on_three_voices(three_speaker_clip, perception_cfg):
    d = three_speaker_clip["dialogue"]
    turns = DIARIZATION_BACKENDS.create("resemblyzer", perception_cfg)(d.audio, 16000)
    assert len({t["speaker"] for t in turns}) == 3
    assert der(d.turns, turns) <= 0.10


def test_diarization_single_voice_is_one_speaker(perception_cfg):
    from tests.perception import synth

    if not synth.flite_available():
        pytest.skip("Debian flite is not installed")
    d = synth.dialogue([0, 0, 0, 0], voices=("rms",), seed=3)
    turns = DIARIZATION_BACKENDS.create("resemblyzer", perception_cfg)(d.audio, 16000)
    assert len({t["speaker"] for t in turns}) == 1


def test_diarization_ignores_pitch_that_is_not_a_speaker_cue(perception_cfg):
    """Two voices sharing one pitch range, each varying its pitch from line to line (data made here):
    pitch differences are then intonation, and splitting on them would cut each speaker in two."""
    from tests.perception import synth

    if not synth.flite_available():
        pytest.skip("Debian flite is not installed")
    d = synth.dialogue([0, 1, 0, 1, 0, 1, 0, 1], voices=("awb", "kal16"), pitches=(108, 120, 132), seed=0)
    turns = DIARIZATION_BACKENDS.create("resemblyzer", perception_cfg)(d.audio, 16000)
    assert len({t["speaker"] for t in turns}) == 2
    assert der(d.turns, turns) <= 0.10


def test_pyannote_sample_der_without_speaker_count(perception_cfg):
    """Held-out real recording (pyannote.audio's MIT sample), scored with pyannote.metrics, collar 0.25."""
    audio, sr = sf.read(SAMPLE / "sample.wav", dtype="float32")
    ref = []
    for line in (SAMPLE / "sample.rttm").read_text().splitlines():
        f = line.split()
        ref.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    turns = DIARIZATION_BACKENDS.create("resemblyzer", perception_cfg)(audio, sr)
    score = der(ref, turns, collar=0.25)
    print(f"pyannote sample DER={score:.3f} speakers={len({t['speaker'] for t in turns})}")
    assert score <= 0.20


def test_pocketsphinx_words_and_wer(three_speaker_clip, perception_cfg):
    d = three_speaker_clip["dialogue"]
    turns = [{"start": s, "end": e, "speaker": spk, "text": ""} for s, e, spk in d.turns]
    segs = ASR_BACKENDS.create("pocketsphinx", perception_cfg)(d.audio, 16000, turns=turns)
    assert [s["speaker"] for s in segs] == [t["speaker"] for t in turns]
    for seg in segs:
        starts = [w["start"] for w in seg["words"]]
        assert starts == sorted(starts)
        assert all(seg["start"] - 0.01 <= w["start"] < w["end"] <= seg["end"] + 0.05 for w in seg["words"])
    score = wer([t for _, t in d.texts], [s["text"] for s in segs])
    print(f"pocketsphinx WER on flite speech={score:.3f}")
    assert score <= 0.35


def test_stages_shift_to_file_time(three_speaker_clip, perception_cfg):
    """A clip that starts 5 s into the file reports times in file seconds."""
    row = dict(three_speaker_clip["row"], media_uri=three_speaker_clip["wav"], start_s=5.0, end_s=15.0, fps=0.0)
    out = get_stage("vad", perception_cfg).run(row)
    assert out["pred_speech"] and all(5.0 <= s["start"] < s["end"] <= 15.05 for s in out["pred_speech"])
    assert get_stage("faces", perception_cfg).run(row) == {"pred_face_tracks": [], "pred_num_visible": 0}
