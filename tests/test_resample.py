"""Resample (bagging) ensembles: weighted draws, out-of-bag predictions, the combination rules, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.errors import ConfigError
from astromodal.training.ensemble import EnsembleEstimator, draw_probabilities, fit_resample_ensemble
from astromodal.training.estimator import load_estimator, make_estimator
from astromodal.training.trainer import TrainerConfig


class Stub:
    """A member that remembers the rows it trained on and was asked about; X is the row index (N, 1)."""

    def __init__(self, task="classification", proba=None, mu=None, s2=None):
        self.task, self.proba, self.mu, self.s2 = task, proba, mu, s2
        self.trained_rows: np.ndarray | None = None
        self.asked: list[np.ndarray] = []

    def fit(self, X, y):
        self.trained_rows = np.asarray(X)[:, 0].astype(int)
        if self.task == "classification":
            self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        self.asked.append(np.asarray(X)[:, 0].astype(int))
        return np.tile(self.proba, (len(X), 1))

    def predict_mean_var(self, X):
        self.asked.append(np.asarray(X)[:, 0].astype(int))
        return np.full(len(X), self.mu), np.full(len(X), self.s2)


def rows(n):
    return np.arange(n, dtype=float)[:, None]


# ---------------------------------------------------------------------- draw probabilities
def test_draw_probabilities_hand_values():
    y = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(draw_probabilities(None, y, 2), np.full((2, 4), 0.25))
    np.testing.assert_allclose(draw_probabilities("uniform", y, 1), [[0.25] * 4])
    # 1/f: weights 1/3, 1/3, 1/3, 1 -> sum 2 -> 1/6, 1/6, 1/6, 1/2
    np.testing.assert_allclose(draw_probabilities("balanced", y, 1), [[1 / 6, 1 / 6, 1 / 6, 0.5]])
    np.testing.assert_allclose(draw_probabilities([1, 1, 2, 0], y, 2), [[0.25, 0.25, 0.5, 0.0]] * 2)
    per_member = draw_probabilities([[1, 0, 0, 0], [1, 1, 1, 1]], y, 2)
    np.testing.assert_allclose(per_member, [[1, 0, 0, 0], [0.25] * 4])
    with pytest.raises(ConfigError, match="shape"):
        draw_probabilities([1, 2], y, 2)
    with pytest.raises(ConfigError, match="non-negative"):
        draw_probabilities([1, -1, 1, 1], y, 1)
    with pytest.raises(ConfigError, match="class target"):
        draw_probabilities("balanced", np.array([0.5, 1.5]), 1)
    with pytest.raises(ConfigError, match="member_weights 'squared'"):
        draw_probabilities("squared", y, 1)


def test_balanced_draws_follow_the_weights():
    y = np.array([0] * 900 + [1] * 100)  # 90 / 10
    res = fit_resample_ensemble(lambda: Stub(proba=[0.5, 0.5]), rows(1000), y, n_members=4,
                                member_weights="balanced", seed=1)
    for draw, member in zip(res.draws, res.members, strict=True):
        assert len(draw) == 1000
        np.testing.assert_array_equal(member.trained_rows, draw)  # each member trained on its draw
        assert 0.45 < np.mean(y[draw] == 1) < 0.55  # ~50/50 instead of 90/10
    uniform = fit_resample_ensemble(lambda: Stub(proba=[0.5, 0.5]), rows(1000), y, n_members=2, seed=1)
    assert all(0.07 < np.mean(y[d] == 1) < 0.13 for d in uniform.draws)


def test_draws_are_seeded():
    y = np.arange(50) % 2
    a = fit_resample_ensemble(lambda: Stub(proba=[1, 0]), rows(50), y, 3, seed=7)
    b = fit_resample_ensemble(lambda: Stub(proba=[1, 0]), rows(50), y, 3, seed=7)
    c = fit_resample_ensemble(lambda: Stub(proba=[1, 0]), rows(50), y, 3, seed=8)
    assert all(np.array_equal(p, q) for p, q in zip(a.draws, b.draws, strict=True))
    assert not np.array_equal(a.draws[0], c.draws[0])
    assert not np.array_equal(a.draws[0], a.draws[1])  # members draw independently


# ---------------------------------------------------------------------- out of bag
def test_oob_predictions_cover_only_out_of_bag_rows_classification():
    n = 40
    y = np.arange(n) % 2
    probas = iter([[1.0, 0.0], [0.0, 1.0]])
    res = fit_resample_ensemble(lambda: Stub(proba=next(probas)), rows(n), y, 2, combine_weights=[3, 1], seed=0)
    for m, member in enumerate(res.members):
        oob = res.oob[m]
        assert not np.isin(oob, member.trained_rows).any()
        np.testing.assert_array_equal(np.union1d(oob, member.trained_rows), np.arange(n))
        np.testing.assert_array_equal(member.asked[0], oob)  # predicted on exactly its OOB rows
        assert res.oob_members[m]["proba"].shape == (len(oob), 2)
    in0 = np.isin(np.arange(n), res.oob[0])
    in1 = np.isin(np.arange(n), res.oob[1])
    # weights 3:1 -> rows OOB for both members: 0.75 * [1, 0] + 0.25 * [0, 1]
    np.testing.assert_allclose(res.oob_proba[in0 & in1], [[0.75, 0.25]] * int((in0 & in1).sum()))
    np.testing.assert_allclose(res.oob_proba[in0 & ~in1], [[1.0, 0.0]] * int((in0 & ~in1).sum()))
    np.testing.assert_allclose(res.oob_proba[~in0 & in1], [[0.0, 1.0]] * int((~in0 & in1).sum()))
    assert np.isnan(res.oob_proba[~in0 & ~in1]).all()
    np.testing.assert_array_equal(res.oob_covered, in0 | in1)
    pred = np.where(in0, 0, 1)[res.oob_covered]  # member 0 says class 0 wherever it has a say
    assert res.oob_score == pytest.approx(np.mean(pred == y[res.oob_covered]))
    # the full ensemble: the weighted mean of the member probabilities
    np.testing.assert_allclose(res.ensemble.predict_proba(rows(2)), [[0.75, 0.25]] * 2)


def test_oob_and_ensemble_gaussians_are_unweighted_eq1():
    n = 40
    y = np.linspace(0, 4, n)
    params = iter([(1.0, 0.5), (3.0, 1.5)])

    def make():
        mu, s2 = next(params)
        return Stub("regression", mu=mu, s2=s2)

    res = fit_resample_ensemble(make, rows(n), y, 2, seed=3)
    # Eq. 1 by hand: mu = (1 + 3)/2 = 2 ; s2 = ((0.5 + 1) + (1.5 + 9))/2 - 4 = 2 ; sigma_net = std(1, 3) = 1
    mu, s2, net = res.ensemble.predict_dist(rows(3))
    np.testing.assert_allclose(mu, [2.0] * 3)
    np.testing.assert_allclose(s2, [2.0] * 3)
    np.testing.assert_allclose(net, [1.0] * 3)
    in0 = np.isin(np.arange(n), res.oob[0])
    in1 = np.isin(np.arange(n), res.oob[1])
    both, only0 = in0 & in1, in0 & ~in1
    assert both.any() and only0.any()
    np.testing.assert_allclose(res.oob_prediction[both], 2.0)
    np.testing.assert_allclose(res.oob_var[both], 2.0)
    np.testing.assert_allclose(res.oob_sigma_net[both], 1.0)
    np.testing.assert_allclose(res.oob_prediction[only0], 1.0)  # one member: its own Gaussian
    np.testing.assert_allclose(res.oob_var[only0], 0.5)
    np.testing.assert_allclose(res.oob_sigma_net[only0], 0.0)
    assert np.isnan(res.oob_prediction[~(in0 | in1)]).all()
    cov = res.oob_covered
    assert res.oob_score == pytest.approx(np.sqrt(np.mean((res.oob_prediction[cov] - y[cov]) ** 2)))
    # combine weights are for class probabilities: a regression ensemble refuses them
    with pytest.raises(ConfigError, match="unweighted"):
        fit_resample_ensemble(lambda: Stub("regression", mu=1.0, s2=1.0), rows(n), y, 2, combine_weights=[1, 2])


def test_fresh_members_and_neural_settings_per_member(tmp_path):
    one = Stub(proba=[1, 0])
    with pytest.raises(ConfigError, match="fresh"):
        fit_resample_ensemble(lambda: one, rows(10), np.arange(10) % 2, 2)
    with pytest.raises(ConfigError, match="n_members"):
        fit_resample_ensemble(lambda: Stub(proba=[1, 0]), rows(10), np.arange(10) % 2, 0)

    class WithTrainer(Stub):
        def __init__(self):
            super().__init__(proba=[1, 0])
            self.trainer = TrainerConfig(seed=5, checkpoint_dir=str(tmp_path / "ck"))

    res = fit_resample_ensemble(WithTrainer, rows(10), np.arange(10) % 2, 2)
    assert [m.trainer.seed for m in res.members] == [5, 6]
    assert [m.trainer.checkpoint_dir for m in res.members] == [str(tmp_path / "ck" / f"member-{i:02d}") for i in (0, 1)]


def test_resample_ensemble_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    X = rng.normal(size=(120, 4)) + 3.0 * np.eye(3, 4)[y]
    res = fit_resample_ensemble(lambda: make_estimator("logistic_regression", {}, task="classification"), X, y, 3,
                                member_weights="balanced", combine_weights=[1, 2, 1], seed=0)
    assert res.oob_score > 0.8
    res.ensemble.save(tmp_path / "ens")
    back = load_estimator(tmp_path / "ens", trust=True)
    assert isinstance(back, EnsembleEstimator) and len(back.members) == 3
    np.testing.assert_allclose(back.weights, [0.25, 0.5, 0.25])
    np.testing.assert_allclose(back.predict_proba(X[:10]), res.ensemble.predict_proba(X[:10]))


def test_rows_out_of_bag_only_for_zero_weight_members_are_not_scored():
    from astromodal.training.ensemble import fit_resample_ensemble
    from astromodal.training.estimator import make_estimator

    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    X = rng.normal(size=(60, 3)) + y[:, None]
    r = fit_resample_ensemble(lambda: make_estimator("logistic_regression"), X, y, 3, combine_weights=[1, 0, 0],
                              seed=0)
    assert not np.isnan(r.oob_proba[r.oob_covered]).any()  # no 0/0 probabilities among the scored rows
    assert r.oob_covered.sum() <= len(r.oob[0])  # only member 0 votes
