"""AMUSE samples as a Hugging Face ``datasets`` dataset with ``Audio`` and ``Video`` features.

One Parquet file per split in the Hub's layout (``data/<split>-00000-of-00001.parquet``), so
``datasets.load_dataset("parquet", data_dir=...)`` (or ``data_files``) reads it with its features.

- ``audio``: a list (one per clip; CSNL has two) of ``Audio`` values holding the clip's span as 16-bit
  WAV bytes, so the dataset is self-contained;
- ``video``: a list of ``Video`` values holding each clip's span cut to a small H.264 + AAC mp4
  (``infra.clip_cut``), for the clips that have video; ``path`` names the clip (``<clip_id>.mp4``) and
  ``clip_start_s``/``clip_end_s`` say where the span sits in its source. The source file (possibly an
  hour long) is never referenced, so the dataset is self-contained and a reader sees only the clip.

Both features are declared with ``decode=False``: datasets 5 decodes (and even encodes) media only
through torchcodec, which cannot be installed beside the CPU torch (PLATFORM.md). The values are the
standard ``{bytes, path}`` structs, so a reader with torchcodec gets decoded media with
``ds.cast_column("audio", List(Audio()))``; without it, soundfile or PyAV read them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

AUDIO_SUFFIXES = (".wav", ".flac", ".m4a", ".mp3", ".ogg")


def features():
    from datasets import Audio, Features, List, Value, Video

    return Features({
        "sample_id": Value("string"), "task": Value("string"), "split": Value("string"),
        "question": Value("string"), "options": List(Value("string")), "answer": Value("string"),
        "references": List(Value("string")), "target_speaker": Value("string"),
        "cues": Value("string"), "meta": Value("string"), "required_tools": List(Value("string")),
        "overlap_bucket": Value("string"), "length_bucket": Value("string"), "num_visible": Value("int32"),
        "clip_ids": List(Value("string")), "clip_start_s": List(Value("float64")), "clip_end_s": List(Value("float64")),
        "answer_intervals": Value("string"),  # JSON [[start, end], ...] in media-file seconds (or null)
        "audio": List(Audio(sampling_rate=None, decode=False)),
        "video": List(Video(decode=False)),
    })


def has_video(clip: dict[str, Any]) -> bool:
    return not str(clip["media_uri"]).lower().endswith(AUDIO_SUFFIXES)


def clip_wav(clip: dict[str, Any], sample_rate: int = 16000) -> bytes:
    """The clip's span as mono 16-bit WAV bytes (decoded with PyAV through ``perception.media_io``)."""
    import soundfile as sf

    from perception.media_io import load_audio

    buf = io.BytesIO()
    sf.write(buf, load_audio(clip, sample_rate), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def clip_mp4(clip: dict[str, Any]) -> bytes:
    """The clip's span as mp4 bytes (video and the clip's audio)."""
    from infra.clip_cut import cut_clip_mp4

    return cut_clip_mp4(str(clip["media_uri"]), float(clip["start_s"]), float(clip["end_s"]), clip.get("audio_uri"))


def rows(samples: list[dict[str, Any]], clips: dict[str, dict[str, Any]], sample_rate: int = 16000) -> list[dict]:
    """Dataset rows: the sample fields plus each clip's span, audio bytes and video bytes."""
    wavs: dict[str, bytes] = {}  # clips shared by several samples are decoded (and cut) once
    mp4s: dict[str, bytes] = {}
    out = []
    for s in samples:
        cs = [clips[c] for c in s["clip_ids"]]
        for c in cs:
            if c["clip_id"] not in wavs:
                wavs[c["clip_id"]] = clip_wav(c, sample_rate)
            if has_video(c) and c["clip_id"] not in mp4s:
                mp4s[c["clip_id"]] = clip_mp4(c)
        out.append({
            **{k: s.get(k) for k in features() if k in s and k not in ("answer_intervals",)},
            "options": list(s.get("options") or []), "references": list(s.get("references") or []),
            "required_tools": list(s.get("required_tools") or []),
            "answer_intervals": json.dumps([[i["start"], i["end"]] for i in s["answer_intervals"]])
            if s.get("answer_intervals") else None,
            "clip_start_s": [float(c["start_s"]) for c in cs], "clip_end_s": [float(c["end_s"]) for c in cs],
            "audio": [{"bytes": wavs[c["clip_id"]], "path": f"{c['clip_id']}.wav"} for c in cs],
            "video": [{"bytes": mp4s[c["clip_id"]], "path": f"{c['clip_id']}.mp4"} for c in cs if has_video(c)],
        })
    return out


def write(samples: list[dict[str, Any]], clips: dict[str, dict[str, Any]], out_dir: str | Path) -> dict[str, str]:
    """One Parquet file per split under ``out_dir/data``; returns split -> path."""
    from datasets import Dataset

    feats = features()
    data = Path(out_dir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    written = {}
    for split in sorted({s["split"] for s in samples}):
        part = rows([s for s in samples if s["split"] == split], clips)
        # Built from plain structs and cast: Audio.encode_example needs torchcodec even for bytes.
        ds = Dataset.from_list(part).cast(feats) if part else Dataset.from_list([], features=feats)
        path = data / f"{split}-00000-of-00001.parquet"
        ds.to_parquet(str(path))
        written[split] = str(path)
    return written
