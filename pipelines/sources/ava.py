"""AVA-ActiveSpeaker: headerless 8-column CSVs of per-face speaking labels, plus the movie files.

Layout read::

    ava/csv/<video_id>-activespeaker.csv   video_id,frame_timestamp,x1,y1,x2,y2,label,entity_id
    ava/videos/<video_id>.<mp4|mkv|webm>

Boxes are already normalized. Labels are SPEAKING_AUDIBLE, SPEAKING_NOT_AUDIBLE and NOT_SPEAKING.
Turns are the runs of SPEAKING_AUDIBLE timestamps of one entity: that is the official positive
class (DESIGN §10), and it is a rule applied to the dataset's own labels, so the turns stay gt_*.
Runs of one entity less than ``curate.ava_merge_gap_s`` apart join into one turn: the frame labels
flicker within a sentence (a frame or two of NOT_SPEAKING at a pause or a plosive, a frame without
a box), and read literally they cut one real 8 s monologue into 23 turns of 0.04-0.40 s, every
one below the task builders' minimum turn length, so NSP and SRID skipped the clip as having
fewer than 2 labelled speakers. The entity id is the track id and, lacking names, the speaker label.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from infra import storage
from infra.media import MEDIA_SUFFIXES
from pipelines.sources.base import (
    ClipRef,
    LabelError,
    Quarantined,
    SourceAdapter,
    cut_on_turns,
    parse_float,
    read_text_lines,
    turns_in,
)

LABELS = ("SPEAKING_AUDIBLE", "SPEAKING_NOT_AUDIBLE", "NOT_SPEAKING")
SPEAKING = "SPEAKING_AUDIBLE"
CSV_SUFFIX = "-activespeaker.csv"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm")


def parse_csv(uri: str, lines: list[str], video_id: str) -> dict[str, list[dict]]:
    """{entity_id: [{t, x1, y1, x2, y2, label}, ...] sorted by t}; LabelError names the line."""
    tracks: dict[str, list[dict]] = {}
    for n, row in enumerate(csv.reader(lines), start=1):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 8:
            raise LabelError(uri, n, f"AVA row has {len(row)} columns, expected 8 "
                                     "(video_id,frame_timestamp,x1,y1,x2,y2,label,entity_id)")
        vid, t, x1, y1, x2, y2, label, entity = (c.strip() for c in row)
        if vid != video_id:
            raise LabelError(uri, n, f"video_id {vid!r} does not match the file's video {video_id!r}")
        if label not in LABELS:
            raise LabelError(uri, n, f"label {label!r} is not one of {list(LABELS)}")
        box = [parse_float(v, uri, n, k) for v, k in ((x1, "x1"), (y1, "y1"), (x2, "x2"), (y2, "y2"))]
        if not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
            raise LabelError(uri, n, f"box {box} is not a normalized (x1<x2, y1<y2 in [0,1]) box")
        if not entity:
            raise LabelError(uri, n, "empty entity_id")
        ts = parse_float(t, uri, n, "frame_timestamp")
        if ts < 0:
            raise LabelError(uri, n, f"negative frame_timestamp {ts}")
        tracks.setdefault(entity, []).append(
            {"t": ts, "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "label": label}
        )
    for boxes in tracks.values():
        boxes.sort(key=lambda b: b["t"])
    return tracks


def frame_step(tracks: dict[str, list[dict]]) -> float:
    """The labelling step (AVA: ~1/20-1/30 s in the release, coarser in samples): smallest positive gap."""
    gaps = [b2["t"] - b1["t"] for boxes in tracks.values() for b1, b2 in zip(boxes, boxes[1:], strict=False)]
    gaps = [g for g in gaps if g > 1e-6]
    return min(gaps) if gaps else 0.04


# Default of ``curate.ava_merge_gap_s``: about the shortest pause between two sentences.
MERGE_GAP_S = 0.5


def speaking_turns(tracks: dict[str, list[dict]], step: float, merge_gap_s: float = MERGE_GAP_S) -> list[dict]:
    """Runs of SPEAKING_AUDIBLE per entity; a gap over 1.5 labelling steps ends a run, and runs of
    one entity at most ``merge_gap_s`` apart (end of one to start of the next) are one turn."""
    turns = []
    for entity, boxes in tracks.items():
        runs: list[list[float]] = []  # [start, end] per run of consecutive SPEAKING_AUDIBLE frames
        last: float | None = None
        for b in boxes:
            if b["label"] != SPEAKING:
                last = None
                continue
            if last is not None and b["t"] - last <= 1.5 * step:
                runs[-1][1] = b["t"] + step
            elif runs and b["t"] - runs[-1][1] <= merge_gap_s + 1e-9:
                runs[-1][1] = b["t"] + step  # a short gap inside one stretch of talk
            else:
                runs.append([b["t"], b["t"] + step])
            last = b["t"]
        turns += [{"start": a, "end": e, "speaker": entity, "text": None} for a, e in runs]
    return sorted(turns, key=lambda t: (t["start"], t["speaker"]))


class AvaAdapter(SourceAdapter):
    name = "ava"

    def scan(self) -> Iterator[ClipRef | Quarantined]:
        videos = {u.rsplit("/", 1)[-1].rsplit(".", 1)[0]: u
                  for u in storage.list_files(self.path("videos"), "", self.storage)
                  if u.lower().endswith(VIDEO_SUFFIXES + MEDIA_SUFFIXES)}
        for csv_uri in storage.list_files(self.path("csv"), CSV_SUFFIX, self.storage):
            vid = csv_uri.rsplit("/", 1)[-1][: -len(CSV_SUFFIX)]
            try:
                tracks = parse_csv(csv_uri, read_text_lines(csv_uri, self.storage), vid)
            except LabelError as err:
                yield Quarantined.from_error(self.name, err)
                continue
            if vid not in videos:
                yield self.quarantine(self.path("videos", vid), f"video for {vid} missing (labels in {csv_uri})")
                continue
            yield from self._clips(vid, videos[vid], tracks)

    def _clips(self, vid: str, media: str, tracks: dict[str, list[dict]]) -> Iterator[ClipRef]:
        step = frame_step(tracks)
        turns = speaking_turns(tracks, step, float(self.options.get("ava_merge_gap_s", MERGE_GAP_S)))
        t0 = min(b["t"] for boxes in tracks.values() for b in boxes)
        t1 = max(b["t"] for boxes in tracks.values() for b in boxes) + step
        clips, _ = cut_on_turns(turns, t0, t1, self.cut.min_s, self.cut.max_s)
        self.left_out.add(turns, clips)
        fp = self.fingerprint(media) if clips else ""
        for k, (a, b) in enumerate(clips):
            face_tracks = []
            for entity in sorted(tracks):
                boxes = [bx for bx in tracks[entity] if a <= bx["t"] < b]
                if boxes:
                    face_tracks.append({"track_id": entity, "identity": None, "boxes": boxes})
            yield ClipRef(
                source=self.name, source_video_id=vid, scene_index=k, media_uri=media, media_fingerprint=fp,
                start_s=a, end_s=b, gt_turns=turns_in(turns, a, b), gt_face_tracks=face_tracks,
                gt_num_visible=len(face_tracks),
            )
