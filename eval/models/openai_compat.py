"""Any OpenAI-compatible chat endpoint (ours, vLLM's, a vendor's) through the ``openai`` client.

Transient failures are retried by the client itself, up to ``max_attempts`` calls in all
(``eval.remote_max_attempts``): connection errors, timeouts, 408/409/429 and 5xx, after the
server's ``Retry-After`` when it sends one (a longer wait than 2 min is not retried), else after an exponential backoff with
jitter (0.5 s doubling to at most 8 s, less a random 0-25%). Any other 4xx fails at once: the
request itself is wrong and would fail again.
"""

from __future__ import annotations

import os
from typing import Any

from eval.models.base import AgentContext


class OpenAIAdapter:
    kind = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        remote_model: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        timeout_s: float = 120.0,
        max_attempts: int = 4,
    ):
        from openai import OpenAI

        self.name = name
        self.remote_model = remote_model or name
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        key = api_key or os.environ.get(api_key_env) or "none"
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts}")
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=max_attempts - 1)

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        resp = self.client.chat.completions.create(
            model=self.remote_model,
            messages=messages,
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
        )
        return resp.choices[0].message.content or ""
