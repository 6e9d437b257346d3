"""Checkpoint folders for the ``hf`` models of ``eval.models``, resolved before eval builds them.

An ``hf`` model without ``path`` is served from the train job's export when there is one (eval
looks for it, ``eval.models.registry.resolve_policy_path``). When training has exported nothing
yet, the pipelines — which may import raft — give it ``train.model_path`` or the tiny base model
that RAFT builds, so ``amuse evaluate`` and ``amuse serve`` work before ``amuse train`` has run.
"""

from __future__ import annotations

from pipelines.config import AppConfig


def resolve_policy_paths(cfg: AppConfig) -> None:
    """Set ``path`` on every ``hf`` model that names none and finds no trained export (in place)."""
    from eval.models.registry import find_checkpoint
    from eval.serving.app import adapter_context

    pending = [m for m in cfg.eval.models if m.kind == "hf" and not m.path]
    if not pending or find_checkpoint(adapter_context(cfg)["policy_candidates"]):
        return  # nothing to resolve, or eval serves the export
    from raft.model import build_tiny

    path = str(cfg.train.model_path or build_tiny(cfg.train))
    for m in pending:
        m.path = path
