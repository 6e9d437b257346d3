"""Friends-MMC: dialogues of sitcom turns with speaker names, text and named face boxes.

Layout read::

    friends_mmc/<split>-metadata.json   [dialogue, ...]; dialogue = [turn, ...];
        turn = {frame, video, speaker, content, faces: [[[x1, y1, x2, y2], name], ...]}
    friends_mmc/<video>                 one short video per turn (path relative to friends_mmc/; an
                                        absolute one, or one escaping the folder, symlinks resolved,
                                        quarantines its dialogue: SourceAdapter.confined)

    friends_mmc/face_track_annotations/<split>/sXXeYY.pkl   optional, per episode (see below)

Face boxes are pixels of the 1280x720 annotation frame, whatever size the shipped videos are
(the sample corpus' are 640x360); dividing by the annotation frame size normalizes them for any
rendition of the same picture.

Face tracks. Where ``face_track_annotations/<split>/<episode>.pkl`` exists (``<split>`` is the
metadata file's prefix: train, test, test-noisy), it is read as the dataset publishes it: a pickled
dict ``{"sXXeYY-<first frame>-<last frame>": [track, ...]}`` with one entry per turn, each track
``{"frame": int array, "bbox": (N, 4) float array of x1,y1,x2,y2 pixels, "name": str,
"face_track_id": int}`` (Friends-MMC's csi/debug.ipynb prints one). A turn finds its entry by its
video's name when that is the key (the real metadata's ``video``), else by the entry whose frame
range holds the turn's key ``frame``. Frame f of an entry spanning frames [a, b] sits at
(f - a) / (b - a + 1) of the turn's duration, so no frame rate is assumed. Those per-frame boxes
become the turn's part of each named ``gt_face_tracks`` entry; the key-frame box is kept only for
a name the pickle has no track for in that turn. The pickle is unpickled with numpy arrays as the
only classes allowed, so a label file cannot run code; a broken one is quarantined (one row)
and its episode falls back to the key-frame boxes, which are still correct labels, only sparser.

Because every turn is its own file, a 10-50 s clip is a run of consecutive turns of one dialogue
that the pipeline stitches into one file (``ClipRef.media_parts``); clip times are seconds in that
stitched file. A turn's face boxes are placed at the middle of its utterance: the annotation's
key frame is one frame of the utterance, and the metadata does not say which.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import re
from collections.abc import Iterator

from infra import storage
from infra.ids import content_id
from infra.media import probe
from pipelines.sources.base import (
    ClipRef,
    LabelError,
    Quarantined,
    SourceAdapter,
    cut_on_turns,
    json_array_items,
    line_of,
)

METADATA_SUFFIX = "-metadata.json"
EPISODE_RE = re.compile(r"(s\d{2}e\d{2})", re.IGNORECASE)
DEFAULT_FRAME_SIZE = (1280, 720)
FACE_TRACK_DIR = "face_track_annotations"
TRACK_KEY_RE = re.compile(r"^(s\d{2}e\d{2})-(\d+)-(\d+)$", re.IGNORECASE)
KEY_FRAME_RE = re.compile(r"-(\d+)$")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; any other class is refused."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refuses {module}.{name}: only numpy arrays may appear")


def parse_face_tracks(uri: str, data: bytes, frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE) -> dict[str, dict]:
    """``{key: {"first", "last", "tracks": [{"name", "frames", "boxes"}]}}`` from one episode pickle,
    boxes normalized by the annotation frame; LabelError names the file, the key and the track."""
    import numpy as np

    try:
        doc = _ArraysOnly(io.BytesIO(data)).load()
    except Exception as exc:  # UnpicklingError, EOFError, ...: anything a broken file raises
        raise LabelError(uri, None, f"not a readable face-track pickle: {type(exc).__name__}: {exc}") from None
    if not isinstance(doc, dict):
        raise LabelError(uri, None, f"face-track pickle holds a {type(doc).__name__}, not a dict of turns")
    w, h = frame_size
    out = {}
    for key, tracks in doc.items():
        m = TRACK_KEY_RE.match(str(key))
        if not m or not isinstance(tracks, list):
            raise LabelError(uri, None, f"entry {key!r:.60}: want 'sXXeYY-<first>-<last>': [track, ...]")
        first, last = int(m.group(2)), int(m.group(3))
        if last < first:
            raise LabelError(uri, None, f"entry {key}: last frame before first")
        parsed = []
        for j, tr in enumerate(tracks):
            where = f"entry {key} track {j}"
            if not isinstance(tr, dict) or not {"frame", "bbox", "name"} <= set(tr):
                raise LabelError(uri, None, f"{where}: want a dict with frame, bbox and name")
            try:
                frames = np.asarray(tr["frame"], dtype=np.int64).reshape(-1)
                boxes = np.asarray(tr["bbox"], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise LabelError(uri, None, f"{where}: frame/bbox are not numeric arrays: {exc}") from None
            if boxes.shape != (frames.size, 4) or not np.isfinite(boxes).all():
                raise LabelError(uri, None, f"{where}: bbox must be {frames.size}x4 finite numbers, got {boxes.shape}")
            if frames.size and (frames.min() < first or frames.max() > last):
                raise LabelError(uri, None, f"{where}: frames {frames.min()}..{frames.max()} outside {first}..{last}")
            # TalkNet-style tracks pad boxes, which can poke past the frame edge: clip to the frame.
            norm = np.clip(boxes / [w, h, w, h], 0.0, 1.0)
            if ((norm[:, 2] <= norm[:, 0]) | (norm[:, 3] <= norm[:, 1])).any():
                raise LabelError(uri, None, f"{where}: a box is empty or outside the {w}x{h} annotation frame")
            parsed.append({"name": str(tr["name"]), "frames": frames.tolist(), "boxes": norm.tolist()})
        out[str(key)] = {"episode": m.group(1).lower(), "first": first, "last": last, "tracks": parsed}
    return out


def track_entry(turn: dict, entries: dict[str, dict]) -> dict | None:
    """The pickle entry of one turn: by its video's name, else the one whose frames hold its key frame."""
    stem = turn["video"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem in entries:
        return entries[stem]
    m = KEY_FRAME_RE.search(str(turn.get("frame", "")))
    if not m:
        return None
    f = int(m.group(1))
    hits = [e for e in entries.values() if e["episode"] == turn["episode"] and e["first"] <= f <= e["last"]]
    return hits[0] if len(hits) == 1 else None


def _turn(uri: str, line: int, d: int, k: int, t, frame_size: tuple[int, int]) -> dict:
    where = f"dialogue {d} turn {k}"
    if not isinstance(t, dict):
        raise LabelError(uri, line, f"{where} is not an object")
    missing = [key for key in ("frame", "video", "speaker", "content", "faces") if key not in t]
    if missing:
        raise LabelError(uri, line, f"{where} lacks {missing}")
    if not isinstance(t["video"], str) or not t["video"]:
        raise LabelError(uri, line, f"{where}: 'video' must be a relative path")
    faces = []
    w, h = frame_size
    if not isinstance(t["faces"], list):
        raise LabelError(uri, line, f"{where}: 'faces' must be a list of [[x1,y1,x2,y2], name]")
    for j, face in enumerate(t["faces"]):
        ok = (isinstance(face, list) and len(face) == 2 and isinstance(face[0], list) and len(face[0]) == 4
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in face[0])
              and isinstance(face[1], str))
        if not ok:
            raise LabelError(uri, line, f"{where}: faces[{j}] is not [[x1,y1,x2,y2], name]: {face!r:.80}")
        x1, y1, x2, y2 = face[0]
        if not (0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h):
            raise LabelError(uri, line, f"{where}: faces[{j}] box {face[0]} is outside the {w}x{h} annotation frame")
        faces.append({"box": (x1 / w, y1 / h, x2 / w, y2 / h), "name": face[1]})
    m = EPISODE_RE.search(f"{t['frame']} {t['video']}")
    if not m:
        raise LabelError(uri, line, f"{where}: no sXXeYY episode in frame {t['frame']!r} or video {t['video']!r}")
    return {"video": t["video"], "speaker": str(t["speaker"]), "text": str(t["content"]), "faces": faces,
            "episode": m.group(1).lower(), "frame": str(t["frame"]), "line": line}


def parse_metadata(uri: str, text: str, frame_size: tuple[int, int] = DEFAULT_FRAME_SIZE) -> list[list[dict]]:
    """Dialogues of validated turns; LabelError names the line where the bad turn starts."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelError(uri, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(doc, list):
        raise LabelError(uri, 1, "metadata must be a list of dialogues")
    dialogue_spans = json_array_items(text, text.index("["))
    out = []
    for d, (dialogue, (d_start, _)) in enumerate(zip(doc, dialogue_spans, strict=True)):
        if not isinstance(dialogue, list):
            raise LabelError(uri, line_of(text, d_start), f"dialogue {d} is not a list of turns")
        turn_spans = json_array_items(text, d_start)
        out.append([_turn(uri, line_of(text, s), d, k, t, frame_size)
                    for k, (t, (s, _)) in enumerate(zip(dialogue, turn_spans, strict=True))])
    return out


class FriendsMmcAdapter(SourceAdapter):
    name = "friends_mmc"

    def scan(self) -> Iterator[ClipRef | Quarantined]:
        frame_size = tuple(self.options.get("frame_size") or DEFAULT_FRAME_SIZE)
        media_dir = self.options.get("media_dir")
        if not media_dir:
            raise ValueError("friends_mmc needs options['media_dir'], where stitched clips are written")
        scenes: dict[str, int] = {}
        self._tracks: dict[tuple[str, str], dict[str, dict]] = {}
        for meta_uri in storage.list_files(self.root, METADATA_SUFFIX, self.storage):
            try:
                text = storage.read_bytes(meta_uri, self.storage).decode("utf-8-sig")
                dialogues = parse_metadata(meta_uri, text, frame_size)
            except LabelError as err:
                yield Quarantined.from_error(self.name, err)
                continue
            except UnicodeDecodeError as exc:
                yield self.quarantine(meta_uri, f"not UTF-8 text: {exc.reason}")
                continue
            split = meta_uri.rsplit("/", 1)[-1][: -len(METADATA_SUFFIX)]
            for dialogue in dialogues:
                if not dialogue:
                    continue
                key = (split, dialogue[0]["episode"])
                yield from self._load_tracks(*key, frame_size)
                yield from self._dialogue(meta_uri, dialogue, media_dir, scenes, self._tracks[key])

    def _load_tracks(self, split: str, episode: str, frame_size: tuple[int, int]) -> Iterator[Quarantined]:
        """Read face_track_annotations/<split>/<episode>.pkl once, if it exists (quarantined if broken)."""
        if (split, episode) in self._tracks:
            return
        self._tracks[(split, episode)] = {}
        uri = self.path(FACE_TRACK_DIR, split, f"{episode}.pkl")
        if not storage.exists(uri, self.storage):
            return
        try:
            self._tracks[(split, episode)] = parse_face_tracks(uri, storage.read_bytes(uri, self.storage), frame_size)
        except LabelError as err:
            yield Quarantined.from_error(self.name, err)

    def _dialogue(self, meta_uri: str, turns: list[dict], media_dir: str, scenes: dict[str, int],
                  track_entries: dict[str, dict]) -> Iterator[ClipRef | Quarantined]:
        episode = turns[0]["episode"]
        timeline, t = [], 0.0
        for k, turn in enumerate(turns):
            try:
                uri = self.confined(turn["video"], meta_uri, turn["line"], f"turn {k} 'video'")
            except LabelError as err:
                # A turn whose media is outside the dataset breaks the dialogue's timeline like an unreadable one.
                yield Quarantined.from_error(self.name, err)
                return
            info = probe(uri, self.storage)
            if not info.ok or not info.duration_s:
                # One unreadable utterance breaks the dialogue's timeline: quarantine it whole.
                yield Quarantined(self.name, uri, "decode", f"unreadable turn video: {info.error or 'no duration'}")
                return
            timeline.append({**turn, "uri": uri, "start": t, "end": t + info.duration_s})
            t += info.duration_s
        clips, _ = cut_on_turns(timeline, 0.0, t, self.cut.min_s, self.cut.max_s)
        for a, b in clips:
            part = [x for x in timeline if x["start"] >= a - 1e-6 and x["end"] <= b + 1e-6]
            base = part[0]["start"]
            parts = [(x["uri"], x["end"] - x["start"]) for x in part]
            fp = content_id(*[self.fingerprint(u) for u, _ in parts], [d for _, d in parts])
            tracks: dict[str, list[dict]] = {}
            for x in part:
                for name, ts, (x1, y1, x2, y2) in _turn_boxes(x, track_entry(x, track_entries), base):
                    label = "SPEAKING_AUDIBLE" if name == x["speaker"] else "NOT_SPEAKING"
                    tracks.setdefault(name, []).append({"t": ts, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label})
            k = scenes.get(episode, 0)
            scenes[episode] = k + 1
            yield ClipRef(
                source=self.name, source_video_id=episode, scene_index=k,
                media_uri=storage.join(media_dir, self.name, episode, f"{fp}.mp4"), media_fingerprint=fp,
                start_s=0.0, end_s=b - a,
                gt_turns=[{"start": x["start"] - base, "end": x["end"] - base, "speaker": x["speaker"],
                           "text": x["text"]} for x in part],
                gt_face_tracks=[{"track_id": name, "identity": name, "boxes": boxes}
                                for name, boxes in sorted(tracks.items())],
                gt_num_visible=len(tracks), media_parts=parts,
            )


def _turn_boxes(turn: dict, entry: dict | None, base: float) -> list[tuple[str, float, tuple]]:
    """(name, clip-relative t, box) for one turn: the pickle's per-frame boxes where it has a track
    for the name, else the key-frame box at the middle of the utterance."""
    out = []
    dur = turn["end"] - turn["start"]
    per_frame = dur / (entry["last"] - entry["first"] + 1) if entry else 0.0
    tracked = set()
    for tr in entry["tracks"] if entry else []:
        tracked.add(tr["name"])
        for f, box in zip(tr["frames"], tr["boxes"], strict=True):
            out.append((tr["name"], turn["start"] - base + (f - entry["first"]) * per_frame, tuple(box)))
    mid = (turn["start"] + turn["end"]) / 2 - base
    out += [(face["name"], mid, face["box"]) for face in turn["faces"] if face["name"] not in tracked]
    return [o for o in out if math.isfinite(o[1])]
