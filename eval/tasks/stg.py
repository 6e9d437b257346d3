"""STG, speaker temporal grounding: when does speaker X speak?

The answer is the union of the speaker's labelled turns in the clip. ``answer`` is that list as
JSON in clip-relative seconds (what the model is asked for); ``answer_intervals`` the same in
media-file seconds (the schema's convention). How the speaker is named: see ``_who``.
"""

from __future__ import annotations

import json
import random

from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, horizontal, merge_intervals, quote, rel, speaker_labels, strata


def _who(clip: dict, spk: str, own: list[dict], labels: dict[str, str]) -> str:
    """Name the target without giving its intervals away where the labels allow: a quote of their
    first line, else their face's place in the frame, else their name; only for unnamed, faceless,
    textless labels (AMI) the order-of-speaking label with its first onset remains."""
    first_line = quote(next((t.get("text") for t in own if t.get("text")), None))
    if first_line:
        return f'the person who says "{first_line}"'
    track = next((t for t in clip.get("gt_face_tracks") or [] if t["track_id"] == spk and t.get("boxes")), None)
    if track is not None:
        xs = [(b["x1"] + b["x2"]) / 2 for b in track["boxes"]]
        where = horizontal(sum(xs) / len(xs))
        return f"the person {'in the centre' if where == 'centre' else f'on the {where}'} of the frame"
    return labels[spk]


class STG(TaskBuilder):
    name = "STG"
    required_tools = ("diarize", "transcribe")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        turns = sorted(gt_turns(clip), key=lambda t: t["start"])
        if not turns:
            raise Skip("no labelled turns")
        labels = speaker_labels(clip)
        speakers = sorted(labels)
        samples = []
        for spk in rng.sample(speakers, min(self.cfg.per_clip, len(speakers))):
            own = [t for t in turns if t["speaker"] == spk]
            who = _who(clip, spk, own, labels)
            intervals = merge_intervals([(t["start"], t["end"]) for t in own])
            answer = [[rel(clip, a), rel(clip, b)] for a, b in intervals]
            samples.append(Sample(
                task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                source_video_id=clip["source_video_id"],
                question=(f"When does {who} speak? Answer with every [start, end] interval in seconds "
                          "from the start of the clip."),
                answer=json.dumps(answer), answer_intervals=[{"start": a, "end": b} for a, b in intervals],
                target_speaker=spk, cues=cues(clip, ("turns", "transcript", "active_speaker")),
                required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "time_base": "answer: clip seconds; answer_intervals: media seconds"},
                **strata(clip, self.cfg),
            ))
        return samples
