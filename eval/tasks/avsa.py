"""AVSA, audio-visual speaker association: which visible person spoke during this time span?

Built from clips whose labels tie speakers to faces: AVA (the speaking entity is a face track) and
Friends-MMC (speaker names match face names). The span is one labelled turn with no other speaker
in it; the options are the visible people, described by where they are in the frame.
"""

from __future__ import annotations

import random

from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, horizontal, rel, strata


def _describe(track: dict, t: float, named: bool) -> str:
    """A visible person as the question names them: position at time t (nearest labelled box)."""
    box = min(track["boxes"], key=lambda b: abs(b["t"] - t))
    where = horizontal((box["x1"] + box["x2"]) / 2)
    place = "in the centre" if where == "centre" else f"on the {where}"
    who = track.get("identity") if named and track.get("identity") else None
    return f"{who}, the person {place}" if who else f"the person {place} of the frame"


class AVSA(TaskBuilder):
    name = "AVSA"
    required_tools = ("diarize", "detect_faces", "track_faces", "active_speaker", "sync_check")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        tracks = [t for t in clip.get("gt_face_tracks") or [] if t.get("boxes")]
        if len(tracks) < 2:
            raise Skip("fewer than 2 labelled visible people")
        by_id = {t["track_id"]: t for t in tracks}
        turns = gt_turns(clip, self.cfg.min_turn_s)
        solo = [t for t in turns if t["speaker"] in by_id
                and not any(o is not t and o["start"] < t["end"] and t["start"] < o["end"] for o in turns)]
        if not solo:
            raise Skip("no non-overlapped turn by a visible speaker")
        named = clip["source"] == "friends_mmc"
        samples = []
        for turn in rng.sample(solo, min(self.cfg.per_clip, len(solo))):
            mid = (turn["start"] + turn["end"]) / 2
            descs = {tid: _describe(tr, mid, named) for tid, tr in by_id.items()}
            if len(set(descs.values())) < len(descs):  # two people at the same spot: disambiguate by track
                descs = {tid: f"{d} (track {tid})" for tid, d in descs.items()}
            correct = descs[turn["speaker"]]
            options, idx, letter = self.choice(correct, [d for tid, d in descs.items() if tid != turn["speaker"]], rng)
            samples.append(Sample(
                task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                source_video_id=clip["source_video_id"],
                question=(f"Between {rel(clip, turn['start']):.1f} s and {rel(clip, turn['end']):.1f} s of the clip, "
                          "which of the visible people is speaking?"),
                options=options, answer=letter, answer_index=idx, target_speaker=turn["speaker"],
                cues=cues(clip, ("turns", "faces", "active_speaker")), required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "turn": [turn["start"], turn["end"]]},
                **strata(clip, self.cfg),
            ))
        return samples
