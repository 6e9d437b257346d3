"""Multi-person talking-head scenes with exact active-speaker references, built from the real clips
in ``talking_heads/`` (``face{1,2,4,5}.mp4``: one real person each, talking with their own audio).

A scene puts 2 or 3 of those people side by side (640x360, 25 fps, each tile a centre crop of the
clip scaled to 360 px high) and takes turns: during a turn one person plays their clip with its
audio; between turns there are short silences. The others, by scene kind:
- ``still``: they hold still with real motion where the clip has a real pause: their longest
  silence (by the VAD, shrunk 0.1 s each side) is played back and forth when it lasts at least
  ``min_pause_s``; otherwise (face2 and face4 pause for under 0.3 s) one frame from the middle of
  their longest silence is frozen;
- ``muted``: their clip's talking video plays with its audio left out, the hard case: lips move and
  nothing is heard, which AVA labels NOT_SPEAKING (only SPEAKING_AUDIBLE is positive).

Speaking references are per frame: a person speaks at scene frame j when their audio plays there
and silero-vad (``perception.vad``, default settings) finds speech in their own clip at that clip
frame, so a speaker's pauses inside a turn are NOT_SPEAKING. Face boxes are the project's embedded
detector (dlib HOG) run on every 5th clip frame, interpolated and mapped into the tile; they serve
to match predicted tracks to identities. Clips at 22 or 30 fps are put on the 25 fps grid with the
nearest frame; each clip's audio is scaled to the same speech RMS.

The scenes (mp4, H.264 + AAC through ``infra.corpus.media.write_mp4``) and ``manifest.json`` are
written once into ``perception.realdev.cache_dir("talking_heads")/<hash of the spec>`` and reused;
the same spec always gives the same plan and references.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from perception.diarization import runs
from perception.realdev import cache_dir, require_root

VERSION = 2  # bump when the construction changes: it is part of the cache key
FPS = 25
SR = 16000
H, W = 360, 640
SPEECH_RMS = 0.05  # every clip's speech is scaled to this RMS (about -26 dBFS)


@dataclass(frozen=True)
class TalkingHeadsSpec:
    """What to build; every field is part of the cache key."""

    seed: int = 0
    n_scenes: int = 6
    scene_s: float = 10.0
    turn_s: tuple[float, float] = (1.5, 3.0)
    gap_s: tuple[float, float] = (0.2, 0.6)
    clips: tuple[str, ...] = ("face1", "face2", "face4", "face5")
    min_pause_s: float = 0.6

    def key(self, sources: dict[str, int]) -> str:
        blob = json.dumps({"v": VERSION, "spec": dataclasses.asdict(self), "sources": sources}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def layout(self, i: int) -> tuple[int, str]:
        """Scene i: 2 or 3 people, alternating; kinds alternate every two scenes, so 4 scenes cover every pair."""
        return 2 + i % 2, ("still", "muted")[(i // 2) % 2]


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]  # BGR, H x H, on the 25 fps grid
    audio: np.ndarray  # 16 kHz mono, speech at SPEECH_RMS
    speech: np.ndarray  # bool per frame: silero-vad speech at the frame's centre
    boxes: np.ndarray  # (n, 4) face box per frame, pixels of the H x H frame
    still: list[int]  # frame indices a listener cycles through (one index: a frozen frame)
    still_mode: str  # "pause" | "freeze"


def _speech_mask(audio: np.ndarray, n: int) -> np.ndarray:
    from perception.config import PerceptionConfig
    from perception.vad import VAD_BACKENDS

    segs = VAD_BACKENDS.create("silero", PerceptionConfig())(audio, SR)
    centres = (np.arange(n) + 0.5) / FPS
    return np.array([any(s["start"] <= c < s["end"] for s in segs) for c in centres])


def _longest_silence(speech: np.ndarray) -> tuple[int, int]:
    """[start, end) frames of the longest run without speech ((0, 0) when there is none)."""
    quiet = [(a, b) for a, b, v in runs(speech) if not v]
    return max(quiet, key=lambda r: r[1] - r[0], default=(0, 0))


def _face_boxes(frames: list[np.ndarray], name: str) -> np.ndarray:
    from perception.config import PerceptionConfig
    from perception.faces import FACE_BACKENDS

    det = FACE_BACKENDS.create("opencv_dlib", PerceptionConfig())
    ks, found = [], []
    for k in range(0, len(frames), 5):
        boxes, scores = det.detect(cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB))
        if len(boxes):
            ks.append(k)
            found.append(boxes[int(np.argmax(scores))])
    if len(ks) < len(range(0, len(frames), 5)) / 2:
        raise RuntimeError(f"talking_heads/{name}.mp4: a face was found on only {len(ks)} sampled frames")
    found = np.array(found)
    return np.stack([np.interp(np.arange(len(frames)), ks, found[:, i]) for i in range(4)], axis=1)


def load_clip(root: Path, name: str, min_pause_s: float) -> Clip:
    """One source clip on the 25 fps grid, square at H px, with its speech mask, boxes and still frames."""
    from infra.media import decode_audio, iter_frames
    from perception.active_speaker import on_grid

    path = root / "talking_heads" / f"{name}.mp4"
    frames = []
    for _, rgb in on_grid(iter_frames(str(path), 0.0, None, fps=1000.0, max_height=None), FPS):
        h, w = rgb.shape[:2]
        side = min(h, w)
        sq = rgb[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        frames.append(cv2.cvtColor(cv2.resize(sq, (H, H), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR))
    audio = decode_audio(str(path), 0.0, None, SR)
    n = min(len(frames), len(audio) * FPS // SR)
    frames, audio = frames[:n], np.pad(audio, (0, max(0, n * SR // FPS - len(audio))))[: n * SR // FPS]
    speech = _speech_mask(audio, n)
    spk = np.repeat(speech, SR // FPS)
    audio = (audio * SPEECH_RMS / max(float(np.sqrt(np.mean(audio[spk] ** 2))), 1e-4)).astype(np.float32)
    a, b = _longest_silence(speech)
    margin = int(0.1 * FPS)
    if (b - margin) - (a + margin) >= min_pause_s * FPS:
        still, mode = list(range(a + margin, b - margin)), "pause"
    else:
        still, mode = [(a + b) // 2 if b > a else 0], "freeze"
    return Clip(name, frames, audio, speech, _face_boxes(frames, name), still, mode)


def _ping_pong(idx: list[int], i: int) -> int:
    if len(idx) == 1:
        return idx[0]
    period = 2 * len(idx) - 2
    p = i % period
    return idx[p if p < len(idx) else period - p]


def plan_scene(rng: np.random.Generator, clips: dict[str, Clip], n_faces: int, kind: str,
               spec: TalkingHeadsSpec) -> dict:
    """Who is on screen (left to right), the turns, and per person and frame: the clip frame shown and
    whether their audio plays there."""
    names = [str(x) for x in rng.choice(sorted(clips), size=n_faces, replace=False)]
    n = int(round(spec.scene_s * FPS))
    src = {p: np.zeros(n, dtype=int) for p in names}
    audible = {p: np.zeros(n, dtype=bool) for p in names}
    cursor = {p: int(rng.integers(len(clips[p].frames))) for p in names}
    still_i = dict.fromkeys(names, 0)

    def listen(p: str, f: int) -> None:
        c = clips[p]
        if kind == "muted":  # their talking video runs on, without its audio
            src[p][f] = cursor[p] % len(c.frames)
            cursor[p] = int(src[p][f]) + 1
        else:
            src[p][f] = _ping_pong(c.still, still_i[p])
            still_i[p] += 1

    turns, j, last = [], 0, None
    while j < n:
        start = min(n, j + int(round(rng.uniform(*spec.gap_s) * FPS)))
        # The one who has spoken least goes next (random among equals), never the same person twice running.
        spoken = {p: int(audible[p].sum()) for p in names if p != last}
        speaker = str(min(rng.permutation(sorted(spoken)), key=lambda p: spoken[p]))
        end = min(n, start + int(round(rng.uniform(*spec.turn_s) * FPS)))
        for f in range(j, start):  # the silence before the turn
            for p in names:
                listen(p, f)
        c = clips[speaker]
        if cursor[speaker] + (end - start) > len(c.frames):
            cursor[speaker] = 0  # the turn plays an unbroken piece of the clip
        if end > start:
            turns.append({"speaker": speaker, "start_frame": start, "end_frame": end, "clip_frame": cursor[speaker]})
        for f in range(start, end):
            src[speaker][f] = cursor[speaker] + f - start
            audible[speaker][f] = True
            for p in names:
                if p != speaker:
                    listen(p, f)
        cursor[speaker] += end - start
        j, last = end, speaker
    return {"names": names, "kind": kind, "n": n, "src": src, "audible": audible, "turns": turns}


def _tiles(n_faces: int) -> list[tuple[int, int]]:
    edges = [round(i * W / n_faces) for i in range(n_faces + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def render_scene(plan: dict, clips: dict[str, Clip], scene_id: str, out_dir: Path) -> dict:
    """Write the scene's mp4 and return its manifest entry (references included)."""
    from infra.corpus.media import write_mp4

    names, n, tiles = plan["names"], plan["n"], _tiles(len(plan["names"]))
    audio = np.zeros(n * SR // FPS, dtype=np.float32)
    for t in plan["turns"]:
        c = clips[t["speaker"]]
        a, b = t["start_frame"] * SR // FPS, t["end_frame"] * SR // FPS
        s = t["clip_frame"] * SR // FPS
        audio[a:b] += c.audio[s : s + (b - a)]

    def frames():
        for f in range(n):
            img = np.empty((H, W, 3), dtype=np.uint8)
            for p, (x0, x1) in zip(names, tiles, strict=True):
                off = (H - (x1 - x0)) // 2
                img[:, x0:x1] = clips[p].frames[plan["src"][p][f]][:, off : off + x1 - x0]
            yield img

    write_mp4(out_dir / f"{scene_id}.mp4", frames(), audio, SR, fps=FPS)
    speaking, boxes, labels = {}, {}, []
    for p, (x0, x1) in zip(names, tiles, strict=True):
        c, off = clips[p], (H - (x1 - x0)) // 2
        spk = plan["audible"][p] & c.speech[plan["src"][p]]
        speaking[p] = spk
        bx = c.boxes[plan["src"][p]]
        xs = np.clip(bx[:, [0, 2]] - off + x0, x0, x1) / W
        ys = np.clip(bx[:, [1, 3]], 0, H) / H
        boxes[p] = [[round(f / FPS, 3), *(round(float(v), 4) for v in (xs[f, 0], ys[f, 0], xs[f, 1], ys[f, 1]))]
                    for f in range(n)]
        labels += [[round(f / FPS, 3), p, "SPEAKING_AUDIBLE" if spk[f] else "NOT_SPEAKING"] for f in range(n)]
    turns = [[round(a / FPS, 3), round(b / FPS, 3), p] for p in names for a, b, v in runs(speaking[p]) if v]
    return {
        "scene_id": scene_id, "video": f"{scene_id}.mp4", "duration_s": n / FPS, "fps": FPS, "sample_rate": SR,
        "kind": plan["kind"], "identities": names, "tiles": [[x0 / W, x1 / W] for x0, x1 in tiles],
        "still_mode": {p: clips[p].still_mode for p in names},
        "plan": plan["turns"], "speaking_turns": sorted(turns), "boxes": boxes, "labels": labels,
    }


def _sources(root: Path, names: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for name in names:
        path = root / "talking_heads" / f"{name}.mp4"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing talking-head clip")
        out[name] = path.stat().st_size
    return out


def build(spec: TalkingHeadsSpec | None = None) -> Path:
    """The folder holding ``manifest.json`` and the scenes for ``spec``; built on first use, then reused."""
    spec = spec or TalkingHeadsSpec()
    root = require_root()
    out = cache_dir("talking_heads") / spec.key(_sources(root, spec.clips))
    if (out / "manifest.json").is_file():
        return out
    shutil.rmtree(out, ignore_errors=True)  # a half-written folder from an interrupted build
    clips = {name: load_clip(root, name, spec.min_pause_s) for name in spec.clips}
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(spec.seed)
    scenes = [render_scene(plan_scene(rng, clips, *spec.layout(i), spec), clips, f"th{i:02d}", tmp)
              for i in range(spec.n_scenes)]
    manifest = {
        "spec": dataclasses.asdict(spec), "version": VERSION, "scenes": scenes,
        "clips": {c.name: {"frames": len(c.frames), "still_mode": c.still_mode, "still": c.still,
                           "speech": [[a / FPS, b / FPS] for a, b, v in runs(c.speech) if v]} for c in clips.values()},
        "references": "speaking: audio plays and silero-vad finds speech in the clip at that frame; "
                      "boxes: dlib HOG on the clip every 5th frame, interpolated",
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    try:
        os.replace(tmp, out)  # atomic: a concurrent builder either wins or finds the finished folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load(spec: TalkingHeadsSpec | None = None) -> list[dict]:
    """The scenes of ``spec`` (built if needed), each with ``media_uri`` set to its mp4's path."""
    folder = build(spec)
    scenes = json.loads((folder / "manifest.json").read_text())["scenes"]
    return [dict(s, media_uri=str(folder / s["video"])) for s in scenes]
