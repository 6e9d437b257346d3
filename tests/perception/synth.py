"""Test media made here: flite dialogues, and videos of real faces whose mouths follow their own voice.

Ground truth is known by construction. Nothing is mocked: the files are real WAV/MP4 (H.264 +
AAC) that the production decoders read.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

SR = 16000
FPS = 25
W, H = 640, 360
VOICES = ("awb", "slt", "rms", "kal16")
LINES = (
    "I think we should move the meeting to next week because the report is not ready yet.",
    "That sounds fine to me, but we need to tell the whole team before Friday.",
    "Can you send the latest numbers to everyone this afternoon please?",
    "Yes, I will write the summary and share it with the group after lunch.",
    "The budget for the new project looks much bigger than last year.",
    "We could ask the manager for more time if the design takes longer.",
    "Let me check the calendar and find a room for the review.",
    "Thank you, that would help a lot with the planning.",
)


def flite_available() -> bool:
    return shutil.which("flite") is not None


@functools.lru_cache(maxsize=256)
def say(voice: str, text: str, f0: float | None = None) -> np.ndarray:
    """float32 16 kHz speech, trimmed to its audible extent, normalized to -23 dBFS RMS; ``f0`` sets
    flite's mean pitch target in Hz (None keeps the voice's own)."""
    pitch = ["--setf", f"int_f0_target_mean={f0:g}"] if f0 else []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "u.wav"
        subprocess.run(["flite", "-voice", voice, *pitch, "-t", text, "-o", str(out)], check=True, capture_output=True)
        with wave.open(str(out)) as w:
            sr = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
    if sr != SR:
        x = resample_poly(x, SR, sr).astype(np.float32)
    e = np.sqrt(np.convolve(x**2, np.ones(160) / 160, mode="same"))
    loud = np.flatnonzero(e > 10 ** (-45 / 20))
    x = x[loud[0] : loud[-1] + 1]
    return (x * 10 ** (-23 / 20) / max(np.sqrt(np.mean(x**2)), 1e-6)).astype(np.float32)


@dataclass
class Dialogue:
    audio: np.ndarray  # the mix
    tracks: list[np.ndarray]  # each speaker's own signal, same length as the mix
    turns: list[tuple[float, float, str]]  # (start, end, speaker) ground truth
    texts: list[tuple[str, str]]  # (speaker, text) in order

    @property
    def duration(self) -> float:
        return len(self.audio) / SR


def dialogue(order: list[int], gap_s: float = 0.5, lead_s: float = 0.5, tail_s: float = 0.5,
             overlap_s: float = 0.0, voices=VOICES, seed: int = 0, pitches: tuple[float, ...] = ()) -> Dialogue:
    """Speakers take turns (``order`` indexes ``voices``), lines from LINES; optional overlap at changes.

    With ``pitches`` (Hz), each utterance takes a pitch target drawn from them: speakers that share
    one pitch range and whose intonation varies from line to line, as in real conversation.
    """
    rng = np.random.default_rng(seed)
    n_spk = max(order) + 1
    pieces, t = [], lead_s
    for i, spk in enumerate(order):
        text = LINES[(i + seed) % len(LINES)]
        x = say(voices[spk], text, float(rng.choice(pitches)) if pitches else None)
        if i > 0 and overlap_s > 0 and order[i - 1] != spk:
            t -= gap_s + overlap_s
        pieces.append((t, spk, x, text))
        t += len(x) / SR + gap_s + float(rng.uniform(-0.1, 0.1))
    total = int((t - gap_s + tail_s) * SR)
    tracks = [np.zeros(total, np.float32) for _ in range(n_spk)]
    turns, texts = [], []
    for start, spk, x, text in pieces:
        a = int(start * SR)
        tracks[spk][a : a + len(x)] += x[: total - a]
        turns.append((round(start, 3), round(start + len(x) / SR, 3), f"spk{spk}"))
        texts.append((f"spk{spk}", text))
    mix = np.sum(tracks, axis=0).astype(np.float32)
    mix += rng.normal(0, 1e-4, len(mix)).astype(np.float32)  # a noise floor, as real rooms have
    return Dialogue(mix, tracks, turns, texts)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def envelope(track: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-video-frame mouth opening in [0, 1] from a speaker's own signal."""
    hop = SR // FPS
    env = np.array([np.sqrt(np.mean(track[i * hop : (i + 1) * hop] ** 2)) if i * hop < len(track) else 0.0
                    for i in range(n_frames)])
    ref = np.percentile(env[env > 1e-4], 90) if (env > 1e-4).any() else 1.0
    out = np.clip(env / ref, 0, 1)
    out[out < 0.12] = 0
    return out


FACES = ("eileen", "tom", "grace", "ross")


def write_video(path: Path, dlg: Dialogue, faces=FACES, audio_delay_frames: int = 0) -> dict[str, list]:
    """MP4 with one face per speaker, mouths driven by their own track; returns gt boxes per speaker.

    ``audio_delay_frames`` delays the audio against the video (to test sync-offset search).
    """
    import av
    import cv2

    from infra.corpus.faces import Face

    n_spk = len(dlg.tracks)
    n_frames = int(dlg.duration * FPS)
    rendered = [Face(k) for k in faces[:n_spk]]
    size = 170 if n_spk <= 3 else 140
    xs = [int((i + 0.5) * W / n_spk - size / 2) for i in range(n_spk)]
    y0 = (H - size) // 2
    envs = [envelope(tr, n_frames) for tr in dlg.tracks]
    gt = {f"spk{i}": [] for i in range(n_spk)}
    audio = dlg.audio
    if audio_delay_frames:
        audio = np.concatenate([np.zeros(audio_delay_frames * SR // FPS, np.float32), audio])[: len(dlg.audio)]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"crf": "23", "preset": "veryfast"}
        as_ = out.add_stream("aac", rate=SR)
        as_.layout = "mono"
        for k in range(n_frames):
            img = np.full((H, W, 3), (96, 104, 112), np.uint8)
            for i, f in enumerate(rendered):
                dx = int(round(3 * np.sin(2 * np.pi * k / (FPS * 4) + i)))
                tile = cv2.resize(f.render(float(envs[i][k])), (size, size), interpolation=cv2.INTER_AREA)
                x, y = xs[i] + dx, y0
                img[y : y + size, x : x + size] = tile
                # The face occupies the middle of the tile; 0.2..0.8 is its box, close to what detectors return.
                gt[f"spk{i}"].append((k / FPS, (x + 0.2 * size) / W, (y + 0.2 * size) / H,
                                      (x + 0.8 * size) / W, (y + 0.85 * size) / H))
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for a in range(0, len(pcm), 1024):
            fr = av.AudioFrame.from_ndarray(pcm[None, a : a + 1024], format="s16", layout="mono")
            fr.sample_rate = SR
            fr.pts = a  # with pts the muxer writes the AAC priming edit list; without, audio decodes 64 ms late
            for p in as_.encode(fr):
                out.mux(p)
        for p in as_.encode():
            out.mux(p)
    return gt
