"""Optional LLM judge for AVDS: any OpenAI-compatible endpoint rates a summary 0–10.

The judge sees the reference summaries and the candidate, and must reply with a number; a reply
without one is recorded as missing (None), never as 0, so a flaky judge cannot drag scores down.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

log = logging.getLogger("amuse.eval.metrics.judge")

PROMPT = (
    "You grade summaries of multi-speaker dialogues. Compare the candidate with the reference "
    "summaries for correct content and correct speaker attribution. Reply with one integer from 0 "
    "(wrong or empty) to 10 (as good as the references) and nothing else.\n\n"
    "References:\n{refs}\n\nCandidate:\n{cand}\n\nScore:"
)


def parse_score(text: str) -> float | None:
    m = re.search(r"(?<![\d.\-])(10|\d)(?:\.\d+)?(?:\s*/\s*10)?(?![\d])", text or "")
    return float(m.group(0).split("/")[0]) if m else None


class Judge:
    """One OpenAI-compatible chat-completions call per summary (``openai`` client, bearer key from
    ``api_key_env``). :meth:`rate` says why a score is missing; :meth:`score` gives the score only."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "JUDGE_API_KEY", timeout_s: float = 60.0,
                 max_attempts: int = 4):
        from openai import OpenAI

        self.model = model
        # Transient failures (connection, 429, 5xx) are retried by the client with backoff, as for
        # the OpenAI adapter (eval.models.openai_compat); a judge still failing after max_attempts
        # calls, or refusing the request (other 4xx), is recorded as missing with the reason.
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts}")
        self.client = OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env, "none"), timeout=timeout_s,
                             max_retries=max_attempts - 1)

    def rate(self, candidate: str, references: Sequence[str]) -> tuple[float | None, str | None]:
        """(score 0-10, None) or (None, why there is none): the call failed, or the reply had no score."""
        refs = "\n".join(f"- {r}" for r in references)
        try:
            resp = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": PROMPT.format(refs=refs, cand=candidate)}],
                temperature=0.0,
                max_tokens=8,
            )
            text = resp.choices[0].message.content or ""
        except Exception as exc:  # unreachable, refused or not a chat completion: missing, the run goes on
            err = f"judge call failed: {type(exc).__name__}: {exc}"
            log.warning(err)
            return None, err
        score = parse_score(text)
        if score is None or not 0.0 <= score <= 10.0:
            err = f"judge reply has no 0-10 score: {text[:80]!r}"
            log.warning(err)
            return None, err
        return score, None

    def score(self, candidate: str, references: Sequence[str]) -> float | None:
        return self.rate(candidate, references)[0]
