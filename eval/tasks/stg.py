"""STG, speaker temporal grounding: when does speaker X speak?

The answer is the union of the speaker's labelled turns in the clip. ``answer`` is that list as
JSON in clip-relative seconds (what the model is asked for); ``answer_intervals`` the same in
media-file seconds (the schema's convention). How the speaker is named: see ``_who``.

The question must not hold any part of the answer. The shared speaker labels of unnamed sources
("Speaker 2 (first heard at 12.5 s)") give away the first interval's start, so STG never uses
them: an AMI speaker with no text and no face is named by one moment in the middle of a stretch
where only they speak, which says nothing about where any of their intervals begins or ends.
"""

from __future__ import annotations

import json
import random
import re

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import (
    NAMED_SOURCES,
    cues,
    gt_turns,
    horizontal,
    quote,
    rel,
    speaker_labels,
    strata,
)
from eval.tasks.kinds import INTERVALS
from eval.tasks.registry import register_task
from eval.tasks.tool_policy import FIRST_HEARD, QUOTE, SPEAKING_AT, option_place, words
from infra import intervals

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _who(clip: dict, spk: str, own: list[dict], turns: list[dict], labels: dict[str, str],
         answer: list[list[float]]) -> str:
    """Name the target without giving its intervals away: a quote of their first line, their face's
    place in the frame, their name where the source has names, else a moment inside a stretch where
    only they speak (``_moment``). Raises Skip when none of these can name them."""
    first_line = quote(next((t.get("text") for t in own if t.get("text")), None))
    if first_line:
        return f'the person who says "{first_line}"'
    track = next((t for t in clip.get("gt_face_tracks") or [] if t["track_id"] == spk and t.get("boxes")), None)
    if track is not None:
        xs = [(b["x1"] + b["x2"]) / 2 for b in track["boxes"]]
        where = horizontal(sum(xs) / len(xs))
        return f"the person {'in the centre' if where == 'centre' else f'on the {where}'} of the frame"
    if clip["source"] in NAMED_SOURCES:
        return labels[spk]
    t = _moment(clip, spk, turns, answer)
    if t is None:
        raise Skip("speaker cannot be named without giving their intervals away")
    return f"the person speaking at {t:.1f} s"


def _moment(clip: dict, spk: str, turns: list[dict], answer: list[list[float]]) -> float | None:
    """Clip-relative middle of the speaker's longest stretch with no one else speaking, rounded as the
    question prints it, and only if it is at least 1 s from both ends of that stretch and equal to no
    answer boundary (so it cannot be read as one)."""
    solo = intervals.subtract([(t["start"], t["end"]) for t in turns if t["speaker"] == spk],
                              [(t["start"], t["end"]) for t in turns if t["speaker"] != spk])
    bounds = {v for iv in answer for v in iv}
    for p, q in sorted(solo, key=lambda iv: (iv[0] - iv[1], iv[0])):
        t = rel(clip, (p + q) / 2)
        if q - p >= 2.0 and t not in bounds:
            return t
    return None


@register_task
class STG(TaskBuilder):
    name = "STG"
    kind = INTERVALS
    guided_steps = (
        "Find the speaker label of the target person.",
        "Collect every turn of that label.",
        "Answer with those turns' [start, end] pairs.",
    )
    tool_only_tools = ('diarize', 'transcribe', 'track_faces', 'active_speaker')

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        return tool_only_stg(ctx, evidence)
    required_tools = ("diarize", "transcribe")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        turns = sorted(gt_turns(clip), key=lambda t: t["start"])
        if not turns:
            raise Skip("no labelled turns")
        labels = speaker_labels(clip)
        speakers = sorted(labels)
        samples: list[Sample] = []
        skipped: Skip | None = None
        # A full shuffle whose first per_clip draws are those of rng.sample(speakers, per_clip); the
        # rest stand in for a speaker that cannot be named without a leak.
        for spk in rng.sample(speakers, len(speakers)):
            if len(samples) >= self.cfg.per_clip:
                break
            own = [t for t in turns if t["speaker"] == spk]
            merged = intervals.merge([(t["start"], t["end"]) for t in own])
            answer = [[rel(clip, a), rel(clip, b)] for a, b in merged]
            try:
                who = _who(clip, spk, own, turns, labels, answer)
            except Skip as skip:
                skipped = skip
                continue
            if {float(x) for x in NUMBER.findall(who)} & {v for iv in answer for v in iv}:
                skipped = Skip("speaker's name or quote holds one of their interval bounds")
                continue
            samples.append(Sample(
                task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                source_video_id=clip["source_video_id"],
                question=(f"When does {who} speak? Answer with every [start, end] interval in seconds "
                          "from the start of the clip."),
                answer=json.dumps(answer), answer_intervals=[{"start": a, "end": b} for a, b in merged],
                target_speaker=spk, cues=cues(clip, ("turns", "transcript", "active_speaker")),
                required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "time_base": "answer: clip seconds; answer_intervals: media seconds"},
                **strata(clip, self.cfg),
            ))
        if not samples and skipped is not None:
            raise skipped
        return samples


# --- tool-only baseline policy: (context, evidence per clip) -> answer text, clip-relative seconds ---


def _stg_target(ctx: AgentContext, ev: Evidence) -> str | None:
    q = ctx.question
    quoted = QUOTE.search(q)
    if quoted:  # 'the person who says "..."': the transcript segment sharing most words
        want = words(quoted.group(1).replace("...", ""))
        scored = [(len(want & words(s.get("text") or "")), s) for s in ev.transcript]
        scored = [x for x in scored if x[0] > 0]
        if scored:
            seg = max(scored, key=lambda x: x[0])[1]
            return ev.speaker_at(seg["start"], seg["end"]) or seg.get("speaker")
    place = option_place(q)  # "the person on the left / in the centre of the frame"
    if place:
        tracks = [tid for tid in ev.track_ids() if horizontal(ev.track_x(tid)) == place]
        if tracks:
            return ev.speaker_of_track(tracks[0])
    # "the person speaking at 12.5 s" (unnamed, faceless, textless speakers) or an older
    # "Speaker 2 (first heard at 7.0 s)": whoever the diarization hears at that moment.
    moment = SPEAKING_AT.search(q) or FIRST_HEARD.search(q)
    if moment:
        return ev.speaker_at(float(moment.group(1)))
    return None


def tool_only_stg(ctx: AgentContext, evs: list[Evidence]) -> str:
    ev = evs[0]
    spk = _stg_target(ctx, ev)
    if spk is None:
        return "[]"
    turns = sorted((t["start"], t["end"]) for t in ev.turns if str(t["speaker"]) == spk)
    return json.dumps([[round(s, 2), round(e, 2)] for s, e in turns])
