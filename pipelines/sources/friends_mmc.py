"""Friends-MMC: dialogues of sitcom turns with speaker names, text and named face boxes.

Layout read::

    friends_mmc/<split>-metadata.json   [dialogue, ...]; dialogue = [turn, ...];
        turn = {frame, video, speaker, content, faces: [[[x1, y1, x2, y2], name], ...]}
    friends_mmc/<video>                 one short video per turn (path relative to friends_mmc/)

Face boxes are pixels of the 1280x720 annotation frame, whatever size the shipped videos are
(the sample corpus' are 640x360); dividing by the annotation frame size normalizes them for any
rendition of the same picture. ``face_track_annotations/<split>/sXXeYY.pkl`` is not read: the
turn-level boxes already give each clip its named faces.

Because every turn is its own file, a 10-50 s clip is a run of consecutive turns of one dialogue
that the pipeline stitches into one file (``ClipRef.media_parts``); clip times are seconds in that
stitched file. A turn's face boxes are placed at the middle of its utterance: the annotation's
key frame is one frame of the utterance, and the metadata does not say which.
"""

from __future__ import annotations

import json
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
            "episode": m.group(1).lower()}


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
            for dialogue in dialogues:
                yield from self._dialogue(dialogue, media_dir, scenes)

    def _dialogue(self, turns: list[dict], media_dir: str, scenes: dict[str, int]) -> Iterator[ClipRef | Quarantined]:
        if not turns:
            return
        episode = turns[0]["episode"]
        timeline, t = [], 0.0
        for turn in turns:
            uri = self.path(turn["video"])
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
                mid = (x["start"] + x["end"]) / 2 - base
                for face in x["faces"]:
                    x1, y1, x2, y2 = face["box"]
                    label = "SPEAKING_AUDIBLE" if face["name"] == x["speaker"] else "NOT_SPEAKING"
                    tracks.setdefault(face["name"], []).append(
                        {"t": mid, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label})
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
