"""Eval and serve sections of the config (composed into ``pipelines.config.AppConfig``).

``EvalConfig`` says what ``amuse evaluate`` measures (tasks x modes x models) and how the
metrics are computed; ``ServeConfig`` says what ``amuse serve`` hosts and which limits the HTTP
ingress enforces. Models are named adapter specs (``eval.models.registry``) so a run can list the
policy checkpoint, an external endpoint and the two baselines side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import doc_field
from infra.schemas import MODES


@dataclass
class ModelSpec:
    name: str = doc_field("tool_only", "Name the model is reported under (and addressed by over HTTP).")
    kind: str = doc_field(
        "tool_only", "Adapter kind, a key of eval.models.registry: tool_only | random | hf | openai."
    )
    path: str | None = doc_field(
        None, "hf: checkpoint folder/URI (HF format, e.g. one exported by `amuse train`); None: the train job's export "
        "under the run, else train.model_path, else the tiny base model (resolved by pipelines.policies)."
    )
    base_url: str | None = doc_field(None, "openai: base URL of an OpenAI-compatible API (e.g. http://127.0.0.1:8000/v1).")
    remote_model: str | None = doc_field(None, "openai: model name sent to the endpoint (None: this spec's name).")
    api_key_env: str = doc_field("OPENAI_API_KEY", "openai: environment variable holding the endpoint's key.")
    max_new_tokens: int = doc_field(128, "Generation length limit for hf/openai adapters.")
    temperature: float = doc_field(0.0, "Sampling temperature for hf/openai adapters (0: greedy).")
    seed: int = doc_field(0, "Seed for the random baseline and for sampling.")
    accepts: list[str] = doc_field(
        doc="openai: what the endpoint takes besides the chat text, a subset of text | audio | image. With audio the "
        "clip's audio span goes as a base64 wav input_audio part; with image its frames go as JPEG data-URL image_url "
        "parts (eval.policy_media bounds both). ['text'] for text-only models.",
        factory=lambda: ["text"],
    )

    def validate(self) -> None:
        bad = [a for a in self.accepts if a not in MEDIA_KINDS]
        if bad or "text" not in self.accepts:
            raise ValueError(f"eval.models[{self.name}].accepts: {self.accepts} must include 'text' and be a subset of "
                             f"{list(MEDIA_KINDS)}")


MEDIA_KINDS = ("text", "audio", "image")


@dataclass
class PolicyMedia:
    """How much of a clip a model is shown (the hf policy, and what the openai adapter sends). The
    defaults cover a whole curated clip of up to 30 s (Qwen2.5-Omni's audio window; the real
    talking-head clips last 5-7 s) and 8 frames, small enough that the tiny test model answers
    in well under a second on one core; raise frame_size for a real checkpoint."""

    max_audio_s: float = doc_field(30.0, "Audio seconds shown per clip, from the span's start.")
    num_frames: int = doc_field(8, "Frames sampled evenly over the audio window (0: audio only; the hf policy uses an even number).")
    frame_size: int = doc_field(56, "Frames are resized to this many pixels square (a multiple of 28 for Qwen2.5-Omni).")

    def validate(self) -> None:
        if self.max_audio_s <= 0 or self.num_frames < 0 or self.frame_size < 28:
            raise ValueError(f"eval.policy_media: need max_audio_s > 0, num_frames >= 0, frame_size >= 28; got {self}")


def _default_models() -> list[ModelSpec]:
    return [ModelSpec("tool_only", "tool_only"), ModelSpec("random", "random"), ModelSpec("policy", "hf")]


@dataclass
class JudgeConfig:
    base_url: str | None = doc_field(None, "OpenAI-compatible endpoint of the AVDS LLM judge; None disables the judge.")
    model: str = doc_field("gpt-4o-mini", "Judge model name sent to the endpoint.")
    api_key_env: str = doc_field("JUDGE_API_KEY", "Environment variable holding the judge endpoint's key.")
    timeout_s: float = doc_field(60.0, "Per-call timeout for the judge, seconds.")


def task_names() -> list[str]:
    from eval.tasks import task_names as names  # lazy: the task modules are heavier than this config

    return names()


@dataclass
class EvalConfig:
    tasks: list[str] = doc_field(doc="Tasks to evaluate: registered task names (eval.tasks; AVSA NSP SRID STG AVDS CSNL).",
                                 factory=lambda: task_names())
    modes: list[str] = doc_field(doc="Modes to evaluate (zero_shot, guided, agentic).", factory=lambda: list(MODES))
    models: list[ModelSpec] = doc_field(doc="Models to evaluate, each a named adapter spec.", factory=_default_models)
    split: str = doc_field("test", "Which split of samples.parquet to evaluate: test | train | all (baselines learn nothing, so all is fair for them).")
    samples_uri: str | None = doc_field(None, "samples.parquet to read; None: <output_dir>/<run>/samples.parquet.")
    clips_uri: str | None = doc_field(None, "Clip records folder; None: <output_dir>/<run>/clips.")
    max_samples_per_task: int | None = doc_field(None, "Cap on samples per task (None: all), for quick runs.")
    via_http: bool = doc_field(True, "Send each sample through the Serve HTTP endpoint (True) or run models in-process.")
    concurrency: int = doc_field(2, "Parallel Ray Data tasks that send samples (HTTP clients or in-process runners).")
    num_cpus_per_task: float = doc_field(0.25, "CPUs reserved per Ray Data evaluation task (fractional on small machines).")
    bootstrap_samples: int = doc_field(1000, "Bootstrap resamples for the 95% confidence intervals.")
    stg_tolerance_s: float = doc_field(1.0, "STG off-by-one accuracy: both boundaries within this many seconds.")
    iou_thresholds: list[float] = doc_field(doc="STG R@1 thresholds on tIoU.", factory=lambda: [0.3, 0.5, 0.7])
    judge: JudgeConfig = doc_field(doc="Optional LLM judge for AVDS (0-10).", factory=JudgeConfig)
    remote_max_attempts: int = doc_field(
        4, "Calls per request to a remote endpoint (openai models, the judge), first one included. Connection errors, "
        "timeouts, 408/409/429 and 5xx are retried after the server's Retry-After, else an exponential backoff with "
        "jitter (0.5 s doubling to 8 s, openai client); other 4xx fail at once. A prediction that still fails is "
        "recorded with its error and retried on the next run (errors are never cached)."
    )
    policy_media: PolicyMedia = doc_field(doc="Media limits for the models that see the clip (hf, openai with accepts).",
                                          factory=PolicyMedia)
    report_dir: str | None = doc_field(None, "Where predictions, results and report go; None: <output_dir>/<run>/eval.")

    def validate(self) -> None:
        for i, t in enumerate(self.tasks):
            if t not in task_names():
                raise ValueError(f"eval.tasks[{i}]: {t!r} is not one of {task_names()}")
        for i, m in enumerate(self.modes):
            if m not in MODES:
                raise ValueError(f"eval.modes[{i}]: {m!r} is not one of {list(MODES)}")
        self.policy_media.validate()
        for m in self.models:
            m.validate()
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"eval.models: names must be unique, got {names}")
        if self.split not in ("test", "train", "all"):
            raise ValueError(f"eval.split: {self.split!r} is not one of test, train, all")
        if self.remote_max_attempts < 1:
            raise ValueError(f"eval.remote_max_attempts: must be >= 1, got {self.remote_max_attempts}")
        if self.bootstrap_samples < 1:
            raise ValueError(f"eval.bootstrap_samples: must be >= 1, got {self.bootstrap_samples}")
        for i, th in enumerate(self.iou_thresholds):
            if not 0.0 < th <= 1.0:
                raise ValueError(f"eval.iou_thresholds[{i}]: {th} is outside (0, 1]")
        if self.stg_tolerance_s < 0:
            raise ValueError(f"eval.stg_tolerance_s: must be >= 0, got {self.stg_tolerance_s}")


@dataclass
class AutoscalingConfig:
    """Ray Serve's autoscaling_config for the model deployment (off: a fixed serve.num_replicas)."""

    enabled: bool = doc_field(False, "Scale the model deployment between min_replicas and max_replicas.")
    min_replicas: int = doc_field(1, "Fewest replicas kept.")
    max_replicas: int = doc_field(4, "Most replicas started.")
    target_ongoing_requests: float = doc_field(4.0, "Requests per replica Serve aims for when scaling.")

    def to_serve(self) -> dict:
        return {"min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests}


@dataclass
class ServeConfig:
    host: str = doc_field("127.0.0.1", "Interface the HTTP ingress binds (loopback by default).")
    port: int = doc_field(8000, "HTTP port of the ingress (0: pick a free one).")
    app_name: str = doc_field("amuse", "Ray Serve application name.")
    route_prefix: str = doc_field("/", "Route prefix of the ingress.")
    api_key_env: str = doc_field("AMUSE_API_KEY", "Environment variable with the bearer key clients must send.")
    api_key: str | None = doc_field(None, "Bearer key (overrides api_key_env; for tests and demos, not production).")
    allowed_media_roots: list[str] = doc_field(
        doc="Local folders or s3://bucket[/prefix] URIs media may be read from; anything else is refused (403).",
        factory=lambda: ["data/corpus"],
    )
    max_media_bytes: int = doc_field(200 * 1024 * 1024, "Largest media file accepted, bytes (413 above).")
    max_media_duration_s: float = doc_field(600.0, "Longest media accepted, seconds (413 above).")
    max_body_bytes: int = doc_field(
        8 * 1024 * 1024, "Largest request body accepted, bytes (413 above). Chat content parts carry media inline: 30 s "
        "of 16 kHz 16-bit wav is 1.3 MB in base64, a JPEG frame tens of kB; clips by URI cost nothing."
    )
    media_check_timeout_s: float = doc_field(
        10.0, "Wall-clock limit for checking one clip URI (stat, size, probe); 504 above."
    )
    media_check_threads: int = doc_field(
        4, "Threads that check clip URIs per ingress replica; /healthz answers 503 when all are stuck past "
        "media_check_timeout_s."
    )
    health_probe_timeout_s: float = doc_field(
        5.0, "How long /healthz waits for each deployment's cheap call (model names, tool ping) before it answers 503."
    )
    max_tool_calls: int = doc_field(8, "Tool calls allowed per request; the agent stops calling tools after this many.")
    max_steps: int = doc_field(6, "Agent step budget (model turns) per request.")
    request_timeout_s: float = doc_field(600.0, "Wall-clock limit per request, seconds (504 above).")
    tool_timeout_s: float = doc_field(
        180.0, "Wall-clock limit per tool call; a timeout is reported in the trace (CPU perception on a 30 s clip takes 10-60 s)."
    )
    tools_module: str = doc_field(
        "perception.tools", "Module whose functions implement the tools (diarize, transcribe, ...), shared with in-process runs."
    )
    num_replicas: int = doc_field(1, "Replicas of the model deployment.")
    tool_replicas: int = doc_field(1, "Replicas of each tool deployment.")
    num_cpus_model: float = doc_field(0.25, "CPUs reserved per model replica (fractional on small machines).")
    num_cpus_tool: float = doc_field(0.1, "CPUs reserved per tool replica.")
    num_cpus_ingress: float = doc_field(0.1, "CPUs reserved per ingress replica.")
    max_ongoing_requests: int = doc_field(32, "Concurrent requests one replica accepts before Serve queues them.")
    batch_max_size: int = doc_field(
        8, "Chat requests the model deployment gathers into one batch (Ray Serve's @serve.batch); the hf policy "
        "decodes a batch in one left-padded forward per kind of media, each request with its own sampling generator, "
        "stop strings and max_tokens (1: one forward per request)."
    )
    batch_wait_timeout_s: float = doc_field(0.005, "How long a batch waits to fill before it runs, seconds.")
    autoscaling: AutoscalingConfig = doc_field(
        doc="Model-deployment autoscaling; when enabled it replaces num_replicas.", factory=lambda: AutoscalingConfig()
    )

    def validate(self) -> None:
        for key in ("max_media_bytes", "max_body_bytes", "max_tool_calls", "max_steps", "num_replicas", "tool_replicas",
                    "media_check_threads"):
            if getattr(self, key) < 1:
                raise ValueError(f"serve.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("max_media_duration_s", "request_timeout_s", "tool_timeout_s", "media_check_timeout_s",
                    "health_probe_timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"serve.{key}: must be > 0, got {getattr(self, key)}")
        if self.batch_max_size < 1 or self.batch_wait_timeout_s < 0:
            raise ValueError(f"serve.batch_max_size / batch_wait_timeout_s: need >= 1 / >= 0, got "
                             f"{self.batch_max_size} / {self.batch_wait_timeout_s}")
        a = self.autoscaling
        if a.enabled and not 0 <= a.min_replicas <= a.max_replicas or a.max_replicas < 1:
            raise ValueError(f"serve.autoscaling: need 0 <= min_replicas <= max_replicas >= 1, got {a.min_replicas}, {a.max_replicas}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"serve.port: {self.port} is not a TCP port")
        if not self.allowed_media_roots:
            raise ValueError("serve.allowed_media_roots: at least one root is needed, or no media can be read")
