"""One task contract for training and evaluation: same prompt bytes, same parser, same scorer, and the
time base of the reasoning term of L_temp on clips that do not start at 0 s."""

from __future__ import annotations

import json

import pytest
from raft_synth import CLIP_START

from eval.runner import build_context, render_messages
from eval.tasks import get_task
from eval.tasks.kinds import GoldError
from infra import storage
from infra.schemas import MODES
from raft.data import build_prompt


@pytest.fixture(scope="module")
def tables(dataset):
    samples_uri, clips_uri = dataset
    samples = storage.read_parquet(samples_uri).to_pylist()
    clips = {c["clip_id"]: c for c in storage.read_parquet(clips_uri).to_pylist()}
    return samples, clips


@pytest.mark.parametrize("mode", MODES)
def test_training_prompt_is_the_evaluation_prompt(tables, mode):
    samples, clips = tables
    assert {s["task"] for s in samples} == {"AVSA", "STG", "AVDS"}
    for s in samples:
        trained = build_prompt(s, clips, mode).messages
        evaluated = render_messages(build_context(s, clips, mode))
        assert json.dumps(trained) == json.dumps(evaluated), s["task"]
        if mode == "guided":  # the cues curation stored are what both show
            assert "hello team the budget is ready" in trained[1]["content"]


def test_reference_reply_scores_full_marks_with_the_evaluators_scorer(tables):
    samples, clips = tables
    for s in samples:
        ref = build_prompt(s, clips, "guided").reference
        score = get_task(s["task"]).score(ref, s)
        assert score.parse_ok and score.score == pytest.approx(1.0), (s["task"], ref)


def test_reasoning_term_of_l_temp_is_on_the_clip_timeline(tables, policy, train_cfg):
    """STG answers are clip-relative; the clip starts 26.2 s into its file. The old objective shifted
    the reference intervals by the clip start again, left the f_r mask empty and lost γ‖f_t − f_r‖²."""
    from dataclasses import replace

    from raft.data import load_media
    from raft.objective import encode_prompt, raft_loss

    samples, clips = tables
    stg = next(s for s in samples if s["task"] == "STG")
    assert clips[stg["clip_ids"][0]]["start_s"] == CLIP_START
    cfg = replace(train_cfg, alpha=1.0, gamma=1.0, delta=0.0)
    prompt = build_prompt(stg, clips, "guided")
    assert prompt.reference_intervals() == [(2.1, 3.8)]
    ep = encode_prompt(policy, prompt, *load_media(prompt.clip, cfg), cfg)
    _, m = raft_loss(policy, [ep], cfg, rollout=None, sft=True)
    assert m["temp/tr"] > 0.0


def test_one_reference_format_for_stg():
    """Media-second {"start", "end"} objects are not STG's reference format: the task says so, naming
    the sample, instead of scoring every answer 0 (the manifest-mode bench's tIoU = 0 artifact)."""
    stg = get_task("STG")
    good = {"sample_id": "s1", "task": "STG", "answer": "[[2.1, 3.8]]"}
    assert stg.gold(good) == [(2.1, 3.8)]
    bad = {**good, "sample_id": "s2", "answer": json.dumps([{"start": 28.3, "end": 30.0}])}
    with pytest.raises(GoldError, match="s2"):
        stg.gold(bad)


def test_training_shows_a_clip_as_evaluation_does(tables, train_cfg):
    """The same clip and budgets give the same audio and frames in RAFT's rollouts and in the evaluator.
    The old readers differed: training kept frames at their aspect ratio (height 2 x frame_size), while
    evaluation spread its frames over the whole span, past the audio window, and squared them."""
    from dataclasses import replace

    import numpy as np

    from eval.models.clip_media import clip_media
    from raft.data import load_media

    samples, clips = tables
    cfg = replace(train_cfg, max_audio_s=1.0, num_frames=4)
    s = next(s for s in samples if (clips[s["clip_ids"][0]].get("fps") or 0) > 0)
    clip = clips[s["clip_ids"][0]]
    assert clip["end_s"] - clip["start_s"] > 2 * cfg.max_audio_s  # the window is shorter than the span
    audio_t, frames_t = load_media(clip, cfg)
    audio_e, frames_e = clip_media(build_context(s, clips, "guided"), cfg.max_audio_s, cfg.num_frames, cfg.frame_size)
    assert audio_t is not None and np.array_equal(audio_t, audio_e) and audio_t.size == 16000
    assert [t for t, _ in frames_t] == [t for t, _ in frames_e] and len(frames_t) == 4
    assert all(t < cfg.max_audio_s for t, _ in frames_t)
    for (_, a), (_, b) in zip(frames_t, frames_e, strict=True):
        assert a.shape == (cfg.frame_size, cfg.frame_size, 3) and np.array_equal(a, b)
