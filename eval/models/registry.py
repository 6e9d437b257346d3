"""Adapter kind -> constructor. Config names a kind (``eval.models[i].kind``); nothing switches on it elsewhere."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from eval.config import ModelSpec
from infra.config import ConfigError


def _tool_only(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.tool_only import ToolOnlyAgent

    return ToolOnlyAgent(spec.name)


def _random(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.random_baseline import RandomAdapter

    return RandomAdapter(spec.name, seed=spec.seed)


def find_checkpoint(candidates: list[str]) -> str | None:
    """The first folder that holds a checkpoint (its config.json), else None."""
    return next((c for c in candidates if c and os.path.exists(os.path.join(c, "config.json"))), None)


def resolve_policy_path(spec: ModelSpec, ctx: dict) -> str:
    """The checkpoint an ``hf`` spec names; without a path, the first candidate folder holding a
    checkpoint (the train job's export). The pipelines fill ``spec.path`` with the base model when
    training exported none (``pipelines.policies``); eval knows nothing of how it is built."""
    if spec.path:
        return spec.path
    candidates = [c for c in ctx.get("policy_candidates", []) if c]
    found = find_checkpoint(candidates)
    if found:
        return found
    raise ConfigError(f"eval.models[{spec.name}].path: no checkpoint given and no trained export found "
                      f"(looked for config.json in: {', '.join(candidates) or 'no candidate folders'})")


def _hf(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.hf import HFPolicyAdapter

    # ``hf_media``: how training encodes a clip (max_audio_s, num_frames, frame_size), so eval matches it
    return HFPolicyAdapter(spec.name, resolve_policy_path(spec, ctx), max_new_tokens=spec.max_new_tokens,
                           temperature=spec.temperature, seed=spec.seed, **ctx.get("hf_media", {}))


def _openai(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.openai_compat import OpenAIAdapter

    if not spec.base_url:
        raise ConfigError(f"eval.models[{spec.name}].base_url: required for kind 'openai'")
    return OpenAIAdapter(spec.name, spec.base_url, spec.remote_model, api_key_env=spec.api_key_env,
                         max_new_tokens=spec.max_new_tokens, temperature=spec.temperature)


ADAPTERS: dict[str, Callable[[ModelSpec, dict], Any]] = {"tool_only": _tool_only, "random": _random, "hf": _hf, "openai": _openai}


def build_adapter(spec: ModelSpec, ctx: dict | None = None) -> Any:
    """``ctx`` carries what some kinds need from the app config: ``hf_media``, ``policy_candidates``
    (plain values: it travels to Serve replicas, which must not need the trainer's classes)."""
    if spec.kind not in ADAPTERS:
        raise ConfigError(f"eval.models[{spec.name}].kind: {spec.kind!r} is not one of {sorted(ADAPTERS)}")
    return ADAPTERS[spec.kind](spec, ctx or {})
