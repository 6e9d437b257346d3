"""RRO: weights, limits and the gradient against a hand computation."""

import math

import pytest
import torch

from raft.rro import rro_loss, rro_weights, sequence_logprob


def test_beta_zero_is_uniform():
    r = torch.tensor([[0.1, 3.0, -2.0, 0.5]])
    w = rro_weights(r, 0.0)
    assert torch.allclose(w, torch.full_like(w, 0.25))
    lp = torch.tensor([[-1.0, -2.0, -3.0, -4.0]], requires_grad=True)
    loss, stats = rro_loss(lp, r, 0.0)
    assert loss.item() == pytest.approx(2.5)  # -(mean log-likelihood)
    assert stats["rro/ess"] == pytest.approx(4.0)


def test_beta_to_infinity_is_best_of_k():
    r = torch.tensor([[0.2, 0.9, 0.4], [1.0, 0.0, 1.0]])
    w_inf = rro_weights(r, math.inf)
    assert torch.equal(w_inf, torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]]))  # ties share
    w_big = rro_weights(r, 1e4)
    assert torch.allclose(w_big, w_inf, atol=1e-4)
    lp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -5.0, -3.0]], requires_grad=True)
    loss, stats = rro_loss(lp, r, math.inf)
    assert loss.item() == pytest.approx((2.0 + 2.0) / 2)  # best candidate's NLL, per prompt, averaged
    assert stats["rro/ess"] == pytest.approx((1.0 + 2.0) / 2)


def test_weights_are_softmax_and_stable():
    r = torch.tensor([[1000.0, 1001.0, 999.0]])  # exp would overflow without the log-sum-exp
    w = rro_weights(r, 2.0)
    expect = torch.softmax(torch.tensor([0.0, 2.0, -2.0]), 0)
    assert torch.allclose(w[0], expect)
    assert not w.requires_grad


def test_gradient_matches_hand_computation_on_toy_policy():
    # toy policy: each candidate is one token drawn from softmax(theta) over 3 tokens
    theta = torch.tensor([0.3, -0.2, 0.5], requires_grad=True)
    cands = torch.tensor([0, 2, 1, 2])
    r = torch.tensor([[0.0, 1.0, 0.5, 0.2]])
    beta = 1.7
    logp = torch.log_softmax(theta, 0)[cands].unsqueeze(0)
    loss, _ = rro_loss(logp, r, beta)
    loss.backward()
    # by hand: w_k = exp(beta (r_k - rbar)) / Z;  d/dtheta [-sum_k w_k log p(c_k)] = -sum_k w_k (e_{c_k} - p)
    rbar = r.mean()
    e = [math.exp(beta * (float(x) - float(rbar))) for x in r[0]]
    w = [x / sum(e) for x in e]
    p = torch.softmax(theta.detach(), 0).tolist()
    grad = [0.0, 0.0, 0.0]
    for wk, c in zip(w, cands.tolist(), strict=True):
        for j in range(3):
            grad[j] -= wk * ((1.0 if j == c else 0.0) - p[j])
    assert torch.allclose(theta.grad, torch.tensor(grad), atol=1e-6)


def test_length_normalization():
    tlp = torch.tensor([[-1.0, -1.0, 0.0], [-2.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(sequence_logprob(tlp, mask, "sum"), torch.tensor([-2.0, -2.0]))
    assert torch.equal(sequence_logprob(tlp, mask, "mean"), torch.tensor([-1.0, -2.0]))


def test_tied_groups_give_no_gradient_and_their_share_is_logged():
    # prompt 0: all candidates unparseable (all 0); prompt 1: rewards differ; prompt 2: all equal within tolerance
    r = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.7, 0.7 + 1e-8, 0.7]])
    lp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0], [-0.5, -0.6, -0.7]], requires_grad=True)
    loss, stats = rro_loss(lp, r, beta=2.0)
    loss.backward()
    assert torch.equal(lp.grad[0], torch.zeros(3)) and torch.equal(lp.grad[2], torch.zeros(3))
    # the one non-tied prompt carries the whole average: d(-J)/d log pi = -w (its softmax weights)
    assert torch.allclose(lp.grad[1], -rro_weights(r[1:2], 2.0)[0])
    assert stats["rro/tied_fraction"] == pytest.approx(2 / 3)
    # opting out restores the plain average over all prompts: tied prompts are pushed up uniformly
    lp2 = lp.detach().clone().requires_grad_(True)
    rro_loss(lp2, r, beta=2.0, skip_tied=False)[0].backward()
    assert torch.allclose(lp2.grad[0], torch.full((3,), -1 / 9))


def test_all_tied_batch_is_zero_yet_backward_runs():
    lp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]], requires_grad=True)
    loss, stats = rro_loss(lp, torch.zeros(2, 2), beta=1.0)
    assert loss.requires_grad and loss.item() == 0.0
    loss.backward()
    assert torch.equal(lp.grad, torch.zeros(2, 2))
    assert stats["rro/tied_fraction"] == 1.0
