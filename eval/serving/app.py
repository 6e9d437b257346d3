"""Build, start and stop the Serve application from the typed config.

``build_app(cfg)`` binds: one ``ToolDeployment`` per tool (named ``tool_<name>``), one
``ModelDeployment`` with every model in ``cfg.eval.models``, and the ``Ingress``. ``start(cfg)``
runs it on ``serve.host:serve.port`` and returns the base URL; ``stop(cfg)`` deletes it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

from eval.agent.tools import TOOLS
from infra.config import ConfigError, to_dict


def resolve_api_key(serve_cfg) -> str:
    key = serve_cfg.api_key or os.environ.get(serve_cfg.api_key_env)
    if not key:
        raise ConfigError(
            f"serve.api_key: no API key configured; export {serve_cfg.api_key_env} (serve.api_key_env) or set serve.api_key"
        )
    return key


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def adapter_context(cfg) -> dict:
    """What adapters need from the app config, as plain values: where training exports its model
    (``policy_candidates``), how much of a clip a model is shown (``hf_media``, eval.policy_media) and
    how many calls a remote endpoint gets (``remote_max_attempts``)."""
    train_cfg = getattr(cfg, "train", None)
    candidates = []
    if train_cfg is not None:
        base = train_cfg.storage_path or cfg.output_uri("train")
        candidates += [os.path.join(base, "export"), os.path.join(base, train_cfg.experiment_name, "export")]
    media = to_dict(cfg.eval.policy_media)
    candidates.append(cfg.output_uri("train", "export"))
    candidates.append(cfg.output_uri("model"))
    return {"hf_media": media, "policy_candidates": candidates, "remote_max_attempts": cfg.eval.remote_max_attempts}


def build_app(cfg, models: list | None = None, tool_extra: dict | None = None) -> Any:
    """The bound application. ``models``: ModelSpecs to serve (default ``cfg.eval.models``)."""
    from eval.serving.deployments import ModelDeployment, ToolDeployment
    from eval.serving.ingress import Ingress

    s = cfg.serve
    if tool_extra is None and s.tools_module == "perception.tools":
        tool_extra = {"cfg": to_dict(cfg.perception)}  # tools run the configured perception backends
    tools = {
        name: ToolDeployment.options(
            name=f"tool_{name}", num_replicas=s.tool_replicas, max_ongoing_requests=s.max_ongoing_requests,
            ray_actor_options={"num_cpus": s.num_cpus_tool},
        ).bind(name, s.tools_module, tool_extra)
        for name in TOOLS
    }
    specs = [dataclasses.asdict(m) for m in (models if models is not None else cfg.eval.models)]
    scaling = ({"autoscaling_config": s.autoscaling.to_serve()} if s.autoscaling.enabled
               else {"num_replicas": s.num_replicas})
    model = ModelDeployment.options(
        max_ongoing_requests=s.max_ongoing_requests, ray_actor_options={"num_cpus": s.num_cpus_model}, **scaling,
    ).bind(specs, adapter_context(cfg), {"max_batch_size": s.batch_max_size, "batch_wait_timeout_s": s.batch_wait_timeout_s})
    settings = {
        **to_dict(s),
        "api_key": resolve_api_key(s),
        "allowed_media_roots": [os.path.abspath(r) if "://" not in r else r for r in s.allowed_media_roots],
        "storage": to_dict(cfg.storage),
    }
    return Ingress.options(
        max_ongoing_requests=s.max_ongoing_requests, ray_actor_options={"num_cpus": s.num_cpus_ingress}
    ).bind(model, tools, settings)


def start(cfg, models: list | None = None, tool_extra: dict | None = None, blocking: bool = False) -> str:
    """Start Serve's HTTP proxy on serve.host:serve.port and deploy the app; returns the base URL."""
    from ray import serve

    s = cfg.serve
    port = s.port or free_port(s.host)
    serve.start(http_options={"host": s.host, "port": port})
    serve.run(build_app(cfg, models, tool_extra), name=s.app_name, route_prefix=s.route_prefix, blocking=blocking)
    return f"http://{s.host}:{port}"


def stop(cfg) -> None:
    from ray import serve

    serve.shutdown()
