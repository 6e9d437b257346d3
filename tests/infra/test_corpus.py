"""The committed sample corpus (data/corpus) is real media with ground truth that holds.

Everything runs on the real files with real tools: PyAV decodes, OpenCV's Haar
cascade finds faces, and the generator itself runs (flite, libx264) for the
determinism check.  Ground truth comes from data/corpus/manifest.json.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "data" / "corpus"
FPS, SR, W, H = 25, 16000, 640, 360
HOP = SR // FPS
MULTI_PARTY = {"ami", "ava", "voxceleb2", "youtube"}
AVA_LABELS = {"SPEAKING_AUDIBLE", "NOT_SPEAKING", "SPEAKING_NOT_AUDIBLE"}

pytestmark = pytest.mark.skipif(not (CORPUS / "manifest.json").exists(), reason="run `make corpus` first")


@cache
def manifest() -> dict:
    return json.loads((CORPUS / "manifest.json").read_text())


def scenes(source: str | None = None) -> list[dict]:
    return [s for s in manifest()["scenes"] if source is None or s["source"] == source]


@cache
def decode_audio(rel: str) -> np.ndarray:
    with av.open(str(CORPUS / rel)) as c:
        stream = c.streams.audio[0]
        n = int(stream.duration * stream.time_base * SR) if stream.duration else None
        chunks = [f.to_ndarray().reshape(-1) for f in c.decode(stream)]
    x = np.concatenate(chunks)[:n]  # AAC pads its last frame; the stream duration says where audio ends
    return x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)


def scene_audio(scene: dict) -> np.ndarray:
    """Audio on the scene's media timeline (Friends: the turn clips back to back)."""
    media = scene["media"]
    if "clips" in media:
        return np.concatenate([decode_audio(c["path"]) for c in media["clips"]])
    return decode_audio(media["audio"] if scene["source"] == "ami" else media["video"])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def test_layout_matches_the_real_datasets():
    files = set(manifest()["files"])
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()} - {"manifest.json"}
    assert files == on_disk
    pats = [r"ami/amicorpus/(\w+)/audio/\1\.Mix-Headset\.wav", r"ami/amicorpus/(\w+)/video/\1\.Closeup\.mp4",
            r"ami/rttm/\w+\.rttm", r"ami/uem/\w+\.uem", r"ava/videos/[\w-]{11}\.mp4",
            r"ava/csv/[\w-]{11}-activespeaker\.csv", r"voxceleb2/dev/mp4/id\d{5}/[\w-]{11}/\d{5}\.mp4",
            r"voxceleb2/dev/aac/id\d{5}/[\w-]{11}/\d{5}\.m4a", r"voxceleb2/vox2_meta\.csv",
            r"friends_mmc/s\d\de\d\d/\d+_\d+\.mp4", r"friends_mmc/test-metadata\.json",
            r"youtube/[\w-]{11}\.(mp4|json)"]
    for f in files:
        assert any(re.fullmatch(p, f) for p in pats), f
    meetings = {s["media"]["audio"]: s["media"]["video"] for s in scenes("ami")}
    assert None in meetings.values() and any(meetings.values()), "one AMI meeting must be audio-only"
    yt = scenes("youtube")
    assert any(s["media"]["sidecar"] is None for s in yt) and any(s["media"]["sidecar"] for s in yt)
    # Size: >= 12 scenes of 10-40 s, 2-4 speakers, >= 6 identities; AMI meetings 50-75 s in two scenes.
    assert len(scenes()) >= 12
    for s in scenes():
        assert 10 <= s["duration"] <= 40 and 2 <= s["num_speakers"] <= 4, s["scene_id"]
    for meeting in {s["media"]["audio"] for s in scenes("ami")}:
        parts = [s for s in scenes("ami") if s["media"]["audio"] == meeting]
        assert len(parts) == 2 and 50 <= max(p["end"] for p in parts) <= 75
    assert len(manifest()["identities"]) >= 6
    assert sum(v["bytes"] for v in manifest()["files"].values()) < 12e6


def test_every_media_file_opens_with_expected_streams_and_duration():
    expected = {}  # path -> seconds
    for s in scenes():
        m = s["media"]
        for c in m.get("clips", []):
            expected[c["path"]] = c["scene_end"] - c["scene_start"]
        for key in ("video", "audio"):
            if m.get(key):
                expected[m[key]] = max(expected.get(m[key], 0), s["end"])
    media = [f for f in manifest()["files"] if f.endswith((".mp4", ".m4a", ".wav"))]
    assert set(media) == set(expected)
    for rel in media:
        with av.open(str(CORPUS / rel)) as c:
            audio = c.streams.audio
            assert len(audio) == 1 and audio[0].sample_rate == SR and audio[0].channels == 1, rel
            if rel.endswith(".wav"):
                assert audio[0].codec_context.name == "pcm_s16le"
            else:
                assert audio[0].codec_context.name == "aac"
            if rel.endswith(".mp4"):
                (v,) = c.streams.video
                assert (v.codec_context.name, v.width, v.height, v.average_rate) == ("h264", W, H, FPS), rel
            else:
                assert not c.streams.video
            duration = c.duration / 1e6
        assert expected[rel] - 0.05 <= duration <= expected[rel] + 0.1, (rel, duration, expected[rel])


def test_turns_hold_speech_energy_and_gaps_do_not():
    for s in scenes():
        x = scene_audio(s)
        speech = np.zeros(len(x), bool)
        for t in s["turns"]:
            speech[int(t["start"] * SR):int(t["end"] * SR)] = True
        lo, hi = int(s["start"] * SR), int(s["end"] * SR)
        # Gaps: no turn within 60 ms, inside the scene.
        pad = int(0.06 * SR)
        near = np.convolve(speech, np.ones(2 * pad + 1), mode="same") > 0
        gap = ~near
        gap[:lo], gap[hi:] = False, False
        assert gap.sum() > 0.1 * SR, s["scene_id"]
        gap_rms = rms(x[gap])
        turn_rms = [rms(x[int(t["start"] * SR):int(t["end"] * SR)]) for t in s["turns"]]
        assert rms(x[speech[: len(x)]]) > 20 * gap_rms, s["scene_id"]
        assert min(turn_rms) > 5 * gap_rms, s["scene_id"]


def _boxes(track: dict) -> np.ndarray:
    return np.array(track["boxes"], dtype=np.float64)


def _units() -> list[dict]:
    """Decodable video timelines: one file (possibly holding several scenes) or a Friends clip list."""
    units: dict[str, dict] = {}
    for s in scenes():
        m = s["media"]
        if "clips" in m:
            key, files = s["scene_id"], [c["path"] for c in m["clips"]]
        elif m.get("video"):
            key, files = m["video"], [m["video"]]
        else:
            continue
        unit = units.setdefault(key, {"files": files, "scenes": [], "tracks": {}})
        unit["scenes"].append(s)
        for tr in s["faces"]:
            prev = unit["tracks"].get(tr["identity"])
            boxes = _boxes(tr) if prev is None else np.vstack([prev["boxes"], _boxes(tr)])
            unit["tracks"][tr["identity"]] = {"boxes": boxes, "mouth": tr["mouth_in_face"]}
    return list(units.values())


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The Y plane: a grayscale image without a colour conversion (Haar normalizes contrast anyway)."""
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def _mouth_rects(track: dict, n_frames: int) -> np.ndarray:
    """Per-frame mouth rectangle (pixels) from the 1 Hz face boxes and the mouth's place in the face."""
    b, (mx1, my1, mx2, my2) = track["boxes"], track["mouth"]
    t = np.arange(n_frames) / FPS
    x1, y1, x2, y2 = (np.interp(t, b[:, 0], b[:, k]) for k in range(1, 5))
    fw, fh = (x2 - x1) * W, (y2 - y1) * H
    rects = [x1 * W + mx1 * fw, y1 * H + my1 * fh, x1 * W + mx2 * fw, y1 * H + my2 * fh]
    return np.stack(rects, axis=1).astype(int).clip(0, [W, H, W, H])


@pytest.fixture(scope="module")
def video_analysis():
    """One decoding pass per video: Haar hits at 1 fps and per-frame mouth-motion energy per track."""
    from infra.corpus.faces import haar_detect, iou  # same detector settings as the generator

    out = []
    for unit in _units():
        tracks = unit["tracks"]
        n_total = sum(av.open(str(CORPUS / f)).streams.video[0].frames for f in unit["files"])
        rects = {k: _mouth_rects(tr, n_total) for k, tr in tracks.items()}
        energy = {k: np.zeros(n_total) for k in tracks}
        samples = {int(round(t * FPS)): [] for tr in tracks.values() for t in tr["boxes"][:, 0]}
        for tr in tracks.values():
            for row in tr["boxes"]:
                samples[int(round(row[0] * FPS))].append(row[1:] * [W, H, W, H])
        hits = []
        prev, n = None, 0
        for rel in unit["files"]:
            with av.open(str(CORPUS / rel)) as c:
                for frame in c.decode(video=0):
                    gray = _luma(frame).copy()
                    if prev is not None:
                        for ident, r in rects.items():
                            x1, y1, x2, y2 = r[n]
                            diff = gray[y1:y2, x1:x2].astype(np.int16) - prev[y1:y2, x1:x2]
                            energy[ident][n] = np.abs(diff).mean()
                    if n in samples:
                        dets = haar_detect(np.ascontiguousarray(gray))
                        hits += [any(iou(d, gt) > 0.3 for d in dets) for gt in samples[n]]
                    prev, n = gray, n + 1
        assert n == n_total
        out.append({"unit": unit, "energy": energy, "hits": hits})
    return out


def test_haar_finds_the_faces_in_sampled_frames(video_analysis):
    hits = [h for a in video_analysis for h in a["hits"]]
    assert len(hits) > 500
    assert np.mean(hits) >= 0.9, f"Haar found {np.mean(hits):.1%} of faces"
    for a in video_analysis:  # and no single video is blind
        assert np.mean(a["hits"]) >= 0.75, a["unit"]["files"][0]


def _smooth(x: np.ndarray, k: int = 5) -> np.ndarray:
    return np.convolve(x, np.ones(k) / k, mode="same")


def test_each_mouth_moves_with_its_own_voice(video_analysis):
    checked = 0
    for a in video_analysis:
        for s in a["unit"]["scenes"]:
            if len(s["faces"]) < 2:
                continue
            x = scene_audio(s)
            n_frames = len(next(iter(a["energy"].values())))
            loud = np.array([rms(x[i * HOP:(i + 1) * HOP]) for i in range(n_frames)])
            times = np.arange(n_frames) / FPS
            win = (times >= s["start"]) & (times < s["end"])
            env = {}
            for sp in s["speakers"]:
                own = np.zeros(n_frames, bool)
                for t in s["turns"]:
                    if t["speaker"] == sp["identity"]:
                        own |= (times >= t["start"]) & (times < t["end"])
                env[sp["identity"]] = _smooth(loud * own)[win]
            for ident, e in a["energy"].items():
                motion = _smooth(e)[win]
                corr = {k: float(np.corrcoef(motion, v)[0, 1]) for k, v in env.items()}
                others = max(v for k, v in corr.items() if k != ident)
                assert corr[ident] > 0.3 and corr[ident] > others + 0.1, (s["scene_id"], ident, corr)
                checked += 1
    assert checked >= 30


def test_ami_rttm_and_uem_match_ground_truth():
    for s in scenes("ami"):
        uri = Path(s["media"]["audio"]).name.split(".")[0]
        rows = [ln.split() for ln in (CORPUS / s["media"]["rttm"]).read_text().splitlines()]
        assert all(len(r) == 10 and r[0] == "SPEAKER" and r[1] == uri and r[2] == "1" for r in rows)
        assert all(r[5] == r[6] == r[8] == r[9] == "<NA>" for r in rows)
        labels = {sp["identity"]: sp["label"] for sp in s["speakers"]}
        for t in s["turns"]:
            assert any(abs(float(r[3]) - t["start"]) < 2e-3 and abs(float(r[4]) - (t["end"] - t["start"])) < 3e-3
                       and r[7] == labels[t["speaker"]] for r in rows)
        (uem,) = (CORPUS / s["media"]["uem"]).read_text().splitlines()
        u, ch, a, b = uem.split()
        assert (u, ch, float(a)) == (uri, "1", 0.0) and abs(float(b) - len(decode_audio(s["media"]["audio"])) / SR) < 0.01


def test_ava_csv_has_eight_columns_normalized_boxes_and_valid_labels():
    for s in scenes("ava"):
        vid = Path(s["media"]["video"]).stem
        with open(CORPUS / s["media"]["csv"], newline="") as f:
            rows = list(csv.reader(f))
        assert rows and all(len(r) == 8 for r in rows)
        assert rows[0][0] == vid  # headerless: the first row is data
        labels = {r[6] for r in rows}
        assert labels <= AVA_LABELS and {"SPEAKING_AUDIBLE", "NOT_SPEAKING"} <= labels
        for r in rows:
            x1, y1, x2, y2 = map(float, r[2:6])
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
            assert re.fullmatch(re.escape(vid) + r"_\d+_\d+:\d+", r[7])
        entities = {r[7] for r in rows}
        assert len(entities) == len(s["faces"])
        # Labels agree with the turns of the entity's identity.
        ent = {sp["label"]: sp["identity"] for sp in s["speakers"]}
        for r in rows[:: 7]:
            t = float(r[1])
            speaking = any(x["speaker"] == ent[r[7]] and x["start"] <= t < x["end"] for x in s["turns"])
            assert (r[6] == "SPEAKING_AUDIBLE") == speaking


def test_vox2_meta_keeps_its_stray_spaces():
    lines = (CORPUS / "voxceleb2/vox2_meta.csv").read_text().splitlines()
    assert lines[0] == "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set "
    for ln in lines[1:]:
        assert re.fullmatch(r"id\d{5} ,n\d{6} ,[mf] ,(dev|test) ", ln), repr(ln)
    ids = {ln.split(" ,")[0] for ln in lines[1:]}
    for s in scenes("voxceleb2"):
        principal = [sp for sp in s["speakers"] if sp["principal"]]
        assert len(principal) == 1 and principal[0]["label"] in ids
        assert f"/{principal[0]['label']}/" in s["media"]["video"]
        assert 2 <= len(s["speakers"]) <= 3


def test_friends_json_uses_1280x720_boxes_and_one_clip_per_turn():
    dialogues = json.loads((CORPUS / "friends_mmc/test-metadata.json").read_text())
    fs = scenes("friends")
    assert len(dialogues) == len(fs) >= 2
    assert len({frozenset(sp["identity"] for sp in s["speakers"]) for s in fs}) == 1  # same characters
    big = 0
    for dialogue, s in zip(dialogues, fs, strict=True):
        assert len(dialogue) == len(s["turns"]) == len(s["media"]["clips"])
        for k, (turn, gt) in enumerate(zip(dialogue, s["turns"], strict=True)):
            assert set(turn) == {"frame", "video", "speaker", "content", "faces"}
            assert re.fullmatch(r"s\d\de\d\d-\d+", turn["frame"])
            assert turn["video"].endswith(f"_{k}.mp4") and (CORPUS / "friends_mmc" / turn["video"]).exists()
            assert turn["content"] == gt["text"]
            for (x1, y1, x2, y2), name in turn["faces"]:
                assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720 and isinstance(name, str)
                big += x2 > W or y2 > H
        for a, b in zip(s["turns"], s["turns"][1:], strict=False):
            assert a["end"] <= b["start"]  # non-overlapping, consecutive
    assert big > 0  # pixel coordinates of a 1280x720 frame, not the 640x360 video


def _overlap_ratio(turns: list[dict]) -> float:
    """Overlapped speech / total speech, on a 1 ms grid (independent of the generator's sweep)."""
    end = int(max(t["end"] for t in turns) * 1000) + 1
    active = np.zeros(end, np.int16)
    for t in turns:
        active[int(round(t["start"] * 1000)):int(round(t["end"] * 1000))] += 1
    return float((active >= 2).sum() / max((active >= 1).sum(), 1))


def test_overlap_ratios_are_in_band():
    for s in scenes():
        assert abs(_overlap_ratio(s["turns"]) - s["overlap_ratio"]) < 5e-3, s["scene_id"]
        if s["source"] in MULTI_PARTY:
            assert 0.05 <= s["overlap_ratio"] <= 0.3, s["scene_id"]
        else:
            assert s["overlap_ratio"] == 0.0


def test_face_assets_match_the_package_crops():
    from infra.corpus.faces import ASSETS, crop_from_source

    assets = sorted(ASSETS.glob("*.png"))
    assert {p.stem for p in assets} >= {i["face"] for i in manifest()["identities"]}
    compared = 0
    for path in assets:
        crop = crop_from_source(path.stem)
        if crop is not None:  # the package is installed: the committed asset must be the same pixels
            assert np.array_equal(cv2.imread(str(path)), crop), path.name
            compared += 1
    if not compared:
        pytest.skip("insightface / scikit-image / matplotlib not installed")


def test_youtube_sidecar_matches_ground_truth():
    for s in scenes("youtube"):
        if not s["media"]["sidecar"]:
            continue
        side = json.loads((CORPUS / s["media"]["sidecar"]).read_text())
        assert set(side) == {"video_id", "title", "speakers", "turns"}
        assert side["video_id"] == Path(s["media"]["video"]).stem
        assert {sp["id"] for sp in side["speakers"]} == {sp["label"] for sp in s["speakers"]}
        assert [(t["start"], t["text"]) for t in side["turns"]] == [(t["start"], t["text"]) for t in s["turns"]]


def test_one_voice_per_identity_across_the_corpus():
    voices = {}
    for s in scenes():
        for sp in s["speakers"]:
            assert voices.setdefault(sp["identity"], sp["voice"]) == sp["voice"]
    assert len(set(voices.values())) == len(voices) >= 6
    seen = {}
    for s in scenes():
        for sp in s["speakers"]:
            seen.setdefault(sp["identity"], set()).add(s["source"])
    assert sum(len(v) >= 2 for v in seen.values()) >= 4  # re-identification across sources is possible


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs Debian flite")
def test_generation_is_deterministic(tmp_path):
    cmd = [sys.executable, "-m", "infra.corpus.generate", "--size", "demo", "--seed", "0",
           "--sources", "voxceleb2", "--limit", "1", "--out"]
    procs = [subprocess.Popen([*cmd, str(tmp_path / d)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for d in ("a", "b")]
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out.decode()[-2000:]
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and any(str(f).endswith(".m4a") for f in files_a)
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
