"""Media writers: WAV with the stdlib, MP4/M4A (H.264 + AAC) with PyAV only.

Determinism: libx264 runs single-threaded and the muxer and AAC encoder are in
bitexact mode, so the same frames and samples give the same bytes.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

FPS = 25
WIDTH, HEIGHT = 640, 360
AAC_FRAME = 1024
X264_OPTIONS = {"crf": "30", "preset": "medium", "threads": "1", "x264-params": "threads=1:lookahead-threads=1"}


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """16-bit PCM mono WAV (the AMI Mix-Headset format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(to_int16(audio).tobytes())


def _open(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return av.open(str(path), "w", format="mp4", options={"fflags": "+bitexact"})


def _audio_stream(container, sr: int):
    stream = container.add_stream("aac", rate=sr, layout="mono")
    stream.bit_rate = 32000
    stream.codec_context.flags |= av.codec.context.Flags.bitexact
    return stream


def _audio_frame(chunk: np.ndarray, sr: int, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk, dtype=np.float32).reshape(1, -1),
                                       format="fltp", layout="mono")
    frame.sample_rate = sr
    frame.pts = pts
    return frame


def write_m4a(path: Path, audio: np.ndarray, sr: int) -> None:
    """AAC-in-MP4 audio (VoxCeleb2's aac/*.m4a)."""
    container = _open(path)
    stream = _audio_stream(container, sr)
    for pos in range(0, len(audio), AAC_FRAME):
        container.mux(stream.encode(_audio_frame(audio[pos:pos + AAC_FRAME], sr, pos)))
    container.mux(stream.encode(None))
    container.close()


def write_mp4(path: Path, frames: Iterable[np.ndarray], audio: np.ndarray, sr: int, fps: int = FPS) -> int:
    """H.264 video (BGR frames, 640x360) with the AAC mix; audio is interleaved per frame.

    Returns the number of frames written.
    """
    container = _open(path)
    video = container.add_stream("libx264", rate=fps, options=dict(X264_OPTIONS))
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.codec_context.flags |= av.codec.context.Flags.bitexact
    astream = _audio_stream(container, sr)
    apos, n = 0, 0
    for n, image in enumerate(frames, start=1):
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = n - 1
        container.mux(video.encode(frame))
        upto = min(len(audio), int(round(n * sr / fps)))
        while apos + AAC_FRAME <= upto:
            container.mux(astream.encode(_audio_frame(audio[apos:apos + AAC_FRAME], sr, apos)))
            apos += AAC_FRAME
    while apos < len(audio):
        container.mux(astream.encode(_audio_frame(audio[apos:apos + AAC_FRAME], sr, apos)))
        apos += AAC_FRAME
    container.mux(video.encode(None))
    container.mux(astream.encode(None))
    container.close()
    return n
