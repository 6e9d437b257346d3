"""SRID, speaker re-identification: which later segment is spoken by the same person as segment X?

The reference is a labelled turn; the candidates are later turns, one by the same speaker (the
answer) and the others by different speakers, each at least ``srid_min_segment_s`` long.

VoxCeleb2 does not feed SRID, and that is the rule, not a gap. Its only label is the identity of
one celebrity per utterance file: no turns, so within a clip there is no labelled segment of
anyone else to serve as a distractor (the interviewer who may also talk is unlabelled, so a
segment cannot even be claimed to be the celebrity's). Re-identifying that identity across clips
would make SRID a multi-clip task, while the design builds SRID from single clips; and the
clips of one identity come from different YouTube videos, the unit of the train/test split, so a
sample mixing them would straddle the split. Cross-scene identity is what CSNL's "shared
speaker" question asks, and VoxCeleb2 identities feed it there. Such clips are skipped and
counted under their own reason.
"""

from __future__ import annotations

import random

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, rel, strata
from eval.tasks.kinds import CHOICE
from eval.tasks.registry import register_task
from eval.tasks.tool_policy import choice_letter, question_span


def _seg(clip: dict, t: dict) -> str:
    return f"the segment from {rel(clip, t['start']):.1f} s to {rel(clip, t['end']):.1f} s"


@register_task
class SRID(TaskBuilder):
    name = "SRID"
    kind = CHOICE
    guided_steps = (
        "Find the speaker label of the reference segment in the turns.",
        "Find the candidate segment with the same speaker label.",
        "Pick that option.",
    )
    tool_only_tools = ('diarize',)

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        return tool_only_srid(ctx, evidence)
    required_tools = ("diarize",)

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        if not clip.get("gt_turns") and clip.get("gt_speakers"):
            raise Skip("speaker identity only, no speaker timings (VoxCeleb2)")
        turns = sorted(gt_turns(clip, self.cfg.srid_min_segment_s), key=lambda t: t["start"])
        if len({t["speaker"] for t in turns}) < 2:
            raise Skip("fewer than 2 labelled speakers")
        refs = []
        for i, ref in enumerate(turns):
            later = [t for t in turns[i + 1:] if t["start"] >= ref["end"]]
            same = [t for t in later if t["speaker"] == ref["speaker"]]
            other = [t for t in later if t["speaker"] != ref["speaker"]]
            if same and other:
                refs.append((ref, same, other))
        if not refs:
            raise Skip("no turn followed by both a same-speaker and an other-speaker segment")
        samples = []
        for ref, same, other in rng.sample(refs, min(self.cfg.per_clip, len(refs))):
            target = rng.choice(same)
            # Prefer distractors from distinct speakers: two turns of one other speaker would both be wrong
            # for the same reason, which makes the question easier than it looks.
            by_spk: dict[str, list[dict]] = {}
            for t in other:
                by_spk.setdefault(t["speaker"], []).append(t)
            distract = [rng.choice(v) for _, v in sorted(by_spk.items())]
            spare = [t for t in other if t not in distract]
            distract += rng.sample(spare, min(len(spare), max(0, self.cfg.num_options - 1 - len(distract))))
            options, idx, letter = self.choice(_seg(clip, target), [_seg(clip, t) for t in distract], rng)
            samples.append(Sample(
                task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                source_video_id=clip["source_video_id"],
                question=(f"Listen to {_seg(clip, ref)}. Which of the later segments is spoken by the same person?"),
                options=options, answer=letter, answer_index=idx, target_speaker=ref["speaker"],
                cues=cues(clip, ("turns", "faces")), required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "reference": [ref["start"], ref["end"]],
                      "target": [target["start"], target["end"]]},
                **strata(clip, self.cfg),
            ))
        return samples


# --- tool-only baseline policy: (context, evidence per clip) -> answer text, clip-relative seconds ---


def tool_only_srid(ctx: AgentContext, evs: list[Evidence]) -> str:
    ev = evs[0]
    ref = question_span(ctx.question)
    ref_spk = ev.speaker_at(*ref) if ref else None
    if ref_spk is None:
        return choice_letter(None)
    best, best_share = None, 0.0
    for i, o in enumerate(ctx.options):
        span = question_span(o)
        if span is None:
            continue
        share = ev.speaker_share(ref_spk, *span)
        if share > best_share:
            best, best_share = i, share
    return choice_letter(best)
