"""L_temp against a hand computation, with padded steps masked out, for each normalisation."""

import math

import pytest
import torch

from raft.temporal import temporal_loss


def _norm_by_hand(vec, norm):
    xs = [float(x) for x in vec]
    if norm == "l2":
        n = math.sqrt(sum(x * x for x in xs))
        return torch.tensor([x / n for x in xs])
    if norm == "layernorm":
        mu = sum(xs) / len(xs)
        var = sum((x - mu) ** 2 for x in xs) / len(xs)  # biased variance, as LayerNorm
        return torch.tensor([(x - mu) / math.sqrt(var + 1e-5) for x in xs])
    return torch.tensor(xs)


def _hand(f, m, gamma, delta, reduction, norm="none"):
    B, T = f["a"].shape[:2]
    f = {k: torch.stack([torch.stack([_norm_by_hand(v[b, t], norm) for t in range(T)]) for b in range(B)])
         for k, v in f.items()}
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


@pytest.mark.parametrize("norm", ["none", "l2", "layernorm"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_matches_hand_computation_with_padding(reduction, norm):
    g = torch.Generator().manual_seed(0)
    B, T, D = 2, 5, 3
    f = {k: torch.randn(B, T, D, generator=g) for k in "avtr"}
    m = {k: torch.ones(B, T) for k in "avtr"}
    m["a"][1, 3:] = 0  # prompt 1 is shorter: padded steps
    m["v"][1, 3:] = 0
    m["v"][0, 1] = 0  # a missing frame
    m["t"][0, 4] = 0
    loss, parts = temporal_loss(f, m, gamma=0.7, delta=0.3, reduction=reduction, norm=norm)
    assert loss.item() == pytest.approx(_hand(f, m, 0.7, 0.3, reduction, norm), rel=1e-5)
    # padded values must not matter
    f2 = {k: v.clone() for k, v in f.items()}
    f2["a"][1, 3:] = 1e3
    assert temporal_loss(f2, m, 0.7, 0.3, reduction, norm)[0].item() == pytest.approx(loss.item(), rel=1e-6)


def test_l2_form_by_hand_on_two_steps():
    # f_a = (3, 4), (0, 2); f_v = (1, 0), (0, -5): unit vectors (.6, .8), (0, 1) and (1, 0), (0, -1)
    f = {"a": torch.tensor([[[3.0, 4.0], [0.0, 2.0]]]), "v": torch.tensor([[[1.0, 0.0], [0.0, -5.0]]])}
    f["t"], f["r"] = f["a"].clone(), f["a"].clone()
    m = {k: torch.ones(1, 2) for k in "avtr"}
    av = ((0.6 - 1) ** 2 + 0.8 ** 2 + 0 + (1 + 1) ** 2) / 2  # (0.8 + 4) / 2
    da, dv = (0 - 0.6, 1 - 0.8), (0 - 1, -1 - 0)
    deriv = (da[0] - dv[0]) ** 2 + (da[1] - dv[1]) ** 2
    loss, parts = temporal_loss(f, m, gamma=1.0, delta=0.5, reduction="mean", norm="l2")
    assert parts["temp/av"] == pytest.approx(av) and parts["temp/tr"] == 0.0
    assert parts["temp/deriv"] == pytest.approx(deriv)
    assert loss.item() == pytest.approx(av + 0.5 * deriv)


def test_normalised_loss_ignores_scale_and_is_bounded():
    g = torch.Generator().manual_seed(1)
    f = {k: torch.randn(2, 6, 16, generator=g) for k in "avtr"}
    m = {k: torch.ones(2, 6) for k in "avtr"}
    base, parts = temporal_loss(f, m, 1.0, 1.0, norm="l2")
    scaled = {k: v * 300.0 for k, v in f.items()}
    assert temporal_loss(scaled, m, 1.0, 1.0, norm="l2")[0].item() == pytest.approx(base.item(), rel=1e-5)
    assert temporal_loss(scaled, m, 1.0, 1.0, norm="layernorm")[0].item() == pytest.approx(
        temporal_loss(f, m, 1.0, 1.0, norm="layernorm")[0].item(), rel=1e-4)
    assert 0.0 <= parts["temp/av"] <= 4.0 and 0.0 <= parts["temp/tr"] <= 4.0
    # the raw form grows with the square of the scale
    raw = temporal_loss(f, m, 1.0, 1.0, norm="none")[0].item()
    assert temporal_loss(scaled, m, 1.0, 1.0, norm="none")[0].item() == pytest.approx(raw * 300.0 ** 2, rel=1e-4)


def test_zero_when_modalities_agree():
    x = torch.randn(1, 4, 2)
    f = {"a": x, "v": x.clone(), "t": x, "r": x.clone()}
    m = {k: torch.ones(1, 4) for k in "avtr"}
    assert temporal_loss(f, m, 1.0, 1.0)[0].item() == 0.0
