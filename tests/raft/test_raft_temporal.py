"""L_temp against a hand computation, with padded steps masked out."""

import pytest
import torch

from raft.temporal import temporal_loss


def _hand(f, m, gamma, delta, reduction):
    total = 0.0
    for b in range(f["a"].shape[0]):
        T = f["a"].shape[1]
        av = [(f["a"][b, t] - f["v"][b, t]).pow(2).sum().item() for t in range(T) if m["a"][b, t] and m["v"][b, t]]
        tr = [(f["t"][b, t] - f["r"][b, t]).pow(2).sum().item() for t in range(T) if m["t"][b, t] and m["r"][b, t]]
        dd = []
        for t in range(1, T):
            if m["a"][b, t] and m["v"][b, t] and m["a"][b, t - 1] and m["v"][b, t - 1]:
                da = f["a"][b, t] - f["a"][b, t - 1]
                dv = f["v"][b, t] - f["v"][b, t - 1]
                dd.append((da - dv).pow(2).sum().item())
        agg = (lambda xs: sum(xs)) if reduction == "sum" else (lambda xs: sum(xs) / max(len(xs), 1))
        total += agg(av) + gamma * agg(tr) + delta * agg(dd)
    return total / f["a"].shape[0]


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_matches_hand_computation_with_padding(reduction):
    g = torch.Generator().manual_seed(0)
    B, T, D = 2, 5, 3
    f = {k: torch.randn(B, T, D, generator=g) for k in "avtr"}
    m = {k: torch.ones(B, T) for k in "avtr"}
    m["a"][1, 3:] = 0  # prompt 1 is shorter: padded steps
    m["v"][1, 3:] = 0
    m["v"][0, 1] = 0  # a missing frame
    m["t"][0, 4] = 0
    loss, parts = temporal_loss(f, m, gamma=0.7, delta=0.3, reduction=reduction)
    assert loss.item() == pytest.approx(_hand(f, m, 0.7, 0.3, reduction), rel=1e-5)
    # padded values must not matter
    f2 = {k: v.clone() for k, v in f.items()}
    f2["a"][1, 3:] = 1e3
    assert temporal_loss(f2, m, 0.7, 0.3, reduction)[0].item() == pytest.approx(loss.item(), rel=1e-6)


def test_zero_when_modalities_agree():
    x = torch.randn(1, 4, 2)
    f = {"a": x, "v": x.clone(), "t": x, "r": x.clone()}
    m = {k: torch.ones(1, 4) for k in "avtr"}
    assert temporal_loss(f, m, 1.0, 1.0)[0].item() == 0.0
