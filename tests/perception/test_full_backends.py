"""Full backends end to end on CPU with random weights built here: build, save, load through the
production path (config keys -> perception.weights -> the package's own loader), run on a real
corpus clip, check the output's shape. Missing weights must name the file and the config key.

Each test skips only when its optional package is absent (``make full``; pyannote: ``make
pyannote-env``), naming it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from perception.actors import as_config
from perception.registry import BackendUnavailable

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
AMI_WAV = CORPUS / "ami/amicorpus/ES2004a/audio/ES2004a.Mix-Headset.wav"
VOX = "voxceleb2/id00002/2-msUVDVp_5/00001#0"


def need(module: str, how: str = "make full"):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"optional package {module!r} is not installed ({how})")


def corpus_scene(scene_id: str) -> dict:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip("data/corpus is missing (make corpus)")
    scenes = json.loads((CORPUS / "manifest.json").read_text())["scenes"]
    return next(s for s in scenes if s["scene_id"] == scene_id)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


def test_missing_weights_name_file_and_key(tmp_path):
    from perception.weights import weights_file

    cfg = as_config({"weights_dir": str(tmp_path)})
    with pytest.raises(BackendUnavailable, match=r"whisper/small\.pt.*perception\.whisper\.model_path"):
        weights_file(cfg, "whisper.model_path", cfg.whisper.model_path, "whisper/small.pt")
    with pytest.raises(BackendUnavailable, match=r"perception\.insightface\.det_model.*perception\.weights_dir"):
        weights_file(as_config(None), "insightface.det_model", None, "insightface/det_10g.onnx")


@pytest.mark.parametrize("capability,name,key,expected", [
    ("asr", "whisper", "whisper.model_path", "whisper/small.pt"),
    ("faces", "insightface", "insightface.det_model", "insightface/det_10g.onnx"),
    ("active_speaker", "syncnet", "syncnet.model_path", "syncnet/syncnet_v2.model"),
    ("active_speaker", "light_asd", "light_asd.model_path", "light_asd/pretrain_AVA_CVPR.model"),
    ("diarization", "pyannote", "pyannote.segmentation", "pyannote/segmentation/pytorch_model.bin"),
    ("vad", "pyannote", "pyannote.segmentation", "pyannote/segmentation/pytorch_model.bin"),
])
def test_backend_without_weights_names_expected_file(tmp_path, capability, name, key, expected):
    """Through the registry, as config selects it: the error names the expected file and its key."""
    from perception.stages import STAGE_CLASSES

    cfg = as_config({capability: name, "weights_dir": str(tmp_path)})
    with pytest.raises(BackendUnavailable) as err:
        STAGE_CLASSES[capability](cfg)
    msg = str(err.value)
    # Without the optional package the error names the package instead; both are actionable.
    assert (expected in msg and f"perception.{key}" in msg) or "not installed" in msg or "make pyannote-env" in msg


def test_whisper_random_checkpoint_on_corpus_audio(weights):
    need("whisper")
    from perception.asr import ASR_BACKENDS
    from perception.media_io import load_audio
    from tests.perception import random_weights

    random_weights.whisper_checkpoint(weights / "whisper" / "tiny-random.pt")
    cfg = as_config({"weights_dir": str(weights), "whisper": {
        "model_path": "whisper/tiny-random.pt", "temperatures": [0.0], "sample_len": 12}})
    asr = ASR_BACKENDS.create("whisper", cfg)
    audio = load_audio({"media_uri": str(AMI_WAV), "start_s": 0.0, "end_s": 8.0}, 16000)
    turns = [{"start": 0.42, "end": 3.41, "speaker": "A", "text": ""}, {"start": 3.97, "end": 6.56, "speaker": "B", "text": ""}]
    segs = asr(audio, 16000, turns=turns)
    assert [s["speaker"] for s in segs] == ["A", "B"]
    words = [w for s in segs for w in s["words"]]
    assert words and all(0.0 <= w["start"] <= w["end"] <= 8.05 and w["word"] for w in words)
    assert all(s["text"] == " ".join(w["word"] for w in s["words"]) for s in segs)
    plain = asr(audio, 16000)
    assert plain and all(set(s) == {"start", "end", "text", "speaker", "words"} for s in plain)


def test_insightface_random_onnx_routed_and_tracked(weights):
    need("insightface")
    need("onnx")
    from insightface import model_zoo

    from perception.actors import get_stage
    from tests.perception import random_weights

    det = random_weights.scrfd_onnx(weights / "insightface" / "det_10g.onnx")
    rec = random_weights.arcface_onnx(weights / "insightface" / "w600k_r50.onnx")
    # insightface's own router picks the classes from the graphs.
    assert type(model_zoo.get_model(str(det))).__name__ == "SCRFD"
    assert type(model_zoo.get_model(str(rec))).__name__ == "ArcFaceONNX"
    cfg = as_config({"weights_dir": str(weights), "faces": "insightface", "fps_sample": 5.0})
    scene = corpus_scene(VOX)
    row = {"clip_id": "vox", "media_uri": str(CORPUS / scene["media"]["video"]), "audio_uri": None,
           "start_s": 1.0, "end_s": 2.2}
    out = get_stage("faces", cfg).run(row)
    tracks = out["pred_face_tracks"]
    assert out["pred_num_visible"] == len(tracks) > 0
    for tr in tracks:
        emb = np.array(tr["embedding"])
        # The track identity is the mean of unit ArcFace embeddings: 512-d, norm in (0, 1].
        assert emb.shape == (512,) and 0 < np.linalg.norm(emb) <= 1 + 1e-6
        assert all(1.0 <= b["t"] < 2.2 and 0 <= b["x1"] < b["x2"] <= 1 and 0 <= b["y1"] < b["y2"] <= 1
                   and 0 <= b["score"] <= 1 for b in tr["boxes"])
    # Swapped files are rejected with the key to fix.
    bad = as_config({"weights_dir": str(weights), "insightface": {"det_model": str(rec)}})
    from perception.faces import FACE_BACKENDS

    with pytest.raises(BackendUnavailable, match=r"perception\.insightface\.det_model"):
        FACE_BACKENDS.create("insightface", bad)


def test_syncnet_random_state_dict_on_corpus_video(weights):
    need("syncnet_python")
    need("python_speech_features")
    from perception.actors import get_stage
    from tests.perception import random_weights

    random_weights.syncnet_state_dict(weights / "syncnet" / "syncnet_v2.model")
    cfg = as_config({"weights_dir": str(weights), "active_speaker": "syncnet",
                     "syncnet": {"max_offset_frames": 5, "batch_size": 8}})
    scene = corpus_scene(VOX)
    face = scene["faces"][0]
    start, end = 2.0, 3.2
    # Ground-truth boxes from the manifest stand in for the face stage (tested on its own above).
    track = {"track_id": "face_00", "embedding": [],
             "boxes": [{"t": b[0], "x1": b[1], "y1": b[2], "x2": b[3], "y2": b[4], "score": 1.0} for b in face["boxes"]]}
    row = {"clip_id": "vox", "media_uri": str(CORPUS / scene["media"]["video"]), "audio_uri": None,
           "start_s": start, "end_s": end, "pred_face_tracks": [track]}
    (res,) = get_stage("active_speaker", cfg).run(row)["pred_active_speaker"]
    assert res["track_id"] == "face_00" and res["times"]
    assert len(res["times"]) == len(res["scores"]) and all(0.0 <= s <= 1.0 for s in res["scores"])
    assert all(start <= t <= end for t in res["times"])
    assert abs(res["sync_offset_s"]) <= 5 / 25 + 1e-9 and res["sync_confidence"] >= 0.0


def test_light_asd_random_state_dict_on_corpus_video(weights):
    need("python_speech_features")
    from perception.actors import get_stage
    from tests.perception import random_weights

    random_weights.light_asd_state_dict(weights / "light_asd" / "pretrain_AVA_CVPR.model")
    cfg = as_config({"weights_dir": str(weights), "active_speaker": "light_asd",
                     "light_asd": {"durations": [0.4, 1.0], "score_hop_s": 0.04}})
    scene = corpus_scene(VOX)
    start, end = 2.0, 3.2
    track = {"track_id": "face_00", "embedding": [], "boxes": [
        {"t": b[0], "x1": b[1], "y1": b[2], "x2": b[3], "y2": b[4], "score": 1.0} for b in scene["faces"][0]["boxes"]]}
    row = {"clip_id": "vox", "media_uri": str(CORPUS / scene["media"]["video"]), "audio_uri": None,
           "start_s": start, "end_s": end, "pred_face_tracks": [track]}
    (res,) = get_stage("active_speaker", cfg).run(row)["pred_active_speaker"]
    # Every 25 fps frame of the span is scored (hop 0.04 s), in [0, 1]; Light-ASD estimates no offset.
    assert res["track_id"] == "face_00" and len(res["times"]) == len(res["scores"]) >= 28
    assert np.allclose(np.diff(res["times"]), 0.04, atol=1e-3) and start <= res["times"][0] < res["times"][-1] < end
    assert all(0.0 <= s <= 1.0 for s in res["scores"]) and len(set(res["scores"])) > 1
    assert res["sync_offset_s"] == 0.0 and 0.0 <= res["sync_confidence"] <= 1.0


def test_light_asd_rejects_other_state_dicts(weights):
    import torch

    from perception.backends.light_asd import load_light_asd
    from tests.perception import random_weights

    good = random_weights.light_asd_state_dict(weights / "la" / "ok.model")
    state = torch.load(good, weights_only=True)
    state.pop("lossV.FC.bias")
    torch.save(state, weights / "la" / "missing.model")
    state["lossV.FC.bias"] = torch.zeros(3)
    torch.save(state, weights / "la" / "shape.model")
    for name in ("missing.model", "shape.model"):
        with pytest.raises(ValueError, match=rf"{name}.*perception\.light_asd\.model_path"):
            load_light_asd(str(weights / "la" / name))


def test_pyannote_random_models_on_corpus_audio(weights):
    from perception.backends.pyannote_diarization import import_pyannote, site_path

    cfg = as_config({"weights_dir": str(weights), "pyannote": {"segmentation_step": 0.5}})
    try:
        import_pyannote(cfg)
    except BackendUnavailable as exc:
        pytest.skip(f"optional package pyannote.audio is not available: {exc}")
    from perception.diarization import DIARIZATION_BACKENDS
    from perception.media_io import load_audio
    from tests.perception import random_weights

    assert site_path(cfg).is_dir() or importlib.util.find_spec("pyannote.audio")
    random_weights.pyannote_weights(weights)
    diarizer = DIARIZATION_BACKENDS.create("pyannote", cfg)
    audio = load_audio({"media_uri": str(AMI_WAV), "start_s": 0.0, "end_s": 6.0}, 16000)
    turns = diarizer(audio, 16000)
    assert turns and all(0.0 <= t["start"] < t["end"] <= 6.05 and t["speaker"].startswith("SPEAKER_") for t in turns)
    assert turns == sorted(turns, key=lambda t: (t["start"], t["speaker"]))
    two = diarizer(audio, 16000, num_speakers=2)
    assert len({t["speaker"] for t in two}) <= 2
    # The same segmentation checkpoint as a VAD backend.
    from perception.vad import VAD_BACKENDS

    speech = VAD_BACKENDS.create("pyannote", cfg)(audio, 16000)
    assert speech == sorted(speech, key=lambda s: s["start"])
    assert all(0.0 <= s["start"] < s["end"] <= 6.0 + 1e-6 for s in speech)
