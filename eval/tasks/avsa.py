"""AVSA, audio-visual speaker association: which visible person spoke during this time span?

Built from clips whose labels tie speakers to faces: AVA (the speaking entity is a face track) and
Friends-MMC (speaker names match face names). The span is one labelled turn with no other speaker
in it; the options are the visible people, described by where they are in the frame.
"""

from __future__ import annotations

import random

from eval.models.base import AgentContext
from eval.models.evidence import Evidence
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import cues, gt_turns, horizontal, rel, strata
from eval.tasks.kinds import CHOICE
from eval.tasks.registry import register_task
from eval.tasks.tool_policy import (
    choice_letter,
    letter,
    option_for_speaker,
    option_for_track,
    option_for_x,
    question_span,
    speaking_track_in_span,
)


def span_cues(clip: dict, start: float, end: float) -> dict:
    """Guided cues for one AVSA question: turns and face positions as usual, and per face track its
    active-speaker scores *inside the asked span* (media-file [start, end]; cue times clip-relative),
    their mean, and where that face is at the span's middle, so the cue can say who spoke then
    (a whole-clip mean score per face cannot)."""
    out = cues(clip, ("turns", "faces", "active_speaker"))
    asd = clip.get("pred_active_speaker")
    if asd is None:
        return out
    tracks = {tr["track_id"]: tr for tr in clip.get("pred_face_tracks") or [] if tr.get("boxes")}
    mid = (start + end) / 2
    recs = []
    for a, whole in zip(asd, out.get("active_speaker") or [], strict=True):
        pairs = [(t, s) for t, s in zip(a.get("times") or [], a.get("scores") or [], strict=False) if start <= t <= end]
        rec = dict(whole, times=[rel(clip, t) for t, _ in pairs], scores=[round(float(s), 3) for _, s in pairs],
                   span_mean_score=round(sum(s for _, s in pairs) / len(pairs), 3) if pairs else None)
        tr = tracks.get(a["track_id"])
        if tr:
            box = min(tr["boxes"], key=lambda b: abs(b["t"] - mid))
            rec["x_center"] = round((box["x1"] + box["x2"]) / 2, 3)
            rec["position"] = horizontal(rec["x_center"])
        recs.append(rec)
    out["active_speaker"] = recs
    return out


def _describe(track: dict, t: float, named: bool) -> str:
    """A visible person as the question names them: position at time t (nearest labelled box)."""
    box = min(track["boxes"], key=lambda b: abs(b["t"] - t))
    where = horizontal((box["x1"] + box["x2"]) / 2)
    place = "in the centre" if where == "centre" else f"on the {where}"
    who = track.get("identity") if named and track.get("identity") else None
    return f"{who}, the person {place}" if who else f"the person {place} of the frame"


@register_task
class AVSA(TaskBuilder):
    name = "AVSA"
    kind = CHOICE
    guided_steps = (
        "Find the speaker turns that overlap the span in question.",
        "Find the face track whose active-speaker score is highest there.",
        "Pick the option naming that person.",
    )
    tool_only_tools = ('diarize', 'track_faces', 'active_speaker')

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        return tool_only_avsa(ctx, evidence)
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
                cues=span_cues(clip, turn["start"], turn["end"]), required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "turn": [turn["start"], turn["end"]]},
                **strata(clip, self.cfg),
            ))
        return samples


# --- tool-only baseline policy: (context, evidence per clip) -> answer text, clip-relative seconds ---


def tool_only_avsa(ctx: AgentContext, evs: list[Evidence]) -> str:
    """The option whose place in the frame matches the face track with the highest active-speaker
    score inside the asked span; without per-time scores, the most active track overall, then the
    diarized speaker's face."""
    ev = evs[0]
    span = question_span(ctx.question) or (0.0, 1e9)
    hit_track = speaking_track_in_span(ev, *span)
    if hit_track is not None:
        hit = option_for_x(ctx.options, hit_track[2])
        if hit is not None:
            return letter(hit)
    tid = ev.active_track(*span)
    if tid is not None:
        hit = option_for_track(ev, ctx.options, tid)
        if hit is not None:
            return letter(hit)
    spk = ev.speaker_at(*span)
    return choice_letter(option_for_speaker(ev, ctx.options, spk) if spk else None)
