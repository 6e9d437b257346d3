"""Any OpenAI-compatible chat endpoint (ours, vLLM's, a vendor's) through the ``openai`` client."""

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
    ):
        from openai import OpenAI

        self.name = name
        self.remote_model = remote_model or name
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        key = api_key or os.environ.get(api_key_env) or "none"
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=1)

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        resp = self.client.chat.completions.create(
            model=self.remote_model,
            messages=messages,
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
        )
        return resp.choices[0].message.content or ""
