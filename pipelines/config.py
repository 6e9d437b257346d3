"""The root config: one section per layer, composed here so lower layers never import pipelines.

Load with ``load_app_config(path, overrides)``; every job takes ``--config`` and repeated
``--set key.path=value``. ``amuse config --describe`` prints every field with its doc.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval.config import EvalConfig, ServeConfig
from infra.config import doc_field, load_config
from infra.ray_utils import RayConfig
from infra.storage import StorageConfig
from perception.config import PerceptionConfig
from pipelines.curation.config import CurateConfig
from raft.config import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


@dataclass
class RunConfig:
    name: str = doc_field("demo", "Run name; outputs go to <output_dir>/<name>/.")
    output_dir: str = doc_field("outputs", "Local folder or s3:// URI under which every job writes.")
    corpus_dir: str = doc_field("data/corpus", "Root of the raw corpus (the five sources' folders), local or s3://.")
    seed: int = doc_field(0, "Seed for every RNG the jobs use (option shuffles, sampling, init).")


@dataclass
class AppConfig:
    run: RunConfig = doc_field(doc="Names, paths and seed shared by all jobs.", factory=RunConfig)
    ray: RayConfig = doc_field(doc="How jobs connect to Ray.", factory=RayConfig)
    storage: StorageConfig = doc_field(doc="Credentials and endpoint for s3:// URIs.", factory=StorageConfig)
    perception: PerceptionConfig = doc_field(doc="Perception backends and actor sizing.", factory=PerceptionConfig)
    curate: CurateConfig = doc_field(doc="What `amuse curate` reads, cuts, runs and writes; task-builder settings.", factory=CurateConfig)
    eval: EvalConfig = doc_field(doc="What `amuse evaluate` measures: tasks, modes, models, metrics.", factory=EvalConfig)
    serve: ServeConfig = doc_field(doc="What `amuse serve` hosts and the limits its HTTP ingress enforces.", factory=ServeConfig)
    train: TrainConfig = doc_field(doc="RAFT alignment: objective, SRA, rewards, Ray Train + DeepSpeed, checkpoints.", factory=TrainConfig)

    def output_uri(self, *parts: str) -> str:
        base = self.run.output_dir.rstrip("/")
        if "://" not in base and not Path(base).is_absolute():
            base = str(Path.cwd() / base)
        return "/".join([base, self.run.name, *parts])


def load_app_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> AppConfig:
    return load_config(AppConfig, path, overrides)
