"""Selective Reasoning Adaptation: train only theta_cross, freeze everything else.

theta_cross is chosen by config (``train.sra``):
- ``sra``: parameters whose names match ``patterns`` (e.g. the audio projector, the vision merger)
  plus, inside the selected decoder layers (top N, or explicit indices), those matching
  ``layer_patterns`` (e.g. the attention projections);
- ``lora``: peft LoRA adapters on ``lora_targets`` inside the selected layers; the base is frozen;
- ``full``: everything trains (a reference point, not SRA).

Freezing is ``requires_grad=False``, and the optimizer only ever sees trainable parameters, so
frozen weights stay bit-identical (tested). The trainable fraction is printed and logged.
"""

from __future__ import annotations

import logging
import re

import torch

from raft.config import SRAConfig

log = logging.getLogger(__name__)
LAYER_PREFIX = "model.language_model.layers"


def num_decoder_layers(model: torch.nn.Module) -> int:
    return model.config.get_text_config().num_hidden_layers


def selected_layers(model: torch.nn.Module, cfg: SRAConfig) -> list[int]:
    n = num_decoder_layers(model)
    if cfg.layer_indices is not None:
        return sorted({i % n for i in cfg.layer_indices})
    return list(range(max(0, n - cfg.top_layers), n))


def cross_param_names(model: torch.nn.Module, cfg: SRAConfig) -> list[str]:
    """Names of the parameters method=sra trains."""
    layers = "|".join(str(i) for i in selected_layers(model, cfg))
    pats = [re.compile(p) for p in cfg.patterns]
    layer_pats = [re.compile(rf"{re.escape(LAYER_PREFIX)}\.({layers})\.{p}") for p in cfg.layer_patterns] if layers else []
    return [n for n, _ in model.named_parameters() if any(p.search(n) for p in pats + layer_pats)]


def trainable_report(model: torch.nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"sra/trainable_params": train, "sra/total_params": total, "sra/trainable_fraction": train / total}


def _apply_sra(model, cfg):
    names = set(cross_param_names(model, cfg))
    if not names:
        raise ValueError(f"train.sra selects no parameters (patterns {cfg.patterns}, layers {cfg.layer_patterns})")
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    return model


def _apply_lora(model, cfg):
    from peft import LoraConfig, inject_adapter_in_model

    layers = "|".join(str(i) for i in selected_layers(model, cfg))
    targets = "|".join(re.escape(t) for t in cfg.lora_targets)
    lcfg = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=rf".*{re.escape(LAYER_PREFIX)}\.({layers})\.self_attn\.({targets})")
    # inject in place (no PeftModel wrapper), so generate() and the thinker's own forward are unchanged
    model = inject_adapter_in_model(lcfg, model)
    for n, p in model.named_parameters():
        p.requires_grad_("lora_" in n)
    return model


def _apply_full(model, cfg):
    for p in model.parameters():
        p.requires_grad_(True)
    return model


METHODS = {"sra": _apply_sra, "lora": _apply_lora, "full": _apply_full}


def apply_sra(model: torch.nn.Module, cfg: SRAConfig) -> tuple[torch.nn.Module, dict]:
    """Freeze all but theta_cross per ``cfg``; returns (model, trainable report), and logs the fraction."""
    model = METHODS[cfg.method](model, cfg)
    rep = trainable_report(model)
    msg = (f"SRA[{cfg.method}]: {rep['sra/trainable_params']:,} of {rep['sra/total_params']:,} parameters "
           f"train ({100 * rep['sra/trainable_fraction']:.3f}%)")
    print(msg)
    log.info(msg)
    return model, rep


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """Fold LoRA deltas into the base weights and drop the adapters, for an HF-format export."""
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], module.get_base_layer())
    return model
