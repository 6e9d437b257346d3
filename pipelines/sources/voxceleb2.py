"""VoxCeleb2: per-utterance videos of celebrities, labelled only with who the celebrity is.

Layout read::

    voxceleb2/vox2_meta.csv                          "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set " (stray spaces)
    voxceleb2/{dev,test}/mp4/idNNNNN/<youtube_id>/NNNNN.mp4
    voxceleb2/{dev,test}/aac/idNNNNN/<youtube_id>/NNNNN.m4a  (optional separate audio)

The only label is the identity of the celebrity (gt_speakers = [idNNNNN]); who else talks, and when,
is not in the dataset, so gt_turns stays empty and gt_num_speakers unknown. Each utterance file is
one or more clips (long files are cut evenly: there are no turn boundaries to respect). The
YouTube video is the split / CSNL unit. Files shorter than the minimum clip length are counted in
``skipped`` rather than padded.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator

from infra import storage
from infra.media import probe
from pipelines.sources.base import (
    ClipRef,
    LabelError,
    Quarantined,
    SourceAdapter,
    fixed_windows,
    read_text_lines,
)

ID_RE = re.compile(r"^id\d{5}$")
SETS = ("dev", "test")
META = "vox2_meta.csv"
REQUIRED_COLUMNS = ("VoxCeleb2 ID", "Set")


def parse_meta(uri: str, lines: list[str]) -> tuple[dict[str, dict[str, str]], list[LabelError]]:
    """{identity: row} from vox2_meta.csv, stripping the stray spaces; bad lines come back as errors.

    A bad line only costs its own identity (whose files are then quarantined as unknown), so the
    rest of the meta file stays usable.
    """
    rows = list(csv.reader(lines))
    if not rows:
        raise LabelError(uri, None, "empty meta file")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise LabelError(uri, 1, f"header {header} lacks columns {missing}")
    out: dict[str, dict[str, str]] = {}
    errors: list[LabelError] = []
    for n, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            errors.append(LabelError(uri, n, f"{len(row)} columns, header has {len(header)}"))
            continue
        rec = {h: v.strip() for h, v in zip(header, row, strict=True)}
        ident = rec["VoxCeleb2 ID"]
        if not ID_RE.match(ident):
            errors.append(LabelError(uri, n, f"identity {ident!r} is not idNNNNN"))
            continue
        if rec["Set"] not in SETS:
            errors.append(LabelError(uri, n, f"Set {rec['Set']!r} is not one of {list(SETS)}"))
            continue
        out[ident] = rec
    return out, errors


class VoxCeleb2Adapter(SourceAdapter):
    name = "voxceleb2"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: Counter[str] = Counter()

    def scan(self) -> Iterator[ClipRef | Quarantined]:
        meta_uri = self.path(META)
        try:
            meta, errors = parse_meta(meta_uri, read_text_lines(meta_uri, self.storage))
        except (LabelError, FileNotFoundError) as err:
            reason = err.reason if isinstance(err, LabelError) else "vox2_meta.csv missing"
            line = err.line if isinstance(err, LabelError) else None
            yield self.quarantine(meta_uri, f"{reason}; no VoxCeleb2 identity can be checked", line)
            return
        for err in errors:
            yield Quarantined.from_error(self.name, err)
        scene_counter: Counter[str] = Counter()
        for split in SETS:
            base = self.path(split, "mp4")
            for uri in storage.list_files(base, ".mp4", self.storage):
                rel = uri.split("/")[-4:]  # mp4/idNNNNN/<youtube_id>/NNNNN.mp4
                if len(rel) != 4 or rel[0] != "mp4" or not ID_RE.match(rel[1]):
                    yield self.quarantine(uri, "path is not <set>/mp4/idNNNNN/<youtube_id>/NNNNN.mp4")
                    continue
                ident, ytid, stem = rel[1], rel[2], rel[3][: -len(".mp4")]
                if ident not in meta:
                    yield self.quarantine(uri, f"identity {ident} is not in {META}")
                    continue
                info = probe(uri, self.storage)
                if not info.ok or not info.duration_s:
                    yield Quarantined(self.name, uri, "decode", f"unreadable video: {info.error or 'no duration'}")
                    continue
                windows = fixed_windows(info.duration_s, self.cut.min_s, self.cut.max_s)
                if not windows:
                    self.skipped["shorter than min clip"] += 1
                    continue
                audio = self.path(split, "aac", ident, ytid, f"{stem}.m4a")
                audio = audio if storage.exists(audio, self.storage) else None
                flags = [] if meta[ident]["Set"] == split else [f"meta_set_{meta[ident]['Set']}_but_in_{split}"]
                fp = self.fingerprint(uri)
                for a, b in windows:
                    yield ClipRef(
                        source=self.name, source_video_id=ytid, scene_index=scene_counter[ytid], media_uri=uri,
                        media_fingerprint=fp, start_s=a, end_s=b, audio_uri=audio, gt_turns=[],
                        gt_face_tracks=[], gt_num_visible=None, gt_speakers=[ident], quality_flags=flags,
                    )
                    scene_counter[ytid] += 1
