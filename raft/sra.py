"""Selective Reasoning Adaptation: train only theta_cross, freeze everything else.

theta_cross is chosen by config (``train.sra``):
- ``sra``: parameters whose names match ``patterns`` (e.g. the audio projector, the vision merger)
  plus, inside the selected decoder layers (top N, or explicit indices), those matching
  ``layer_patterns`` (e.g. the attention projections); a named preset (:data:`PRESETS`) gives all
  three, and any of them set in the config replaces the preset's;
- ``lora``: peft LoRA adapters on ``lora_targets`` inside the selected layers; the base is frozen;
- ``full``: everything trains (a reference point, not SRA).

Freezing is ``requires_grad=False``, and the optimizer only ever sees trainable parameters, so
frozen weights stay bit-identical (tested). The trainable fraction is printed and logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import torch

from raft.config import SRAConfig

log = logging.getLogger(__name__)
LAYER_PREFIX = "model.language_model.layers"


@dataclass(frozen=True)
class Preset:
    """A named theta_cross of the Qwen2.5-Omni thinker (parameter names as transformers builds it)."""

    patterns: tuple[str, ...]  # on full parameter names
    layer_patterns: tuple[str, ...]  # relative to model.language_model.layers.<i>.
    top_layers: int
    doc: str


# The modality interfaces: audio_tower.proj maps the audio encoder's width to the LM's; the vision merger
# fuses 2x2 patches (mlp.0, in the vision space) and maps them to the LM's width (mlp.2).
_AUDIO_PROJ = r"audio_tower\.proj\."
_MERGER_OUT = r"visual\.merger\.mlp\.2\."
_MERGER = r"visual\.merger\."
# In the LM decoder the audio and vision tokens sit in the same sequence as the text, so self-attention
# is where modalities meet: q.k between a text and an audio/video position decides what the text reads
# from the clip, v what it reads. o_proj and the MLP act on each position alone (after the mixing), as
# any per-token layer does, so the cross-modal part of a layer is its q/k/v. The top layers are chosen
# because they sit closest to the answer and reasoning, which is what RAFT's rewards judge.
_QKV = r"self_attn\.(q|k|v)_proj\."
_ATTN = r"self_attn\.(q|k|v|o)_proj\."
PRESETS: dict[str, Preset] = {
    "cross_modal": Preset((_AUDIO_PROJ, _MERGER_OUT), (_QKV,), 1,
                          "audio projector, vision merger output layer, q/k/v of the top LM layer (default)"),
    "projectors": Preset((_AUDIO_PROJ, _MERGER), (), 0, "audio projector and the whole vision merger, no LM layer"),
    "cross_modal_wide": Preset((_AUDIO_PROJ, _MERGER), (_ATTN,), 2,
                               "audio projector, whole vision merger, q/k/v/o of the top 2 LM layers"),
}


def resolve(cfg: SRAConfig) -> Preset:
    """The selection in effect: the named preset with the fields the config sets replacing its own."""
    if cfg.preset not in PRESETS:
        raise ValueError(f"train.sra.preset: unknown {cfg.preset!r} (known: {sorted(PRESETS)})")
    p = PRESETS[cfg.preset]
    return Preset(tuple(p.patterns if cfg.patterns is None else cfg.patterns),
                  tuple(p.layer_patterns if cfg.layer_patterns is None else cfg.layer_patterns),
                  p.top_layers if cfg.top_layers is None else cfg.top_layers, p.doc)


def num_decoder_layers(model: torch.nn.Module) -> int:
    return model.config.get_text_config().num_hidden_layers


def selected_layers(model: torch.nn.Module, cfg: SRAConfig) -> list[int]:
    n = num_decoder_layers(model)
    if cfg.layer_indices is not None:
        return sorted({i % n for i in cfg.layer_indices})
    return list(range(max(0, n - resolve(cfg).top_layers), n))


def cross_param_names(model: torch.nn.Module, cfg: SRAConfig) -> list[str]:
    """Names of the parameters method=sra trains."""
    sel = resolve(cfg)
    layers = "|".join(str(i) for i in selected_layers(model, cfg))
    pats = [re.compile(p) for p in sel.patterns]
    layer_pats = [re.compile(rf"{re.escape(LAYER_PREFIX)}\.({layers})\.{p}") for p in sel.layer_patterns] if layers else []
    return [n for n, _ in model.named_parameters() if any(p.search(n) for p in pats + layer_pats)]


def trainable_report(model: torch.nn.Module) -> dict:
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"sra/trainable_params": train, "sra/total_params": total, "sra/trainable_fraction": train / total}


def _apply_sra(model, cfg):
    names = set(cross_param_names(model, cfg))
    if not names:
        sel = resolve(cfg)
        raise ValueError(f"train.sra selects no parameters (preset {cfg.preset}: patterns {list(sel.patterns)}, "
                         f"layer_patterns {list(sel.layer_patterns)} in layers {selected_layers(model, cfg)})")
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
