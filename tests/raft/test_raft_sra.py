"""SRA / LoRA: selection by config, the trainable fraction, frozen weights untouched by steps."""

import copy
from dataclasses import replace

import pytest
import torch

from raft.config import SRAConfig
from raft.data import build_prompt, load_media, load_tables
from raft.model import OmniPolicy
from raft.objective import encode_prompt, raft_loss
from raft.rollout import make_rollout
from raft.sra import apply_sra, cross_param_names

SRA_05 = SRAConfig(patterns=[], layer_patterns=[r"self_attn\.v_proj\.weight$"], top_layers=1)
LORA_5 = SRAConfig(method="lora", lora_rank=24, top_layers=2)


def test_selection_by_patterns_and_layers(policy):
    cfg = SRAConfig(patterns=[r"audio_tower\.proj\.", r"visual\.merger\."], layer_patterns=[r"self_attn\."],
                    layer_indices=[-1])
    names = cross_param_names(policy.model, cfg)
    top = policy.model.config.get_text_config().num_hidden_layers - 1
    assert any(n.startswith("model.audio_tower.proj") for n in names)
    assert any(n.startswith("model.visual.merger") for n in names)
    assert all(f"layers.{top}." in n for n in names if "language_model" in n)
    assert any(f"layers.{top}.self_attn.q_proj" in n for n in names)
    assert not any("mlp" in n and "language_model" in n for n in names)


def test_fraction_as_configured(policy):
    model, rep = apply_sra(copy.deepcopy(policy.model), SRA_05)
    params = dict(model.named_parameters())
    want = sum(params[n].numel() for n in cross_param_names(model, SRA_05))
    assert rep["sra/trainable_params"] == want
    assert rep["sra/trainable_fraction"] == pytest.approx(want / sum(p.numel() for p in params.values()))
    assert 0.004 < rep["sra/trainable_fraction"] < 0.006  # the "0.5%" preset on the tiny model
    _, lrep = apply_sra(copy.deepcopy(policy.model), LORA_5)
    assert 0.045 < lrep["sra/trainable_fraction"] < 0.055  # the "5%" LoRA preset


@pytest.mark.parametrize("sra", [SRA_05, LORA_5], ids=["sra0.5", "lora5"])
def test_frozen_params_bit_identical_after_steps(policy, train_cfg, dataset, sra):
    cfg = replace(train_cfg, sra=sra, k=2, max_new_tokens=8, lr=1e-2)
    pol = OmniPolicy(copy.deepcopy(policy.model), policy.processor)
    pol.model, _ = apply_sra(pol.model, sra)
    before = {n: p.detach().clone() for n, p in pol.model.named_parameters()}
    samples, clips = load_tables(cfg, *dataset)
    rollout = make_rollout(cfg, list(clips.values()))
    batch = []
    for s in samples[:2]:
        pr = build_prompt(s, clips, "guided")
        batch.append(encode_prompt(pol, pr, *load_media(pr.clip, cfg), cfg))
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=cfg.lr)
    torch.manual_seed(0)
    for _ in range(2):
        loss, m = raft_loss(pol, batch, cfg, rollout)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert "rro/ess" in m and "loss/temp" in m
    changed = 0
    for n, p in pol.model.named_parameters():
        if p.requires_grad:
            changed += not torch.equal(p, before[n])
        else:
            assert torch.equal(p, before[n]), n
    assert changed > 0


def test_lora_merge_for_export_keeps_outputs_and_drops_adapters(policy):
    """The trainer exports LoRA runs merged: same function, plain HF weights, only the adapted layers differ."""
    from raft.sra import LAYER_PREFIX, merge_lora, selected_layers

    model, _ = apply_sra(copy.deepcopy(policy.model), LORA_5)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # lora_B starts at zero; give the adapters a real delta, as training would
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    enc = policy.processor.encode("Who speaks next? A. Rachel B. Ross")
    model.eval()
    with torch.no_grad():
        adapted = model(**enc.inputs).logits
        merged = merge_lora(model)
        after = merged(**enc.inputs).logits
    assert torch.allclose(adapted, after, atol=1e-5)
    names = dict(merged.named_parameters())
    assert not any("lora_" in n for n in names) and set(names) == set(dict(policy.model.named_parameters()))
    layers = selected_layers(policy.model, LORA_5)
    for n, p in policy.model.named_parameters():
        adapted_here = any(n == f"{LAYER_PREFIX}.{i}.self_attn.{t}.weight" for i in layers for t in LORA_5.lora_targets)
        assert torch.equal(names[n], p) != adapted_here, n
