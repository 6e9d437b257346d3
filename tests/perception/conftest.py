"""Fixtures for perception tests: media synthesized once per session (flite voices, real faces)."""

from __future__ import annotations

import pytest

from tests.perception import synth


@pytest.fixture(scope="session")
def three_speaker_clip(tmp_path_factory):
    """A 3-speaker flite dialogue as WAV and as MP4 with three real faces whose mouths follow their voice."""
    if not synth.flite_available():
        pytest.skip("Debian flite is not installed (make corpus installs it)")
    d = synth.dialogue([0, 1, 2, 0, 1, 2, 0], seed=1)
    root = tmp_path_factory.mktemp("clip3")
    wav = synth.write_wav(root / "dlg.wav", d.audio)
    mp4 = root / "dlg.mp4"
    gt_boxes = synth.write_video(mp4, d)
    return {"dialogue": d, "wav": str(wav), "mp4": str(mp4), "gt_boxes": gt_boxes,
            "row": {"clip_id": "synth3", "media_uri": str(mp4), "audio_uri": None, "start_s": 0.0,
                    "end_s": d.duration}}


@pytest.fixture(scope="session")
def perception_cfg():
    from perception.actors import as_config

    return as_config(None)
