"""k-fold ensembles (a fresh model per fold) and the ensemble combination rules (MESCR Eq. 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from astromodal.errors import ConfigError
from astromodal.models.registry import _REGISTRY, register_model
from astromodal.training.crossval import kfold_ensemble
from astromodal.training.ensemble import EnsembleEstimator, combine_gaussians
from astromodal.training.estimator import TorchEstimator, load_estimator, make_estimator
from astromodal.training.trainer import TrainerConfig


def _register(name: str, **kw):
    def deco(obj):
        if name in _REGISTRY:
            return _REGISTRY[name].factory
        return register_model(name, **kw)(obj)

    return deco


@_register("test_cv_mlp", modality="columns", tasks=("classification", "regression"))
class CvMLP(nn.Module):
    inputs = ("columns",)

    def __init__(self, input_shape, n_outputs=1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, n_outputs))

    def forward(self, columns):
        return self.net(columns)


@_register("test_cv_logreg", modality="columns", family="classical")
def cv_logreg(random_state: int = 0):
    return LogisticRegression(max_iter=500, random_state=random_state)


TRAIN = TrainerConfig(max_epochs=8, batch_size=32, lr=1e-2, patience=None, progress=False, device="cpu")


def blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = np.array([[2.0, 0, 0], [-2.0, 2, 0], [0.0, -2, 1]])[y] + 0.5 * rng.standard_normal((n, 3))
    return x.astype(np.float32), y


# ---------------------------------------------------------------------- combination rules
class Fixed:
    """A stand-in fitted member with fixed outputs."""

    def __init__(self, task, proba=None, classes=None, mu=None, s2=None):
        self.task, self.proba, self.classes_, self.mu, self.s2 = task, proba, classes, mu, s2

    def predict_proba(self, X):
        return np.asarray(self.proba)

    def predict_mean_var(self, X):
        return np.asarray(self.mu, float), np.asarray(self.s2, float)


def test_mescr_eq1_with_hand_numbers():
    a = Fixed("regression", mu=[1.0, 2.0], s2=[0.5, 1.0])
    b = Fixed("regression", mu=[3.0, 2.0], s2=[1.5, 1.0])
    mu, s2, spread = EnsembleEstimator([a, b]).predict_dist(None)
    # mu = (1+3)/2 = 2 ; s2 = ((0.5+1) + (1.5+9))/2 - 4 = 2 ; sigma_net = std(1, 3) = 1
    # second object: mu = 2 ; s2 = ((1+4) + (1+4))/2 - 4 = 1 ; sigma_net = 0
    np.testing.assert_allclose(mu, [2.0, 2.0])
    np.testing.assert_allclose(s2, [2.0, 1.0])
    np.testing.assert_allclose(spread, [1.0, 0.0])
    np.testing.assert_allclose(EnsembleEstimator([a, b]).predict(None), [2.0, 2.0])


def test_gaussian_combination_is_unweighted_hand_numbers():
    # MESCR Eq. 1 over three members, each counted once: mu = (0 + 2 + 4)/3 = 2
    # s2 = ((1+0) + (1+4) + (2+16))/3 - 4 = 8 - 4 = 4 ; sigma_net^2 = (4 + 0 + 4)/3 = 8/3
    mu, s2, spread = combine_gaussians(np.array([[0.0], [2.0], [4.0]]), np.array([[1.0], [1.0], [2.0]]))
    assert mu[0] == pytest.approx(2.0) and s2[0] == pytest.approx(4.0) and spread[0] == pytest.approx(np.sqrt(8 / 3))
    # class weights never reach the Gaussian combination: a regression ensemble refuses unequal weights
    a = Fixed("regression", mu=[1.0], s2=[0.5])
    b = Fixed("regression", mu=[3.0], s2=[1.5])
    with pytest.raises(ConfigError, match="unweighted"):
        EnsembleEstimator([a, b], weights=[0.1, 0.2])
    np.testing.assert_allclose(EnsembleEstimator([a, b], weights=[2, 2]).predict_dist(None)[1], [2.0])


def test_weighted_probabilities_and_class_alignment():
    a = Fixed("classification", proba=[[0.8, 0.2]], classes=np.array([0, 1]))
    b = Fixed("classification", proba=[[0.4, 0.6]], classes=np.array([0, 1]))
    ens = EnsembleEstimator([a, b], weights=[3, 1])
    np.testing.assert_allclose(ens.weights, [0.75, 0.25])
    np.testing.assert_allclose(ens.predict_proba(None), [[0.7, 0.3]])  # 0.75*0.8 + 0.25*0.4 = 0.7
    assert ens.predict(None).tolist() == [0]
    c = Fixed("classification", proba=[[0.5, 0.5]], classes=np.array([0, 2]))
    aligned = EnsembleEstimator([a, c])
    assert aligned.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(aligned.predict_proba(None), [[0.65, 0.1, 0.25]])
    with pytest.raises(ConfigError, match="weights"):
        EnsembleEstimator([a, b], weights=[1, -1])
    with pytest.raises(ConfigError, match="mix tasks"):
        EnsembleEstimator([a, Fixed("regression")])


# ---------------------------------------------------------------------- k-fold
def test_kfold_ensemble_fresh_models_with_fold_metrics(tmp_path):
    x, y = blobs()
    made = []

    def make():
        est = TorchEstimator("test_cv_mlp", {}, TRAIN.model_copy(update={"checkpoint_dir": str(tmp_path / "ck")}))
        made.append(est)
        return est

    cv = kfold_ensemble(make, {"columns": x}, y, k=3, seed=0)
    assert len(cv.members) == 3 and len({id(m) for m in cv.members}) == 3
    assert len({id(m.model) for m in cv.members}) == 3
    states = [m.model.state_dict()["net.0.weight"] for m in cv.members]
    assert not torch.equal(states[0], states[1]) and not torch.equal(states[1], states[2])
    assert [m.trainer.seed for m in cv.members] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["fold-00", "fold-01", "fold-02"]
    assert [f["n_val"] for f in cv.folds] == [50, 50, 50] and sum(f["n_train"] for f in cv.folds) == 300
    for f, m in zip(cv.folds, cv.members, strict=True):
        assert f["train_loss"] > 0 and f["val_loss"] > 0 and f["val_accuracy"] > 0.85
        assert f["val_loss"] == pytest.approx(min(h["val_loss"] for h in m.history))
    assert np.mean(cv.oof_prediction == y) > 0.85
    summary = cv.summary()
    assert summary["val_accuracy"]["mean"] == pytest.approx(np.mean([f["val_accuracy"] for f in cv.folds]))
    json.dumps(cv.folds)  # plain JSON for the benchmark records
    xt, yt = blobs(60, seed=5)
    mean_proba = np.mean([m.predict_proba({"columns": xt}) for m in cv.members], axis=0)
    np.testing.assert_allclose(cv.ensemble.predict_proba({"columns": xt}), mean_proba, rtol=1e-12)
    assert np.mean(cv.ensemble.predict({"columns": xt}) == yt) > 0.9
    assert cv.ensemble.n_parameters == 3 * (3 * 8 + 8 + 8 * 3 + 3)
    assert cv.ensemble.member_parameters == 3 * 8 + 8 + 8 * 3 + 3


def test_reused_estimator_object_is_refused():
    x, y = blobs()
    one = make_estimator("test_cv_logreg")
    with pytest.raises(ConfigError, match="fresh"):
        kfold_ensemble(lambda: one, x, y, k=3)


def test_ensemble_save_load_round_trip(tmp_path):
    x, y = blobs()
    cv = kfold_ensemble(lambda: make_estimator("test_cv_mlp", trainer=TRAIN), {"columns": x}, y, k=3, seed=1)
    cv.ensemble.save(tmp_path / "ens")
    meta = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert meta["members"] == ["member-00", "member-01", "member-02"] and meta["weights"] == pytest.approx([1 / 3] * 3)
    back = load_estimator(tmp_path / "ens")
    assert isinstance(back, EnsembleEstimator) and back.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(back.predict_proba({"columns": x}), cv.ensemble.predict_proba({"columns": x}),
                               rtol=1e-6)


def test_sklearn_folds_and_regression_folds(tmp_path):
    x, y = blobs()
    cv = kfold_ensemble(lambda: make_estimator("test_cv_logreg"), x, y, k=3)
    assert all(f["train_loss"] is None and f["val_accuracy"] > 0.85 for f in cv.folds)
    cv.ensemble.save(tmp_path / "sk")
    with pytest.raises(ConfigError, match="trust"):
        load_estimator(tmp_path / "sk")
    yr = (x[:, 0] - 0.5 * x[:, 1]).astype(np.float64)
    reg = TRAIN.model_copy(update={"max_epochs": 30})
    cvr = kfold_ensemble(lambda: make_estimator("test_cv_mlp", trainer=reg, task="regression"),
                         {"columns": x}, yr, k=3, stratified=False)
    assert all(f["val_rmse"] < 0.6 for f in cvr.folds) and "val_accuracy" not in cvr.folds[0]  # target std 2.2
    for f, m in zip(cvr.folds, cvr.members, strict=True):
        # the kept (best) weights score the fold exactly as the history says; the history's losses are in
        # the standardised target units of that fold's training part
        assert f["val_rmse"] ** 2 == pytest.approx(f["val_loss"] * m.target_norm["std"] ** 2, rel=1e-4)
    mu, s2, spread = cvr.ensemble.predict_dist({"columns": x})
    members = np.stack([m.predict({"columns": x}) for m in cvr.members])
    np.testing.assert_allclose(mu, members.mean(0), rtol=1e-9)
    np.testing.assert_allclose(spread, members.std(0), rtol=1e-6, atol=1e-9)
    assert np.isnan(s2).all() and not cvr.ensemble.gives_variance  # MSE members: no variance head, s2 unknown
    np.testing.assert_allclose(cvr.ensemble.predict_mean_var({"columns": x})[0], mu)


def test_oof_probabilities_and_saved_threshold(tmp_path):
    from astromodal.evaluation.metrics import best_threshold

    x, y3 = blobs()
    y = (y3 == 2).astype(int)  # binary, imbalanced 2:1
    cv = kfold_ensemble(lambda: make_estimator("test_cv_logreg"), x, y, k=3, seed=0)
    assert cv.oof_proba.shape == (len(y), 2)
    np.testing.assert_allclose(cv.oof_proba.sum(axis=1), 1.0)
    # each object's out-of-fold probability comes from the one fold model that did not see it
    from astromodal.data.splits import kfold_indices

    for m, (_, va) in zip(cv.members, kfold_indices(len(y), 3, y, 0), strict=True):
        np.testing.assert_allclose(cv.oof_proba[va], m.predict_proba(x[va]))
    thr = best_threshold(y, cv.oof_proba[:, 1])
    cv.ensemble.set_threshold(thr)
    p1 = cv.ensemble.predict_proba(x)[:, 1]
    assert cv.ensemble.predict(x).tolist() == (p1 >= thr).astype(int).tolist()
    cv.ensemble.save(tmp_path / "ens")
    assert json.loads((tmp_path / "ens" / "ensemble.json").read_text())["threshold"] == pytest.approx(thr)
    assert load_estimator(tmp_path / "ens", trust=True).threshold == pytest.approx(thr)
    with pytest.raises(ConfigError, match="binary"):
        kfold_ensemble(lambda: make_estimator("test_cv_logreg"), x, y3, k=3).ensemble.set_threshold(0.3)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        cv.ensemble.set_threshold(1.5)


def test_ensemble_of_members_without_probabilities_votes():
    class Voter:
        task = "classification"

        def __init__(self, labels):
            self.classes_ = np.array([0, 1, 2])
            self.labels = np.asarray(labels)

        def predict(self, X):
            return self.labels

        def predict_proba(self, X):
            raise NotImplementedError("no probabilities")

    ens = EnsembleEstimator([Voter([0, 1, 2]), Voter([0, 2, 2]), Voter([1, 2, 0])])
    np.testing.assert_allclose(ens.votes(None), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3], [1 / 3, 0, 2 / 3]])
    assert ens.predict(None).tolist() == [0, 2, 2]
    weighted = EnsembleEstimator([Voter([0, 1, 2]), Voter([1, 1, 0])], weights=[3, 1])
    assert weighted.predict(None).tolist() == [0, 1, 2]
