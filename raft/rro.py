"""Reflective Reward Optimization: softmax(beta * (r - mean r)) weights over K candidates.

The weighting is a registered scheme (``train.rro_weighting``, :data:`WEIGHTINGS`), so the paper's
softmax can be compared with the alternatives at equal everything else (bench/raft_learn.py):
- ``softmax`` (default): w = softmax(beta (r - mean r)), non-negative, sums to 1;
- ``best_of_k``: all weight on the best candidate(s), ties shared (softmax at beta -> inf);
- ``linear``: signed w = (r - mean r) / sum |r - mean r|, sums to 0 (pushes down the worse half);
- ``grpo``: signed w = (r - mean r) / std r (population std), GRPO's advantage without clipping or KL.

    w_k   = softmax_k(beta * (r_k - mean_j r_j))       per prompt, detached (no gradient through w)
    J_RRO = sum_k w_k * log pi(y_k | x)
    loss  = -J_RRO, averaged over the prompts of the batch

Length normalization of log pi(y | x) is a config choice (``train.length_norm``):
- ``mean`` (default): the per-token mean, so long and short candidates weigh alike;
- ``sum``: the sequence total, the likelihood of the whole candidate.

beta = 0 gives uniform weights (the mean log-likelihood of all K); beta -> inf puts all weight on
the best candidate (best-of-K fine-tuning, RAFT of LMFlow), ties shared equally. Subtracting the
mean does not change the softmax; it keeps beta * r in range before the log-sum-exp.

Tied groups: when all K rewards of a prompt are equal (spread <= ``tie_tol``, e.g. all candidates
unparseable and scored 0), the weights are uniform whatever beta, and the term would raise the
likelihood of every candidate: it reinforces what the reward could not tell apart, failures included.
With ``skip_tied`` (``train.rro_skip_tied``, the default) such prompts contribute no RRO gradient, and
their share is logged as ``rro/tied_fraction``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

EPS = 1e-8
WeightFn = Callable[[torch.Tensor, float], torch.Tensor]
WEIGHTINGS: dict[str, WeightFn] = {}


def register_weighting(name: str):
    """Add a weighting scheme (B, K) rewards, beta -> (B, K) weights under ``name``."""

    def deco(fn: WeightFn) -> WeightFn:
        WEIGHTINGS[name] = fn
        return fn

    return deco


def sequence_logprob(token_logprobs: torch.Tensor, mask: torch.Tensor, norm: str = "mean") -> torch.Tensor:
    """(N, L) per-token log-probs and mask -> (N,) log pi(y | x), summed or per-token mean."""
    total = (token_logprobs * mask).sum(-1)
    if norm == "sum":
        return total
    return total / mask.sum(-1).clamp(min=1)


@register_weighting("softmax")
def softmax_weights(r: torch.Tensor, beta: float) -> torch.Tensor:
    if math.isinf(beta):
        return best_of_k_weights(r, beta)
    z = beta * (r - r.mean(dim=-1, keepdim=True))
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))


@register_weighting("best_of_k")
def best_of_k_weights(r: torch.Tensor, beta: float) -> torch.Tensor:
    best = r == r.max(dim=-1, keepdim=True).values
    return best.float() / best.sum(-1, keepdim=True)


@register_weighting("linear")
def linear_weights(r: torch.Tensor, beta: float) -> torch.Tensor:
    d = r - r.mean(dim=-1, keepdim=True)
    return d / d.abs().sum(-1, keepdim=True).clamp(min=EPS)  # a tied group gets all-zero weights


@register_weighting("grpo")
def grpo_weights(r: torch.Tensor, beta: float) -> torch.Tensor:
    d = r - r.mean(dim=-1, keepdim=True)
    return d / (r.std(-1, unbiased=False, keepdim=True) + EPS)


def rro_weights(rewards: torch.Tensor, beta: float, weighting: str = "softmax") -> torch.Tensor:
    """(B, K) rewards -> (B, K) weights of the named scheme, detached (softmax / best_of_k rows sum
    to 1; linear / grpo rows sum to 0)."""
    if weighting not in WEIGHTINGS:
        raise KeyError(f"train.rro_weighting: unknown {weighting!r} (registered: {sorted(WEIGHTINGS)})")
    return WEIGHTINGS[weighting](rewards.detach().float(), beta)


def tied_groups(rewards: torch.Tensor, tol: float) -> torch.Tensor:
    """(B, K) rewards -> (B,) bool: the prompt's K rewards spread (max - min) by at most ``tol``."""
    r = rewards.detach().float()
    return (r.max(-1).values - r.min(-1).values) <= tol


def rro_loss(seq_logprobs: torch.Tensor, rewards: torch.Tensor, beta: float, skip_tied: bool = True,
             tie_tol: float = 1e-6, weighting: str = "softmax") -> tuple[torch.Tensor, dict]:
    """-J_RRO averaged over prompts (the non-tied ones with ``skip_tied``), and the logged statistics.

    seq_logprobs: (B, K) log pi(y_k | x) with gradient; rewards: (B, K).
    """
    w = rro_weights(rewards, beta, weighting).to(seq_logprobs.device, seq_logprobs.dtype)
    j = (w * seq_logprobs).sum(-1)
    r = rewards.detach().float()
    tied = tied_groups(rewards, tie_tol).to(j.device)
    keep = ~tied if skip_tied else torch.ones_like(tied)
    # Averaged over the kept prompts, not all B: the RRO step size then does not shrink with the share of
    # tied prompts in the batch (a batch of mostly failures would otherwise barely move theta). With none
    # kept the term is 0 * sum, zero with a zero gradient but still attached to the graph, so backward runs.
    n_keep = int(keep.sum())
    neg_j = -(j * keep).sum() / max(n_keep, 1)
    stats = {
        "rro/tied_fraction": float(tied.float().mean()),
        # in [1, K] for softmax / best_of_k (K uniform, 1 one-hot); for the signed schemes, of |w| normalised
        "rro/ess": float((w.abs().sum(-1) ** 2 / (w.float() ** 2).sum(-1).clamp(min=EPS)).mean()),
        "rro/w_max": float(w.max(-1).values.mean()),
        "rro/w_spread": float((w.max(-1).values - w.min(-1).values).mean()),
        "reward/mean": float(r.mean()),
        "reward/std_within": float(r.std(-1, unbiased=False).mean()),
        "reward/max": float(r.max(-1).values.mean()),
    }
    return neg_j, stats
