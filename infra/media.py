"""Media probing with PyAV: what a file holds, without decoding it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import av

from infra.storage import StorageConfig, open_uri

MEDIA_SUFFIXES = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".wav", ".m4a", ".aac", ".flac", ".mp3")


@dataclass
class MediaInfo:
    uri: str
    ok: bool
    error: str | None = None
    duration_s: float | None = None
    has_video: bool = False
    has_audio: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None

    def to_row(self) -> dict:
        return asdict(self)


def decoder_complaint(exc: Exception) -> str:
    """What the decoder said about a file it could not read, in words a user can act on.

    PyAV decodes container metadata as UTF-8 while opening, so garbage bytes where a tag should
    be (a random-bytes or damaged .wav) surface as a bare ``UnicodeDecodeError``: say what it means."""
    if isinstance(exc, UnicodeDecodeError):
        bad = exc.object[exc.start:exc.start + 1].hex()
        return (f"not decodable audio/video: the container's metadata holds non-text bytes (0x{bad} at "
                f"offset {exc.start} of a tag: {exc.reason}); the file is damaged or not media")
    return f"not decodable audio/video: {type(exc).__name__}: {exc}"


def probe(uri: str, cfg: StorageConfig | None = None) -> MediaInfo:
    """Container and stream facts for ``uri`` (local or s3://). Never raises: failures come back in ``error``."""
    try:
        with open_uri(uri, "rb", cfg) as fh, av.open(fh) as container:
            info = MediaInfo(uri=uri, ok=True)
            if container.duration is not None:
                info.duration_s = container.duration / av.time_base
            for stream in container.streams.video[:1]:
                info.has_video = True
                info.width, info.height = stream.codec_context.width, stream.codec_context.height
                info.fps = float(stream.average_rate) if stream.average_rate else None
                info.video_codec = stream.codec_context.name
            for stream in container.streams.audio[:1]:
                info.has_audio = True
                info.sample_rate = stream.codec_context.sample_rate
                info.audio_codec = stream.codec_context.name
                if info.duration_s is None and stream.duration is not None:
                    info.duration_s = float(stream.duration * stream.time_base)
            if not (info.has_video or info.has_audio):
                return MediaInfo(uri=uri, ok=False, error="no audio or video stream")
            return info
    except Exception as exc:  # corrupt, truncated or unsupported: reported, not raised
        return MediaInfo(uri=uri, ok=False, error=decoder_complaint(exc))


class MediaError(RuntimeError):
    """A file that cannot be decoded; the message names the file and what failed."""


def decode_audio(
    uri: str, start_s: float = 0.0, end_s: float | None = None, sample_rate: int = 16000,
    cfg: StorageConfig | None = None,
):
    """Mono float32 audio in [-1, 1] at ``sample_rate`` for [start_s, end_s) of ``uri``.

    Decodes in a stream and resamples with PyAV's resampler, so memory is bounded by the
    requested span, not the file.
    """
    import numpy as np

    try:
        with open_uri(uri, "rb", cfg) as fh, av.open(fh) as container:
            if not container.streams.audio:
                raise MediaError(f"{uri}: no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            if start_s > 1.0:
                container.seek(int((start_s - 1.0) / stream.time_base), stream=stream, any_frame=False, backward=True)
            chunks, first_t = [], None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if end_s is not None and t >= end_s:
                    break
                for out in resampler.resample(frame):
                    if first_t is None:
                        first_t = t
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{uri}: cannot decode audio: {decoder_complaint(exc)}") from exc
    if not chunks:
        raise MediaError(f"{uri}: no audio in [{start_s}, {end_s})")
    audio = np.concatenate(chunks).astype(np.float32)
    offset = int(round((start_s - (first_t or 0.0)) * sample_rate))
    # A stream whose first sample comes after start_s (audio starting late in the container) is
    # padded with silence, so sample i stays at start_s + i / sample_rate on the file's timeline.
    audio = audio[offset:] if offset >= 0 else np.concatenate([np.zeros(-offset, np.float32), audio])
    if end_s is not None:
        audio = audio[: int(round((end_s - start_s) * sample_rate))]
    return audio


def iter_frames(
    uri: str, start_s: float = 0.0, end_s: float | None = None, fps: float = 5.0, max_height: int | None = 360,
    cfg: StorageConfig | None = None,
):
    """Yield (t_seconds, RGB uint8 frame) sampled at ``fps`` over [start_s, end_s), one frame at a time.

    Only the sampled frames are converted and kept, so a long video never sits in memory.
    """
    import numpy as np  # noqa: F401  (frames are numpy arrays)

    try:
        with open_uri(uri, "rb", cfg) as fh, av.open(fh) as container:
            if not container.streams.video:
                raise MediaError(f"{uri}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if start_s > 1.0:
                container.seek(int((start_s - 1.0) / stream.time_base), stream=stream, any_frame=False, backward=True)
            step = 1.0 / fps
            next_t = start_s
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if end_s is not None and t >= end_s:
                    break
                if t + 1e-6 < next_t:
                    continue
                if max_height and frame.height > max_height:
                    width = int(round(frame.width * max_height / frame.height / 2) * 2)
                    frame = frame.reformat(width=width, height=max_height)
                yield t, frame.to_ndarray(format="rgb24")
                next_t += step
                while next_t <= t:
                    next_t += step
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{uri}: cannot decode video: {decoder_complaint(exc)}") from exc
