"""Adapter kind -> constructor and identity. Config names a kind (``eval.models[i].kind``); nothing switches on it elsewhere.

A model's *identity* (:func:`model_identity`) is what its answers depend on, so the eval cache can
key predictions by it rather than by the reported name: a retrained checkpoint under the same name
gets new predictions, an unchanged one reuses its old ones.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from typing import Any

from eval.config import ModelSpec
from infra.config import ConfigError
from infra.ids import content_id

log = logging.getLogger("amuse.eval.models")


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

    # ``hf_media``: how much of a clip the model is shown (eval.policy_media: max_audio_s, num_frames, frame_size)
    return HFPolicyAdapter(spec.name, resolve_policy_path(spec, ctx), max_new_tokens=spec.max_new_tokens,
                           temperature=spec.temperature, seed=spec.seed, **ctx.get("hf_media", {}))


def _openai(spec: ModelSpec, ctx: dict) -> Any:
    from eval.models.openai_compat import OpenAIAdapter

    if not spec.base_url:
        raise ConfigError(f"eval.models[{spec.name}].base_url: required for kind 'openai'")
    return OpenAIAdapter(spec.name, spec.base_url, spec.remote_model, api_key_env=spec.api_key_env,
                         max_new_tokens=spec.max_new_tokens, temperature=spec.temperature,
                         max_attempts=ctx.get("remote_max_attempts", 4), accepts=spec.accepts, media=ctx.get("hf_media"))


ADAPTERS: dict[str, Callable[[ModelSpec, dict], Any]] = {"tool_only": _tool_only, "random": _random, "hf": _hf, "openai": _openai}


def _source_digest(*modules: str) -> str:
    """Digest of the modules' source files (read, not imported): a baseline's answers change with its code."""
    texts = []
    for m in modules:
        spec = importlib.util.find_spec(m)
        if spec is None or not spec.origin:
            raise ConfigError(f"model identity: module {m} not found")
        with open(spec.origin, "rb") as f:
            texts.append(f.read().decode())
    return content_id(*texts)


def _tool_only_id(spec: ModelSpec, ctx: dict) -> dict:
    from eval.tasks import get_task, task_names

    # the agent, its evidence reader, and each task's own tool-only policy (in the task modules)
    modules = ["eval.models.tool_only", "eval.models.evidence", "eval.tasks.tool_policy",
               *sorted({get_task(t).__module__ for t in task_names()})]
    return {"code": _source_digest(*modules)}


def _random_id(spec: ModelSpec, ctx: dict) -> dict:
    return {"seed": spec.seed, "code": _source_digest("eval.models.random_baseline")}


def _hf_id(spec: ModelSpec, ctx: dict) -> dict:
    from infra.file_digest import folder_digest

    path = resolve_policy_path(spec, ctx)
    # A local folder is keyed by its bytes; anything else (a hub id) by its name only, which is said.
    if os.path.isdir(path):
        checkpoint = folder_digest(path)
    else:
        checkpoint = f"name:{path}"
        log.warning("eval.models[%s]: %s is not a local folder; cached predictions are keyed by its name only", spec.name, path)
    # the adapter and the processor encode the prompt and the media, so their code is part of what the
    # answers depend on (the prompt text itself is keyed by eval.prompting.prompt_version())
    return {"checkpoint": checkpoint, "max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature,
            "seed": spec.seed, "media": ctx.get("hf_media") or None,
            "code": _source_digest("eval.models.hf", "eval.models.clip_media", "omni.policy", "omni.processor")}


def _openai_id(spec: ModelSpec, ctx: dict) -> dict:
    return {"base_url": (spec.base_url or "").rstrip("/"), "remote_model": spec.remote_model or spec.name,
            "max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature,
            # what the endpoint is shown changes its answers; text-only specs keep their old identity
            **({"accepts": sorted(spec.accepts), "media": ctx.get("hf_media") or None} if set(spec.accepts) != {"text"} else {})}


IDENTITIES: dict[str, Callable[[ModelSpec, dict], dict]] = {
    "tool_only": _tool_only_id, "random": _random_id, "hf": _hf_id, "openai": _openai_id,
}
assert set(IDENTITIES) == set(ADAPTERS), "every adapter kind needs an identity"


def model_identity(spec: ModelSpec, ctx: dict | None = None) -> str:
    """Content id of what ``spec``'s answers depend on: a local checkpoint's bytes, an endpoint's URL and
    remote model id, a baseline's settings and code; generation settings for language models. Computed
    once on the driver (a checkpoint is hashed there; its per-file digests are cached)."""
    if spec.kind not in IDENTITIES:
        raise ConfigError(f"eval.models[{spec.name}].kind: {spec.kind!r} is not one of {sorted(IDENTITIES)}")
    parts = {"kind": spec.kind, **IDENTITIES[spec.kind](spec, ctx or {})}
    log.info("model %s: identity %s", spec.name, parts)
    return content_id(parts)


def build_adapter(spec: ModelSpec, ctx: dict | None = None) -> Any:
    """``ctx`` carries what some kinds need from the app config: ``hf_media``, ``policy_candidates``
    (plain values: it travels to Serve replicas, which must not need the trainer's classes)."""
    if spec.kind not in ADAPTERS:
        raise ConfigError(f"eval.models[{spec.name}].kind: {spec.kind!r} is not one of {sorted(ADAPTERS)}")
    return ADAPTERS[spec.kind](spec, ctx or {})
