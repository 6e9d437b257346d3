"""Parsing, each reward component on the synthetic clip, and serial == actor pool."""

import pytest
from conftest import REPO_ROOT
from raft_synth import clip_row

from raft.config import TrainConfig
from raft.rewards import RANGES, REWARDS, RewardItem, RewardOptions, parse_candidate, score_item, tiou
from raft.rollout import ActorPoolRollout, RewardScorer, SerialRollout, reward_settings, slim_clips
from raft.verify import Verifier

CORPUS_WAV = str(REPO_ROOT / "data/corpus/ami/amicorpus/ES2004a/audio/ES2004a.Mix-Headset.wav")

CLIP = clip_row(0, "/nonexistent.mp4")
OPTS = RewardOptions(sync_offset_tol_s=0.2)


def item(text, **kw):
    base = dict(sample_id="s", task="AVSA", clip_ids=["clip0"], text=text,
                options=["person in track t1", "person in track t2"], answer="A")
    base.update(kw)
    base.setdefault("sample", {k: base[k] for k in ("sample_id", "task", "clip_ids", "options", "answer")})
    return RewardItem(**base)


def parse(text, task="AVSA"):
    """The candidate as the reward components read it (the task contract's parse, on CLIP's timeline)."""
    kw = {} if task == "AVSA" else {"task": task, "options": [], "answer": "[[2.1, 3.8]]"}
    return parse_candidate(item(text, **kw), [CLIP])


def test_parse_forms():
    p = parse("plan: diarize\nact: diarize sync_check\nreflect: ok\nanswer: B")
    assert p.ok and p.letter == "B" and p.tools == ["diarize", "sync_check"]
    j = parse('{"plan": "x", "act": ["diarize"], "reflect": "y", "answer": [[1.0, 2.5]]}', "STG")
    assert j.ok and j.contract.value == [(1.0, 2.5)]  # a JSON answer passes as a value, clip-relative
    assert j.intervals == [(CLIP["start_s"] + 1.0, CLIP["start_s"] + 2.5)]  # the components' media timeline
    assert parse("B").letter == "B"
    assert not parse("C").ok  # the evaluator's parser: a letter with no option behind it is no answer
    assert not parse("the weather is nice").ok
    assert not parse("answer:   ").ok


def test_registry_has_all_components_with_ranges():
    assert set(REWARDS) == {"sync", "face", "speech", "diarization", "answer", "format"}
    assert all(RANGES[k] == (0.0, 1.0) for k in REWARDS)


def test_components_on_clip():
    good = parse("plan: active_speaker\nact: active_speaker\nreflect: ok\nanswer: A")
    bad = parse("plan: x\nact: dance\nreflect: ok\nanswer: B")
    it = item("")
    assert REWARDS["answer"](it, good, [CLIP], OPTS) == 1.0
    assert REWARDS["answer"](it, bad, [CLIP], OPTS) == 0.0
    assert REWARDS["format"](it, good, [CLIP], OPTS) == 1.0
    assert REWARDS["format"](it, bad, [CLIP], OPTS) == 0.75  # unknown tool in act
    # A -> track t1: in sync (offset 0.04 <= 0.2), confidence 0.9; B -> t2: 0.5 * 0.2/0.6
    assert REWARDS["sync"](it, good, [CLIP], OPTS) == pytest.approx(0.9)
    assert REWARDS["sync"](it, bad, [CLIP], OPTS) == pytest.approx(0.5 * 0.2 / 0.6)
    # face: mean ASD score over the whole clip (no claimed span)
    assert REWARDS["face"](it, good, [CLIP], OPTS) == pytest.approx((0.9 + 0.8 + 0.1 + 0.2) / 4)
    # diarization: [2.1, 3.8] is exactly S2's turn; [0.0, 4.0] is at most 1.7/4 one speaker
    stg = item("", task="STG", options=[], answer="[[2.1, 3.8]]", answer_intervals=[(2.1, 3.8)])
    exact, wide = parse("answer: [[2.1, 3.8]]", "STG"), parse("answer: [[0.0, 4.0]]", "STG")
    assert REWARDS["diarization"](stg, exact, [CLIP], OPTS) == pytest.approx(1.0)
    assert REWARDS["diarization"](stg, wide, [CLIP], OPTS) == pytest.approx(1.7 / 4.0)
    assert REWARDS["answer"](stg, wide, [CLIP], OPTS) == pytest.approx(tiou([(0, 4)], [(2.1, 3.8)]))
    # speech: content words heard by ASR
    summ = parse("reflect: ok\nanswer: budget ready design tomorrow pizza")
    assert REWARDS["speech"](it, summ, [CLIP], OPTS) == pytest.approx(4 / 5)
    # not applicable -> None
    assert REWARDS["diarization"](it, good, [CLIP], OPTS) is None


def test_unparseable_gets_minimum_and_is_logged(caplog):
    weights = reward_settings(TrainConfig())[0]
    with caplog.at_level("INFO", logger="raft.rewards"):
        res = score_item(item("#@! garbage"), [CLIP], weights, OPTS)
    assert not res.parse_ok and res.total == 0.0
    assert all(v == RANGES[k][0] for k, v in res.components.items())
    assert "unparseable" in caplog.text
    ok = score_item(item("plan: a\nact: active_speaker\nreflect: ok\nanswer: A"), [CLIP], weights, OPTS)
    assert ok.total > res.total


def _items(n):
    texts = ["plan: a\nact: sync_check\nreflect: ok\nanswer: A", "answer: B", "junk", "answer: [[2.0, 3.0]]"]
    return [item(texts[i % 4], sample_id=f"s{i}") for i in range(n)]


def speech_clip(cid: str, start: float, end: float) -> dict:
    """A real-speech window of the committed corpus whose stored pred_* claim nothing (no turns, no words)."""
    return {**clip_row(0, CORPUS_WAV), "clip_id": cid, "media_uri": CORPUS_WAV, "start_s": start, "end_s": end,
            "pred_turns": [], "pred_transcript": [], "pred_speech": []}


def test_verification_runs_perception_once_per_clip_span():
    # ES2004a: one speaker talks from 0.42 s to 3.41 s ("I can send everyone the report after lunch.")
    clip = speech_clip("w0", 0.0, 4.0)
    weights = {**reward_settings(TrainConfig())[0], "answer": 0.0, "format": 0.0, "sync": 0.0, "face": 0.0}
    stg = [item("answer: [[0.4, 3.4]]", sample_id=f"c{k}", task="STG", options=[], answer="", clip_ids=["w0"])
           for k in range(5)]
    stored = RewardScorer({"w0": clip}, weights, OPTS).score(stg)
    assert all(r.components["diarization"] == 0.0 for r in stored)  # the stored metadata has no turns
    scorer = RewardScorer({"w0": clip}, weights, OPTS, verify=["diarization"])
    verified = scorer.score(stg)
    # perception hears one speaker over about the claimed span (IoU, not mere containment)
    assert all(r.components["diarization"] == pytest.approx(1.0, abs=0.1) for r in verified)
    assert scorer.tool_calls() == 1  # five candidates, one diarize run
    with pytest.raises(ValueError, match="no perception tool"):
        Verifier(["answer"])


@pytest.mark.slow
def test_actor_pool_equals_serial(ray_local):
    weights, opts = reward_settings(TrainConfig())
    table = slim_clips([CLIP])
    items = _items(13)
    serial = SerialRollout(table, weights, opts).score(items)
    pool = ActorPoolRollout(table, weights, opts, n=2, num_cpus=0.25)
    try:
        pooled = pool.score(items)
    finally:
        pool.shutdown()
    assert [(r.total, r.components, r.parse_ok) for r in pooled] == [(r.total, r.components, r.parse_ok) for r in serial]
    # with perception verification (diarize + transcribe on real speech): same results, and each clip's
    # tools ran in exactly one actor, because candidates travel to the actors grouped by clip
    clips = slim_clips([speech_clip("w0", 0.0, 4.0), speech_clip("w1", 4.0, 8.0)])
    verify = {"verify": ["diarization", "speech"], "verify_span_s": None}
    texts = ["reflect: send the report\nanswer: [[0.6, 1.4]]", "answer: [[4.5, 7.5]]", "plan: x\nanswer: report lunch",
             "junk"]
    items = [item(texts[i % 4], sample_id=f"v{i}", task="STG", options=[], answer="[[0.4, 3.4]]",
                  answer_intervals=[(0.4, 3.4)], clip_ids=[f"w{i % 2}"]) for i in range(16)]
    ser = SerialRollout(clips, weights, opts, **verify)
    want = ser.score(items)
    assert ser.scorer.tool_calls() == 4
    pool = ActorPoolRollout(clips, weights, opts, n=2, num_cpus=0.25, **verify)
    try:
        got = pool.score(items)
        again = pool.score(items[::-1])  # every clip goes back to the actor that holds its perception
        calls = pool.tool_calls()
    finally:
        pool.shutdown()
    key = lambda rs: [(r.total, r.components, r.parse_ok) for r in rs]  # noqa: E731
    assert key(got) == key(want) and key(again) == key(want[::-1])
    assert sorted(calls) == [2, 2]  # 2 clips x 2 tools: one clip per actor, none perceived twice
    assert any(r.components["speech"] for r in want) and any(r.components["diarization"] for r in want)


def test_claimed_intervals_are_clip_relative_like_the_question():
    """CLIP starts 26.2 s into its file: the candidate answers in clip seconds, labels and pred_* live
    on the file's timeline, and the reward lines the two up."""
    off = CLIP["start_s"]
    assert off > CLIP["end_s"] - off  # clip-relative and file times cannot be confused by overlap
    stg = item("plan: diarize\nact: diarize\nreflect: ok\nanswer: [[2.1, 3.8]]", task="STG", options=[],
               answer="[[2.1, 3.8]]", answer_intervals=[(off + 2.1, off + 3.8)])
    res = score_item(stg, [CLIP], {"answer": 1.0, "diarization": 1.0})
    assert res.components["answer"] == pytest.approx(1.0)
    assert res.components["diarization"] == pytest.approx(1.0)
    media_seconds = item(f"answer: [[{off + 2.1:.1f}, {off + 3.8:.1f}]]", task="STG", options=[], answer="[[2.1, 3.8]]",
                         answer_intervals=[(off + 2.1, off + 3.8)])
    assert score_item(media_seconds, [CLIP], {"answer": 1.0}).components["answer"] == 0.0


# -- issue 11, defect 4: the rewards can be gamed ------------------------------------------------------------
# CLIP (raft_synth.clip_row, moved 26.2 s into its file): S1 says "hello team the budget is ready" at
# [0.2, 1.8], S2 says "good the design meeting is tomorrow" at [2.1, 3.8] (clip seconds); t1 is in sync
# (0.9), t2 is 0.6 s off (0.5 * 0.2/0.6).
START = CLIP["start_s"]  # 26.2: raft_synth clips start that far into their files
SHIFTED = CLIP


def _stg(text, question):
    return item(text, task="STG", options=[], answer="[[0.2, 1.8]]", answer_intervals=[(START + 0.2, START + 1.8)],
                question=question)


@pytest.mark.parametrize("question", ['When does the person who says "hello team the budget is ready" speak?',
                                      "When does the person speaking at 1.0 s speak?"])
def test_diarization_scores_the_asked_speaker(question):
    """S1 is asked about; S2's turn, exactly, used to score 1.0 (any speaker's turn was accepted)."""
    w = {"diarization": 1.0}
    right = score_item(_stg("answer: [[0.2, 1.8]]", question), [SHIFTED], w).components["diarization"]
    other = score_item(_stg("answer: [[2.1, 3.8]]", question), [SHIFTED], w).components["diarization"]
    assert right == pytest.approx(1.0)
    assert other == 0.0
    # without an anchor in the question, the best-matching speaker is scored
    assert score_item(_stg("answer: [[2.1, 3.8]]", "When?"), [SHIFTED], w).components["diarization"] == pytest.approx(1.0)


def test_diarization_is_iou_not_precision():
    """A tiny interval inside the turn used to score 1.0 (covered / claimed); so did nothing outside the
    clip. Now both a tiny claim and one padded to the whole clip score their IoU."""
    w, q = {"diarization": 1.0}, 'When does the person who says "hello team" speak?'
    tiny = score_item(_stg("answer: [[1.0, 1.1]]", q), [SHIFTED], w).components["diarization"]
    padded = score_item(_stg("answer: [[0.0, 500.0]]", q), [SHIFTED], w).components["diarization"]
    assert tiny == pytest.approx(0.1 / 1.6)
    assert padded == pytest.approx(1.6 / 4.0)  # the claim is cut to the clip span before the IoU


def test_sync_attribution_comes_from_the_answer_only():
    """Naming the in-sync track t1 in reflect while answering B (t2) used to earn t1's sync."""
    w = {"sync": 1.0, "face": 1.0}
    honest = score_item(item("plan: x\nact: sync_check\nreflect: ok\nanswer: B"), [SHIFTED], w).components
    named = score_item(item("plan: t1\nact: sync_check\nreflect: t1 t1 is in sync\nanswer: B"), [SHIFTED], w).components
    assert named == honest
    assert named["sync"] == pytest.approx(0.5 * 0.2 / 0.6)
    # naming every track in the answer scores its weakest track, not their mean
    every = score_item(item("answer: t1 or t2", task="AVDS", options=[], sample={}), [SHIFTED], w).components
    assert every["sync"] == pytest.approx(min(0.9, 0.5 * 0.2 / 0.6))


def test_inapplicable_components_are_left_out_of_the_total():
    """A claim that checks out badly must lower r: answering B and naming t2 (out of sync) used to add
    0.5 * sync to the total; now the total is the weighted mean over applicable components times W."""
    weights = reward_settings(TrainConfig())[0]
    total_w = sum(weights.values())
    bare = score_item(item("plan: x\nact: sync_check\nreflect: ok\nanswer: -", task="AVDS", options=[], sample={}), [SHIFTED], weights)
    claim = score_item(item("plan: x\nact: sync_check\nreflect: ok\nanswer: t2", task="AVDS", options=[], sample={}), [SHIFTED], weights)
    applicable = {k: v for k, v in claim.components.items() if v is not None}
    assert set(applicable) == {"format", "sync", "face"}  # no label: answer does not apply
    want = total_w * sum(weights[k] * v for k, v in applicable.items()) / sum(weights[k] for k in applicable)
    assert claim.total == pytest.approx(want)
    assert bare.total == pytest.approx(total_w)  # format only, and it is perfect
    assert claim.total < bare.total


def test_copying_the_transcript_scores_below_a_summary():
    """Guided prompts show the transcript; a verbatim copy used to score 1.0 on speech."""
    w = {"speech": 1.0}
    copy = "reflect: ok\nanswer: S1: hello team the budget is ready S2: good the design meeting is tomorrow"
    summary = "reflect: ok\nanswer: S1 reports a budget ready; S2 sets the design meeting for tomorrow"
    s_copy = score_item(item(copy, task="AVDS", options=[], sample={}), [SHIFTED], w).components["speech"]
    s_summary = score_item(item(summary, task="AVDS", options=[], sample={}), [SHIFTED], w).components["speech"]
    assert s_summary > 0.5 > s_copy


def test_reward_weights_are_a_mapping_of_registered_names():
    from infra.config import ConfigError, from_dict

    cfg = from_dict(TrainConfig, {"rewards": {"answer": 3.0, "face": 0.0}})
    assert cfg.rewards == {**TrainConfig().rewards, "answer": 3.0, "face": 0.0}  # the rest keep their default
    assert TrainConfig().rewards == {"sync": 0.5, "face": 0.5, "speech": 0.5, "diarization": 0.5, "answer": 2.0,
                                     "format": 1.0}
    with pytest.raises(ConfigError, match=r"'lipsync'.*registered: \['answer', 'diarization'"):
        from_dict(TrainConfig, {"rewards": {"lipsync": 1.0}})
    with pytest.raises(ConfigError, match="train.rewards.answer"):
        from_dict(TrainConfig, {"rewards": {"answer": "high"}}, prefix="train")


def test_positional_options_attribute_the_track_at_that_place():
    """AVSA's options describe people by where they are ("the person on the left"), naming no track id:
    sync and face used to be inapplicable (None) for every real AVSA answer. t1 sits left (centre x 0.2),
    in sync; t2 right (0.7), 0.6 s off."""
    options = ["the person on the left of the frame", "the person on the right of the frame"]
    it = item("", options=options)
    left, right = parse_candidate(item("answer: A", options=options), [CLIP]), \
        parse_candidate(item("answer: B", options=options), [CLIP])
    assert REWARDS["sync"](it, left, [CLIP], OPTS) == pytest.approx(0.9)
    assert REWARDS["sync"](it, right, [CLIP], OPTS) == pytest.approx(0.5 * 0.2 / 0.6)
    assert REWARDS["face"](it, left, [CLIP], OPTS) == pytest.approx((0.9 + 0.8 + 0.1 + 0.2) / 4)
    centre = ["the person in the centre", "someone off screen"]  # an option naming no place attributes no track
    pick = parse_candidate(item("answer: B", options=centre), [CLIP])
    assert REWARDS["sync"](item("", options=centre), pick, [CLIP], OPTS) is None
