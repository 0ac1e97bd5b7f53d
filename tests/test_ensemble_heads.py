"""Ensembles with several heads: Eq. 1 with a member mask, per-head combination (weighted class
probabilities, unweighted Gaussians), resample and k-fold ensembles on a dict of targets."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.errors import ConfigError
from astromodal.training.crossval import kfold_ensemble
from astromodal.training.ensemble import (
    EnsembleEstimator,
    combine_gaussians,
    draw_probabilities,
    fit_resample_ensemble,
    member_mean_var,
)
from astromodal.training.estimator import load_estimator, make_estimator
from astromodal.training.predictions import Categorical, Gaussian
from astromodal.training.trainer import TrainerConfig
from test_estimator_heads import stars_and_galaxies


# ---------------------------------------------------------------------- Eq. 1 with a mask
def test_combine_gaussians_with_a_mask_by_hand():
    mu = np.array([[1.0, 2.0, 5.0], [3.0, np.nan, 7.0], [5.0, 4.0, 9.0]])
    s2 = np.array([[0.5, 1.0, 1.0], [1.5, np.nan, 1.0], [2.0, 3.0, 1.0]])
    mask = np.array([[True, True, False], [True, False, False], [False, True, False]])
    mean, var, net = combine_gaussians(mu, s2, mask=mask)
    # column 0: members 0, 1 -> mu 2, s2 ((0.5 + 1) + (1.5 + 9)) / 2 - 4 = 2, sigma_net 1
    # column 1: members 0, 2 -> mu 3, s2 ((1 + 4) + (3 + 16)) / 2 - 9 = 3, sigma_net 1 (the NaN of member 1 unread)
    # column 2: no member -> NaN
    np.testing.assert_allclose(mean[:2], [2.0, 3.0])
    np.testing.assert_allclose(var[:2], [2.0, 3.0])
    np.testing.assert_allclose(net[:2], [1.0, 1.0])
    assert np.isnan(mean[2]) and np.isnan(var[2]) and np.isnan(net[2])
    # every entry in: the unmasked Eq. 1
    full = np.ones_like(mask)
    ok = np.isfinite(mu).all(axis=0)
    for a, b in zip(combine_gaussians(mu[:, ok], s2[:, ok], mask=full[:, ok]), combine_gaussians(mu[:, ok], s2[:, ok]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(Exception, match="mask"):
        combine_gaussians(mu, s2, mask=mask[:2])


def test_member_mean_var_one_helper():
    class MV:
        def predict_mean_var(self, X):
            return np.arange(len(X)), None

    class P:
        def predict(self, X):
            return np.arange(len(X))[:, None] * 2.0

    mean, var = member_mean_var(MV(), np.zeros((3, 1)))
    assert mean.dtype == np.float64 and mean.tolist() == [0, 1, 2] and np.isnan(var).all()
    mean, var = member_mean_var(P(), np.zeros((3, 1)))
    assert mean.tolist() == [0, 2, 4] and np.isnan(var).all()


# ---------------------------------------------------------------------- per-head combination
class TwoHeadStub:
    """A fitted two-head member: fixed class probabilities over its own classes, a fixed radius Gaussian;
    X is the row index (N, 1); remembers the rows it trained on and was asked about."""

    task = "classification"
    head_names = ["class", "radius"]
    head_tasks = {"class": "classification", "radius": "regression"}

    def __init__(self, proba=(0.5, 0.5), classes=(0, 1), mu=1.0, s2=1.0):
        self.proba, self.classes_, self.mu, self.s2 = np.asarray(proba), np.asarray(classes), mu, s2
        self.head_classes = {"class": self.classes_, "radius": None}
        self.fitted_on: dict | None = None
        self.asked: list[np.ndarray] = []

    def fit(self, X, y, X_val=None, y_val=None):
        self.fitted_on = {"rows": np.asarray(X)[:, 0].astype(int), **y}
        return self

    def predict_heads(self, X):
        self.asked.append(np.asarray(X)[:, 0].astype(int))
        n = len(X)
        return {"class": Categorical(np.tile(self.proba, (n, 1)), self.classes_),
                "radius": Gaussian(np.full(n, self.mu), np.full(n, self.s2))}

    def predict_proba(self, X):
        return self.predict_heads(X)["class"].proba


def rows(n):
    return np.arange(n, dtype=float)[:, None]


def test_ensemble_heads_weighted_classes_unweighted_gaussians():
    a = TwoHeadStub(proba=[1.0, 0.0], classes=[0, 1], mu=1.0, s2=0.5)
    b = TwoHeadStub(proba=[0.2, 0.8], classes=[1, 2], mu=3.0, s2=1.5)  # classes 1 and 2: aligned on the union
    ens = EnsembleEstimator([a, b], weights=[3, 1])
    assert ens.head_names == ["class", "radius"] and ens.head_classes["class"].tolist() == [0, 1, 2]
    preds = ens.predict_heads(rows(2))
    # class: 0.75 * [1, 0, 0] + 0.25 * [0, 0.2, 0.8]
    np.testing.assert_allclose(preds["class"].proba, [[0.75, 0.05, 0.2]] * 2)
    np.testing.assert_allclose(ens.predict_proba(rows(2)), preds["class"].proba)
    # radius: Eq. 1 UNWEIGHTED despite the 3:1 class weights: mu 2, s2 2, sigma_net 1
    r = preds["radius"]
    np.testing.assert_allclose(r.mean, [2.0, 2.0])
    np.testing.assert_allclose(r.var, [2.0, 2.0])
    np.testing.assert_allclose(r.sigma_net, [1.0, 1.0])


def test_members_with_other_heads_are_refused():
    class Other(TwoHeadStub):
        head_names = ["class", "mass"]

    with pytest.raises(ConfigError, match="different heads"):
        EnsembleEstimator([TwoHeadStub(), Other()])


# ---------------------------------------------------------------------- resample ensembles on a dict of targets
def class_and_radius(n=60):
    y_class = np.arange(n) % 3  # 0 = star, 1, 2 = others (no radius)
    radius = np.where(y_class == 0, 1.0 + np.arange(n) / n, np.nan)
    return {"class": y_class, "radius": radius}


def test_resample_per_head_oob_with_stub_members():
    n = 60
    y = class_and_radius(n)
    params = iter([([1.0, 0.0, 0.0], 1.0, 0.5), ([0.0, 1.0, 0.0], 3.0, 1.5)])

    def make():
        p, mu, s2 = next(params)
        return TwoHeadStub(p, (0, 1, 2), mu, s2)

    res = fit_resample_ensemble(make, rows(n), y, 2, combine_weights=[3, 1], seed=0)
    for m, member in enumerate(res.members):
        rows_m = member.fitted_on["rows"]
        # every head gets the drawn rows (the member masks missing radii itself)
        np.testing.assert_array_equal(member.fitted_on["class"], y["class"][rows_m])
        np.testing.assert_array_equal(member.fitted_on["radius"], y["radius"][rows_m])
        np.testing.assert_array_equal(member.asked[0], res.oob[m])  # one prediction, on its OOB rows
    assert list(res.heads) == ["class", "radius"]
    c, r = res.heads["class"], res.heads["radius"]
    in0, in1 = np.isin(np.arange(n), res.oob[0]), np.isin(np.arange(n), res.oob[1])
    both, only1 = in0 & in1, ~in0 & in1
    assert both.any() and only1.any()
    np.testing.assert_allclose(c.proba[both], [[0.75, 0.25, 0.0]] * int(both.sum()))
    np.testing.assert_allclose(r.mean[both], 2.0)
    np.testing.assert_allclose(r.var[both], 2.0)  # Eq. 1 unweighted
    np.testing.assert_allclose(r.sigma_net[both], 1.0)
    np.testing.assert_allclose(r.mean[only1], 3.0)
    # the radius is scored on covered STARS only: a galaxy's missing radius counts for nothing
    stars = ~np.isnan(y["radius"])
    np.testing.assert_array_equal(r.scored, r.covered & stars)
    want = np.sqrt(np.mean((r.mean[r.covered & stars] - y["radius"][r.covered & stars]) ** 2))
    assert res.oob_scores["radius"] == pytest.approx(want)
    # the single-head fields are the primary (class) head's
    np.testing.assert_array_equal(res.oob_covered, c.covered)
    np.testing.assert_allclose(res.oob_proba, c.proba)
    assert res.oob_score == res.oob_scores["class"] == pytest.approx(np.mean(c.prediction[c.covered] ==
                                                                               y["class"][c.covered]))


def test_balanced_draws_from_the_first_class_head():
    y = {"radius": np.array([1.0, np.nan, 2.0, np.nan]), "class": np.array([0, 1, 0, 0])}
    # class counts 3, 1 -> weights 1/3, 1, 1/3, 1/3 -> sum 2
    np.testing.assert_allclose(draw_probabilities("balanced", y, 1), [[1 / 6, 0.5, 1 / 6, 1 / 6]])
    with pytest.raises(ConfigError, match="class target"):
        draw_probabilities("balanced", {"radius": y["radius"]}, 1)
    with pytest.raises(ConfigError, match="class target"):
        draw_probabilities("balanced", {"class": y["class"]}, 1, tasks={"class": "regression"})


def test_regression_ensemble_with_unequal_weights_fails_before_training():
    fitted = []

    class Reg:
        task = "regression"

        def fit(self, X, y):
            fitted.append(1)
            return self

        def predict_mean_var(self, X):
            return np.zeros(len(X)), np.ones(len(X))

    with pytest.raises(ConfigError, match="unweighted"):
        fit_resample_ensemble(Reg, rows(20), np.linspace(0, 1, 20), 2, combine_weights=[1, 2])
    assert fitted == []  # refused before any member trained
    with pytest.raises(ConfigError, match="3 ensemble weights for 2"):
        fit_resample_ensemble(Reg, rows(20), np.linspace(0, 1, 20), 2, combine_weights=[1, 1, 1])
    assert fitted == []
    # a regression-only dict of heads is refused alike; with a class head the weights are for its probabilities
    with pytest.raises(ConfigError, match="unweighted"):
        fit_resample_ensemble(lambda: TwoHeadStub(), rows(20), {"radius": np.ones(20)}, 2, combine_weights=[1, 2])


# ---------------------------------------------------------------------- a real two-head toy
def toy(n=200, seed=0):
    return stars_and_galaxies(n, seed)


def make_two_heads():
    cfg = TrainerConfig(max_epochs=8, batch_size=64, lr=1e-2, patience=None, progress=False, device="cpu",
                        val_fraction=0.0)
    return make_estimator("multi_input_net", {"inputs": ["cols"], "hidden": 16, "dropout": 0.0}, trainer=cfg,
                          heads={"class": {"kind": "categorical"}, "radius": {"kind": "gaussian"}}, standardise=["cols"])


def test_two_head_toy_through_the_resample_ensemble(tmp_path):
    X, y = toy()
    res = fit_resample_ensemble(make_two_heads, X, y, 2, member_weights="balanced", combine_weights=[2, 1], seed=0)
    ens = res.ensemble
    assert ens.head_names == ["class", "radius"] and ens.task == "classification"
    c, r = res.heads["class"], res.heads["radius"]
    assert c.score > 0.9 and r.score < 0.5 and r.scored.sum() <= (y["class"] == 0).sum()
    assert np.isfinite(r.var[r.covered]).all() and (r.sigma_net[r.covered] >= 0).all()
    preds = ens.predict_heads(X)
    assert np.mean(preds["class"].labels == y["class"]) > 0.9
    stars = y["class"] == 0
    assert np.sqrt(np.mean((preds["radius"].mean[stars] - y["radius"][stars]) ** 2)) < 0.5
    # Eq. 1 over the members, unweighted, checked against the members' own Gaussians
    g = [m.predict_heads(X)["radius"] for m in ens.members]
    np.testing.assert_allclose(preds["radius"].mean, (g[0].mean + g[1].mean) / 2)
    np.testing.assert_allclose(preds["radius"].sigma_net, np.abs(g[0].mean - g[1].mean) / 2, atol=1e-12)
    ens.save(tmp_path / "ens")
    back = load_estimator(tmp_path / "ens")
    again = back.predict_heads(X)
    np.testing.assert_allclose(again["radius"].mean, preds["radius"].mean, rtol=1e-6)
    np.testing.assert_allclose(again["class"].proba, preds["class"].proba, rtol=1e-6)


def test_two_head_toy_through_kfold():
    X, y = toy(n=120)
    cv = kfold_ensemble(make_two_heads, X, y, k=2, seed=0)
    assert set(cv.oof_heads) == {"class", "radius"}
    assert isinstance(cv.oof_heads["class"], Categorical) and isinstance(cv.oof_heads["radius"], Gaussian)
    assert np.mean(cv.oof_heads["class"].labels == y["class"]) > 0.8
    np.testing.assert_allclose(cv.oof_proba, cv.oof_heads["class"].proba)
    assert all(f["val_accuracy"] > 0.8 for f in cv.folds)
    assert cv.ensemble.head_names == ["class", "radius"]


def test_a_member_whose_draw_lacks_a_class_is_aligned_on_every_class(tmp_path):
    """Member 1 never draws class 2 (weight 0 on its rows): it knows classes 0 and 1 only, and the ensemble
    still gives three probability columns, class 2 from member 0 alone (weighted), rows summing to one."""
    rng = np.random.default_rng(3)
    n = 240
    yc = np.arange(n) % 3
    X = {"cols": (rng.normal(size=(n, 3)) + 3.0 * np.eye(3)[yc]).astype(np.float32)}
    y = {"class": yc, "radius": np.where(yc == 0, 1.0 + 0.5 * X["cols"][:, 2], np.nan)}
    weights = np.ones((2, n))
    weights[1, yc == 2] = 0.0
    res = fit_resample_ensemble(make_two_heads, X, y, 2, member_weights=weights, combine_weights=[1, 3], seed=0)
    ens = res.ensemble
    assert 2 not in set(y["class"][res.draws[1]].tolist()) and 2 in set(y["class"][res.draws[0]].tolist())
    assert ens.members[1].head_classes["class"].tolist() == [0, 1]
    assert ens.head_classes["class"].tolist() == [0, 1, 2]
    p = ens.predict_heads(X)["class"].proba
    p0 = ens.members[0].predict_heads(X)["class"].proba
    p1 = ens.members[1].predict_heads(X)["class"].proba
    assert p.shape == (n, 3) and p1.shape == (n, 2)
    np.testing.assert_allclose(p[:, 2], 0.25 * p0[:, 2], rtol=1e-6)
    np.testing.assert_allclose(p[:, :2], 0.25 * p0[:, :2] + 0.75 * p1, rtol=1e-6)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert res.heads["class"].proba.shape == (n, 3)
    ens.save(tmp_path / "ens")
    np.testing.assert_allclose(load_estimator(tmp_path / "ens").predict_heads(X)["class"].proba, p, rtol=1e-6)
