"""SRA / LoRA: selection by config and preset, the trainable fraction (and DESIGN §7's table of it),
frozen weights untouched by steps."""

import copy
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from infra.config import ConfigError
from raft.config import SRAConfig, TrainConfig
from raft.data import build_prompt, load_media, load_tables
from raft.model import OmniPolicy
from raft.objective import encode_prompt, raft_loss
from raft.rollout import make_rollout
from raft.sra import LAYER_PREFIX, apply_sra, cross_param_names

BENCH = Path(__file__).resolve().parents[2] / "bench"
SRA = SRAConfig()  # the default preset, cross_modal
LORA_5 = SRAConfig(method="lora", lora_rank=20, top_layers=2)  # rank 20: about 5% of the tiny model


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


def test_default_preset_is_cross_modal(policy):
    names = set(cross_param_names(policy.model, SRA))
    top = f"{LAYER_PREFIX}.{policy.model.config.get_text_config().num_hidden_layers - 1}"
    want = {"model.audio_tower.proj.weight", "model.audio_tower.proj.bias", "model.visual.merger.mlp.2.weight",
            "model.visual.merger.mlp.2.bias",
            *(f"{top}.self_attn.{m}_proj.{w}" for m in "qkv" for w in ("weight", "bias"))}
    assert names == want
    # a field set in the config replaces the preset's: two top layers, same patterns
    wider = set(cross_param_names(policy.model, SRAConfig(top_layers=2)))
    assert wider - names == {n.replace(top, f"{LAYER_PREFIX}.0") for n in names if n.startswith(top)}
    with pytest.raises(ConfigError, match="train.sra.preset.*cross_modal"):
        TrainConfig(sra=SRAConfig(preset="half_percent")).validate()


def test_fraction_as_configured(policy):
    model, rep = apply_sra(copy.deepcopy(policy.model), SRA)
    params = dict(model.named_parameters())
    want = sum(params[n].numel() for n in cross_param_names(model, SRA))
    assert rep["sra/trainable_params"] == want
    assert rep["sra/trainable_fraction"] == pytest.approx(want / sum(p.numel() for p in params.values()))
    lmodel, lrep = apply_sra(copy.deepcopy(policy.model), LORA_5)
    adapted = [m for n, m in lmodel.named_modules() if n.endswith(tuple(LORA_5.lora_targets)) and hasattr(m, "lora_A")]
    assert len(adapted) == 2 * len(LORA_5.lora_targets)
    assert lrep["sra/trainable_params"] == sum(LORA_5.lora_rank * (m.in_features + m.out_features) for m in adapted)
    assert 0.045 < lrep["sra/trainable_fraction"] < 0.055  # the "5%" LoRA preset


def test_documented_fractions_match_the_code(policy):
    """DESIGN §7's table is what bench/sra_fraction.py computes; its tiny rows count the real tiny model."""
    sys.path.insert(0, str(BENCH))
    import sra_fraction

    rows = sra_fraction.sra_fraction_table()
    assert sra_fraction.documented() == sra_fraction.render(rows), "run: python bench/sra_fraction.py --write"
    sizes = {n: p.numel() for n, p in policy.model.named_parameters()}
    for r in (r for r in rows if r["shape"] == "tiny"):
        assert r["total"] == sum(sizes.values())
        assert r["trainable"] == sum(sizes[n] for n in cross_param_names(policy.model, SRAConfig(preset=r["preset"])))
    seven = next(r for r in rows if r["shape"] == "7b" and r["preset"] == "cross_modal")
    assert 8.5e9 < seven["total"] < 9.5e9  # the 7B thinker's shape (audio + vision encoders + LM), not a toy


@pytest.mark.parametrize("sra", [SRA, LORA_5], ids=["sra", "lora5"])
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
    from raft.sra import merge_lora, selected_layers

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
