"""The registered RRO weighting schemes (train.rro_weighting), against weights computed by hand."""

import math

import pytest
import torch

from raft.config import ConfigError, TrainConfig
from raft.rro import WEIGHTINGS, rro_loss, rro_weights

R = torch.tensor([[0.0, 1.0, 3.0]])  # mean 4/3; deviations -4/3, -1/3, 5/3


def test_registry_names():
    assert {"softmax", "best_of_k", "linear", "grpo"} <= set(WEIGHTINGS)


def test_softmax_by_hand():
    e = [math.exp(x) for x in (0.0, 1.0, 3.0)]  # softmax is shift invariant: the mean drops out
    assert torch.allclose(rro_weights(R, 1.0, "softmax")[0], torch.tensor([x / sum(e) for x in e]), atol=1e-6)


def test_best_of_k_by_hand_and_ties():
    assert torch.equal(rro_weights(R, 0.3, "best_of_k")[0], torch.tensor([0.0, 0.0, 1.0]))  # beta ignored
    tied = torch.tensor([[2.0, 0.0, 2.0]])
    assert torch.equal(rro_weights(tied, 1.0, "best_of_k")[0], torch.tensor([0.5, 0.0, 0.5]))


def test_linear_by_hand():
    # sum |d| = 4/3 + 1/3 + 5/3 = 10/3 -> w = d * 3/10
    want = torch.tensor([-0.4, -0.1, 0.5])
    w = rro_weights(R, 1.0, "linear")[0]
    assert torch.allclose(w, want, atol=1e-6) and abs(float(w.sum())) < 1e-6


def test_grpo_by_hand():
    # population std of (0, 1, 3): sqrt(((16 + 1 + 25) / 9) / 3) = sqrt(14 / 9)
    std = math.sqrt(14 / 9)
    want = torch.tensor([-4 / 3, -1 / 3, 5 / 3]) / std
    assert torch.allclose(rro_weights(R, 1.0, "grpo")[0], want, atol=1e-5)


def test_signed_schemes_give_tied_groups_zero_weight_and_gradient():
    tied = torch.full((1, 3), 2.0)
    for name in ("linear", "grpo"):
        assert torch.equal(rro_weights(tied, 1.0, name), torch.zeros(1, 3))
        lp = torch.zeros(1, 3, requires_grad=True)
        rro_loss(lp, tied, 1.0, skip_tied=False, weighting=name)[0].backward()
        assert torch.equal(lp.grad, torch.zeros(1, 3))


def test_loss_gradient_is_minus_the_weights():
    lp = torch.zeros(1, 3, requires_grad=True)
    rro_loss(lp, R, 1.0, weighting="grpo")[0].backward()
    assert torch.allclose(lp.grad, -rro_weights(R, 1.0, "grpo"))


def test_unknown_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="rro_weighting"):
        TrainConfig(rro_weighting="ppo").validate()
    with pytest.raises(KeyError, match="ppo"):
        rro_weights(R, 1.0, "ppo")
