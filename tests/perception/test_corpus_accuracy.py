"""Embedded stack accuracy on the generated corpus, scored with the field's tools (issue 3, item 5).

DER covers every corpus scene with one file span (AMI, AVA, VoxCeleb2, YouTube; Friends-MMC's
per-utterance clips are left out), as the target is stated for the corpus; VAD and diarization
alone take about 10 s for its 320 s. To stay near a minute on a shared 2-core machine, ASR runs
on the first scene of each source and video on the first AVA scene (it carries the AVA CSV).
``bench/perception.py`` reports every figure over every scene.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from perception import corpus_eval as ce
from perception.actors import as_config, run_all
from perception.scoring import der, der_total, wer

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
VIDEO_SCENE = "ava/QITCh1RTGRV#0"


@pytest.fixture(scope="module")
def results():
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip("data/corpus is missing (make corpus)")
    cfg = as_config(None)
    firsts: dict[str, dict] = {}
    for sc in ce.load_scenes(CORPUS):
        firsts.setdefault(sc["source"], sc)
    out = {}
    for sc in firsts.values():
        row = ce.scene_row(sc)
        video = sc["scene_id"] == VIDEO_SCENE
        stages = ("vad", "diarization", "asr") + (("faces", "active_speaker") if video else ())
        out[sc["scene_id"]] = (sc, run_all(row, cfg, stages=stages))
    return out


def test_outputs_have_no_errors(results):
    assert all(not o["errors"] for _, o in results.values()), {k: o["errors"] for k, (_, o) in results.items()}


def test_der_multi_party_scenes(results):
    cfg = as_config(None)
    pairs = {}
    for sc in ce.load_scenes(CORPUS):
        out = results[sc["scene_id"]][1] if sc["scene_id"] in results else run_all(
            ce.scene_row(sc), cfg, stages=("vad", "diarization"))
        pairs[sc["scene_id"]] = (ce.gt_turns(sc), out["pred_turns"], (sc["start"], sc["end"]))
    per = {k: round(der(*p[:2], uem=p[2]), 3) for k, p in pairs.items()}
    total = der_total(list(pairs.values()))
    print(f"corpus DER (collar 0.25, count estimated) = {total:.3f} over {len(pairs)} scenes, per scene {per}")
    # 0.129 since the diarizer is tuned on real speech (tests/perception/test_realdev_diarization.py):
    # clustering on pitch, which took this synthetic corpus to 0.092, split real speakers by intonation
    # (DER 0.23 against 0.085 on the real tuning conversations), so it now runs only where the
    # d-vectors cannot tell voices apart. Flite voices that differ mainly in pitch still confuse it.
    assert total <= 0.15


def test_wer_of_the_default_asr(results):
    """The default config (profile accurate: Whisper base) end to end after VAD and diarization.
    On these 4 scenes it scored 0.195 and pocketsphinx (profile fast) 0.516, so the bound fails
    pocketsphinx-level quality; most of what is left is overlapped speech and numbers written as digits."""
    assert as_config(None).backend("asr") == "faster_whisper"
    refs = [" ".join(t["text"] for t in sc["turns"]) for sc, _ in results.values()]
    hyps = [" ".join(s["text"] for s in o["pred_transcript"]) for _, o in results.values()]
    score = wer(refs, hyps)
    print(f"faster_whisper (Whisper base) corpus WER = {score:.3f} over {len(refs)} scenes")
    assert score <= 0.30


def test_video_recall_asd_accuracy_and_ava_map(results):
    sc, out = results[VIDEO_SCENE]
    vm = ce.video_metrics(sc, out)
    s = ce.summarize(vm["asd_rows"], vm["ava_rows"])
    print(f"face recall={vm['face_recall']:.3f} ASD acc={s['asd_accuracy']:.3f} mAP={s['asd_map']:.3f} "
          f"AVA mAP={s['ava_map']:.3f} ({len(vm['ava_rows'])} AVA rows)")
    assert vm["face_recall"] >= 0.9
    assert s["asd_accuracy"] >= 0.85
    assert len(vm["ava_rows"]) > 0 and s["ava_map"] >= 0.8
