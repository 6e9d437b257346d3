"""CSNL, cross-scene narrative linking: relate two scenes of one episode, meeting or video.

Pairs of clips of the same source video, asked one of three questions by rule from labels:
- order: which of the two scenes happens first (scene_index);
- shared speaker: do the scenes share a speaker (gt speaker ids, VoxCeleb2's identity included);
- continuation: does the second scene directly continue the first (adjacent scene_index).
The question type rotates so the set covers all three.
"""

from __future__ import annotations

import itertools
import random

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, strata
from eval.tasks.kinds import CHOICE
from eval.tasks.registry import register_task
from eval.tasks.tool_policy import choice_letter

KINDS = ("order", "shared_speaker", "continuation")


@register_task
class CSNL(TaskBuilder):
    name = "CSNL"
    kind = CHOICE
    guided_steps = (
        "Compare the speakers and topics of the two scenes.",
        "Decide order, shared speakers and continuation.",
        "Pick the option that fits.",
    )
    tool_only_tools = ('diarize', 'transcribe')
    baseline_sanity = False  # tools cannot link scenes (CSNL); BLEU of a transcript dump is no sanity check (AVDS)

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        return tool_only_csnl(ctx, evidence)
    required_tools = ("diarize", "transcribe", "track_faces")
    multi_clip = True

    def build_video(self, clips: list[dict], rng: random.Random) -> list[Sample]:
        clips = sorted(clips, key=lambda c: c["scene_index"])
        if len(clips) < 2:
            raise Skip("source video has fewer than 2 scenes")
        pairs = list(itertools.combinations(clips, 2))
        rng.shuffle(pairs)
        samples = []
        offset = rng.randrange(len(KINDS))
        for n, (a, b) in enumerate(pairs[: self.cfg.csnl_max_pairs_per_video]):
            kind = KINDS[(n + offset) % len(KINDS)]
            first, second = (a, b) if rng.random() < 0.5 else (b, a)  # shown order, independent of story order
            try:
                samples.append(self._sample(kind, first, second, rng))
            except Skip:
                if kind != "order":  # order is always answerable; fall back rather than lose the pair
                    samples.append(self._sample("order", first, second, rng))
        return samples

    def _sample(self, kind: str, first: dict, second: dict, rng: random.Random) -> Sample:
        if kind == "order":
            q = "Two scenes from the same video are shown, scene 1 then scene 2. Which one happens earlier?"
            correct = "scene 1" if first["scene_index"] < second["scene_index"] else "scene 2"
            wrong = ["scene 2" if correct == "scene 1" else "scene 1"]
        elif kind == "shared_speaker":
            s1, s2 = set(first.get("gt_speakers") or []), set(second.get("gt_speakers") or [])
            if not s1 or not s2:
                raise Skip("a scene has no labelled speakers")
            q = "Does anyone who speaks in scene 1 also speak in scene 2?"
            correct, wrong = ("yes", ["no"]) if s1 & s2 else ("no", ["yes"])
        else:
            q = "Does scene 2 pick up directly where scene 1 ends, with nothing in between?"
            correct, wrong = ("yes", ["no"]) if second["scene_index"] == first["scene_index"] + 1 else ("no", ["yes"])
        options, idx, letter = self.choice(correct, wrong, rng)
        st = strata(first, self.cfg)
        st["num_visible"] = max(st["num_visible"], strata(second, self.cfg)["num_visible"])
        return Sample(
            task=self.name, clip_ids=[first["clip_id"], second["clip_id"]], source=first["source"],
            source_video_id=first["source_video_id"], question=q, options=options, answer=letter, answer_index=idx,
            cues={"scene_1": cues(first, ("turns", "transcript")), "scene_2": cues(second, ("turns", "transcript"))},
            required_tools=list(self.required_tools),
            meta={"kind": kind, "scene_indices": [first["scene_index"], second["scene_index"]]},
            **st,
        )


# --- tool-only baseline policy: (context, evidence per clip) -> answer text, clip-relative seconds ---


def tool_only_csnl(ctx: AgentContext, evs: list[Evidence]) -> str:
    # Diarization labels are anonymous per clip and no tool output orders scenes in a story, so the
    # tools cannot link two scenes; the baseline answers the first option (a chance-level floor).
    return choice_letter(None)
