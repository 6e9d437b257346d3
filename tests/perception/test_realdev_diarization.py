"""The embedded VAD and diarization judged on real speech: LibriSpeech conversations mixed with
reverberation, noise and far-field levels (perception.realdev.conversations), scored with
pyannote.metrics. The ``check`` split's voices were never used for tuning.

Skips, naming the folder, when ../shared/data/real is absent (a user's fresh clone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perception import realdev
from perception.actors import as_config
from perception.media_io import load_audio


@pytest.fixture(scope="session")
def conversations():
    if realdev.real_data_root() is None:
        pytest.skip(realdev.missing_message())
    from perception.realdev.conversations import ConversationPlan, build, load

    # A third of the check split's size keeps this near 15 s; bench/perception.py scores both splits whole.
    plan = ConversationPlan(split="check", n_conversations=4, target_s=30.0, seed=1)
    return plan, load(build(plan))


def test_conversations_have_exact_disjoint_references(conversations):
    from perception.realdev import conversations as conv

    plan, convs = conversations
    root = realdev.require_root()
    tune = set(conv.split_speakers(conv.speakers(root), "tune"))
    check = set(conv.split_speakers(conv.speakers(root), "check"))
    assert tune and check and not tune & check
    for c in convs:
        spk = {t["speaker"] for t in c["turns"]}
        assert plan.min_speakers <= len(spk) <= plan.max_speakers and spk <= check
        assert all(0 <= t["start"] < t["end"] <= c["duration_s"] for t in c["turns"])
        level = 10 * np.log10(np.mean(load_audio({"media_uri": c["audio"], "start_s": 0.0, "end_s": None}, 16000) ** 2))
        assert plan.output_dbfs[0] - 1 <= level <= plan.output_dbfs[1] + 1
    # Built once, keyed by the plan: a second build returns the same folder without rewriting it.
    manifest = Path(convs[0]["audio"]).parent / "manifest.json"
    before = manifest.stat().st_mtime_ns
    folder = conv.build(plan)
    assert folder / "manifest.json" == manifest and manifest.stat().st_mtime_ns == before
    assert [c["conversation_id"] for c in conv.load(folder)] == [c["conversation_id"] for c in convs]


def test_der_on_real_speech_with_estimated_count(conversations):
    from perception.realdev.diarization_eval import run_conversations, score

    _, convs = conversations
    res = score(convs, run_conversations(convs, as_config(None)))
    print(f"real-speech DER {res['der']:.3f} (missed {res['missed']:.3f}, false alarm {res['false_alarm']:.3f}, "
          f"confusion {res['confusion']:.3f}), count accuracy {res['count_accuracy']:.2f}")
    # Targets: DER <= 0.30 and missed speech <= 0.10. Before level normalisation and the pitch gate
    # the same code scored 0.44 DER on the tuning split.
    assert res["der"] <= 0.20
    assert res["missed"] <= 0.10


@pytest.mark.parametrize("level_dbfs", [-70.0, -10.0])
def test_vad_does_not_depend_on_recording_level(conversations, level_dbfs):
    """Far-field levels: on a real reverberant conversation silero alone found 24.4 s of speech at
    -20 dBFS and 10.5 s at -70 dBFS (clean synthetic speech hardly moves, so real audio is used)."""
    from perception.vad import VAD_BACKENDS

    vad = VAD_BACKENDS.create("silero", as_config(None))
    audio = load_audio({"media_uri": conversations[1][0]["audio"], "start_s": 0.0, "end_s": 30.0}, 16000)

    def speech_s(level: float) -> float:
        x = audio * np.float32(10 ** (level / 20) / np.sqrt(np.mean(audio**2)))
        return sum(s["end"] - s["start"] for s in vad(x, 16000))

    ref = speech_s(-20.0)
    assert ref > 10.0
    assert abs(speech_s(level_dbfs) - ref) <= 0.05 * ref
