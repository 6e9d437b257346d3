"""YouTube videos with an optional JSON sidecar of speakers and turns.

Layout read::

    youtube/<video_id>.mp4
    youtube/<video_id>.json   {video_id, title, speakers: [{id, name}], turns: [{start, end, speaker, text}]}

With a sidecar, clips are cut on its turn boundaries and the turns are gt_*. Without one the video
is cut into even windows with no gt labels (perception still runs; the task builders skip what
needs labels and count it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from infra import storage
from infra.media import probe
from pipelines.sources.base import (
    ClipRef,
    LabelError,
    Quarantined,
    SourceAdapter,
    cut_on_turns,
    fixed_windows,
    json_array_items,
    line_of,
    turns_in,
)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm")


def parse_sidecar(uri: str, text: str, video_id: str) -> list[dict]:
    """Turns from a sidecar (speaker ids checked against "speakers" where given); LabelError names the line."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelError(uri, exc.lineno, f"invalid JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("turns"), list):
        raise LabelError(uri, 1, "sidecar must be an object with a 'turns' list")
    if doc.get("video_id") not in (None, video_id):
        raise LabelError(uri, 1, f"video_id {doc.get('video_id')!r} does not match the file {video_id!r}")
    names = {}
    for i, spk in enumerate(doc.get("speakers") or []):
        if not isinstance(spk, dict) or "id" not in spk:
            raise LabelError(uri, None, f"speakers[{i}] has no 'id'")
        names[str(spk["id"])] = str(spk.get("name") or spk["id"])
    turns = []
    # Locate each turn in the text so an error names its line, as for the line-based formats.
    m = re.search(r'"turns"\s*:\s*\[', text)
    starts = [line_of(text, a) for a, _ in json_array_items(text, m.end() - 1)] if m else []
    for i, t in enumerate(doc["turns"]):
        line = starts[i] if i < len(starts) else None
        if not isinstance(t, dict):
            raise LabelError(uri, line, f"turns[{i}] is not an object")
        try:
            start, end = float(t["start"]), float(t["end"])
            speaker = str(t["speaker"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LabelError(uri, line, f"turns[{i}]: bad or missing start/end/speaker ({exc})") from None
        if not 0 <= start < end:
            raise LabelError(uri, line, f"turns[{i}]: interval [{start}, {end}] is empty or negative")
        if names and speaker not in names:
            raise LabelError(uri, line, f"turns[{i}]: speaker {speaker!r} is not in 'speakers'")
        text_i = t.get("text")
        turns.append({"start": start, "end": end, "speaker": speaker, "text": None if text_i is None else str(text_i)})
    return sorted(turns, key=lambda t: (t["start"], t["speaker"]))


class YoutubeAdapter(SourceAdapter):
    name = "youtube"

    def scan(self) -> Iterator[ClipRef | Quarantined]:
        for uri in storage.list_files(self.root, "", self.storage):
            if not uri.lower().endswith(VIDEO_SUFFIXES):
                continue
            vid = uri.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            sidecar = uri.rsplit(".", 1)[0] + ".json"
            turns: list[dict] | None = None
            if storage.exists(sidecar, self.storage):
                try:
                    turns = parse_sidecar(sidecar, storage.read_bytes(sidecar, self.storage).decode("utf-8"), vid)
                except LabelError as err:
                    yield Quarantined.from_error(self.name, err)
                    continue
                except UnicodeDecodeError as exc:
                    yield self.quarantine(sidecar, f"not UTF-8 text: {exc.reason}")
                    continue
            info = probe(uri, self.storage)
            if not info.ok or not info.duration_s:
                yield Quarantined(self.name, uri, "decode", f"unreadable video: {info.error or 'no duration'}")
                continue
            if turns:
                clips, _ = cut_on_turns(turns, 0.0, info.duration_s, self.cut.min_s, self.cut.max_s)
                self.left_out.add(turns, clips)
            else:
                clips = fixed_windows(info.duration_s, self.cut.min_s, self.cut.max_s)
            fp = self.fingerprint(uri) if clips else ""
            for k, (a, b) in enumerate(clips):
                yield ClipRef(
                    source=self.name, source_video_id=vid, scene_index=k, media_uri=uri, media_fingerprint=fp,
                    start_s=a, end_s=b, gt_turns=turns_in(turns, a, b) if turns else [], gt_face_tracks=[],
                    gt_num_visible=None, quality_flags=[] if turns else ["no_gt_labels"],
                )
