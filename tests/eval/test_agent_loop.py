"""The agentic loop with a scripted model and real (fake-backend) tool calls."""

from __future__ import annotations

import json
import time

import pytest

from eval.agent.loop import Limits, run_episode, tool_decision
from eval.agent.tools import InProcessTools, ToolCallError, validate_call
from eval.models.base import AgentContext
from eval.runner import render_messages


class Scripted:
    """Replies from a fixed script; records what it was shown each turn."""

    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.seen: list[list[dict]] = []

    def generate(self, messages, context=None):
        self.seen.append(list(messages))
        return self.replies.pop(0) if self.replies else json.dumps({"tool_calls": [{"name": "diarize"}]})


def ctx(mode="agentic", uri="clip.mp4"):
    return AgentContext(task="AVSA", mode=mode, question="Who speaks between 2 s and 4 s?", options=["left person", "right person"],
                        sample_id="s1", clip_uris=[uri], clip_spans=[(0.0, 6.0)])


TOOLS = InProcessTools("fake_tools")
LIMITS = Limits(max_steps=4, max_tool_calls=4, tool_timeout_s=5.0)


def run(model, c=None, limits=LIMITS):
    c = c or ctx()
    return run_episode(model, render_messages(c), c, TOOLS, limits)


def test_right_tools_then_answer():
    model = Scripted([
        json.dumps({"plan": "find who talks 2-4 s", "tool_calls": [
            {"name": "diarize", "arguments": {"clip": 0}},
            {"name": "active_speaker", "arguments": {"start_s": 2.0, "end_s": 4.0}},
            {"function": {"name": "track_faces", "arguments": "{}"}},  # OpenAI's shape, string arguments
        ]}),
        json.dumps({"reflect": "t1 (right) is active 2-4 s", "answer": "B"}),
    ])
    ep = run(model)
    assert ep.error is None and ep.raw_output == "B"
    assert ep.tools_called == ["diarize", "active_speaker", "track_faces"]
    tr = ep.trace
    assert tr["plan"] == "find who talks 2-4 s" and tr["reflect"].startswith("t1") and tr["answer"] == "B"
    assert [a["tool"] for a in tr["act"]] == ["diarize", "active_speaker", "track_faces"]
    assert all(a["ok"] for a in tr["act"])
    assert tr["act"][0]["result"]["turns"][1]["speaker"] == "B"
    # no span given: the clip's span is used; a given span is passed through
    assert tr["act"][0]["result"]["start_s"] == 0.0 and tr["act"][0]["result"]["end_s"] == 6.0
    assert tr["act"][1]["result"]["start_s"] == 2.0
    # the model saw the tool results on its second turn
    assert "Tool results" in model.seen[1][-1]["content"]
    td = tool_decision(ep.tools_called, ["diarize", "track_faces", "active_speaker"])
    assert td["jaccard"] == 1.0 and td["exact"] == 1.0


def test_wrong_tools_lower_tool_decision():
    model = Scripted([
        json.dumps({"plan": "listen", "tool_calls": [{"name": "transcribe"}, {"name": "sync_check"}]}),
        json.dumps({"reflect": "?", "answer": "A"}),
    ])
    ep = run(model)
    assert ep.raw_output == "A" and ep.tools_called == ["transcribe", "sync_check"]
    td = tool_decision(ep.tools_called, ["diarize", "track_faces", "active_speaker"])
    assert td["jaccard"] == 0.0 and td["recall"] == 0.0 and td["exact"] == 0.0
    partial = tool_decision(["diarize", "transcribe"], ["diarize", "active_speaker"])
    assert partial["jaccard"] == pytest.approx(1 / 3) and partial["recall"] == 0.5


def test_too_many_steps_stops_without_answer():
    model = Scripted([json.dumps({"plan": f"step {i}", "tool_calls": [{"name": "diarize"}]}) for i in range(10)])
    ep = run(model, limits=Limits(max_steps=3, max_tool_calls=10, tool_timeout_s=5.0))
    assert ep.raw_output is None
    assert ep.trace["stop"] == "step_budget" and ep.trace["steps"] == 3
    assert "step budget of 3" in ep.error
    # the last turn was told to answer, and its tool calls were not run
    assert "No more tool calls" in model.seen[2][-1]["content"]
    assert len(ep.trace["act"]) == 2


def test_tool_call_limit_is_enforced():
    model = Scripted([
        json.dumps({"tool_calls": [{"name": "diarize"}] * 3}),
        json.dumps({"tool_calls": [{"name": "transcribe"}] * 3}),
        json.dumps({"answer": "A"}),
    ])
    ep = run(model, limits=Limits(max_steps=5, max_tool_calls=4, tool_timeout_s=5.0))
    assert len(ep.tools_called) == 4
    refused = [a for a in ep.trace["act"] if not a["ok"]]
    assert len(refused) == 2 and "tool-call limit of 4" in refused[0]["error"]


def test_malformed_tool_call_is_reported_and_loop_recovers():
    model = Scripted([
        json.dumps({"plan": "p", "tool_calls": [
            {"name": "teleport", "arguments": {}},
            {"name": "diarize", "arguments": {"start_s": "soon"}},
            {"name": "diarize", "arguments": {"clip": 3}},
            {"name": "diarize", "arguments": "{not json"},
            {"name": "diarize", "arguments": {"start_s": 4, "end_s": 2}},
            {"name": "diarize", "arguments": {"speaker": "A"}},
        ]}),
        "The answer is B.",  # off-protocol free text is taken as the answer
    ])
    ep = run(model, limits=Limits(max_steps=4, max_tool_calls=8, tool_timeout_s=5.0))
    errors = [a["error"] for a in ep.trace["act"]]
    assert len(errors) == 6 and all(e.startswith("invalid call:") for e in errors)
    assert "unknown tool 'teleport'" in errors[0]
    assert "argument 'start_s'" in errors[1]
    assert "argument 'clip'" in errors[2] and "out of range" in errors[2]
    assert "not valid JSON" in errors[3]
    assert "argument 'end_s'" in errors[4]
    assert "argument 'speaker'" in errors[5]
    assert ep.tools_called == [] and ep.raw_output == "The answer is B." and ep.trace["stop"] == "free_text"
    assert "invalid call" in model.seen[1][-1]["content"]  # the model was told


def test_tool_timeout_is_an_error_entry_and_loop_continues():
    model = Scripted([json.dumps({"tool_calls": [{"name": "diarize"}]}), json.dumps({"answer": "A"})])
    t0 = time.perf_counter()
    ep = run(model, c=ctx(uri="slow_clip.mp4"), limits=Limits(max_steps=3, max_tool_calls=3, tool_timeout_s=0.3))
    assert time.perf_counter() - t0 < 2.5
    assert ep.raw_output == "A"
    assert ep.trace["act"][0]["ok"] is False and ep.trace["act"][0]["error"].startswith("timeout:")


def test_request_deadline_stops_the_loop():
    model = Scripted([json.dumps({"tool_calls": [{"name": "diarize"}]})] * 5)
    lim = Limits(max_steps=5, max_tool_calls=5, tool_timeout_s=5.0, deadline=time.monotonic() + 0.5)
    ep = run(model, c=ctx(uri="slow_clip.mp4"), limits=lim)
    assert ep.trace["stop"] == "timeout" and "deadline" in ep.error


def test_zero_shot_and_guided_are_single_turns():
    for mode in ("zero_shot", "guided"):
        model = Scripted(["B"])
        c = ctx(mode)
        ep = run_episode(model, render_messages(c), c, None, LIMITS)
        assert ep.raw_output == "B" and ep.trace["act"] == [] and ep.trace["steps"] == 1
        assert ("Tools:" in model.seen[0][0]["content"]) is False


def test_validate_call_accepts_good_arguments():
    args = validate_call("sync_check", {"clip": 1, "start_s": 1, "end_s": 2.5}, num_clips=2)
    assert (args.clip, args.start_s, args.end_s) == (1, 1.0, 2.5)
    with pytest.raises(ToolCallError, match="arguments must be a JSON object"):
        validate_call("diarize", [1, 2], 1)


def test_raft_line_format_runs_named_tools_and_keeps_answer():
    model = Scripted(["plan: find the voice\nact: diarize active_speaker\nreflect: ok\nanswer: B"])
    ep = run(model)
    assert ep.raw_output == "B" and ep.tools_called == ["diarize", "active_speaker"]
    assert ep.trace["plan"] == "find the voice" and ep.trace["stop"] == "answer" and len(model.seen) == 1


def test_tool_times_are_clip_relative():
    c = AgentContext(task="STG", mode="agentic", question="q", sample_id="s", clip_uris=["clip.mp4"], clip_spans=[(10.0, 16.0)])
    model = Scripted([json.dumps({"tool_calls": [{"name": "diarize", "arguments": {"start_s": 2.0, "end_s": 30.0}}]}),
                      json.dumps({"answer": "[]"})])
    ep = run_episode(model, render_messages(c), c, TOOLS, LIMITS)
    res = ep.trace["act"][0]["result"]
    # the tool saw media seconds 12..16 (end clamped to the clip); the agent sees 2..6
    assert (res["start_s"], res["end_s"]) == (2.0, 6.0)
    assert res["turns"][0]["start"] == -10.0  # fake turns are media-time 0..2: before this clip
