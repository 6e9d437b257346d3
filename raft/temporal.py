"""Temporal coherence: keep audio, visual, text and reasoning embeddings aligned over time.

    L_temp = sum_t m_av(t) ||f_a(t) - f_v(t)||^2
           + gamma * sum_t m_tr(t) ||f_t(t) - f_r(t)||^2
           + delta * sum_t m_d(t) ||Δf_a(t) - Δf_v(t)||^2,     Δf(t) = f(t) - f(t-1)

Masks say which time steps hold real features: m_av = m_a m_v, m_tr = m_t m_r, and the derivative
term needs both modalities at t and t-1. delta = 0 gives the paper's main equation; the derivative
term is the appendix variant (PAPER.md). ``reduction``:
- ``sum``: exactly the sums above (grows with clip length);
- ``mean`` (default): each term divided by its number of valid steps, so clip length and
  padding do not change the loss scale.
Inputs are batched: f_* (B, T, D) and masks (B, T); the result is averaged over the batch.

``norm`` (``train.temporal_norm``) first maps every f(t) to a normalised vector, so the loss measures
direction, not the scale of raw last-layer states (which made alpha * L_temp outweigh L_align even at
alpha = 0.01 in bench/raft_mechanism.py):
- ``l2`` (default): f(t) / ||f(t)||, so ||f_a - f_v||^2 = 2 - 2 cos(f_a, f_v) lies in [0, 4];
- ``layernorm``: (f(t) - mean) / sqrt(var + 1e-5) over the D features, no affine (||.||^2 ~ D);
- ``none``: the raw states.
Δf is taken after normalisation. All-zero (padded) steps stay zero and are masked anyway.
"""

from __future__ import annotations

import torch


def _term(diff: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    sq = (diff ** 2).sum(-1) * mask  # (B, T)
    if reduction == "sum":
        return sq.sum(-1)
    return sq.sum(-1) / mask.sum(-1).clamp(min=1)


LN_EPS = 1e-5
L2_EPS = 1e-8


def normalise(x: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-time-step normalisation of (..., D) features; see the module docstring."""
    if norm == "l2":
        return x / x.norm(dim=-1, keepdim=True).clamp(min=L2_EPS)
    if norm == "layernorm":
        return torch.nn.functional.layer_norm(x, x.shape[-1:], eps=LN_EPS)
    if norm == "none":
        return x
    raise ValueError(f"unknown temporal norm {norm!r} (l2 | layernorm | none)")


def temporal_loss(f: dict[str, torch.Tensor], m: dict[str, torch.Tensor], gamma: float, delta: float,
                  reduction: str = "mean", norm: str = "l2") -> tuple[torch.Tensor, dict]:
    """f and m keyed by 'a', 'v', 't', 'r'; returns (loss, per-term values for logging)."""
    f = {k: normalise(v, norm) for k, v in f.items()}
    m_av = m["a"] * m["v"]
    m_tr = m["t"] * m["r"]
    av = _term(f["a"] - f["v"], m_av, reduction)
    tr = _term(f["t"] - f["r"], m_tr, reduction)
    if f["a"].shape[1] > 1:
        d_a = f["a"][:, 1:] - f["a"][:, :-1]
        d_v = f["v"][:, 1:] - f["v"][:, :-1]
        deriv = _term(d_a - d_v, m_av[:, 1:] * m_av[:, :-1], reduction)
    else:
        deriv = torch.zeros_like(av)
    loss = (av + gamma * tr + delta * deriv).mean()
    return loss, {"temp/av": av.mean().item(), "temp/tr": tr.mean().item(), "temp/deriv": deriv.mean().item()}
