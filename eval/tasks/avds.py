"""AVDS, audio-visual dialogue summarization: summarize the dialogue with speaker attribution.

Only sources whose labels carry what was said (Friends-MMC, YouTube sidecars) can give a
reference; no dataset here ships human summaries, so the reference is the attributed dialogue
itself, one "<speaker>: <line>" per labelled turn, in order. Clips without labelled text are
skipped, not summarized from perception.
"""

from __future__ import annotations

import random

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, speaker_labels, strata
from eval.tasks.kinds import TEXT
from eval.tasks.registry import register_task

MIN_TURNS = 2


@register_task
class AVDS(TaskBuilder):
    name = "AVDS"
    kind = TEXT
    guided_steps = (
        "Read the transcript with its speaker labels.",
        "Summarize the main points, naming who said each.",
    )
    tool_only_tools = ('transcribe',)
    baseline_sanity = False  # tools cannot link scenes (CSNL); BLEU of a transcript dump is no sanity check (AVDS)

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        return tool_only_avds(ctx, evidence)
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


# --- tool-only baseline policy: (context, evidence per clip) -> answer text, clip-relative seconds ---


def tool_only_avds(ctx: AgentContext, evs: list[Evidence]) -> str:
    """The attributed transcript, speakers named 'Speaker N' by order of first speaking."""
    lines = []
    for ev in evs:
        segs = sorted((s for s in ev.transcript if s.get("text")), key=lambda s: s["start"])
        names: dict[str, str] = {}
        for seg in segs:
            spk = str(seg.get("speaker") or ev.speaker_at(seg["start"], seg["end"]) or "?")
            names.setdefault(spk, f"Speaker {len(names) + 1}")
            lines.append(f"{names[spk]}: {seg['text'].strip()}")
    return " ".join(lines)
