"""One clip span as a small self-contained mp4 (H.264 + AAC), for exports that must carry the clip itself.

A clip is a span of a source file that may be an hour long; an export that points at the source file
hands a reader the whole recording and loses the span. This re-encodes only [start, end): frames at
the source's frame rate (downscaled to ``max_height``), the span's audio as mono AAC.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction

import av
import numpy as np

from infra.media import decode_audio, iter_frames, probe
from infra.storage import StorageConfig

AAC_FRAME = 1024


def cut_clip_mp4(uri: str, start_s: float, end_s: float, audio_uri: str | None = None, max_height: int = 360,
                 sample_rate: int = 16000, cfg: StorageConfig | None = None) -> bytes:
    """The mp4 bytes of [start_s, end_s) of ``uri`` (audio from ``audio_uri`` when the clip keeps it apart).

    Raises ``infra.media.MediaError`` (naming the file) when the video cannot be decoded; a clip without
    an audio track is written without one."""
    info = probe(uri, cfg)
    fps = Fraction(info.fps or 25.0).limit_denominator(1001)
    frames = iter_frames(uri, start_s, end_s, float(fps), max_height, cfg)
    try:
        audio = decode_audio(audio_uri or uri, start_s, end_s, sample_rate, cfg) if (audio_uri or info.has_audio) else None
    except Exception:  # a damaged audio track: the clip's frames are still the clip
        audio = None
    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix="amuse-cut-")
    os.close(fd)
    try:
        with av.open(tmp, "w") as out:
            video = None
            sound = out.add_stream("aac", rate=sample_rate, layout="mono") if audio is not None and audio.size else None
            for n, (_, rgb) in enumerate(frames):
                if video is None:  # sized from the first decoded frame (yuv420p needs even sides)
                    video = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23"})
                    video.height, video.width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
                    video.pix_fmt = "yuv420p"
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: video.height, : video.width]), format="rgb24")
                frame.pts = n
                frame.time_base = 1 / fps
                out.mux(video.encode(frame))
            if video is not None:
                out.mux(video.encode(None))
            if sound is not None:
                pcm = np.clip(audio, -1.0, 1.0)
                for pos in range(0, len(pcm), AAC_FRAME):
                    chunk = pcm[pos: pos + AAC_FRAME].astype(np.float32)[None, :]
                    af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                    af.sample_rate, af.pts = sample_rate, pos
                    out.mux(sound.encode(af))
                out.mux(sound.encode(None))
        with open(tmp, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(tmp)
