"""Decode stage: build stitched media where needed, decode each clip span once, quarantine what fails.

Runs as a Ray Data task (``map_batches`` with a function) before the perception actors. For each
clip it
- stitches Friends-MMC turn videos into the clip file (``ClipRef.media_parts``), once;
- decodes the span with PyAV through ``infra.media``: all of its audio at the perception sample
  rate, the first sampled frame, and the video packets' timestamps up to the clip end (bounded
  memory: one frame and the clip's audio, never the whole video);
- fills ``width``, ``height``, ``fps`` (0 for audio-only clips, which makes the face stages skip them)
  and ``sample_rate``;
- on a corrupt, truncated or unsupported file writes one quarantine part file named by the
  quarantine id and drops the row, so the perception actors only see media that decodes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from infra import storage
from infra.media import MediaError, decode_audio, iter_frames, probe
from infra.storage import StorageConfig
from pipelines.curation.assemble import concat_media
from pipelines.curation.quarantine import write_quarantine_part
from pipelines.sources.base import Quarantined

AUDIO_ONLY = (".wav", ".flac", ".mp3", ".m4a", ".aac")


def verify_clip(row: dict, sample_rate: int, fps: float, max_height: int, tolerance_s: float,
                cfg: StorageConfig | None, verify: bool = True) -> dict[str, Any]:
    """Media facts for one clip row; raises MediaError naming the file when it cannot be used."""
    media = row["media_uri"]
    info = probe(media, cfg)
    if not info.ok:
        raise MediaError(f"{media}: {info.error}")
    has_video = info.has_video and not media.lower().endswith(AUDIO_ONLY)
    start, end = float(row["start_s"]), float(row["end_s"])
    if info.duration_s is not None and info.duration_s < end - tolerance_s:
        raise MediaError(f"{media}: truncated: media lasts {info.duration_s:.2f} s, clip needs up to {end:.2f} s")
    facts = {"width": info.width if has_video else None, "height": info.height if has_video else None,
             "fps": float(fps) if has_video else 0.0, "sample_rate": int(sample_rate)}
    if not verify:
        return facts
    audio_src = row.get("audio_uri") or media
    audio = decode_audio(audio_src, start, end, sample_rate, cfg)
    if audio.size < (end - start - tolerance_s) * sample_rate:
        raise MediaError(f"{audio_src}: truncated: {audio.size / sample_rate:.2f} s of audio decoded "
                         f"for a {end - start:.2f} s clip")
    if has_video:
        last = _video_reaches(media, start, end, fps, max_height, cfg)
        if last is None or last < end - tolerance_s - 1.0 / fps:
            got = "no frames" if last is None else f"video packets end at {last:.2f} s"
            raise MediaError(f"{media}: truncated video: {got}, clip ends at {end:.2f} s")
    return facts


def _video_reaches(uri: str, start: float, end: float, fps: float, max_height: int,
                   cfg: StorageConfig | None) -> float | None:
    """Decode the clip's first sampled frame, then walk the video packets (no decoding) to the clip
    end; returns the last packet time. Decoding every frame here would cost as much as the face
    stage; packet timestamps find truncation and the first frame finds an undecodable stream."""
    import av

    first = next(iter_frames(uri, start, end, fps, max_height, cfg), None)
    if first is None:
        return None
    last = first[0]
    try:
        with storage.open_uri(uri, "rb", cfg) as fh, av.open(fh) as container:
            stream = container.streams.video[0]
            if start > 1.0:
                container.seek(int((start - 1.0) / stream.time_base), stream=stream, backward=True)
            for pkt in container.demux(stream):
                if pkt.pts is None:
                    continue
                t = float(pkt.pts * stream.time_base)
                last = max(last, t)
                if t >= end:
                    break
    except Exception as exc:
        raise MediaError(f"{uri}: cannot read video packets: {type(exc).__name__}: {exc}") from exc
    return last


def decode_batch(batch: pd.DataFrame, *, quarantine_dir: str, storage_cfg: dict, sample_rate: int,
                 fps: float, max_height: int, tolerance_s: float, verify: bool) -> pd.DataFrame:
    cfg = StorageConfig(**storage_cfg)
    keep = []
    for row in batch.to_dict("records"):
        t0 = time.perf_counter()
        ref = json.loads(row["ref_json"])
        try:
            parts = ref.get("media_parts")
            if parts and not storage.exists(row["media_uri"], cfg):
                concat_media([(u, float(d)) for u, d in parts], row["media_uri"], cfg)
            facts = verify_clip(row, sample_rate, fps, max_height, tolerance_s, cfg, verify)
        except Exception as exc:  # MediaError and anything PyAV raises on a broken file
            # MediaError names the file that failed (for stitched clips, the bad turn video).
            message = str(exc) if isinstance(exc, MediaError) else f"{row['media_uri']}: {type(exc).__name__}: {exc}"
            # Keyed by file, so the clips of one corrupt file give one row (quarantine ids ignore the wording).
            write_quarantine_part(Quarantined(row["source"], row["media_uri"], "decode", message), quarantine_dir, cfg)
            continue
        keep.append({**row, **facts, "t_decode": time.perf_counter() - t0})
    cols = list(batch.columns) + ["width", "height", "fps", "sample_rate", "t_decode"]
    return pd.DataFrame(keep, columns=cols)
