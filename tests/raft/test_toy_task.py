"""A toy seventh task (tests/raft/toy_task.py, one file) runs through curation's builder, a RAFT step,
evaluation and the report with no other edit: every table derives from the task registry."""

from __future__ import annotations

import math

import pytest

from eval.tasks import TASKS, register_task, task_names
from infra import storage
from infra.schemas import SAMPLE_SCHEMA
from infra.validate import to_table


@pytest.fixture
def toy_task():
    from toy_task import FIRST

    register_task(FIRST)
    yield FIRST
    TASKS.pop("FIRST")


def test_toy_task_end_to_end(toy_task, dataset, policy, train_cfg):
    from dataclasses import replace

    from eval.agent.loop import Limits
    from eval.models.random_baseline import RandomAdapter
    from eval.models.tool_only import ToolOnlyAgent
    from eval.report import markdown, results
    from eval.runner import predict_in_process
    from eval.tasks.build import build_all
    from eval.tasks.config import TasksConfig
    from eval.tasks.kinds import ScoringParams
    from raft.data import build_prompt, load_media
    from raft.objective import encode_prompt, raft_loss
    from raft.rollout import SerialRollout, reward_settings, slim_clips

    assert task_names()[-1] == "FIRST"
    _, clips_uri = dataset
    clips = {c["clip_id"]: c for c in storage.read_parquet(clips_uri).to_pylist()}

    # curation: the builder, the split, the schema (its task field is checked against the registry)
    built = build_all(list(clips.values()), TasksConfig(tasks=["FIRST"], test_fraction=0.0), seed=0)
    samples = built.rows
    assert len(samples) == len(clips) and to_table(samples, SAMPLE_SCHEMA).num_rows == len(samples)

    # training: one RAFT step (K candidates, rewards through the rollout, RRO) on the task's prompts
    cfg = replace(train_cfg, k=2, max_new_tokens=8, alpha=0.0)
    rollout = SerialRollout(slim_clips(list(clips.values())), *reward_settings(cfg))
    prompt = build_prompt(samples[0], clips, "guided")
    assert "Who speaks first" in prompt.messages[1]["content"] and "Find the earliest turn." in prompt.messages[1]["content"]
    ep = encode_prompt(policy, prompt, *load_media(prompt.clip, cfg), cfg)
    loss, m = raft_loss(policy, [ep], cfg, rollout)
    loss.backward()
    policy.model.zero_grad(set_to_none=True)
    assert math.isfinite(loss.item()) and "loss/rro" in m and "reward/answer" in m

    # evaluation: both baselines, in-process, scored by the task's scorer
    params = ScoringParams(bootstrap_samples=50)
    rows = [predict_in_process(model, s, clips, "guided", None, Limits(), params, model_key=model.name)
            for model in (ToolOnlyAgent(), RandomAdapter()) for s in samples]
    tool_rows = [r for r in rows if r["model"] == "tool_only"]
    assert all(r["parse_ok"] for r in tool_rows)
    assert sum(r["score"] for r in tool_rows) == len(tool_rows)  # alice speaks first, and the turns say so

    # report: the task's own columns
    res = results.compute(rows, {s["sample_id"]: s for s in samples}, params)
    assert res["results"]["tool_only"]["FIRST"]["guided"]["metrics"]["accuracy"]["value"] == 1.0
    text = markdown.write(res, {}, {"modes": ["guided"], "bootstrap_samples": 50})
    assert "| FIRST" in text
