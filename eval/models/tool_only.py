"""The tool-only baseline: a deterministic agent that answers every task from perception alone.

It shows what the tools can reach without a language model. In agentic mode it calls the tools
its task's policy needs (once per clip), then answers; in guided mode it reads the cues; in
zero-shot mode it has nothing to go on and gives the task kind's empty answer (option A, no
intervals, an empty summary), which is what "no perception" is worth. Each task's policy lives in
its task module (``Task.tool_only_answer``), with shared helpers in ``eval.tasks.tool_policy``.
"""

from __future__ import annotations

import json
from typing import Any

from eval.models.base import AgentContext
from eval.models.evidence import Evidence, from_cues, from_trace


class ToolOnlyAgent:
    """Answers with the task's own tool-only policy (``Task.tool_only_answer``), calling the tools the
    task names for it (``Task.tools_for_baseline``)."""

    kind = "tool_only"

    def __init__(self, name: str = "tool_only"):
        self.name = name

    def _evidence(self, ctx: AgentContext) -> list[Evidence]:
        n = max(1, len(ctx.clip_uris))
        if ctx.mode == "agentic":
            return [from_trace(ctx.evidence, i) for i in range(n)]
        return [from_cues(ctx.cues, i) for i in range(n)]

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        from eval.tasks import get_task

        if context is None:
            return "A"  # plain chat carries no structure to act on
        task = get_task(context.task)
        if context.mode == "zero_shot":
            return task.kind.empty_answer
        if context.mode == "agentic" and context.tools_allowed and not context.evidence:
            needs = task.tools_for_baseline()
            calls = [{"name": t, "arguments": {"clip": i}} for i in range(max(1, len(context.clip_uris))) for t in needs]
            return json.dumps({"plan": f"{context.task}: gather {', '.join(needs)}", "tool_calls": calls})
        evs = self._evidence(context)
        answer = task.tool_only_answer(context, evs) if not all(e.empty() for e in evs) else task.kind.empty_answer
        if context.mode == "agentic":
            failed = [e["tool"] for e in context.evidence if not e.get("ok")]
            reflect = "tool errors: " + ", ".join(failed) if failed else "answered from tool outputs"
            return json.dumps({"reflect": reflect, "answer": answer})
        return answer
