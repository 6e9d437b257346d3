"""A seventh task, in one file: "who speaks first?". Registering this class is the only step that adds
it; curation's builder, RAFT's prompts, references and answer reward, the evaluator, the tool-only
baseline and the report all find it through the registry (tests/raft/test_toy_task.py)."""

from __future__ import annotations

import random

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, speaker_labels, strata
from eval.tasks.kinds import CHOICE
from eval.tasks.registry import register_task
from eval.tasks.tool_policy import choice_letter, option_for_speaker


@register_task
class FIRST(TaskBuilder):
    name = "FIRST"
    kind = CHOICE
    required_tools = ("diarize",)
    guided_steps = ("Find the earliest turn.", "Pick the option naming its speaker.")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        turns = sorted(gt_turns(clip), key=lambda t: (t["start"], t["speaker"]))
        labels = speaker_labels(clip)
        if len(labels) < 2:
            raise Skip("fewer than 2 speakers")
        first = turns[0]["speaker"]
        options, idx, letter = self.choice(labels[first], [v for k, v in labels.items() if k != first], rng)
        return [Sample(task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                       source_video_id=clip["source_video_id"], question="Who speaks first in the clip?",
                       options=options, answer=letter, answer_index=idx, target_speaker=first,
                       cues=cues(clip, ("turns",)), required_tools=list(self.required_tools),
                       meta={"clip_start_s": clip["start_s"]}, **strata(clip, self.cfg))]

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        turns = sorted(evidence[0].turns, key=lambda t: t["start"])
        return choice_letter(option_for_speaker(evidence[0], ctx.options, str(turns[0]["speaker"])) if turns else None)
