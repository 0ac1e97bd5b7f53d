"""Objectives: weighted sum of head losses with per-head masks, symmetric InfoNCE against numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.heads import make_head
from astromodal.training.objectives import OBJECTIVES, ContrastiveObjective, Objective, make_objective


def two_heads(w_class: float = 1.0, w_radius: float = 1.0) -> Objective:
    c = make_head("class", {"kind": "categorical", "weight": w_class}).fit_target(np.array([0, 1, 2]))
    r = make_head("radius", {"kind": "gaussian", "weight": w_radius}).fit_target(np.array([0.0, 2.0]))
    return Objective([c, r])


def test_total_is_the_weighted_sum_of_the_parts():
    obj = two_heads(2.0, 0.5)
    out = {"class": torch.randn(4, 3), "radius": torch.randn(4, 2)}
    y = {"class": torch.tensor([0, 1, 2, 1]), "radius": torch.tensor([1.0, -1.0, 0.0, 0.5])}
    total, parts = obj(out, y)
    assert set(parts) == {"loss_class", "loss_radius"}
    assert float(total) == pytest.approx(2.0 * float(parts["loss_class"]) + 0.5 * float(parts["loss_radius"]))
    assert obj.weights == {"class": 2.0, "radius": 0.5}
    assert Objective(obj.heads, weights={"radius": 3.0}).weights["radius"] == 3.0


def test_a_head_without_any_target_in_the_batch_adds_zero_and_no_nan_gradient():
    obj = two_heads()
    out = {"class": torch.randn(3, 3, requires_grad=True), "radius": torch.randn(3, 2, requires_grad=True)}
    y = {"class": torch.tensor([0, 2, 1]), "radius": torch.full((3,), float("nan"))}  # three galaxies
    total, parts = obj(out, y)
    total.backward()
    assert float(parts["loss_radius"].detach()) == 0.0
    assert float(total.detach()) == pytest.approx(float(parts["loss_class"].detach()))
    assert torch.equal(out["radius"].grad, torch.zeros(3, 2)) and torch.isfinite(out["class"].grad).all()


def test_plain_tensor_output_only_for_one_head_and_missing_names_are_errors():
    obj = two_heads()
    with pytest.raises(BadValueError, match="one tensor"):
        obj(torch.randn(2, 3), {"class": torch.tensor([0, 1]), "radius": torch.tensor([0.0, 1.0])})
    with pytest.raises(BadValueError, match="'radius'"):
        obj({"class": torch.randn(2, 3)}, {"class": torch.tensor([0, 1]), "radius": torch.tensor([0.0, 1.0])})
    one = Objective([make_head("c", "binary").fit_target(np.array([0, 1]))])
    total, parts = one(torch.zeros(2, 1), {"c": torch.tensor([0, 1])})
    assert float(total) == pytest.approx(math.log(2)) and list(parts) == ["loss_c"]
    with pytest.raises(ConfigError, match="unknown heads"):
        Objective(obj.heads, weights={"mass": 1.0})


def infonce_numpy(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = scale * a @ b.T

    def ce(z):  # cross-entropy of each row against the diagonal
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - np.diag(z)))

    return 0.5 * (ce(logits) + ce(logits.T))


def test_infonce_matches_the_numpy_formula_and_temperature_starts_at_clip_value():
    a = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 1.0]])
    b = np.array([[2.0, 0.1], [0.0, 1.0], [-0.5, 0.2]])
    obj = ContrastiveObjective(pair=("image", "spectrum"))
    assert float(obj.logit_scale.detach()) == pytest.approx(math.log(1 / 0.07)) and obj.temperature == pytest.approx(0.07)
    loss, parts = obj({"image": torch.tensor(a), "spectrum": torch.tensor(b)})
    assert float(loss.detach()) == pytest.approx(infonce_numpy(a, b, 1 / 0.07), rel=1e-5)
    assert list(parts) == ["loss_contrastive"]
    # two vectors, scale 1, by hand: rows [1, 0] and [0, 1] against themselves -> log(1 + e^-1) each way
    two, _ = ContrastiveObjective(pair=("x", "y"), temperature=1.0)({"x": torch.eye(2), "y": torch.eye(2)})
    assert float(two.detach()) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_temperature_is_learnable_and_clamped_at_100():
    obj = ContrastiveObjective(pair=("x", "y"))
    loss, _ = obj({"x": torch.randn(4, 3), "y": torch.randn(4, 3)})
    loss.backward()
    assert obj.logit_scale.grad is not None and float(obj.logit_scale.grad) != 0.0
    with torch.no_grad():
        obj.logit_scale.fill_(10.0)  # far beyond log(100)
    a, b = np.random.default_rng(0).normal(size=(2, 3, 4))
    loss, _ = obj({"x": torch.tensor(a), "y": torch.tensor(b)})
    assert float(loss.detach()) == pytest.approx(infonce_numpy(a, b, 100.0), rel=1e-5) and obj.temperature == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="pair"):
        ContrastiveObjective(pair=("x",))


def test_registry_builds_objectives_by_name():
    assert {"supervised", "contrastive"} <= set(OBJECTIVES.names())
    obj = make_objective("contrastive", pair=["a", "b"], temperature=0.1)
    assert isinstance(obj, ContrastiveObjective) and obj.temperature == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="unknown objective"):
        make_objective("triplet")
