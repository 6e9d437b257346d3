"""The trainer's knobs, each checked for its effect: LR warm-up, gradient accumulation through DeepSpeed,
activation checkpointing, the optional KL to a frozen reference, bf16 autocast (CPU no-op), rollout engines."""

import copy
from dataclasses import replace

import pytest
import torch

from raft.config import SRAConfig, TrainConfig
from raft.data import build_prompt, load_media, load_tables
from raft.model import OmniPolicy
from raft.objective import candidates_loss, encode_prompt
from raft.sra import apply_sra
from raft.trainer import autocast, deepspeed_config, lr_scheduler, prepare_model


@pytest.fixture(scope="module")
def two(policy, train_cfg, dataset):
    samples, clips = load_tables(train_cfg, *dataset)
    out = []
    for s in samples[:2]:
        p = build_prompt(s, clips, "guided")
        out.append(encode_prompt(policy, p, *load_media(p.clip, train_cfg), train_cfg))
    return out


def _sra(policy):
    model, _ = apply_sra(copy.deepcopy(policy.model), SRAConfig())
    return OmniPolicy(model, policy.processor)


CANDS = [[[25, 26, 27], [29, 30]], [[31, 32], [33, 34, 35, 36]]]
REWARDS = torch.tensor([[1.0, 0.0], [0.0, 2.0]])


@pytest.mark.parametrize("schedule, want", [
    ("linear", [0.0, 1 / 3, 2 / 3, 1.0, 6 / 7, 5 / 7]),
    ("constant", [0.0, 1 / 3, 2 / 3, 1.0, 1.0, 1.0]),
    ("cosine", [0.0, 1 / 3, 2 / 3, 1.0, 0.5 * (1 + torch.cos(torch.tensor(torch.pi / 7)).item()), None]),
])
def test_lr_warms_up_then_follows_the_schedule(schedule, want):
    cfg = TrainConfig(lr=1e-3, lr_schedule=schedule, warmup_steps=3, steps=10)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    sched = lr_scheduler(cfg, opt)
    seen = []
    for _ in want:
        seen.append(opt.param_groups[0]["lr"] / cfg.lr)  # the LR the next optimizer step uses
        opt.step()
        sched.step()
    assert seen[:5] == pytest.approx([w for w in want[:5]])
    if want[5] is not None:
        assert seen[5] == pytest.approx(want[5])


def test_activation_checkpointing_keeps_loss_and_gradients(policy, train_cfg, two):
    cfg = replace(train_cfg, alpha=0.5, k=2)
    out = []
    for ckpt in (False, True):
        pol = _sra(policy)
        prepare_model(pol, replace(cfg, gradient_checkpointing=ckpt))
        pol.model.train()
        assert pol.model.is_activation_checkpointing == ckpt
        loss, _ = candidates_loss(pol, two, CANDS, REWARDS, cfg)
        params = [p for p in pol.model.parameters() if p.requires_grad]
        out.append((loss.item(), torch.autograd.grad(loss, params)))
    assert out[1][0] == pytest.approx(out[0][0], rel=1e-6)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_kl_is_zero_against_itself_and_positive_after_a_step(policy, train_cfg, two):
    cfg = replace(train_cfg, alpha=0.0, k=2, kl_coef=0.1)
    pol = _sra(policy)
    ref = prepare_model(pol, cfg)
    assert ref is not None and not any(p.requires_grad for p in ref.model.parameters())
    loss, m = candidates_loss(pol, two, CANDS, REWARDS, cfg, ref)
    assert m["loss/kl"] == pytest.approx(0.0, abs=1e-10)
    opt = torch.optim.SGD([p for p in pol.model.parameters() if p.requires_grad], lr=0.5)
    loss.backward()
    opt.step()
    _, m = candidates_loss(pol, two, CANDS, REWARDS, cfg, ref)
    assert m["loss/kl"] > 1e-6
    with pytest.raises(ValueError, match="reference"):
        candidates_loss(pol, two, CANDS, REWARDS, cfg, None)
    assert prepare_model(_sra(policy), replace(cfg, kl_coef=0.0)) is None  # off by default: no copy kept


def test_bf16_autocast_is_a_no_op_on_cpu():
    with autocast(TrainConfig(bf16_autocast=True), torch.device("cpu")):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32


def test_accumulating_two_micro_batches_equals_one_batch_of_two(policy, train_cfg, two):
    """DeepSpeed's gradient_accumulation_steps (set from train.grad_accum_steps) divides each micro-batch's loss
    by the count and adds the gradients: with B=1 x 2 that equals one batch of B=2 (L_align and L_temp average
    over prompts; RRO averages over the kept prompts, equal here as no group is tied)."""
    assert deepspeed_config(replace(train_cfg, grad_accum_steps=2))["gradient_accumulation_steps"] == 2
    cfg = replace(train_cfg, alpha=0.0, k=2)
    pol = _sra(policy)
    params = [p for p in pol.model.parameters() if p.requires_grad]
    loss, _ = candidates_loss(pol, two, CANDS, REWARDS, cfg)
    whole = torch.autograd.grad(loss, params)
    acc = [torch.zeros_like(p) for p in params]
    for j in range(2):
        part, _ = candidates_loss(pol, two[j : j + 1], CANDS[j : j + 1], REWARDS[j : j + 1], cfg)
        for a, g in zip(acc, torch.autograd.grad(part / 2, params), strict=True):
            a += g
    assert max(float(g.abs().max()) for g in whole) > 0
    for a, g in zip(acc, whole, strict=True):
        torch.testing.assert_close(a, g, rtol=1e-4, atol=1e-7)


def test_hf_engine_is_the_default_and_samples_through_the_policy(policy, train_cfg, two):
    from raft.rollout_engine import HFEngine, RolloutEngine, make_engine

    engine = make_engine(policy, train_cfg)
    assert isinstance(engine, HFEngine) and isinstance(engine, RolloutEngine)
    encs = [ep.enc for ep in two]
    assert engine.generate(encs, 2, 6, greedy=True) == policy.generate_batch(encs, 2, 6, greedy=True, shared=False)
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="rollout_engine"):
        replace(train_cfg, rollout_engine="sglang").validate()


def test_vllm_engine_names_the_missing_package(policy, train_cfg):
    pytest.importorskip("ray")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    from raft.rollout_engine import make_engine

    with pytest.raises(ImportError, match="'vllm' package"):
        make_engine(policy, replace(train_cfg, rollout_engine="vllm"))
