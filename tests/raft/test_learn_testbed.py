"""The text-only RAFT testbed (bench/raft_testbed.py) and the study's statistics (bench/raft_stats.py)."""

import numpy as np
import pytest

from bench.raft_stats import collapsed, max_drawdown, paired_hierarchical_bootstrap, verdict
from bench.raft_testbed import TestbedConfig, build_testbed, make_clip
from eval.tasks import get_task
from raft.data import build_prompt

SMALL = {"train": 40, "test": 10}


@pytest.fixture(scope="module")
def tb():
    return build_testbed(TestbedConfig(clips=SMALL))


def test_every_task_is_built_by_the_real_builders(tb):
    for split in SMALL:
        assert {r["task"] for r in tb.samples[split]} == {"STG", "SRID", "NSP"}
    assert all(r["split"] == "train" for r in tb.samples["train"])


def test_prompts_are_the_evaluators_and_the_reference_scores_full_marks(tb):
    for row in tb.samples["test"]:
        task = get_task(row["task"])
        p = build_prompt(row, tb.clips, "guided")
        clip = tb.clips[row["clip_ids"][0]]
        assert p.messages == task.render_prompt(row, "guided", spans=[(clip["start_s"], clip["end_s"])])
        assert task.score(p.reference, row).score == pytest.approx(1.0)


def test_oracle_perception_is_the_generators_turns():
    clip = make_clip(TestbedConfig(), "train", 3)
    gt = [(t["start"], t["end"], t["speaker"]) for t in clip["gt_turns"]]
    assert [(t["start"], t["end"], t["speaker"]) for t in clip["pred_turns"]] == gt
    assert [s["text"] for s in clip["pred_transcript"]] == [t["text"] for t in clip["gt_turns"]]
    assert clip["start_s"] > 0 and len({t["speaker"] for t in clip["gt_turns"]}) >= 2


def test_noise_knobs_corrupt_perception_only():
    clean = make_clip(TestbedConfig(), "train", 5)
    noisy = make_clip(TestbedConfig(speaker_noise=1.0, time_noise_s=0.5), "train", 5)
    assert noisy["gt_turns"] == clean["gt_turns"]
    assert all(p["speaker"] != g["speaker"] for p, g in zip(noisy["pred_turns"], noisy["gt_turns"], strict=True))
    assert [p["start"] for p in noisy["pred_turns"]] != [p["start"] for p in clean["pred_turns"]]


def test_same_seed_same_testbed_other_seed_other_scenes(tb):
    again = build_testbed(TestbedConfig(clips=SMALL))
    assert [r["sample_id"] for r in again.samples["train"]] == [r["sample_id"] for r in tb.samples["train"]]
    other = make_clip(TestbedConfig(seed=1), "train", 0)
    assert other["gt_turns"] != make_clip(TestbedConfig(), "train", 0)["gt_turns"]


def test_bootstrap_interval_covers_a_known_shift_and_excludes_zero():
    rng = np.random.default_rng(0)
    b = rng.random((5, 200))
    a = b + 0.1 + rng.normal(0, 0.05, (5, 200))
    ci = paired_hierarchical_bootstrap(a, b, n_boot=500)
    assert ci["lo"] < 0.1 < ci["hi"] and ci["lo"] > 0 and verdict(ci) == "better"
    null = paired_hierarchical_bootstrap(b + rng.normal(0, 0.05, b.shape), b, n_boot=500)
    assert verdict(null) == "no difference shown" or abs(null["mean"]) < 0.01
    # seeds that disagree widen the interval: a seed-level effect of +-0.2 must not look certain
    seedy = b + np.array([0.2, -0.2, 0.2, -0.2, 0.0])[:, None]
    assert verdict(paired_hierarchical_bootstrap(seedy, b, n_boot=500)) == "no difference shown"


def test_drawdown_and_collapse():
    assert max_drawdown([0.2, 0.5, 0.3, 0.6, 0.55]) == pytest.approx(0.2)
    assert max_drawdown([0.1, 0.2, 0.3]) == 0.0
    assert collapsed([0.5, 0.35], [0.9, 0.9], warm=0.5)
    assert collapsed([0.5, 0.5], [0.9, 0.4], warm=0.5)
    assert not collapsed([0.5, 0.45], [0.9, 0.9], warm=0.5)


def test_study_arms_train_what_their_names_say():
    """The SFT control is SFT (an RRO 'sft' arm once made it a copy of softmax beta 1), and every RRO arm's
    settings validate; the unlabelled arm lets no label into the loss."""
    from dataclasses import replace

    from bench.raft_learn import arms
    from raft.config import TrainConfig

    by = {a.name: a for a in arms([0.3, 1.0])}
    assert by["sft"].sft and by["sft_wallclock"].sft
    assert not any(a.sft for n, a in by.items() if not n.startswith("sft"))
    assert by["unlabelled"].train["lambda_align"] == 0 and by["unlabelled"].train["rewards"]["answer"] == 0
    for a in by.values():
        replace(TrainConfig(), sra=a.sra, **{k: v for k, v in a.train.items() if k != "rewards"}).validate()


def test_learning_rate_is_picked_on_validation_and_every_arm_gets_one():
    """The study's rates come from the validation sweep: best final score, ties to the better curve, then the
    smaller rate; every arm is either swept or takes a swept arm's rate."""
    from bench.raft_learn import LR_OF, SWEPT, arms, pick_lr

    run = lambda lr, final, curve: {"lr": lr, "val_final": final, "curve": [{"val": v} for v in curve]}  # noqa: E731
    assert pick_lr([run(0.003, 0.4, [0.4]), run(0.01, 0.5, [0.5]), run(0.03, 0.45, [0.45])]) == 0.01
    assert pick_lr([run(0.003, 0.5, [0.3, 0.5]), run(0.01, 0.5, [0.45, 0.5])]) == 0.01
    assert pick_lr([run(0.003, 0.5, [0.5]), run(0.01, 0.5, [0.5])]) == 0.003
    for a in arms([0.3, 1.0]):
        assert a.name in SWEPT or LR_OF[a.name] in SWEPT
