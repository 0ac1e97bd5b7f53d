"""Estimators with several heads (class + radius), per-band standardisation of named inputs, per-head
scikit-learn pipelines, embeddings (transform), and folders saved before heads existed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.models.registry import MODELS, register_model
from astromodal.training.estimator import SklearnEstimator, TorchEstimator, load_estimator, make_estimator
from astromodal.training.predictions import Categorical, Embedding, Gaussian
from astromodal.training.trainer import TrainerConfig

FAST = TrainerConfig(max_epochs=6, batch_size=64, lr=1e-2, patience=None, progress=False, device="cpu",
                     val_fraction=0.0)


def stars_and_galaxies(n=200, seed=0):
    """Columns (N, 3): class 0 (star) / 1 (galaxy) separated in c0-c1; a radius linear in c2 for stars only."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = (rng.normal(size=(n, 3)) + 2.5 * np.eye(2, 3)[y]).astype(np.float32)
    radius = np.where(y == 0, 3.0 + 0.5 * X[:, 2] + 0.05 * rng.normal(size=n), np.nan)
    return {"cols": X}, {"class": y, "radius": radius}


def two_heads(**trainer):
    cfg = FAST.model_copy(update=trainer)
    return make_estimator("multi_input_net", {"inputs": ["cols"], "hidden": 16, "dropout": 0.0}, trainer=cfg,
                          heads={"class": {}, "radius": {"kind": "gaussian"}}, standardise=["cols"])


@pytest.fixture()
def toy_model():
    """A tiny model reading an image (N, 2, 4, 4) and columns (N, 3), returning one tensor."""

    class Toy(nn.Module):
        inputs = ("img", "cols")

        def __init__(self, input_shape, n_outputs=1):
            super().__init__()
            self.lin = nn.Linear(2 * 16 + 3, n_outputs)

        def forward(self, img, cols):
            return self.lin(torch.cat([img.flatten(1), cols], dim=1))

    register_model("test_heads_toy", modality="multimodal", tasks=("classification", "regression"))(Toy)
    yield "test_heads_toy"
    MODELS.unregister("test_heads_toy")


# ---------------------------------------------------------------------- torch, two heads
def test_two_heads_predict_per_head_and_round_trip(tmp_path):
    X, y = stars_and_galaxies()
    est = two_heads().fit(X, y)
    assert est.head_names == ["class", "radius"] and est.task == "classification"
    assert est.n_outputs == {"class": 1, "radius": 2}  # binary logit + Gaussian (mean, raw variance)
    # the radius head's standardisation uses the stars only (galaxies have none)
    stars = y["radius"][~np.isnan(y["radius"])]
    assert est.heads["radius"].mean_ == pytest.approx(stars.mean()) and est.heads["radius"].std_ == pytest.approx(stars.std())
    preds = est.predict_heads(X)
    c, r = preds["class"], preds["radius"]
    assert isinstance(c, Categorical) and isinstance(r, Gaussian) and c.classes.tolist() == [0, 1]
    assert np.isfinite(r.mean).all() and r.has_variance
    assert np.mean(c.labels == y["class"]) > 0.9
    # the single-head conveniences read the first head
    np.testing.assert_allclose(est.predict_proba(X), c.proba)
    np.testing.assert_array_equal(est.predict(X), c.labels)
    assert est.classes_.tolist() == [0, 1]
    assert {"train_loss_class", "train_loss_radius"} <= set(est.history[-1])
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert [h["name"] for h in meta["heads"]] == ["class", "radius"] and meta["heads"][1]["kind"] == "gaussian"
    back = load_estimator(tmp_path / "m")
    assert back.head_names == ["class", "radius"]
    again = back.predict_heads(X)
    np.testing.assert_allclose(again["class"].proba, c.proba, rtol=1e-6)
    np.testing.assert_allclose(again["radius"].mean, r.mean, rtol=1e-6)
    np.testing.assert_allclose(again["radius"].var, r.var, rtol=1e-6)


def test_a_missing_radius_contributes_nothing():
    # one full batch, the class head weighted 0: the update comes from the stars' radii alone, so the
    # galaxies' inputs (shuffled among them: same column statistics) leave every prediction unchanged
    X, y = stars_and_galaxies(n=80)
    gal = np.flatnonzero(y["class"] == 1)
    X_perm = {"cols": X["cols"].copy()}
    X_perm["cols"][gal] = X["cols"][np.random.default_rng(1).permutation(gal)]
    heads = {"class": {"kind": "binary", "weight": 0.0}, "radius": {"kind": "gaussian"}}

    def fit(Xf, yf):
        return make_estimator("multi_input_net", {"inputs": ["cols"], "hidden": 8, "dropout": 0.0},
                              trainer=FAST.model_copy(update={"batch_size": 80, "max_epochs": 3}), heads=heads,
                              standardise=["cols"]).fit(Xf, yf)

    a = fit(X, y).predict_heads(X)["radius"]
    b = fit(X_perm, y).predict_heads(X)["radius"]
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
    # control: a radius given to the galaxies does change the fit
    filled = {**y, "radius": np.where(np.isnan(y["radius"]), 0.0, y["radius"])}
    c = fit(X, filled).predict_heads(X)["radius"]
    assert np.abs(c.mean - a.mean).max() > 1e-3


def test_heads_errors_name_the_target():
    X, y = stars_and_galaxies(n=40)
    with pytest.raises(BadValueError, match="missing"):
        two_heads().fit(X, {"class": y["class"]})
    with pytest.raises(BadValueError, match="dict"):
        two_heads().fit(X, y["class"])
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        make_estimator("multi_input_net", {"inputs": ["cols"]}, trainer=FAST,
                       heads={"class": {"kind": "categorical", "colour": 1}}).fit(X, y["class"])


def test_one_head_given_as_a_dict_uses_the_heads_path_and_a_plain_array_the_legacy_one():
    X, y = stars_and_galaxies(n=60)
    cfg = FAST.model_copy(update={"loss": "gaussian_nll"})
    stars = ~np.isnan(y["radius"])
    Xs = {"cols": X["cols"][stars]}
    legacy = make_estimator("multi_input_net", {"inputs": ["cols"], "hidden": 8}, trainer=cfg, task="regression",
                            target_name="radius").fit(Xs, y["radius"][stars])
    assert legacy.heads == {} and legacy.n_outputs == 2 and legacy.head_names == ["radius"]
    (name, pred), = legacy.predict_heads(Xs).items()
    mean, var = legacy.predict_mean_var(Xs)
    assert name == "radius" and np.array_equal(pred.mean, mean) and np.array_equal(pred.var, var)
    one = make_estimator("multi_input_net", {"inputs": ["cols"], "hidden": 8}, trainer=cfg, task="regression").fit(
        X, {"radius": y["radius"]})  # NaN rows masked; the default kind follows the trainer loss
    assert one.heads["radius"].kind == "gaussian" and one.n_outputs == 2 and one.gives_variance
    np.testing.assert_allclose(one.predict_mean_var(X)[0], one.predict_heads(X)["radius"].mean)


# ---------------------------------------------------------------------- named inputs: per band, per feature
def test_images_standardised_per_band_columns_per_feature(toy_model):
    rng = np.random.default_rng(0)
    n = 50
    img = np.stack([rng.normal(10.0, 2.0, (n, 4, 4)), rng.normal(-3.0, 0.5, (n, 4, 4))], axis=1).astype(np.float32)
    cols = (rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 100.0, -5.0]).astype(np.float32)
    y = np.arange(n) % 2
    est = make_estimator(toy_model, {}, trainer=FAST.model_copy(update={"max_epochs": 1}),
                         standardise=["img", "cols"]).fit({"img": img, "cols": cols}, y)
    band = est.norm["img"]
    assert len(band["mean"]) == 2  # one number per band, not per pixel
    for b in range(2):
        assert band["mean"][b] == pytest.approx(img[:, b].astype(np.float64).mean())
        assert band["std"][b] == pytest.approx(img[:, b].astype(np.float64).std())
    x = est._tensors({"img": img, "cols": cols})
    np.testing.assert_allclose(x["img"].numpy().mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(x["img"].numpy().std(axis=(0, 2, 3)), 1.0, atol=1e-4)
    # 2-D inputs: today's rule, bit for bit
    a = cols.astype(np.float64)
    assert est.norm["cols"]["mean"] == a.mean(axis=0).tolist() and est.norm["cols"]["std"] == a.std(axis=0).tolist()
    want = (cols - np.asarray(a.mean(axis=0), np.float32)) / np.asarray(a.std(axis=0), np.float32)
    assert np.array_equal(x["cols"].numpy(), want)


# ---------------------------------------------------------------------- embeddings
def test_contrastive_objective_and_transform(tmp_path):
    rng = np.random.default_rng(0)
    n = 48
    z = rng.normal(size=(n, 2)).astype(np.float32)  # a latent shared by both views
    img = (z[:, :1, None, None] * np.ones((1, 1, 8, 8)) + 0.1 * rng.normal(size=(n, 1, 8, 8))).astype(np.float32)
    spec = (np.repeat(z, 40, axis=1) + 0.1 * rng.normal(size=(n, 80))).astype(np.float32)
    X = {"img": img, "spec": spec}
    est = make_estimator("contrastive_pair", {"inputs": ["img", "spec"], "channels": [4], "hidden": 8,
                                              "embed_dim": 4}, trainer=FAST.model_copy(update={"max_epochs": 2}),
                         objective="contrastive")
    assert est.task == "embedding" and est.head_names == []
    est.fit(X)
    emb = est.transform(X)
    assert set(emb) == {"img", "spec"} and isinstance(emb["img"], Embedding) and emb["img"].vectors.shape == (n, 4)
    assert "loss_contrastive" in est.history[-1] or np.isfinite(est.history[-1]["train_loss"])
    with pytest.raises(ConfigError, match="transform"):
        est.predict_heads(X)
    with pytest.raises(BadValueError, match="without targets"):
        est.fit(X, np.zeros(n))
    est.save(tmp_path / "e")
    back = load_estimator(tmp_path / "e")
    np.testing.assert_allclose(back.transform(X)["spec"].vectors, emb["spec"].vectors, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- scikit-learn, several targets
@pytest.fixture()
def linreg():
    from sklearn.linear_model import LinearRegression

    register_model("test_heads_linreg", modality="columns", family="classical", tasks=("regression",))(
        lambda: LinearRegression())
    yield "test_heads_linreg"
    MODELS.unregister("test_heads_linreg")


def test_sklearn_one_pipeline_per_head_on_its_valid_rows(tmp_path, linreg):
    from sklearn.linear_model import LinearRegression

    X, y = stars_and_galaxies(n=120)
    stars = ~np.isnan(y["radius"])
    # a second real target known for other objects: every third one
    teff = np.where(np.arange(120) % 3 == 0, 5000.0 + 100.0 * X["cols"][:, 0], np.nan)
    with pytest.raises(ConfigError, match="does regression only"):  # a regressor cannot serve a class head
        make_estimator(linreg, task="regression", heads={"radius": {}, "class": {"kind": "categorical"}}).fit(X, y)
    est = make_estimator(linreg, task="regression", heads={"radius": {"kind": "gaussian"}, "teff": {}})
    est.fit(X, {"radius": y["radius"], "teff": teff})
    assert isinstance(est, SklearnEstimator) and est.head_names == ["radius", "teff"] and est.task == "regression"
    assert est.tasks == {"radius": "regression", "teff": "regression"}
    assert est.pipelines["radius"].named_steps["scale"].n_samples_seen_ == stars.sum()  # the stars only
    assert est.pipelines["teff"].named_steps["scale"].n_samples_seen_ == 40
    preds = est.predict_heads(X)
    assert isinstance(preds["radius"], Gaussian) and not preds["radius"].has_variance  # NaN, never 0
    ref = LinearRegression().fit(X["cols"][stars], y["radius"][stars])  # by hand, on the stars alone
    np.testing.assert_allclose(preds["radius"].mean, ref.predict(X["cols"]), rtol=1e-5)
    np.testing.assert_allclose(est.predict(X), preds["radius"].mean)  # conveniences: the first head
    np.testing.assert_allclose(preds["teff"].mean, 5000.0 + 100.0 * X["cols"][:, 0], rtol=1e-6)
    est.save(tmp_path / "s")
    back = load_estimator(tmp_path / "s", trust=True)
    assert back.head_names == ["radius", "teff"]
    for name in ("radius", "teff"):
        np.testing.assert_array_equal(back.predict_heads(X)[name].mean, preds[name].mean)


def test_sklearn_class_heads_leave_out_missing_labels(tmp_path):
    X, y = stars_and_galaxies(n=120)
    kind = np.where(np.arange(120) == 5, -1, np.arange(120) % 3)  # one object without a label
    est = make_estimator("logistic_regression", heads={"class": {}, "kind": {}}).fit(
        X, {"class": y["class"], "kind": kind})
    assert est.pipelines["kind"].named_steps["scale"].n_samples_seen_ == 119
    preds = est.predict_heads(X)
    assert preds["kind"].classes.tolist() == [0, 1, 2] and preds["class"].classes.tolist() == [0, 1]
    assert isinstance(preds["class"], Categorical) and np.mean(preds["class"].labels == y["class"]) > 0.9
    np.testing.assert_allclose(est.predict_proba(X), preds["class"].proba)
    est.save(tmp_path / "c")
    back = load_estimator(tmp_path / "c", trust=True)
    np.testing.assert_allclose(back.predict_heads(X)["kind"].proba, preds["kind"].proba)


def test_single_target_head_name():
    X, y = stars_and_galaxies(n=40)
    default = make_estimator("logistic_regression").fit(X, y["class"])
    named = make_estimator("logistic_regression", target_name="class").fit(X, y["class"])
    assert default.head_names == ["target"] and list(default.predict_heads(X)) == ["target"]
    assert named.head_names == ["class"]
    np.testing.assert_allclose(named.predict_heads(X)["class"].proba, named.predict_proba(X))


# ---------------------------------------------------------------------- folders saved by the code before heads
PRISTINE = "/tmp/pristine/src"


@pytest.mark.skipif(not os.path.isdir(PRISTINE), reason="no pristine copy of the code before heads")
def test_folders_saved_before_heads_load_as_today(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        from astromodal.training.estimator import make_estimator
        from astromodal.training.trainer import TrainerConfig
        rng = np.random.default_rng(0)
        X = rng.normal(size=(60, 3)).astype(np.float32)
        y = np.arange(60) % 3
        cfg = TrainerConfig(max_epochs=2, batch_size=32, progress=False, device="cpu")
        t = make_estimator("mlp_columns", {{}}, trainer=cfg).fit({{"columns": X}}, y)
        t.save({str(tmp_path / "torch")!r})
        np.save({str(tmp_path / "torch.npy")!r}, t.predict_proba({{"columns": X}}))
        r = make_estimator("mlp_columns", {{}}, trainer=cfg.model_copy(update={{"loss": "gaussian_nll"}}),
                           task="regression").fit({{"columns": X}}, X[:, 0] * 2.0)
        r.save({str(tmp_path / "reg")!r})
        np.save({str(tmp_path / "reg.npy")!r}, np.stack(r.predict_mean_var({{"columns": X}})))
        s = make_estimator("logistic_regression").fit(X, y)
        s.save({str(tmp_path / "sk")!r})
        np.save({str(tmp_path / "sk.npy")!r}, s.predict_proba(X))
        np.save({str(tmp_path / "X.npy")!r}, X)
    """)
    env = {**os.environ, "PYTHONPATH": PRISTINE, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path, timeout=300)
    assert "heads" not in json.loads((tmp_path / "torch" / "model.json").read_text())
    X = np.load(tmp_path / "X.npy")
    t = load_estimator(tmp_path / "torch")
    assert isinstance(t, TorchEstimator) and t.head_names == ["target"]
    np.testing.assert_allclose(t.predict_proba({"columns": X}), np.load(tmp_path / "torch.npy"), rtol=1e-6)
    np.testing.assert_allclose(t.predict_heads({"columns": X})["target"].proba, np.load(tmp_path / "torch.npy"),
                               rtol=1e-6)
    r = load_estimator(tmp_path / "reg")
    g = r.predict_heads({"columns": X})["target"]
    np.testing.assert_allclose(np.stack([g.mean, g.var]), np.load(tmp_path / "reg.npy"), rtol=1e-6)
    s = load_estimator(tmp_path / "sk", trust=True)
    np.testing.assert_allclose(s.predict_heads(X)["target"].proba, np.load(tmp_path / "sk.npy"))


def test_loading_a_folder_of_another_kind_is_one_clear_error(tmp_path):
    from astromodal.errors import DataFormatError
    from astromodal.training.probe import ProbeEstimator

    (tmp_path / "model.json").write_text(json.dumps({"kind": "other"}))
    (tmp_path / "probe.json").write_text(json.dumps({"kind": "other"}))
    with pytest.raises(DataFormatError, match=r"model\.json: not a neural model \(kind 'other'\)"):
        TorchEstimator.load(tmp_path)
    with pytest.raises(DataFormatError, match=r"model\.json: not a scikit-learn model \(kind 'other'\)"):
        SklearnEstimator.load(tmp_path, trust=True)
    with pytest.raises(DataFormatError, match=r"probe\.json: not an astromodal probe \(kind 'other'\)"):
        ProbeEstimator.load(tmp_path)
