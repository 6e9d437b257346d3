"""AMI meeting corpus: 10-field RTTM turns, UEM scored regions, Mix-Headset wav, optional video.

Layout read (the corpus' own)::

    ami/rttm/<meeting>.rttm                       SPEAKER <uri> 1 <onset> <dur> <NA> <NA> <spk> <NA> <NA>
    ami/uem/<meeting>.uem                         <uri> <channel> <start> <end>   (optional)
    ami/amicorpus/<meeting>/audio/<meeting>.Mix-Headset.wav
    ami/amicorpus/<meeting>/video/<meeting>.Closeup*.mp4   (optional; the media when present)

AMI has no face labels, so gt_face_tracks is empty and gt_num_visible unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterator

from infra import storage
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

RTTM_FIELDS = 10
# Old NIST RTTMs carry per-speaker info lines without times; they hold no turn and are skipped by design.
RTTM_SKIPPED_TYPES = ("SPKR-INFO",)


def parse_rttm(uri: str, lines: list[str]) -> dict[str, list[dict]]:
    """{recording uri field: turns} from RTTM text; raises LabelError naming the line."""
    out: dict[str, list[dict]] = {}
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";;"):
            continue
        parts = line.split()
        if parts[0] in RTTM_SKIPPED_TYPES:
            continue
        if len(parts) != RTTM_FIELDS:
            raise LabelError(uri, n, f"RTTM line has {len(parts)} fields, expected {RTTM_FIELDS}")
        if parts[0] != "SPEAKER":
            raise LabelError(uri, n, f"RTTM type {parts[0]!r} is not SPEAKER")
        onset = parse_float(parts[3], uri, n, "onset")
        dur = parse_float(parts[4], uri, n, "duration")
        if onset < 0 or dur <= 0:
            raise LabelError(uri, n, f"onset {onset} / duration {dur} out of range (need onset >= 0, duration > 0)")
        out.setdefault(parts[1], []).append({"start": onset, "end": onset + dur, "speaker": parts[7], "text": None})
    return out


def parse_uem(uri: str, lines: list[str]) -> dict[str, tuple[float, float]]:
    """{recording: (start, end)} from UEM text (several regions of one recording are spanned)."""
    out: dict[str, tuple[float, float]] = {}
    for n, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith(";;"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise LabelError(uri, n, f"UEM line has {len(parts)} fields, expected 4")
        a, b = parse_float(parts[2], uri, n, "start"), parse_float(parts[3], uri, n, "end")
        if not 0 <= a < b:
            raise LabelError(uri, n, f"UEM region [{a}, {b}] is empty or negative")
        old = out.get(parts[0])
        out[parts[0]] = (min(a, old[0]), max(b, old[1])) if old else (a, b)
    return out


class AmiAdapter(SourceAdapter):
    name = "ami"

    def scan(self) -> Iterator[ClipRef | Quarantined]:
        for rttm_uri in storage.list_files(self.path("rttm"), ".rttm", self.storage):
            meeting = rttm_uri.rsplit("/", 1)[-1][: -len(".rttm")]
            try:
                yield from self._meeting(meeting, rttm_uri)
            except LabelError as err:
                yield Quarantined.from_error(self.name, err)

    def _meeting(self, meeting: str, rttm_uri: str) -> Iterator[ClipRef | Quarantined]:
        by_uri = parse_rttm(rttm_uri, read_text_lines(rttm_uri, self.storage))
        turns = by_uri.get(meeting)
        if turns is None:
            found = sorted(by_uri) or ["none"]
            raise LabelError(rttm_uri, None, f"no SPEAKER lines for recording {meeting!r} (found {found})")
        if len(by_uri) > 1:
            raise LabelError(rttm_uri, None, f"RTTM mixes recordings {sorted(by_uri)}; expected only {meeting!r}")
        uem_uri = self.path("uem", f"{meeting}.uem")
        if storage.exists(uem_uri, self.storage):
            regions = parse_uem(uem_uri, read_text_lines(uem_uri, self.storage))
            if meeting not in regions:
                raise LabelError(uem_uri, None, f"no region for recording {meeting!r}")
            region = regions[meeting]
        else:
            region = (0.0, max(t["end"] for t in turns))
        audio = self.path("amicorpus", meeting, "audio", f"{meeting}.Mix-Headset.wav")
        if not storage.exists(audio, self.storage):
            yield self.quarantine(audio, f"Mix-Headset audio missing for meeting {meeting} (labels in {rttm_uri})")
            return
        videos = storage.list_files(self.path("amicorpus", meeting, "video"), ".mp4", self.storage)
        # Prefer a close-up camera: it is the view in which faces are large enough to detect.
        videos.sort(key=lambda u: (".Closeup" not in u, u))
        media = videos[0] if videos else audio
        fp = self.fingerprint(media)
        clips, _ = cut_on_turns(turns, region[0], region[1], self.cut.min_s, self.cut.max_s)
        self.left_out.add(turns, clips)  # turns outside the UEM region or in no clip: counted, not lost
        for k, (a, b) in enumerate(clips):
            yield ClipRef(
                source=self.name, source_video_id=meeting, scene_index=k, media_uri=media, media_fingerprint=fp,
                start_s=a, end_s=b, audio_uri=audio, gt_turns=turns_in(turns, a, b), gt_face_tracks=[],
                gt_num_visible=None,
            )
