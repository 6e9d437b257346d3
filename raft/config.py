"""The ``train`` section of the config: every RAFT hyperparameter, documented.

The paper (arXiv 2512.16250) publishes none of K, beta, alpha, gamma or the learning rate;
the defaults here are chosen to run on the tiny model on a 2-core CPU and are meant to be
overridden (``--set train.beta=0.5``). DESIGN §7 gives the method and its notation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from infra.config import ConfigError, doc_field


@dataclass
class TinyModelConfig:
    """Shape of the random Qwen2.5-Omni thinker built offline when ``train.model_path`` is None."""

    hidden_size: int = doc_field(64, "LM hidden size (the shared width of f_a, f_v, f_t, f_r).")
    num_layers: int = doc_field(2, "LM decoder layers.")
    num_heads: int = doc_field(4, "LM attention heads.")
    num_kv_heads: int = doc_field(2, "LM key/value heads (grouped-query attention).")
    intermediate_size: int = doc_field(
        336, "LM MLP width: Qwen2.5-Omni-7B's ratio to the hidden size (18944 / 3584 = 5.3), rounded to a multiple of "
        "16, so the tiny model's split between attention and MLP parameters resembles the real one's."
    )
    audio_d_model: int = doc_field(32, "Audio encoder width (projected to hidden_size by audio_tower.proj).")
    audio_layers: int = doc_field(1, "Audio encoder layers.")
    vision_hidden: int = doc_field(32, "Vision encoder width (merged to hidden_size by visual.merger).")
    vision_depth: int = doc_field(1, "Vision encoder blocks.")
    vocab_size: int = doc_field(1024, "BPE vocabulary trained locally with `tokenizers` (specials included).")
    seed: int = doc_field(0, "Seed of the random weights, so every worker builds the same model.")


@dataclass
class SRAConfig:
    """Which parameters form theta_cross; everything else is frozen (DESIGN §7 lists the presets' fractions)."""

    method: str = doc_field("sra", "sra: train the parameters matched below | lora: peft LoRA adapters on them | full.")
    preset: str = doc_field(
        "cross_modal", "Named selection of theta_cross (raft.sra.PRESETS): cross_modal (default: the audio "
        "projector, the vision merger's output layer, q/k/v of the top LM layer) | projectors | cross_modal_wide. "
        "patterns / layer_patterns / top_layers, when set, replace the preset's."
    )
    patterns: list[str] | None = doc_field(
        None, "Regexes on parameter names always trained (sra); None: the preset's (the modality projectors)."
    )
    layer_patterns: list[str] | None = doc_field(
        None, "Regexes, relative to a decoder layer, trained in the selected LM layers (sra); None: the preset's."
    )
    top_layers: int | None = doc_field(
        None, "Select the top N decoder layers (ignored when layer_indices is set); None: the preset's."
    )
    layer_indices: list[int] | None = doc_field(None, "Explicit decoder layer indices (negative counts from the top).")
    lora_rank: int = doc_field(8, "LoRA rank (method=lora).")
    lora_alpha: float = doc_field(16.0, "LoRA scaling numerator (scale = alpha / rank).")
    lora_dropout: float = doc_field(0.0, "LoRA dropout.")
    lora_targets: list[str] = doc_field(
        doc="Module-name suffixes LoRA adapts inside the selected layers (method=lora).",
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
    )


# train.lr_schedule -> transformers.get_scheduler name (all take num_warmup_steps)
LR_SCHEDULES: dict[str, str] = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}

# lambda_c of the reward, keyed by the component names registered in raft.rewards.REWARDS.
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {
    "sync": 0.5,  # the track the answer attributes is in sync with the speech (pred_active_speaker)
    "face": 0.5,  # the person the answer attributes is visible and active in the claimed span
    "speech": 0.5,  # the candidate's words were heard by the ASR, less what it copied verbatim
    "diarization": 0.5,  # claimed intervals agree (IoU) with the asked speaker's predicted turns
    "answer": 2.0,  # correctness against the sample's label (accuracy / tIoU / word F1)
    "format": 1.0,  # plan / act / reflect / answer sections present
}


@dataclass
class TrainConfig:
    # --- data and model
    samples_uri: str | None = doc_field(None, "samples.parquet (local or s3://); None: <output_dir>/<run>/samples.parquet.")
    clips_uri: str | None = doc_field(None, "Clip records (a Parquet file or curation's clips/ folder); None: <output_dir>/<run>/clips.")
    tasks: list[str] = doc_field(doc="Tasks to train on (empty: all).", factory=list)
    prompt_mode: str = doc_field("guided", "Prompt mode for training prompts: zero_shot | guided | agentic.")
    model_path: str | None = doc_field(None, "HF checkpoint folder of a Qwen2.5-Omni thinker; None builds the tiny model.")
    tiny: TinyModelConfig = doc_field(doc="Shape of the tiny random model.", factory=TinyModelConfig)
    model_cache_dir: str = doc_field(".cache/raft_tiny", "Where the tiny model/tokenizer is built once and reused.")
    dtype: str = doc_field("float32", "Model dtype: float32 | bfloat16.")
    max_audio_s: float = doc_field(4.0, "Audio seconds encoded per clip (from clip start); 25 tokens/s in Qwen2.5-Omni.")
    num_frames: int = doc_field(4, "Video frames sampled evenly over the encoded window, the first max_audio_s (0: audio only); infra.clip_view, as evaluation samples them.")
    frame_size: int = doc_field(56, "Frames are resized to this many pixels square (a multiple of 28), as evaluation shows them.")
    max_prompt_tokens: int = doc_field(384, "Text of the prompt is truncated (from the left of the cues) to this.")
    grid_hop_s: float = doc_field(1.0, "Hop of the shared time grid for f_a, f_v, f_t, f_r.")
    # --- RAFT objective
    k: int = doc_field(4, "Candidates sampled per prompt.")
    beta: float = doc_field(1.0, "RRO temperature: w = softmax(beta (r - mean r)); inf = best-of-K.")
    rro_weighting: str = doc_field(
        "softmax", "How J_RRO weighs the K candidates (raft.rro.WEIGHTINGS): softmax (paper, uses beta) | best_of_k | "
        "linear ((r - mean) / sum |r - mean|) | grpo ((r - mean) / std, no clipping, no KL)."
    )
    rro_skip_tied: bool = doc_field(
        True, "Prompts whose K rewards are all equal (spread <= rro_tie_tol, e.g. all unparseable) give no RRO "
        "gradient: uniform weights would raise the likelihood of every candidate, failures included. J_RRO is "
        "then averaged over the other prompts; the tied share is logged as rro/tied_fraction."
    )
    rro_tie_tol: float = doc_field(1e-6, "Reward spread (max - min over the K candidates) at or below which a prompt is tied.")
    lambda_rro: float = doc_field(1.0, "Weight of J_RRO in L = L_align - lambda_rro J_RRO + alpha L_temp.")
    lambda_align: float = doc_field(1.0, "Weight of L_align (NLL of the reference answer); 0 for pure RRO.")
    alpha: float = doc_field(0.1, "Weight of the temporal-coherence loss L_temp (0 disables it).")
    gamma: float = doc_field(1.0, "Weight of the text/reasoning term ||f_t - f_r||^2 inside L_temp.")
    delta: float = doc_field(0.5, "Weight of the derivative term ||Δf_a - Δf_v||^2 inside L_temp (0: main equation only).")
    temporal_reduction: str = doc_field("mean", "L_temp over time: sum (as written) | mean over valid steps.")
    temporal_norm: str = doc_field(
        "l2", "Normalisation of f_a, f_v, f_t, f_r per time step before L_temp compares them: l2 (unit vectors, "
        "so each squared distance lies in [0, 4] whatever the hidden size or state scale) | layernorm (zero mean, "
        "unit variance, no affine) | none (raw last-layer states, as written in DESIGN §7)."
    )
    length_norm: str = doc_field(
        "mean", "log pi(y|x) of a candidate: mean (per-token mean, default) | sum (sequence total)."
    )
    max_new_tokens: int = doc_field(32, "Tokens generated per candidate.")
    batch_prompts: bool = doc_field(
        True, "Decode all B x K candidates in one left-padded generate call and score all prompts in one forward "
        "(prompts grouped by which media they carry); false: one call per prompt (same results, slower)."
    )
    share_prompt: bool = doc_field(
        True, "Each prompt once per step: its encoders and decoder forward run once, the K + 1 continuations "
        "are scored from one packed row under a block mask (raft.packing) and sampled from one prefill whose KV "
        "cache is expanded to K rows. false: the prompt is copied into every row (the earlier path, kept for the "
        "equivalence tests and the bench baseline; same loss and gradients)."
    )
    rollout_engine: str = doc_field(
        "hf", "Engine that samples the K candidates (raft.rollout_engine.ENGINES): hf (the policy itself, "
        "transformers, in the training process) | vllm (a vLLM engine in a Ray actor on its own GPU, n=K samples "
        "per prompt, prefix caching, trainable weights pushed after each optimizer step; needs the vllm package)."
    )
    rollout_model_path: str | None = doc_field(
        None, "Checkpoint folder the vllm engine starts from (None: model_path); it then follows the trained weights."
    )
    temperature: float = doc_field(1.0, "Sampling temperature for candidates.")
    top_p: float = doc_field(1.0, "Nucleus sampling for candidates.")
    rewards: dict[str, float] = doc_field(
        doc="Reward weights lambda_c by registered component name (raft.rewards.REWARDS): sync, face, speech, "
        "diarization, answer, format. Names left out keep their default; 0 turns a component off; an unknown "
        "name is an error. r renormalises over the components that apply to a candidate (DESIGN §7).",
        factory=lambda: dict(DEFAULT_REWARD_WEIGHTS),
    )
    sync_offset_tol_s: float = doc_field(0.2, "AV offset (s) under which a track counts as in sync.")
    verify: list[str] = doc_field(
        doc="Reward components that re-run perception on the clip span instead of reading pred_* (raft.verify): "
        "diarization (diarize), speech (transcribe), sync/face (active_speaker). Empty: metadata only (cheap).",
        factory=list,
    )
    verify_span_s: float | None = doc_field(
        None, "Seconds from the clip start that verification perceives (None: the whole clip)."
    )
    # --- SRA
    sra: SRAConfig = doc_field(doc="Which parameters train (theta_cross).", factory=SRAConfig)
    # --- optimisation
    lr: float = doc_field(1e-3, "AdamW learning rate of theta_cross.")
    weight_decay: float = doc_field(0.0, "AdamW weight decay.")
    grad_clip: float = doc_field(1.0, "Gradient norm clip (DeepSpeed gradient_clipping).")
    lr_schedule: str = doc_field(
        "constant", "Learning-rate schedule over train.steps optimizer steps (transformers.get_scheduler): constant | "
        "linear (decay to 0) | cosine; each starts with warmup_steps of linear warm-up from 0."
    )
    warmup_steps: int = doc_field(0, "Optimizer steps of linear LR warm-up (0: none).")
    grad_accum_steps: int = doc_field(
        1, "Micro-batches of batch_size prompts whose gradients add up before one optimizer step (DeepSpeed "
        "gradient_accumulation_steps; each micro-batch's loss is divided by it, so 2 x B equals one batch of 2B)."
    )
    gradient_checkpointing: bool = doc_field(
        False, "Recompute decoder-layer activations in backward instead of keeping them (less memory, about one "
        "more forward of time); same loss and gradients."
    )
    bf16_autocast: bool = doc_field(
        True, "On a GPU, run forward and backward under torch.autocast(bfloat16) (matmuls in bf16, weights and "
        "optimizer in dtype). A no-op on CPU, where bf16 matmuls are slower than fp32 for these shapes."
    )
    kl_coef: float = doc_field(
        0.0, "Weight of an optional KL(pi || pi_ref) to the frozen initial policy on the candidates' tokens (k3 "
        "estimator, as verl's low_var_kl). 0 (default, as in the paper): no reference model is kept."
    )
    steps: int = doc_field(4, "Optimizer steps in total (across resumes).")
    sft_steps: int = doc_field(0, "Leading steps with L_align only (no sampling): the supervised warm start.")
    batch_size: int = doc_field(2, "Prompts per worker per step (B); B x K candidates are scored per worker.")
    seed: int = doc_field(0, "Seed of data order and sampling (each worker adds its rank).")
    # --- distribution
    num_workers: int = doc_field(2, "Ray Train workers.")
    cpus_per_worker: float = doc_field(0.5, "CPUs each Ray Train worker reserves (fractional on small machines).")
    use_gpu: bool = doc_field(False, "Give each worker a GPU (then backend should be nccl).")
    backend: str = doc_field("gloo", "torch.distributed backend: gloo on CPU, nccl on GPU.")
    zero_stage: int = doc_field(2, "DeepSpeed ZeRO stage (0-3; 2 keeps full parameters on each worker for generate).")
    reward_actors: int = doc_field(2, "Reward actors in the rollout pool (0: serial in the worker).")
    reward_actor_cpus: float = doc_field(0.25, "CPUs each reward actor reserves.")
    torch_threads: int = doc_field(1, "torch threads per worker (small models run slower with more on a busy box).")
    # --- checkpoints and logging
    storage_path: str | None = doc_field(None, "Ray Train storage (local or s3://); None: <output_dir>/<run>/train.")
    experiment_name: str = doc_field("raft", "Ray Train run name under storage_path (same name resumes).")
    checkpoint_every: int = doc_field(2, "Checkpoint every N steps (and at the last step).")
    keep_checkpoints: int = doc_field(2, "Checkpoints kept (Ray CheckpointConfig.num_to_keep).")
    max_failures: int = doc_field(
        1, "Worker-group restarts Ray Train allows (FailureConfig; -1: unlimited). Low by default because on one "
        "machine a repeated failure is a bug, and retrying it hides it; configs/cluster.yaml sets 5, since there "
        "preemption and node loss are normal and each restart resumes from the last checkpoint.")
    export: bool = doc_field(True, "Export the aligned weights in HF format after training.")
    tracker: str = doc_field(
        "none", "Experiment tracker fed by rank 0 through Ray Train's integrations: none | mlflow | wandb (the package "
        "must be installed; logs always go to <storage_path>/<experiment_name>/logs as JSONL and TensorBoard)."
    )
    tracker_project: str = doc_field("amuse-raft", "MLflow experiment / W&B project name.")
    tracker_uri: str | None = doc_field(None, "MLflow tracking URI / W&B base URL; None: the package's default.")

    def __post_init__(self) -> None:
        # A partial mapping (``--set train.rewards.answer=3``) overrides only the names it gives.
        self.rewards = {**DEFAULT_REWARD_WEIGHTS, **self.rewards}

    def for_workers(self) -> TrainConfig:
        """This config with its local paths made absolute against the driver's working folder.

        Ray Train workers run in the Ray session's folder, not the driver's: a relative
        ``model_cache_dir`` (the default) would name a folder the driver never built there."""
        def absolute(p: str | None) -> str | None:
            return p if p is None or "://" in p else os.path.abspath(p)

        return replace(self, model_cache_dir=absolute(self.model_cache_dir), model_path=absolute(self.model_path),
                       samples_uri=absolute(self.samples_uri), clips_uri=absolute(self.clips_uri),
                       storage_path=absolute(self.storage_path))

    def validate(self) -> None:
        from raft.metrics_log import check_tracker

        check_tracker(self.tracker)
        if self.k < 1:
            raise ConfigError("train.k must be >= 1")
        if self.length_norm not in ("mean", "sum"):
            raise ConfigError("train.length_norm must be mean or sum")
        if self.temporal_reduction not in ("mean", "sum"):
            raise ConfigError("train.temporal_reduction must be mean or sum")
        if self.temporal_norm not in ("l2", "layernorm", "none"):
            raise ConfigError("train.temporal_norm must be l2, layernorm or none")
        if self.sra.method not in ("sra", "lora", "full"):
            raise ConfigError("train.sra.method must be sra, lora or full")
        from raft.sra import PRESETS

        if self.sra.preset not in PRESETS:
            raise ConfigError(f"train.sra.preset: unknown {self.sra.preset!r} (known: {sorted(PRESETS)})")
        if self.prompt_mode not in ("zero_shot", "guided", "agentic"):
            raise ConfigError("train.prompt_mode must be zero_shot, guided or agentic")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError("train.zero_stage must be 0..3")
        from raft.verify import COMPONENT_TOOL

        if set(self.verify) - set(COMPONENT_TOOL):
            raise ConfigError(f"train.verify: unknown {sorted(set(self.verify) - set(COMPONENT_TOOL))} "
                              f"(known: {sorted(COMPONENT_TOOL)})")
        from raft.rro import WEIGHTINGS

        if self.rro_weighting not in WEIGHTINGS:
            raise ConfigError(f"train.rro_weighting: unknown {self.rro_weighting!r} (registered: {sorted(WEIGHTINGS)})")
        if self.rro_tie_tol < 0:
            raise ConfigError("train.rro_tie_tol must be >= 0")
        from raft.rewards import REWARDS

        unknown = sorted(set(self.rewards) - set(REWARDS))
        if unknown:
            raise ConfigError(f"train.rewards: unknown reward component(s) {unknown} (registered: {sorted(REWARDS)})")
        negative = sorted(k for k, w in self.rewards.items() if w < 0)
        if negative:
            raise ConfigError(f"train.rewards: weights must be >= 0, got {negative}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train.lr_schedule must be one of {sorted(LR_SCHEDULES)}")
        if self.warmup_steps < 0 or self.grad_accum_steps < 1 or self.kl_coef < 0:
            raise ConfigError("train.warmup_steps and train.kl_coef must be >= 0, train.grad_accum_steps >= 1")
        from raft.rollout_engine import ENGINES

        if self.rollout_engine not in ENGINES:
            raise ConfigError(f"train.rollout_engine: unknown {self.rollout_engine!r} (registered: {sorted(ENGINES)})")
        if self.beta < 0:
            raise ConfigError("train.beta must be >= 0 (use .inf for best-of-K)")
