"""What a run's clips were made with, recorded beside them, so a resume never mixes two configs.

``curate.resume`` skips clip ids already written (``refs.done_clip_ids``). A clip id hashes the
media and the cut, not the perception settings, so a rerun under the same run name with another
backend would keep the old outputs and silently add new ones beside them. Each run therefore
records the output-relevant config in ``<output>/<run>/curation_manifest.json`` before it writes a
clip, and a resume whose config differs stops with an error naming the changed keys (dotted, e.g.
``perception.asr: faster_whisper -> pocketsphinx``). The way on is a new ``run.name`` (a separate
output), or ``curate.resume=false``, which rewrites this run's clips with the new config.

Backends are recorded resolved (``PerceptionConfig.backend``), so ``perception.profile: fast`` and
an explicit ``perception.asr: pocketsphinx`` are the same config. Keys that only decide where or
how fast perception runs are left out (:data:`OUTPUT_NEUTRAL`, the one list of them).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from infra import storage
from infra.config import ConfigError, to_dict
from infra.ids import content_id
from pipelines.config import AppConfig
from pipelines.curation.refs import clips_root, done_clip_ids

log = logging.getLogger(__name__)

MANIFEST = "curation_manifest.json"

CAPABILITIES = ("vad", "diarization", "asr", "faces", "active_speaker")

# Dotted keys (and everything under them) that cannot change a clip record: thread and actor
# counts, CPU/GPU reservations and batch sizing of the pools, where remote weights are copied to;
# the profile only picks backends, which are recorded resolved.
OUTPUT_NEUTRAL = (
    "perception.torch_threads",
    "perception.audio",
    "perception.video",
    "perception.weights_cache",
    "perception.profile",
)


def _flatten(d: dict, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}"
        out.update(_flatten(v, key) if isinstance(v, dict) else {key: v})
    return out


def _neutral(key: str) -> bool:
    return any(key == n or key.startswith(n + ".") for n in OUTPUT_NEUTRAL)


def perception_outputs_config(cfg: AppConfig) -> dict[str, Any]:
    """Dotted ``perception.*`` key -> value of every key that can change what perception outputs
    (backends resolved, :data:`OUTPUT_NEUTRAL` left out), in JSON-normal form. Also keys what the
    evaluator's agentic tools return (``pipelines.evaluate``)."""
    pc = to_dict(cfg.perception)
    pc.update({c: cfg.perception.backend(c) for c in CAPABILITIES})
    return json.loads(json.dumps({k: v for k, v in sorted(_flatten(pc, "perception").items()) if not _neutral(k)}))


def resume_config(cfg: AppConfig, stages: list[str]) -> dict[str, Any]:
    """Dotted key -> value of everything that shapes this run's clip records: the perception keys and the stages run."""
    return {**perception_outputs_config(cfg), "curate.stages": list(stages)}


def manifest_uri(cfg: AppConfig) -> str:
    return cfg.output_uri(MANIFEST)


def write_manifest(cfg: AppConfig, stages: list[str]) -> str:
    conf = resume_config(cfg, stages)
    uri = manifest_uri(cfg)
    body = {"config_hash": content_id(conf), "config": conf, "not_recorded": list(OUTPUT_NEUTRAL)}
    storage.write_bytes(uri, json.dumps(body, indent=1).encode(), cfg.storage)
    return uri


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key whose value differs, is new or is gone."""
    absent = "(absent)"
    return [f"{k}: {json.dumps(old.get(k, absent))} -> {json.dumps(new.get(k, absent))}".replace('"', "")
            for k in sorted(set(old) | set(new)) if old.get(k, absent) != new.get(k, absent)]


def resumable_clip_ids(cfg: AppConfig, stages: list[str]) -> set[str]:
    """Clip ids a resumed run skips: those already written, once the manifest shows they were made
    with this run's config. Raises ConfigError naming the changed keys when they were not."""
    done = done_clip_ids(cfg)
    if not done:
        return done
    uri = manifest_uri(cfg)
    way_on = ("Use a new run name (--set run.name=...) to curate into a separate output, or rewrite this run's "
              "clips with --set curate.resume=false.")
    if not storage.exists(uri, cfg.storage):
        raise ConfigError(f"curate.resume: {len(done)} clips under {clips_root(cfg)} have no {MANIFEST} saying which "
                          f"perception config made them (written before resume checked it). {way_on}")
    recorded = json.loads(storage.read_bytes(uri, cfg.storage))["config"]
    diff = changed_keys(recorded, resume_config(cfg, stages))
    if diff:
        raise ConfigError(
            f"curate.resume: the {len(done)} clips under {clips_root(cfg)} were made with another config ({uri}); "
            f"resuming would mix their outputs with this run's. Changed:\n  " + "\n  ".join(diff) + f"\n{way_on}")
    return done
