"""The estimator front: neural and scikit-learn models fitted, applied, saved and loaded alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.models.registry import _REGISTRY, register_model
from astromodal.training.estimator import (
    Estimator,
    SklearnEstimator,
    TorchEstimator,
    load_estimator,
    make_estimator,
)
from astromodal.training.trainer import TrainerConfig


def _register(name: str, **kw):
    def deco(obj):
        if name in _REGISTRY:
            return _REGISTRY[name].factory
        return register_model(name, **kw)(obj)

    return deco


@_register("test_est_mlp", modality="columns", tasks=("classification", "regression"))
class EstMLP(nn.Module):
    inputs = ("columns",)

    def __init__(self, input_shape, n_outputs=1, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))

    def forward(self, columns):
        return self.net(columns)


@_register("test_est_spec_ctx", modality="spectrum")
class EstSpecCtx(nn.Module):
    inputs = ("spectrum", "context")

    def __init__(self, input_shape, n_outputs=1):
        super().__init__()
        self.spec = nn.Linear(input_shape[0], 8)
        self.ctx = nn.Linear(2, 8)
        self.head = nn.Linear(16, n_outputs)

    def forward(self, spectrum, context):
        return self.head(torch.relu(torch.cat([self.spec(spectrum), self.ctx(context)], dim=1)))


@_register("test_est_logreg", modality="columns", family="classical")
def est_logreg(C: float = 1.0, random_state: int = 0):
    return LogisticRegression(C=C, max_iter=500, random_state=random_state)


def blobs(n=240, seed=0, labels=("star", "galaxy", "qso")):
    rng = np.random.default_rng(seed)
    codes = np.arange(n) % len(labels)
    centres = np.array([[2.0, 0, 0], [-2.0, 2, 0], [0.0, -2, 1]])[: len(labels)]
    x = (centres[codes] + 0.5 * rng.standard_normal((n, 3))) * [1.0, 10.0, 0.1] + [0.0, 100.0, -5.0]
    return x.astype(np.float32), np.asarray(labels)[codes]


TRAIN = TrainerConfig(max_epochs=12, batch_size=32, lr=1e-2, patience=None, progress=False, device="cpu")


def test_torch_estimator_multiclass_with_labels_and_normalisation():
    x, y = blobs()
    xv, yv = blobs(60, seed=1)
    est = TorchEstimator("test_est_mlp", {"hidden": 16}, TRAIN)
    assert est.fit({"columns": x}, y, {"columns": xv}, yv) is est
    assert isinstance(est, Estimator)
    assert est.classes_.tolist() == ["galaxy", "qso", "star"] and est.n_outputs == 3
    # standardisation fitted on the training objects only (not on the validation set)
    np.testing.assert_allclose(est.norm["columns"]["mean"], x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(est.norm["columns"]["std"], x.astype(np.float64).std(0), rtol=1e-6)
    proba = est.predict_proba({"columns": xv})
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    pred = est.predict({"columns": xv})
    assert pred.dtype.kind == "U" and np.mean(pred == yv) > 0.9
    assert est.predict_proba({"columns": xv[:0]}).shape == (0, 3)  # an empty chunk of a catalogue
    assert est.n_parameters == 3 * 16 + 16 + 16 * 3 + 3
    assert len(est.history) == 12 and est.history[0]["val_accuracy"] is not None
    # a bare array goes to the model's first input
    np.testing.assert_allclose(est.predict_proba(xv), proba)


def test_binary_uses_one_logit_and_sigmoid():
    x, y = blobs(labels=("a", "b"))
    est = TorchEstimator("test_est_mlp", {}, TRAIN.model_copy(update={"class_weight": "balanced"})).fit(
        {"columns": x}, y)
    assert est.n_outputs == 1 and est.result.loss == "bce_logits"
    logits = est.decision_function({"columns": x[:10]})
    proba = est.predict_proba({"columns": x[:10]})
    p = 1.0 / (1.0 + np.exp(-logits[:, 0].astype(np.float64)))
    np.testing.assert_allclose(proba[:, 1], p, rtol=1e-5)
    np.testing.assert_allclose(proba[:, 0], 1 - p, rtol=1e-5)
    assert np.mean(est.predict({"columns": x}) == y) > 0.9


def test_gaussian_regression_learns_the_noise_level():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (600, 3)).astype(np.float32)
    y = (2.0 * x[:, 0] - x[:, 1] + 0.3 * rng.standard_normal(600)).astype(np.float64)
    cfg = TRAIN.model_copy(update={"loss": "gaussian_nll", "max_epochs": 30, "batch_size": 64, "lr": 2e-2})
    est = TorchEstimator("test_est_mlp", {"hidden": 32}, cfg, task="regression").fit({"columns": x}, y)
    assert est.n_outputs == 2
    mu, var = est.predict_mean_var({"columns": x})
    assert np.sqrt(np.mean((mu - y) ** 2)) < 0.4
    assert 0.2 < np.sqrt(np.median(var)) < 0.45  # the true scatter is 0.3
    np.testing.assert_allclose(est.predict({"columns": x}), mu)
    with pytest.raises(NotImplementedError):
        est.predict_proba({"columns": x})


def test_two_inputs_context_is_standardised_and_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    n, L = 200, 20
    y = np.arange(n) % 2
    spec = rng.standard_normal((n, L)).astype(np.float32) + y[:, None] * 0.8
    ctx = np.stack([1e-17 * (1 + y + rng.random(n)), 1e-18 * rng.random(n)], axis=1)  # raw flux extremes, W m^-2 nm^-1
    X = {"spectrum": spec, "context": ctx}
    est = TorchEstimator("test_est_spec_ctx", {}, TRAIN).fit(X, y)
    assert set(est.norm) == {"context"} and est.input_shapes == {"spectrum": [L], "context": [2]}
    np.testing.assert_allclose(est.norm["context"]["mean"], ctx.mean(0), rtol=1e-6)
    assert np.mean(est.predict(X) == y) > 0.9
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["kind"] == "torch" and meta["n_outputs"] == 1 and meta["classes"] == [0, 1]
    assert meta["trainer"]["max_epochs"] == 12
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)  # a plain state_dict
    assert set(state) == set(est.model.state_dict())
    back = load_estimator(tmp_path / "m")
    assert isinstance(back, TorchEstimator) and back.classes_.tolist() == [0, 1]
    np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X), rtol=1e-6)
    with pytest.raises(BadValueError, match="spectrum"):
        back.predict({"spectrum": spec[:, :10], "context": ctx})
    with pytest.raises(BadValueError, match="context"):
        back.predict({"spectrum": spec})


def test_seeded_estimators_are_repeatable():
    x, y = blobs()
    a = TorchEstimator("test_est_mlp", {}, TRAIN.model_copy(update={"max_epochs": 3})).fit({"columns": x}, y)
    b = TorchEstimator("test_est_mlp", {}, TRAIN.model_copy(update={"max_epochs": 3})).fit({"columns": x}, y)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_sklearn_estimator_scaler_on_train_only_and_trusted_load(tmp_path):
    x, y = blobs()
    xv, yv = blobs(60, seed=1)
    spec = np.tile(x[:, :1], (1, 4))
    X = {"spectrum": spec, "columns": x}
    est = make_estimator("test_est_logreg", {"C": 2.0})
    assert isinstance(est, SklearnEstimator)
    est.fit(X, y)
    assert est.layout == [("spectrum", [4]), ("columns", [3])]
    scaler = est.pipeline.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, np.concatenate([spec, x], axis=1).mean(0), rtol=1e-5)
    Xv = {"spectrum": np.tile(xv[:, :1], (1, 4)), "columns": xv}
    proba = est.predict_proba(Xv)
    assert proba.shape == (60, 3) and np.mean(est.predict(Xv) == yv) > 0.9
    assert est.predict_proba({k: v[:0] for k, v in Xv.items()}).shape == (0, 3)
    est.save(tmp_path / "sk")
    meta = json.loads((tmp_path / "sk" / "model.json").read_text())
    assert meta["trusted_pickle"] is True and meta["options"] == {"C": 2.0}
    with pytest.raises(ConfigError, match="trust=True"):
        load_estimator(tmp_path / "sk")
    back = load_estimator(tmp_path / "sk", trust=True)
    np.testing.assert_allclose(back.predict_proba(Xv), proba)
    with pytest.raises(BadValueError, match="do not match"):
        back.predict({"columns": xv})


def test_make_estimator_picks_by_family_and_errors():
    est = make_estimator("test_est_mlp", {"hidden": 4}, trainer={"max_epochs": 2}, task="regression")
    assert isinstance(est, TorchEstimator) and est.trainer.max_epochs == 2 and est.task == "regression"
    with pytest.raises(ConfigError, match="unknown key 'epochs'"):
        make_estimator("test_est_mlp", trainer={"epochs": 2})
    with pytest.raises(ConfigError, match="task"):
        make_estimator("test_est_mlp", task="clustering")
    with pytest.raises(ConfigError, match="unknown model"):
        make_estimator("no_such_model_xyz")
    with pytest.raises(ConfigError, match="not fitted"):
        TorchEstimator("test_est_mlp").predict(np.zeros((2, 3), np.float32))
