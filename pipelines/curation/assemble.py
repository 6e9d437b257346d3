"""Stitch per-utterance media files into one clip file (Friends-MMC ships one short video per turn).

The clip's labels place part i at ``offset_i = sum(durations[:i])`` (the durations the adapter
probed), so the output is built on exactly that timeline: each part contributes
``round(duration * fps)`` frames (holding the last decoded frame where the part runs short) and
``round(duration * sample_rate)`` audio samples (zero-padded or trimmed). Memory holds one
frame at a time and the clip's audio (at most max_clip_s seconds of 16 kHz mono).

The file is written to a local temporary path and then moved (local) or uploaded (s3://) in one
step, so a run killed mid-write never leaves a half file that a rerun would trust. The temporary
folder (``.assemble-*``) is removed on any error; only a killed process (SIGKILL, a lost node)
leaves one, and the next run's driver sweeps those before any actor starts
(:func:`sweep_stale_builds`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from fractions import Fraction

import av
import numpy as np

from infra import storage
from infra.media import MediaError, decode_audio
from infra.storage import StorageConfig

AUDIO_RATE = 16000
AAC_FRAME = 1024
BUILD_PREFIX = ".assemble-"


def sweep_stale_builds(media_uri: str) -> list[str]:
    """Remove the ``.assemble-*`` build folders a killed run left under a local media folder.

    Called by the driver before the run's actors start, when no build of this output can be in
    progress (one run per output folder). Remote media are built in each node's temporary folder,
    which the OS owns, so only local outputs are swept. Returns the folders removed.
    """
    if storage.is_remote(media_uri) or not os.path.isdir(media_uri):
        return []
    removed = []
    for dirpath, dirnames, _ in os.walk(media_uri):
        for d in [d for d in dirnames if d.startswith(BUILD_PREFIX)]:
            shutil.rmtree(os.path.join(dirpath, d), ignore_errors=True)
            removed.append(os.path.join(dirpath, d))
            dirnames.remove(d)
    return removed


def _part_frames(uri: str, duration: float, fps: float, size: tuple[int, int], cfg: StorageConfig | None):
    """``round(duration*fps)`` RGB frames of ``uri`` at ``size``, on a constant-rate grid."""
    n = int(round(duration * fps))
    last = None
    k = 0
    try:
        with storage.open_uri(uri, "rb", cfg) as fh, av.open(fh) as container:
            if not container.streams.video:
                raise MediaError(f"{uri}: no video stream")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                img = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                while k < n and k / fps <= t + 0.5 / fps:
                    yield img if last is None or k / fps >= t - 0.5 / fps else last
                    k += 1
                last = img
                if k >= n:
                    break
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{uri}: cannot decode video: {type(exc).__name__}: {exc}") from exc
    if last is None:
        raise MediaError(f"{uri}: no video frames")
    while k < n:
        yield last
        k += 1


def concat_media(
    parts: list[tuple[str, float]], out_uri: str, cfg: StorageConfig | None = None, fps: float = 25.0
) -> None:
    """Write the concatenation of ``parts`` [(uri, duration_s)] to ``out_uri`` (mp4: h264 + AAC)."""
    first = parts[0][0]
    try:
        with storage.open_uri(first, "rb", cfg) as fh, av.open(fh) as c0:
            if not c0.streams.video:
                raise MediaError(f"{first}: no video stream")
            cc = c0.streams.video[0].codec_context
            size = (cc.width - cc.width % 2, cc.height - cc.height % 2)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{first}: cannot open: {type(exc).__name__}: {exc}") from exc
    # Local output: build beside the destination (a dot-dir), so the final os.replace is atomic.
    local_dir = None if storage.is_remote(out_uri) else os.path.dirname(os.path.abspath(out_uri))
    if local_dir:
        os.makedirs(local_dir, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=local_dir)
    tmp = os.path.join(tmpdir, "clip.mp4")
    try:
        with av.open(tmp, "w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=int(round(fps)))
            vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
            vs.options = {"preset": "ultrafast", "crf": "23"}
            as_ = out.add_stream("aac", rate=AUDIO_RATE)
            as_.layout = "mono"
            audio = []
            n_out = 0
            for uri, dur in parts:
                for img in _part_frames(uri, dur, fps, size, cfg):
                    # Fresh frame with the output timeline's pts: decoded frames carry their part's own pts.
                    frame = av.VideoFrame.from_ndarray(img.to_ndarray(), format="yuv420p")
                    frame.pts, frame.time_base = n_out, Fraction(1, int(round(fps)))
                    n_out += 1
                    for pkt in vs.encode(frame):
                        out.mux(pkt)
                samples = decode_audio(uri, 0.0, dur, AUDIO_RATE, cfg) if _has_audio(uri, cfg) else np.zeros(0, "f4")
                want = int(round(dur * AUDIO_RATE))
                audio.append(np.pad(samples[:want], (0, max(0, want - samples.size))))
            for pkt in vs.encode():
                out.mux(pkt)
            pcm = np.concatenate(audio).astype(np.float32)
            for i in range(0, pcm.size, AAC_FRAME):
                chunk = pcm[i:i + AAC_FRAME]
                frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
                frame.sample_rate = AUDIO_RATE
                frame.pts = i
                for pkt in as_.encode(frame):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
        if storage.is_remote(out_uri):
            with open(tmp, "rb") as src, storage.open_uri(out_uri, "wb", cfg) as dst:
                shutil.copyfileobj(src, dst)
        else:
            os.replace(tmp, os.path.abspath(out_uri))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _has_audio(uri: str, cfg: StorageConfig | None) -> bool:
    with storage.open_uri(uri, "rb", cfg) as fh, av.open(fh) as c:
        return bool(c.streams.audio)
