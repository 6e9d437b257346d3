"""NSP, next-speaker prediction: given the dialogue up to a point, who speaks next?

The cut point is the end of a labelled turn; the answer is the speaker of the next turn that
starts after it (turns starting inside the previous one are overlaps, not the next turn). Options
are the clip's speakers; a clip with one speaker cannot make this question and is skipped.
"""

from __future__ import annotations

import random

from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.common import NAMED_SOURCES, cues, gt_turns, quote, rel, speaker_labels, strata

MIN_HISTORY = 2  # turns heard before the cut, so there is a dialogue to reason from
NOT_YET = "someone who has not spoken yet"


class NSP(TaskBuilder):
    name = "NSP"
    required_tools = ("diarize", "transcribe")

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        turns = sorted(gt_turns(clip, self.cfg.min_turn_s), key=lambda t: t["start"])
        speakers = {t["speaker"] for t in turns}
        if len(speakers) < 2:
            raise Skip("fewer than 2 labelled speakers")
        cuts = []
        for i in range(MIN_HISTORY - 1, len(turns) - 1):
            cut = turns[i]["end"]
            nxt = next((t for t in turns[i + 1:] if t["start"] >= cut), None)
            if nxt is not None:
                cuts.append((cut, nxt))
        if not cuts:
            raise Skip("no turn boundary with enough history and a following turn")
        samples = []
        for cut, nxt in rng.sample(cuts, min(self.cfg.per_clip, len(cuts))):
            labels = _labels_before(clip, turns, cut)
            correct = labels[nxt["speaker"]]
            options, idx, letter = self.choice(correct, sorted({v for v in labels.values() if v != correct}), rng)
            samples.append(Sample(
                task=self.name, clip_ids=[clip["clip_id"]], source=clip["source"],
                source_video_id=clip["source_video_id"],
                question=(f"Watch the clip up to {rel(clip, cut):.1f} s only. Who speaks next, after that moment?"),
                options=options, answer=letter, answer_index=idx, target_speaker=nxt["speaker"],
                cues=_history(cues(clip, ("turns", "transcript", "faces")), rel(clip, cut)),
                required_tools=list(self.required_tools),
                meta={"clip_start_s": clip["start_s"], "cut_s": cut, "next_turn": [nxt["start"], nxt["end"]],
                      "next_text": quote(nxt.get("text"))},
                **strata(clip, self.cfg),
            ))
        return samples


def _labels_before(clip: dict, turns: list[dict], cut: float) -> dict[str, str]:
    """Speakers as known at the cut: those heard before it by name or order of first speaking, all
    others as one 'not spoken yet' option. Naming people by anything after the cut (e.g. when they
    are first heard) would give the answer away."""
    heard = speaker_labels({**clip, "gt_turns": [t for t in turns if t["start"] < cut]})
    unheard = NOT_YET if clip["source"] not in NAMED_SOURCES else None
    return {t["speaker"]: heard.get(t["speaker"]) or unheard or t["speaker"] for t in turns}


def _history(c: dict, cut: float) -> dict:
    """Cues restricted to what happened before the cut: the future would give the answer away."""
    for key in ("turns", "transcript"):
        if key in c:
            c[key] = [x for x in c[key] if x["start"] < cut]
    return c
