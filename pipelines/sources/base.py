"""What every source adapter shares: the clip reference, quarantine rows, label errors and clip cutting.

An adapter reads one dataset's own on-disk format (local or s3:// through ``infra.storage``) and
yields :class:`ClipRef` objects carrying the dataset's labels as ``gt_*`` plus
:class:`Quarantined` items for anything it could not use. Times are seconds from the start of the
media file; boxes are normalized to [0, 1] (``infra.schemas``).

Why a malformed label line quarantines its whole recording rather than just that line: dropping
one RTTM turn or one AVA box silently changes the ground truth of every clip around it (the "next
speaker" or the speaking track would be wrong), so answers built from it could not be trusted.
"""

from __future__ import annotations

import json
import os
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from infra import storage
from infra.ids import content_id
from infra.storage import StorageConfig


class LabelError(ValueError):
    """A malformed label file or line; names the file and (1-based) line."""

    def __init__(self, uri: str, line: int | None, reason: str):
        self.uri, self.line, self.reason = uri, line, reason
        where = f"{uri}:{line}" if line is not None else uri
        super().__init__(f"{where}: {reason}")


@dataclass
class Quarantined:
    """One thing the run could not use, with why; becomes a QUARANTINE_SCHEMA row."""

    source: str
    uri: str
    stage: str  # adapter | decode | record | <perception stage>
    reason: str
    line: int | None = None

    @property
    def quarantine_id(self) -> str:
        # Keyed on what failed, not on the wording, so a rerun replaces rather than duplicates.
        return content_id(self.source, self.uri, self.stage, self.line)

    def to_row(self) -> dict[str, Any]:
        return {"quarantine_id": self.quarantine_id, "source": self.source, "uri": self.uri,
                "line": self.line, "stage": self.stage, "reason": self.reason}

    @classmethod
    def from_error(cls, source: str, err: LabelError, stage: str = "adapter") -> Quarantined:
        return cls(source=source, uri=err.uri, stage=stage, reason=err.reason, line=err.line)


@dataclass
class ClipRef:
    """One 10-50 s clip of one media file, with the dataset's own labels restricted to it."""

    source: str
    source_video_id: str  # episode / meeting / video: the unit of the train/test split and of CSNL pairs
    scene_index: int  # order of this clip within its source video
    media_uri: str  # video where there is one, else audio
    media_fingerprint: str  # storage.fingerprint of the media: a re-encoded file gets new clip ids
    start_s: float
    end_s: float
    audio_uri: str | None = None
    gt_turns: list[dict] = field(default_factory=list)
    gt_face_tracks: list[dict] = field(default_factory=list)
    gt_num_visible: int | None = None
    # Set only where the source names speakers without timing them (VoxCeleb2's identity); else from turns.
    gt_speakers: list[str] | None = None
    quality_flags: list[str] = field(default_factory=list)
    # Set when media_uri is a file the pipeline stitches from per-utterance files (Friends-MMC):
    # [(uri, duration_s)], placed back to back from t=0 (pipelines.curation.assemble).
    media_parts: list[tuple[str, float]] | None = None

    @property
    def clip_id(self) -> str:
        return content_id(self.source, self.media_fingerprint, self.start_s, self.end_s)

    def to_row(self) -> dict[str, Any]:
        """The adapter-owned columns of a CLIP_SCHEMA row (perception fills the pred_* ones)."""
        turns = self.gt_turns
        speakers = sorted({t["speaker"] for t in turns}) if self.gt_speakers is None else list(self.gt_speakers)
        row = asdict(self)
        row.pop("media_fingerprint")
        row["media_parts"] = [list(p) for p in self.media_parts] if self.media_parts else None
        row.update(
            clip_id=self.clip_id,
            duration_s=float(self.end_s - self.start_s),
            gt_speakers=speakers,
            # Without turns the source does not say how many people talk (a VoxCeleb2 interviewer is unlabelled).
            gt_num_speakers=len(speakers) if turns else None,
            gt_overlap_ratio=overlap_ratio(turns, self.start_s, self.end_s) if turns else None,
        )
        return row


def overlap_ratio(turns: list[dict], start_s: float, end_s: float) -> float:
    """Fraction of speech time (within [start_s, end_s]) during which two or more speakers talk."""
    events = []
    for t in turns:
        a, b = max(t["start"], start_s), min(t["end"], end_s)
        if b > a:
            events += [(a, 1, t["speaker"]), (b, -1, t["speaker"])]
    events.sort(key=lambda e: (e[0], e[1]))
    active: dict[str, int] = {}
    speech = overlap = 0.0
    prev = None
    for t, delta, spk in events:
        if prev is not None:
            n = sum(1 for v in active.values() if v > 0)
            if n >= 1:
                speech += t - prev
            if n >= 2:
                overlap += t - prev
        active[spk] = active.get(spk, 0) + delta
        prev = t
    return min(1.0, overlap / speech) if speech > 0 else 0.0


def cut_on_turns(
    turns: list[dict], region_start: float, region_end: float, min_s: float, max_s: float
) -> tuple[list[tuple[float, float]], float]:
    """Cut [region_start, region_end] into clips of min_s..max_s whose bounds fall on turn boundaries.

    A boundary is a turn start or end at which no other turn is in progress, so no utterance is cut
    in half. Greedy: from a clean start, take the furthest clean end within max_s. Returns the clips
    and the seconds of turn-covered time that could not be placed in any clip (reported, not hidden).
    """
    spans = sorted((max(t["start"], region_start), min(t["end"], region_end)) for t in turns)
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        return [], 0.0
    # Merge overlapping turns into blocks; block edges are the clean boundaries.
    blocks: list[list[float]] = []
    for a, b in spans:
        if blocks and a < blocks[-1][1]:
            blocks[-1][1] = max(blocks[-1][1], b)
        else:
            blocks.append([a, b])
    clips: list[tuple[float, float]] = []
    unplaced = 0.0
    i = 0
    while i < len(blocks):
        start = blocks[i][0]
        j = i
        while j + 1 < len(blocks) and blocks[j + 1][1] - start <= max_s:
            j += 1
        end = blocks[j][1]
        if end - start > max_s:  # one block longer than max_s (a long monologue): cut it into even pieces
            n = int(-(-(end - start) // max_s))
            step = (end - start) / n
            clips += [(start + k * step, start + (k + 1) * step) for k in range(n)]
            i = j + 1
            continue
        if end - start >= min_s:
            clips.append((start, end))
        elif clips and end - clips[-1][0] <= max_s:
            clips[-1] = (clips[-1][0], end)  # a short tail joins the previous clip when it fits
        else:
            unplaced += sum(b - a for a, b in blocks[i : j + 1])
        i = j + 1
    return clips, unplaced


def fixed_windows(duration: float, min_s: float, max_s: float) -> list[tuple[float, float]]:
    """Even windows of at most max_s over [0, duration] for media with no turn labels at all."""
    if duration < min_s:
        return []
    n = int(-(-duration // max_s))
    step = duration / n
    return [(k * step, (k + 1) * step) for k in range(n)]


def turns_in(turns: list[dict], start_s: float, end_s: float) -> list[dict]:
    """Turns that intersect the clip, clipped to its bounds (times stay media-file seconds).

    ``cut_start`` / ``cut_end`` say the turn really starts before / ends after the clip (a long
    monologue split between clips, a turn crossing the scored region's edge), so a consumer can
    tell a clip edge from a real turn boundary.
    """
    out = []
    for t in turns:
        a, b = max(t["start"], start_s), min(t["end"], end_s)
        if b > a:
            out.append({**t, "start": a, "end": b, "cut_start": t["start"] < start_s, "cut_end": t["end"] > end_s})
    return sorted(out, key=lambda t: (t["start"], t["end"], t["speaker"]))


@dataclass
class TurnsLeftOut:
    """Labelled speech a source could not place in any clip, counted per source for the run summary.

    A turn in no clip (outside the scored region, or in a stretch too short for a clip with no
    clip near enough to join) is ``turns`` / ``turn_s``; a turn only partly inside clips is
    ``cut_turns``, with ``cut_s`` seconds of it in none. Seconds are per turn, so overlapped speech
    counts once per speaker.
    """

    turns: int = 0
    turn_s: float = 0.0
    cut_turns: int = 0
    cut_s: float = 0.0

    def add(self, turns: list[dict], clips: list[tuple[float, float]]) -> None:
        """Count what of ``turns`` the (non-overlapping) ``clips`` leave out."""
        for t in turns:
            length = t["end"] - t["start"]
            inside = sum(max(0.0, min(t["end"], b) - max(t["start"], a)) for a, b in clips)
            if inside <= 0:
                self.turns += 1
                self.turn_s += length
            elif inside < length - 1e-6:
                self.cut_turns += 1
                self.cut_s += length - inside


def parse_float(text: str, uri: str, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LabelError(uri, line, f"{what} is not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise LabelError(uri, line, f"{what} is not finite: {text!r}")
    return value


def read_text_lines(uri: str, cfg: StorageConfig | None) -> list[str]:
    """Lines of a small label file (local or s3://), decoded as UTF-8 with the BOM stripped."""
    data = storage.read_bytes(uri, cfg)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(uri, data[: exc.start].count(b"\n") + 1, f"not UTF-8 text: {exc.reason}") from None
    return text.splitlines()


@dataclass
class ClipCut:
    """Clip length bounds every adapter honours (from CurateConfig)."""

    min_s: float = 10.0
    max_s: float = 50.0


class SourceAdapter(ABC):
    """Reads one dataset under ``root``. Subclasses set ``name`` and implement ``scan``."""

    name: str = ""

    def __init__(self, root: str, cut: ClipCut, storage_cfg: StorageConfig | None = None, options: dict | None = None):
        # Local roots are made absolute: clip records name media by path, and Ray workers (or a job's
        # uploaded working dir) do not share the driver's current directory.
        self.root = root.rstrip("/") if storage.is_remote(root) else os.path.abspath(root)
        self.cut = cut
        self.storage = storage_cfg
        self.options = options or {}
        self.left_out = TurnsLeftOut()  # filled by adapters that cut clips on labelled turns

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    def confined(self, rel: str, label_uri: str, line: int | None, field: str) -> str:
        """URI of a path that a label file names, relative to the dataset root.

        A label file is input, not code: a ``"../../etc"`` or an absolute path in it must not make a
        clip read media outside the dataset. Absolute paths, URIs and escapes are refused, and on a
        local root symlinks are resolved first, so a link inside the root pointing out is refused too.
        LabelError names the label file, its line and the field.
        """
        where = f"{field} {rel!r:.120}"
        if not rel or rel.startswith(("/", "\\")) or "://" in rel or "\x00" in rel or (len(rel) > 1 and rel[1] == ":"):
            raise LabelError(label_uri, line, f"{where} must be a path relative to the dataset root")
        norm = posixpath.normpath(rel.replace("\\", "/"))
        if norm == ".." or norm.startswith("../"):
            raise LabelError(label_uri, line, f"{where} escapes the dataset root {self.root}")
        uri = self.path(norm)
        if not storage.is_remote(self.root):
            real_root = os.path.realpath(self.root)
            if os.path.commonpath([real_root, os.path.realpath(uri)]) != real_root:
                raise LabelError(label_uri, line, f"{where} resolves (through a symlink) outside the dataset root {self.root}")
        return uri

    @abstractmethod
    def scan(self) -> Iterator[ClipRef | Quarantined]:
        """Every clip of the dataset, in a stable order, and a Quarantined item per unusable file."""

    def fingerprint(self, uri: str) -> str:
        return storage.fingerprint(uri, self.storage)

    def quarantine(self, uri: str, reason: str, line: int | None = None) -> Quarantined:
        return Quarantined(source=self.name, uri=uri, stage="adapter", reason=reason, line=line)


_JSON_WS = " \t\r\n"


def json_array_items(text: str, pos: int) -> list[tuple[int, int]]:
    """(start, end) offsets of the elements of the JSON array whose '[' is at ``pos``.

    json.loads keeps no positions; this walks the array with raw_decode so an error in element i
    can name the line it starts on.
    """
    decoder = json.JSONDecoder()
    if text[pos] != "[":
        raise ValueError(f"no JSON array at offset {pos}")
    out = []
    i = pos + 1
    while True:
        while text[i] in _JSON_WS + ",":
            i += 1
        if text[i] == "]":
            return out
        _, end = decoder.raw_decode(text, i)
        out.append((i, end))
        i = end


def line_of(text: str, pos: int) -> int:
    """1-based line number of character offset ``pos``."""
    return text.count("\n", 0, pos) + 1
