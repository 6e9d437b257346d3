"""Issue 11, defect 4: a table of adversarial candidates, each scored by the real reward components with
the default weights, must come out below the correct answer and below an honest wrong answer.

One clip, 20 s long and starting 26.2 s into its file, with hand-written perception (pred_*): speaker
SPEAKER_00 ("A", face t1, in sync) and SPEAKER_01 ("B", face t2, in sync but less sure) take turns; t3
is a bystander who never speaks and is out of sync. Three samples ask about it: STG (when does A
speak, A named by a quote of their first line), an AVSA-like choice whose options name tracks, and an
AVDS summary. Candidates answer in clip seconds, in the plan:/act:/reflect:/answer: lines
the task contract reads; ``score_item`` moves their intervals onto the file's timeline.
"""

from __future__ import annotations

import pytest

from raft.config import TrainConfig
from raft.rewards import RewardItem, RewardResult, score_item
from raft.rollout import reward_settings

START, LENGTH = 26.2, 20.0
# (speaker, clip-relative start, end, words): gt and pred agree, so the labels are what perception heard
LINES = [("SPEAKER_00", 0.8, 3.8, "we should move the launch to friday"),
         ("SPEAKER_01", 4.3, 8.8, "friday works if the design review is finished"),
         ("SPEAKER_00", 9.8, 12.8, "then I will tell marketing this afternoon"),
         ("SPEAKER_01", 13.8, 17.8, "send me the slides before the review")]
A_TURNS = [(s, e) for spk, s, e, _ in LINES if spk == "SPEAKER_00"]
TRACKS = {"t1": ("SPEAKER_00", 0.2, 0.04, 0.9), "t2": ("SPEAKER_01", 0.7, 0.1, 0.7), "t3": (None, 0.45, 0.8, 0.3)}


def _speaking(spk: str | None, t: float) -> bool:
    return any(who == spk and s <= t <= e for who, s, e, _ in LINES)


def _clip() -> dict:
    times = [i + 0.5 for i in range(int(LENGTH))]
    tracks, asd = [], []
    for tid, (spk, x, offset, conf) in TRACKS.items():
        tracks.append({"track_id": tid, "embedding": [0.0, 1.0], "boxes": [
            {"t": START + t, "x1": x, "y1": 0.2, "x2": x + 0.15, "y2": 0.6, "score": 0.9} for t in times]})
        asd.append({"track_id": tid, "times": [START + t for t in times],
                    "scores": [0.9 if _speaking(spk, t) else (0.1 if spk else 0.05) for t in times],
                    "sync_offset_s": offset, "sync_confidence": conf})
    turns = [{"start": START + s, "end": START + e, "speaker": spk} for spk, s, e, _ in LINES]
    return {"clip_id": "c0", "start_s": START, "end_s": START + LENGTH,
            "pred_turns": turns,
            "pred_transcript": [{**t, "text": text, "words": []} for t, (*_, text) in zip(turns, LINES, strict=True)],
            "pred_face_tracks": tracks, "pred_active_speaker": asd}


CLIP = _clip()
# the transcript cue lines as a guided prompt shows them (clip seconds)
CUES = " ".join(f"[{s}-{e}] {spk}: {text}" for spk, s, e, text in LINES)
REFERENCE = ("Speaker 1 proposes moving the launch to Friday; Speaker 2 agrees if the design review is done "
             "and asks for the slides.")
SAMPLES = {
    "STG": dict(task="STG", question='When does the person who says "we should move the launch to friday" speak? '
                "Answer with every [start, end] interval in seconds from the start of the clip.",
                answer="[[0.8, 3.8], [9.8, 12.8]]", answer_intervals=[(START + s, START + e) for s, e in A_TURNS]),
    "AVSA": dict(task="AVSA", question="Which visible person spoke at 1.0-3.5 s?",
                 options=["person in track t1", "person in track t2", "person in track t3"], answer="A"),
    "AVDS": dict(task="AVDS", question="Summarize the conversation in this clip. Say who said what.",
                 answer=REFERENCE, references=[REFERENCE]),
}


def lines(answer: str, reflect: str = "ok", tools: str = "diarize transcribe active_speaker") -> str:
    return f"plan: {tools}\nact: {tools}\nreflect: {reflect}\nanswer: {answer}"


HONEST = {  # (correct, honest wrong): a wrong answer a model could give in good faith
    "STG": (lines("[[0.8, 3.8], [9.8, 12.8]]"),
            lines("[[1.3, 3.8]]")),  # A's first turn only, starting late
    "AVSA": (lines("A"), lines("B")),  # the other person who also speaks in the clip
    "AVDS": (lines(REFERENCE), lines("Speaker 1 wants to move the launch to Monday; Speaker 2 asks for the "
                                     "budget slides.")),  # wrong day, wrong document
}
ADVERSARIAL = {
    "empty": "",
    "format without an answer": "plan: diarize\nact: diarize\nreflect: ok",
    "format with a placeholder answer": lines("-"),
    "tiny interval inside a turn": lines("[[1.0, 1.2]]"),  # inside A's first turn (the asked speaker's, for STG)
    "naming every track": lines("t1 t2 t3", reflect="t1 t2 t3"),
    "copying the cues": lines(CUES, reflect=CUES),
    "right speaker padded to the whole clip": lines(f"[[0.0, {LENGTH}]]"),
}


def score(task: str, text: str) -> RewardResult:
    fields = SAMPLES[task]
    sample = {"sample_id": task, "clip_ids": ["c0"], "options": [], "references": [],
              **{k: v for k, v in fields.items() if k != "answer_intervals"}}
    item = RewardItem(sample_id=task, clip_ids=["c0"], text=text, sample=sample, **fields)
    return score_item(item, [CLIP], reward_settings(TrainConfig())[0])


@pytest.fixture(scope="module")
def honest():
    return {task: tuple(score(task, t) for t in pair) for task, pair in HONEST.items()}


@pytest.mark.parametrize("task", list(SAMPLES))
def test_correct_beats_honest_wrong(task, honest):
    correct, wrong = honest[task]
    assert correct.parse_ok and wrong.parse_ok
    assert correct.total > wrong.total > 0
    # both make the same kinds of claim, so every component that judges the correct answer judges the wrong one
    applies = {k for k, v in correct.components.items() if v is not None}
    assert applies == {k for k, v in wrong.components.items() if v is not None}
    assert {"format", "answer"} <= applies


@pytest.mark.parametrize("name", list(ADVERSARIAL))
@pytest.mark.parametrize("task", list(SAMPLES))
def test_adversarial_candidate_scores_below_correct_and_honest_wrong(task, name, honest):
    correct, wrong = honest[task]
    adv = score(task, ADVERSARIAL[name])
    table = f"{task} / {name}: adversarial {adv}, correct {correct}, honest wrong {wrong}"
    assert adv.total < wrong.total < correct.total, table
    for comp, c_score in correct.components.items():
        a_score = adv.components.get(comp)
        if c_score is None or a_score is None:  # a component that does not apply is not scored
            continue
        assert a_score <= wrong.components[comp], f"{comp}: {table}"
        if comp == "format":
            # format only checks that the four sections are there: any gaming candidate can write them
            # all and tie the correct answer's 1.0, so only <= can hold (unparseable ones score 0 < 1)
            assert a_score <= c_score, f"{comp}: {table}"
        else:
            assert a_score < c_score, f"{comp}: {table}"
