"""AVDS, audio-visual dialogue summarization: summarize the dialogue with speaker attribution.

Only sources whose labels carry what was said (Friends-MMC, YouTube sidecars) can give a
reference; no dataset here ships human summaries, so the reference is the attributed dialogue
itself, one "<speaker>: <line>" per labelled turn, in order. Clips without labelled text are
skipped, not summarized from perception.
"""

from __future__ import annotations

import random

from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, speaker_labels, strata

MIN_TURNS = 2


class AVDS(TaskBuilder):
    name = "AVDS"
    required_tools = ("diarize", "transcribe")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        turns = [t for t in sorted(gt_turns(clip), key=lambda t: t["start"]) if t.get("text")]
        if len(turns) < MIN_TURNS:
            raise Skip("labels carry no dialogue text" if not turns else "fewer than 2 labelled lines")
        if len({t["speaker"] for t in turns}) < 2:
            raise Skip("fewer than 2 labelled speakers")  # a monologue is not a dialogue to attribute
        labels = speaker_labels(clip)
        names = {s: lab.split(" (")[0] for s, lab in labels.items()}  # "Speaker 2", without the timing hint
        reference = " ".join(f"{names[t['speaker']]}: {t['text'].strip()}" for t in turns)
        return [Sample(
            task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"], source_video_id=clip["source_video_id"],
            question=("Summarize the conversation in this clip. Say who said what, naming each speaker "
                      f"({', '.join(sorted(set(names.values())))})."),
            answer=reference, references=[reference], cues=cues(clip, ("turns", "transcript")),
            required_tools=list(self.required_tools),
            meta={"clip_start_s": clip["start_s"], "speakers": sorted(set(names.values())),
                  "reference_kind": "attributed labelled dialogue"},
            **strata(clip, self.cfg),
        )]
