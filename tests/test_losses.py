"""Losses: Gaussian NLL, balanced weights and the 'auto' choice, against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.losses import (
    BCELogitsLoss,
    CrossEntropyLoss,
    GaussianNLLLoss,
    MSELoss,
    balanced_class_weights,
    balanced_pos_weight,
    gaussian_nll,
    gaussian_variance,
    make_loss,
    resolve_loss,
)


def test_gaussian_nll_hand_values():
    # object 1: log(1)/2 + (1-0)^2/2 = 0.5 ; object 2: log(4)/2 + (3-1)^2/8 = ln 2 + 0.5
    got = gaussian_nll(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 4.0]), torch.tensor([1.0, 3.0]))
    assert float(got) == pytest.approx((0.5 + math.log(2) + 0.5) / 2, rel=1e-6)


def test_gaussian_head_applies_softplus_to_the_raw_variance():
    raw = math.log(math.e - 1.0)  # softplus(raw) = 1
    assert float(gaussian_variance(torch.tensor(raw))) == pytest.approx(1.0 + 1e-6, rel=1e-6)
    out = torch.tensor([[0.0, raw], [2.0, raw]])
    loss = GaussianNLLLoss()(out, torch.tensor([1.0, 2.0]))
    # var ~ 1: (0 + 1/2 + 0 + 0) / 2 = 0.25
    assert float(loss) == pytest.approx(0.25, abs=1e-5)


def test_balanced_pos_weight_is_n_neg_over_n_pos():
    assert balanced_pos_weight(np.array([0, 0, 0, 1])) == 3.0
    assert balanced_pos_weight(torch.tensor([1, 1, 0, 1, 1])) == 0.25
    with pytest.raises(BadValueError, match="no positive"):
        balanced_pos_weight(np.zeros(5, dtype=int))


def test_balanced_class_weights_hand_values():
    # n = 6, K = 3, counts 3, 2, 1 -> 6/9, 6/6, 6/3
    w = balanced_class_weights(np.array([0, 0, 0, 1, 1, 2]))
    np.testing.assert_allclose(w, [2 / 3, 1.0, 2.0])
    with pytest.raises(BadValueError, match=r"\[1\]"):
        balanced_class_weights(np.array([0, 0, 2]), 3)


def test_balanced_bce_hand_value():
    loss = make_loss("bce_logits", 1, np.array([0, 0, 0, 1]), "balanced")
    assert isinstance(loss, BCELogitsLoss) and float(loss.pos_weight) == 3.0
    # all logits 0: each term is ln 2 times (3 for the positive, 1 for each negative), mean over 4
    got = loss(torch.zeros(4, 1), torch.tensor([0, 0, 0, 1]))
    assert float(got) == pytest.approx(6 * math.log(2) / 4, rel=1e-6)


def test_weighted_cross_entropy_hand_value():
    y = np.array([0, 0, 0, 1])  # weights 4/6, 4/2
    loss = make_loss("cross_entropy", 2, y, "balanced")
    assert isinstance(loss, CrossEntropyLoss)
    np.testing.assert_allclose(loss.weight.numpy(), [2 / 3, 2.0], rtol=1e-6)
    # equal logits: every term is ln 2, and the weighted mean of a constant is that constant
    assert float(loss(torch.zeros(4, 2), torch.from_numpy(y))) == pytest.approx(math.log(2), rel=1e-6)


def test_auto_picks_by_outputs_and_target_type():
    ints, floats = np.array([0, 1, 1, 0]), np.array([0.1, 2.0, 3.5, 1.0])
    assert resolve_loss("auto", 1, ints) == "bce_logits"
    assert resolve_loss("auto", 3, np.array([0, 1, 2])) == "cross_entropy"
    assert resolve_loss("auto", 1, floats) == "mse"
    assert resolve_loss("auto", 2, floats) == "gaussian_nll"
    assert isinstance(make_loss("auto", 1, floats), MSELoss)
    assert isinstance(make_loss("auto", 2, floats), GaussianNLLLoss)


def test_mse_uses_first_column():
    loss = MSELoss()(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0]))
    assert float(loss) == pytest.approx((1 + 4) / 2)


def test_bad_combinations_are_named_errors():
    with pytest.raises(BadValueError, match="integer class codes"):
        make_loss("cross_entropy", 3, np.array([0.5, 1.5]))
    with pytest.raises(BadValueError, match="codes 0..2"):
        make_loss("auto", 3, np.array([0, 1, 3]))
    with pytest.raises(ConfigError, match="2 outputs"):
        make_loss("gaussian_nll", 1, np.array([0.5, 1.5]))
    with pytest.raises(ConfigError, match="classification loss"):
        make_loss("mse", 1, np.array([0.5, 1.5]), "balanced")
    with pytest.raises(ConfigError, match="unknown loss"):
        make_loss("hinge", 1, np.array([0, 1]))
