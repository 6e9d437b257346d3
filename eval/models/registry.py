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


def resolve_policy_path(spec: ModelSpec, ctx: dict) -> str:
    """The checkpoint an ``hf`` spec names; without a path, the train job's export, else the tiny base model."""
    if spec.path:
        return spec.path
    for candidate in ctx.get("policy_candidates", []):
        if candidate and os.path.exists(os.path.join(candidate, "config.json")):
            return candidate
    train_cfg = ctx.get("train_cfg")
    if train_cfg is not None:
        from raft.model import build_tiny

        return str(train_cfg.model_path or build_tiny(train_cfg))
    raise ConfigError(f"eval.models[{spec.name}].path: no checkpoint given and no trained export found")


def _hf(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.hf import HFPolicyAdapter

    kwargs = {}
    train_cfg = ctx.get("train_cfg")
    if train_cfg is not None:  # encode media as training did
        kwargs = {"max_audio_s": train_cfg.max_audio_s, "num_frames": train_cfg.num_frames, "frame_size": train_cfg.frame_size}
    return HFPolicyAdapter(spec.name, resolve_policy_path(spec, ctx), max_new_tokens=spec.max_new_tokens,
                           temperature=spec.temperature, seed=spec.seed, **kwargs)


def _openai(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.openai_compat import OpenAIAdapter

    if not spec.base_url:
        raise ConfigError(f"eval.models[{spec.name}].base_url: required for kind 'openai'")
    return OpenAIAdapter(spec.name, spec.base_url, spec.remote_model, api_key_env=spec.api_key_env,
                         max_new_tokens=spec.max_new_tokens, temperature=spec.temperature)


ADAPTERS: dict[str, Callable[[ModelSpec, dict], Any]] = {"tool_only": _tool_only, "random": _random, "hf": _hf, "openai": _openai}


def build_adapter(spec: ModelSpec, ctx: dict | None = None) -> Any:
    """``ctx`` carries what some kinds need from the app config: ``train_cfg``, ``policy_candidates``."""
    if spec.kind not in ADAPTERS:
        raise ConfigError(f"eval.models[{spec.name}].kind: {spec.kind!r} is not one of {sorted(ADAPTERS)}")
    return ADAPTERS[spec.kind](spec, ctx or {})
