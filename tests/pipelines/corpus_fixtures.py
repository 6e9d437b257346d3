"""Tiny corpora in each dataset's real on-disk format, written with PyAV (no mocks of the formats).

Media are small (64x48 video at 10 fps, 16 kHz mono AAC/PCM) so a whole five-source corpus is
written in a few seconds. Labels follow the published formats, quirks included: 10-field RTTM,
headerless 8-column AVA CSV, vox2_meta.csv with stray spaces, Friends-MMC boxes in 1280x720 pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

SR = 16000


def make_video(path: Path, duration: float, size=(64, 48), fps=10, audio=True, tone=220.0, video=True) -> Path:
    """An mp4 (or audio-only .m4a with video=False) of ``duration`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        vs = None
        if video:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
            vs.options = {"preset": "ultrafast"}
        a = None
        if audio:
            a = out.add_stream("aac", rate=SR)
            a.layout = "mono"
        for k in range(int(round(duration * fps)) if vs is not None else 0):
            img = np.full((size[1], size[0], 3), (k * 7) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode() if vs is not None else []:
            out.mux(pkt)
        if a is not None:
            t = np.arange(int(duration * SR)) / SR
            pcm = (0.2 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            for i in range(0, pcm.size, 1024):
                fr = av.AudioFrame.from_ndarray(pcm[i:i + 1024].reshape(1, -1), format="flt", layout="mono")
                fr.sample_rate, fr.pts = SR, i
                for pkt in a.encode(fr):
                    out.mux(pkt)
            for pkt in a.encode():
                out.mux(pkt)
    return path


def make_wav(path: Path, duration: float, tone=180.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="wav") as out:
        s = out.add_stream("pcm_s16le", rate=SR)
        s.layout = "mono"
        t = np.arange(int(duration * SR)) / SR
        pcm = (0.2 * np.sin(2 * np.pi * tone * t) * 32767).astype(np.int16)
        for i in range(0, pcm.size, 4096):
            fr = av.AudioFrame.from_ndarray(pcm[i:i + 4096].reshape(1, -1), format="s16", layout="mono")
            fr.sample_rate, fr.pts = SR, i
            for pkt in s.encode(fr):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def alternating_turns(duration: float, speakers: list[str], turn_s: float = 4.0, gap: float = 0.5) -> list[tuple]:
    """(start, end, speaker) turns that take turns round-robin, with a small overlap every third turn."""
    out, t, k = [], 0.5, 0
    while t + turn_s <= duration - 0.2:
        start = t - (0.6 if k % 3 == 2 else 0.0)
        out.append((round(start, 3), round(t + turn_s, 3), speakers[k % len(speakers)]))
        t += turn_s + gap
        k += 1
    return out


def write_ami(root: Path, meeting="ES2002a", duration=60.0, video=True) -> list[tuple]:
    turns = alternating_turns(duration, ["MEE006", "FEE005", "MEE007"])
    base = root / "ami"
    (base / "rttm").mkdir(parents=True, exist_ok=True)
    (base / "rttm" / f"{meeting}.rttm").write_text(
        "".join(f"SPEAKER {meeting} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n" for a, b, s in turns))
    (base / "uem").mkdir(parents=True, exist_ok=True)
    (base / "uem" / f"{meeting}.uem").write_text(f"{meeting} 1 0.000 {duration:.3f}\n")
    make_wav(base / "amicorpus" / meeting / "audio" / f"{meeting}.Mix-Headset.wav", duration)
    if video:
        make_video(base / "amicorpus" / meeting / "video" / f"{meeting}.Closeup1.mp4", duration, audio=False)
    return turns


# (start, end, speaker) of write_ami_with_loose_turns, scored region 5-165 s, clip bounds 10-50 s.
LOOSE_AMI_TURNS = [
    (1.0, 4.0, "MEE006"),  # before the scored region: in no clip
    (4.0, 8.0, "FEE005"),  # crosses the region's start: its first second is in no clip
    (8.5, 14.0, "MEE006"), (14.5, 20.0, "FEE005"),  # clip 5-20 s
    (30.0, 75.0, "MEE007"),  # clip 30-75 s
    (85.0, 87.0, "FEE005"),  # too short for a clip, too far from clip 30-75 s to join it: in no clip
    (100.0, 160.0, "MEE006"),  # a 60 s monologue: cut into clips 100-130 and 130-160 s
    (166.0, 168.0, "MEE007"),  # after the scored region: in no clip
]


def write_ami_with_loose_turns(root: Path, meeting="ES2002b") -> list[tuple]:
    """An AMI meeting whose labels reach outside every clip (LOOSE_AMI_TURNS), audio only."""
    base = root / "ami"
    (base / "rttm").mkdir(parents=True, exist_ok=True)
    (base / "rttm" / f"{meeting}.rttm").write_text("".join(
        f"SPEAKER {meeting} 1 {a:.3f} {b - a:.3f} <NA> <NA> {s} <NA> <NA>\n" for a, b, s in LOOSE_AMI_TURNS))
    (base / "uem").mkdir(parents=True, exist_ok=True)
    (base / "uem" / f"{meeting}.uem").write_text(f"{meeting} 1 5.000 165.000\n")
    make_wav(base / "amicorpus" / meeting / "audio" / f"{meeting}.Mix-Headset.wav", 170.0)
    return LOOSE_AMI_TURNS

def write_ava(root: Path, vid="abcDEF12345", duration=40.0, step=0.5) -> list[tuple]:
    """Two entities; entity A speaks audibly in 0-10 s and 20-30 s, B in 10-20 s and 30-38 s."""
    base = root / "ava"
    make_video(base / "videos" / f"{vid}.mp4", duration)
    rows = []
    for k in range(int((duration - 1) / step)):
        t = round(k * step, 2)
        a_speaks = (t // 10) % 2 == 0
        la = "SPEAKING_AUDIBLE" if a_speaks else "NOT_SPEAKING"
        lb = "NOT_SPEAKING" if a_speaks else ("SPEAKING_AUDIBLE" if t < 38 else "SPEAKING_NOT_AUDIBLE")
        rows.append(f"{vid},{t:.2f},0.100,0.200,0.300,0.600,{la},{vid}_0001")
        rows.append(f"{vid},{t:.2f},0.600,0.200,0.850,0.650,{lb},{vid}_0002")
    (base / "csv").mkdir(parents=True, exist_ok=True)
    (base / "csv" / f"{vid}-activespeaker.csv").write_text("\n".join(rows) + "\n")
    return rows


VOX_META = (
    "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
    "id00012 ,n000012 ,m ,dev \n"
    "id00015 ,n000015 ,f ,test \n"
)


def write_voxceleb2(root: Path) -> None:
    base = root / "voxceleb2"
    base.mkdir(parents=True, exist_ok=True)
    (base / "vox2_meta.csv").write_text(VOX_META)
    make_video(base / "dev" / "mp4" / "id00012" / "21Uxsk56VDQ" / "00001.mp4", 12.0)
    make_video(base / "dev" / "mp4" / "id00012" / "21Uxsk56VDQ" / "00002.mp4", 11.0)
    make_video(base / "dev" / "mp4" / "id00012" / "21Uxsk56VDQ" / "00003.mp4", 4.0)  # too short for a clip
    make_video(base / "dev" / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a", 12.0, video=False)
    make_video(base / "test" / "mp4" / "id00015" / "x9Ab_cd-EF0" / "00001.mp4", 10.5)


def write_friends(root: Path, n_turns=8, turn_s=3.0) -> list[list[dict]]:
    base = root / "friends_mmc"
    names = ["Ross", "Rachel", "Monica"]
    dialogue = []
    for k in range(n_turns):
        video = f"s01e03/s01e03_d0_t{k}.mp4"
        make_video(base / video, turn_s, size=(64, 36))  # 16:9 like the 640x360 renditions
        speaker = names[k % 3]
        faces = [[[100 + 300 * i, 100, 300 + 300 * i, 400], n] for i, n in enumerate(names)]
        dialogue.append({"frame": f"s01e03-{1000 + 75 * k}", "video": video, "speaker": speaker,
                         "content": f"line {k} from {speaker}", "faces": faces})
    doc = [dialogue]
    (base / "test-metadata.json").write_text(json.dumps(doc, indent=2))
    return doc


def friends_track_key(k: int, turn_frames: int = 30) -> tuple[str, int, int]:
    """Pickle key of turn k of ``write_friends``: its frame range holds the turn's key frame 1000+75k."""
    first = 990 + 75 * k
    return f"s01e03-{first:06d}-{first + turn_frames - 1:06d}", first, first + turn_frames - 1


def write_friends_tracks(root: Path, doc: list[list[dict]], names=("Ross", "Rachel"), split="test",
                         turn_frames: int = 30) -> dict:
    """face_track_annotations/<split>/s01e03.pkl as Friends-MMC publishes it: {key: [track]}, each
    track {frame: int array, bbox: (N, 4) float pixels of 1280x720, name, face_track_id}. Ross
    drifts right 2 px a frame and Rachel's first box pokes past the left edge (clipped, as padded
    TalkNet boxes do); Monica has no track, so she keeps her key-frame box."""
    import pickle

    data = {}
    for k, _ in enumerate(doc[0]):
        key, first, last = friends_track_key(k, turn_frames)
        frames = np.arange(first, last + 1)
        tracks = []
        for i, name in enumerate(names):
            bbox = np.array([[100.0 + 300 * i + 2 * j, 100.0, 300.0 + 300 * i + 2 * j, 400.0]
                             for j in range(frames.size)])
            if name == "Rachel":
                bbox[0, 0] = -6.0
            tracks.append({"frame": frames, "bbox": bbox, "name": name, "face_track_id": i})
        data[key] = tracks
    path = root / "friends_mmc" / "face_track_annotations" / split / "s01e03.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


def write_youtube(root: Path, vid="dQw4w9WgXcQ", duration=30.0, sidecar=True) -> list[tuple]:
    base = root / "youtube"
    make_video(base / f"{vid}.mp4", duration)
    turns = alternating_turns(duration, ["host", "guest"], turn_s=5.0)
    if sidecar:
        (base / f"{vid}.json").write_text(json.dumps({
            "video_id": vid, "title": "a podcast",
            "speakers": [{"id": "host", "name": "Host"}, {"id": "guest", "name": "Guest"}],
            "turns": [{"start": a, "end": b, "speaker": s, "text": f"words of {s}"} for a, b, s in turns],
        }, indent=2))
    return turns


def write_all(root: Path) -> Path:
    write_ami(root)
    write_ava(root)
    write_voxceleb2(root)
    write_friends(root)
    write_youtube(root)
    return root
