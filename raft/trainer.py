"""RAFT on Ray Train: TorchTrainer workers running DeepSpeed ZeRO over theta_cross.

Driver (:func:`fit`): builds the tiny model once (so workers never race to build it), starts one
reward-actor pool shared by all workers, and runs a ``TorchTrainer`` with checkpoints in local or
s3:// storage, ``FailureConfig`` restarts and a progress bar fed by a controller callback.

Worker (:func:`train_loop_per_worker`): loads samples/clips by URI, builds the policy, freezes all
but theta_cross (``raft.sra``), wraps the trainable part in a DeepSpeed engine, and per step
samples K candidates, scores them through the pool and steps on L (``raft.objective``).

Checkpoints: every worker writes its DeepSpeed shard (model + ZeRO optimizer partition) and its
own ``state_rank{r}.pt`` (step = data position, and the torch / numpy / python RNG states) into
one directory that Ray Train merges in storage; resume loads all of it. Rank 0 writes metrics to
JSONL and TensorBoard, and at the end exports the aligned weights in Hugging Face format.
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from infra import storage
from infra.config import from_dict, to_dict
from infra.storage import StorageConfig
from raft.config import TrainConfig
from raft.metrics_log import MetricsLogger

CKPT_TAG = "ds"


def deepspeed_config(cfg: TrainConfig) -> dict:
    return {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        # torch_adam avoids compiling DeepSpeed's fused Adam on CPU (PLATFORM.md)
        "optimizer": {"type": "AdamW", "params": {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "torch_adam": True}},
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": {"stage": cfg.zero_stage},
        "bf16": {"enabled": cfg.dtype == "bfloat16"},
        "steps_per_print": 1 << 30,
    }


def lr_scheduler(cfg: TrainConfig, optimizer):
    """``train.lr_schedule`` with ``train.warmup_steps`` of linear warm-up, stepped once per optimizer step."""
    from transformers import get_scheduler

    from raft.config import LR_SCHEDULES

    return get_scheduler(LR_SCHEDULES[cfg.lr_schedule], optimizer, num_warmup_steps=cfg.warmup_steps,
                         num_training_steps=max(cfg.steps, 1))


def autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast on a GPU when ``train.bf16_autocast``; on CPU a no-op (bf16 matmuls are slower there)."""
    import contextlib

    if cfg.bf16_autocast and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(policy, cfg: TrainConfig):
    """Training-time switches on the policy's model: activation checkpointing (non-reentrant, so frozen inputs
    and the packed block mask pass through) and, with ``train.kl_coef``, a frozen copy as the KL reference."""
    import copy

    if cfg.gradient_checkpointing:
        policy.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if cfg.kl_coef <= 0:
        return None
    ref = type(policy)(copy.deepcopy(policy.model), policy.processor)
    ref.model.requires_grad_(False).eval()
    return ref


def micro_step(engine, policy, batch, cfg: TrainConfig, rollout, sft: bool, rollout_engine=None, ref_policy=None
               ) -> dict:
    """One micro-batch: loss, backward, and ``engine.step()``, which DeepSpeed turns into an optimizer step
    (and an LR-scheduler step) every ``gradient_accumulation_steps`` calls, after scaling each loss by
    1 / that count."""
    from raft.objective import raft_loss

    dev = next(policy.model.parameters()).device
    with autocast(cfg, dev):
        loss, m = raft_loss(policy, batch, cfg, rollout, sft=sft, engine=rollout_engine, ref_policy=ref_policy)
    engine.backward(loss)
    engine.step()
    return m


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _mean_across_workers(metrics: dict) -> dict:
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return metrics
    keys = sorted(metrics)
    t = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / dist.get_world_size() for k, v in zip(keys, t.tolist(), strict=True)}


def _export(engine, policy, cfg: TrainConfig, export_uri: str, scfg: StorageConfig) -> None:
    """HF-format aligned weights + processor, loadable by ``OmniPolicy.from_pretrained``."""
    import deepspeed

    from raft.sra import merge_lora

    params = list(engine.module.parameters())
    with deepspeed.zero.GatheredParameters(params, enabled=cfg.zero_stage == 3):
        model = merge_lora(engine.module) if cfg.sra.method == "lora" else engine.module
        with tempfile.TemporaryDirectory() as tmp:
            policy.model = model
            policy.save_pretrained(tmp)
            fs, path = storage.filesystem(export_uri, scfg)
            fs.makedirs(path, exist_ok=True)
            for f in Path(tmp).iterdir():
                fs.put_file(str(f), f"{path}/{f.name}")


def train_loop_per_worker(config: dict) -> None:
    import deepspeed
    import ray.train

    from raft.data import batch_indices, build_prompt, load_media, load_tables
    from raft.model import OmniPolicy
    from raft.objective import encode_prompt
    from raft.rollout import make_rollout
    from raft.rollout_engine import make_engine
    from raft.sra import apply_sra

    cfg = from_dict(TrainConfig, config["train"])
    scfg = from_dict(StorageConfig, config["storage"])
    torch.set_num_threads(cfg.torch_threads)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()

    samples, clips = load_tables(cfg, config["samples_uri"], config["clips_uri"], scfg)
    if not samples:
        raise ValueError(f"no training samples in {config['samples_uri']} (split=train, tasks={cfg.tasks})")
    policy = OmniPolicy.build(cfg)
    policy.model, sra_report = apply_sra(policy.model, cfg.sra)
    ref_policy = prepare_model(policy, cfg)
    trainable = [p for p in policy.model.parameters() if p.requires_grad]
    engine, *_ = deepspeed.initialize(model=policy.model, model_parameters=trainable, config=deepspeed_config(cfg),
                                      lr_scheduler=lambda opt: lr_scheduler(cfg, opt))
    policy.model = engine.module
    rollout_engine = make_engine(policy, cfg)
    rollout = config.get("rollout") or make_rollout(replace(cfg, reward_actors=0), list(clips.values()),
                                                    config.get("perception"))

    start = 0
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            engine.load_checkpoint(d, tag=CKPT_TAG)
            state = torch.load(Path(d) / f"state_rank{rank}.pt", weights_only=False)
        start = state["step"]
        _set_rng_state(state["rng"])
        if rank == 0:  # the line operators (and bench/chaos_drivers.py) read to see a rerun resumed
            print(f"train: resumed from the step-{start} checkpoint", flush=True)
    else:
        torch.manual_seed(cfg.seed * 1000 + rank)
        np.random.seed(cfg.seed * 1000 + rank)
        random.seed(cfg.seed * 1000 + rank)

    logger = MetricsLogger(config["log_dir"], scfg, cfg.tracker, cfg.tracker_project, cfg.tracker_uri,
                           run_config=config["train"], resume_step=start) if rank == 0 else None
    if logger and start == 0:
        logger.write(0, {k: float(v) for k, v in sra_report.items()})
    encoded: dict[int, object] = {}  # sample index -> EncodedPrompt (media decoded once per worker)

    def get(i: int):
        if i not in encoded:
            prompt = build_prompt(samples[i], clips, cfg.prompt_mode)
            audio, frames = load_media(prompt.clip, cfg, scfg)
            encoded[i] = encode_prompt(policy, prompt, audio, frames, cfg)
        return encoded[i]

    engine.train()
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        micro = []
        for j in range(cfg.grad_accum_steps):  # micro-batch positions step * GAS + j (GAS = 1: as before)
            pos = step * cfg.grad_accum_steps + j
            batch = [get(i) for i in batch_indices(len(samples), pos, cfg.batch_size, cfg.seed, rank, world)]
            micro.append(micro_step(engine, policy, batch, cfg, rollout, step < cfg.sft_steps, rollout_engine,
                                    ref_policy))
        # the optimizer stepped: a separate rollout engine (vLLM) samples from the new theta_cross next step
        rollout_engine.update_weights((n, p.detach()) for n, p in engine.module.named_parameters() if p.requires_grad)
        keys = {k for x in micro for k in x}
        m = {k: sum(x[k] for x in micro if k in x) / sum(k in x for x in micro) for k in keys}
        m["lr"] = float(engine.get_lr()[0])
        m["time/step_s"] = time.perf_counter() - t0
        m["prompts_per_s"] = cfg.batch_size * cfg.grad_accum_steps / m["time/step_s"]
        m = _mean_across_workers(m)
        m["prompts_per_s"] *= world
        if logger:
            logger.write(step + 1, m)
        report = {"step": step + 1, **m}
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            with tempfile.TemporaryDirectory() as tmp:
                engine.save_checkpoint(tmp, tag=CKPT_TAG)
                torch.save({"step": step + 1, "rng": _rng_state()}, Path(tmp) / f"state_rank{rank}.pt")
                ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(report)
    if logger:
        logger.close()
    rollout_engine.close()
    if rank == 0 and cfg.export and config.get("export_uri"):
        _export(engine, policy, cfg, config["export_uri"], scfg)


class _Progress:
    """Driver-side progress bar fed through a Ray queue by a controller callback."""

    def __init__(self, total: int):
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self.total = total

    def callback(self):
        from ray.train import UserCallback

        queue = self.queue

        class Report(UserCallback):
            def after_report(self, run_context, metrics, checkpoint):
                m = metrics[0] if metrics else {}
                queue.put({"step": m.get("step"), "loss": m.get("loss/total"), "reward": m.get("reward/mean")})

        return Report()

    def drain(self, done: threading.Event) -> None:
        from tqdm import tqdm

        bar = tqdm(total=self.total, desc="raft", unit="step")
        while not (done.is_set() and self.queue.empty()):
            try:
                item = self.queue.get(timeout=0.5)
            except Exception:  # queue.Empty after the timeout
                continue
            if item.get("step"):
                bar.n = int(item["step"])
                bar.set_postfix({k: f"{v:.3f}" for k, v in item.items() if k != "step" and v is not None})
                bar.refresh()
        bar.close()


def fit(cfg: TrainConfig, samples_uri: str, clips_uri: str, storage_path: str, log_dir: str,
        scfg: StorageConfig | None = None, progress: bool = True, perception: dict | None = None
        ) -> dict[str, str]:
    """Run RAFT training on the connected Ray cluster; returns {name: uri} of its outputs.

    ``perception`` (a PerceptionConfig as a dict) configures the tools of ``train.verify``."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from raft.model import build_tiny
    from raft.rollout import make_rollout

    scfg = scfg or StorageConfig()
    log_dir = log_dir if storage.is_remote(log_dir) else os.path.abspath(log_dir)  # workers run elsewhere
    cfg = cfg.for_workers()  # workers resolve relative paths against the Ray session folder, not ours
    samples_uri, clips_uri = (u if storage.is_remote(u) else os.path.abspath(u) for u in (samples_uri, clips_uri))
    if cfg.model_path is None:
        build_tiny(cfg)
    clips = list(storage.read_parquet(clips_uri, scfg).to_pylist())
    pool = make_rollout(cfg, clips, perception) if cfg.reward_actors > 0 else None
    proto, _ = storage.split_protocol(storage_path)
    fs, spath = storage.arrow_filesystem(storage_path, scfg)
    export_uri = storage.join(storage_path, cfg.experiment_name, "export")
    bar = _Progress(cfg.steps) if progress else None
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={
            "train": to_dict(cfg), "storage": to_dict(scfg), "samples_uri": samples_uri, "clips_uri": clips_uri,
            "rollout": pool, "perception": perception, "log_dir": log_dir, "export_uri": export_uri,
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        torch_config=TorchConfig(backend=cfg.backend),
        run_config=RunConfig(
            name=cfg.experiment_name, storage_path=spath, storage_filesystem=fs,
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            callbacks=[bar.callback()] if bar else [],
        ),
    )
    done = threading.Event()
    drain = threading.Thread(target=bar.drain, args=(done,), daemon=True) if bar else None
    if drain:
        drain.start()
    try:
        result = trainer.fit()
    finally:
        done.set()
        if drain:
            drain.join(timeout=10)
        if pool is not None:
            pool.shutdown()
    ckpt_path = result.checkpoint.path if result.checkpoint else ""
    ckpt_uri = f"{proto}://{ckpt_path}" if proto != "file" and ckpt_path else ckpt_path
    out = {"train checkpoint": ckpt_uri, "train metrics": storage.join(log_dir, "metrics.jsonl"),
           "train tensorboard": log_dir}
    if cfg.export:
        out["aligned model"] = export_uri
    return out
