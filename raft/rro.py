"""Reflective Reward Optimization: softmax(beta * (r - mean r)) weights over K candidates.

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

import torch


def sequence_logprob(token_logprobs: torch.Tensor, mask: torch.Tensor, norm: str = "mean") -> torch.Tensor:
    """(N, L) per-token log-probs and mask -> (N,) log pi(y | x), summed or per-token mean."""
    total = (token_logprobs * mask).sum(-1)
    if norm == "sum":
        return total
    return total / mask.sum(-1).clamp(min=1)


def rro_weights(rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """(B, K) rewards -> (B, K) weights summing to 1 per row, detached."""
    r = rewards.detach().float()
    if math.isinf(beta):
        best = r == r.max(dim=-1, keepdim=True).values
        return best.float() / best.sum(-1, keepdim=True)
    z = beta * (r - r.mean(dim=-1, keepdim=True))
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))


def tied_groups(rewards: torch.Tensor, tol: float) -> torch.Tensor:
    """(B, K) rewards -> (B,) bool: the prompt's K rewards spread (max - min) by at most ``tol``."""
    r = rewards.detach().float()
    return (r.max(-1).values - r.min(-1).values) <= tol


def rro_loss(seq_logprobs: torch.Tensor, rewards: torch.Tensor, beta: float, skip_tied: bool = True,
             tie_tol: float = 1e-6) -> tuple[torch.Tensor, dict]:
    """-J_RRO averaged over prompts (the non-tied ones with ``skip_tied``), and the logged statistics.

    seq_logprobs: (B, K) log pi(y_k | x) with gradient; rewards: (B, K).
    """
    w = rro_weights(rewards, beta).to(seq_logprobs.device, seq_logprobs.dtype)
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
        "rro/ess": float((1.0 / (w.float() ** 2).sum(-1)).mean()),  # in [1, K]: K uniform, 1 one-hot
        "rro/w_max": float(w.max(-1).values.mean()),
        "rro/w_spread": float((w.max(-1).values - w.min(-1).values).mean()),
        "reward/mean": float(r.mean()),
        "reward/std_within": float(r.std(-1, unbiased=False).mean()),
        "reward/max": float(r.max(-1).values.mean()),
    }
    return neg_j, stats
