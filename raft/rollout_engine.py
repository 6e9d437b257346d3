"""Where the K candidates per prompt are sampled: a registry of rollout engines keyed by ``train.rollout_engine``.

- ``hf`` (default): the policy itself, in the training process (transformers; each prompt prefilled once
  and its KV cache expanded to K rows with ``train.share_prompt``). It shares the trained weights, so
  there is nothing to push after an optimizer step.
- ``vllm``: a vLLM ``LLM`` inside a Ray actor on its own GPU, the layout verl and OpenRLHF use: the
  trainer sends prompts (token ids with the media placeholders, plus the raw audio and frames) and gets
  ``n = K`` samples per prompt back; ``enable_prefix_caching`` keeps a prompt's KV blocks across its
  K samples; after each optimizer step the trainable tensors (SRA's theta_cross, or LoRA merged into
  the base layers they adapt) are pushed into the engine's model with ``load_weights``. vllm is an
  optional dependency of GPU machines: without it, building this engine raises an error naming the
  package.

An engine implements :class:`RolloutEngine`; register a new one in :data:`ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import torch

from omni.processor import Encoded
from raft.config import TrainConfig


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(self, encs: list[Encoded], k: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> list[list[list[int]]]:
        """K continuations (token ids, cut after the first stop token) of each prompt."""
        ...

    def update_weights(self, named: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Make the engine sample from these parameter values (called after each optimizer step)."""
        ...

    def close(self) -> None: ...


class HFEngine:
    """Sampling with the training policy itself (transformers), the default and the CPU path."""

    def __init__(self, policy, cfg: TrainConfig):
        self.policy, self.cfg = policy, cfg

    def generate(self, encs, k, max_new_tokens, temperature=1.0, top_p=1.0, greedy=False):
        return self.policy.generate_batch(encs, k, max_new_tokens, temperature, top_p, greedy=greedy,
                                          batched=self.cfg.batch_prompts, shared=self.cfg.share_prompt)

    def update_weights(self, named) -> None:
        """Nothing to do: the engine samples from the very tensors the optimizer updates."""

    def close(self) -> None:
        pass


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors that change in an optimizer step (names as in the HF checkpoint), detached on the CPU.
    About 80 MB at the 7B shape with the default SRA preset (bf16)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


class VLLMEngine:
    """vLLM in a Ray actor (one GPU), as verl's and OpenRLHF's rollout workers; untested here (no GPU, no vllm).

    ``model_path`` is an HF checkpoint folder vLLM can read (the exported thinker, or Qwen2.5-Omni-7B);
    the engine starts from it and then receives the trainable tensors after every step."""

    def __init__(self, model_path: str, cfg: TrainConfig, stop_ids: list[int], gpu_memory_utilization: float = 0.4):
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "train.rollout_engine=vllm needs the 'vllm' package (pip install vllm on a GPU machine); "
                "it is not installed here. Use train.rollout_engine=hf (the default) on CPU."
            ) from e
        import ray

        self.actor = ray.remote(num_gpus=1)(_VLLMWorker).remote(model_path, cfg.dtype, gpu_memory_utilization)
        self.cfg, self.stop_ids = cfg, stop_ids

    def generate(self, encs, k, max_new_tokens, temperature=1.0, top_p=1.0, greedy=False):
        import ray

        if any(e.media is None for e in encs):
            raise ValueError("VLLMEngine: an Encoded prompt lacks its raw media (encode with omni.processor, "
                             "which keeps audio and frames on Encoded.media)")
        params = {"n": k, "max_tokens": max_new_tokens, "temperature": 0.0 if greedy else temperature,
                  "top_p": top_p, "stop_token_ids": self.stop_ids, "include_stop_str_in_output": True}
        reqs = [{"prompt_token_ids": e.inputs["input_ids"][0].tolist(), "multi_modal_data": e.media} for e in encs]
        return ray.get(self.actor.generate.remote(reqs, params))

    def update_weights(self, named) -> None:
        import ray

        ray.get(self.actor.load_weights.remote(dict(named)))

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


class _VLLMWorker:
    """Runs inside the Ray actor: owns the ``vllm.LLM``."""

    def __init__(self, model_path: str, dtype: str, gpu_memory_utilization: float):
        from vllm import LLM

        self.llm = LLM(model=model_path, dtype=dtype, enable_prefix_caching=True, trust_remote_code=False,
                       gpu_memory_utilization=gpu_memory_utilization, limit_mm_per_prompt={"image": 8, "audio": 1})

    def generate(self, reqs: list[dict], params: dict) -> list[list[list[int]]]:
        from vllm import SamplingParams

        outs = self.llm.generate(reqs, SamplingParams(**params), use_tqdm=False)
        return [[list(c.token_ids) for c in o.outputs] for o in outs]

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        # vLLM's model classes load HF-named tensors through their own load_weights (the OpenRLHF pattern);
        # collective_rpc reaches every worker of a tensor-parallel engine
        def load(worker):
            worker.model_runner.model.load_weights(weights=list(state.items()))

        self.llm.collective_rpc(load)
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights


ENGINES: dict[str, Callable[..., RolloutEngine]] = {
    "hf": lambda policy, cfg: HFEngine(policy, cfg),
    "vllm": lambda policy, cfg: VLLMEngine(cfg.rollout_model_path or cfg.model_path or "", cfg, policy.stop_ids),
}


def make_engine(policy, cfg: TrainConfig) -> RolloutEngine:
    if cfg.rollout_engine not in ENGINES:
        raise ValueError(f"train.rollout_engine: unknown {cfg.rollout_engine!r} (registered: {sorted(ENGINES)})")
    return ENGINES[cfg.rollout_engine](policy, cfg)
