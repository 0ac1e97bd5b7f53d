"""Neural regression on real scales with honest uncertainty, trivial baselines in every report, model/task
mismatches and config problems found before any work (issue 10, items 5 and 7)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.errors import ConfigError
from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.experiments import parse_config
from astromodal.training.ensemble import EnsembleEstimator
from astromodal.training.estimator import load_estimator, make_estimator

FAST = {"max_epochs": 40, "batch_size": 64, "lr": 3e-3, "patience": None, "progress": False, "device": "cpu"}


def teff_like(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five 'magnitudes' near 15 and a temperature-like target in kelvin (mean ~6000 K, spread ~1000 K)."""
    rng = np.random.default_rng(seed)
    x = 15.0 + rng.normal(size=(n, 5))
    y = 6000.0 + 800.0 * (x[:, 0] - x[:, 1]) + 400.0 * np.tanh(x[:, 2] - 15.0) + 100.0 * rng.standard_normal(n)
    return x.astype(np.float32), y


def r2(y: np.ndarray, p: np.ndarray) -> float:
    return float(1.0 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


# ---------------------------------------------------------------------- target standardisation
def test_mlp_regression_on_kelvin_scale_is_standardised_saved_and_restored(tmp_path):
    x, y = teff_like()
    xt, yt = teff_like(300, seed=1)
    est = make_estimator("mlp_columns", {"hidden": [32]}, trainer=FAST, task="regression").fit({"columns": x}, y)
    pred = est.predict({"columns": xt})
    assert r2(yt, pred) > 0.8  # without the standardisation the network never leaves 0 K (R^2 << 0)
    # the training targets' own statistics
    assert est.target_norm["mean"] == pytest.approx(y.mean()) and est.target_norm["std"] == pytest.approx(y.std())
    mean, var = est.predict_mean_var({"columns": xt})
    np.testing.assert_allclose(mean, pred)
    assert np.isnan(var).all() and not est.gives_variance  # an MSE network predicts no uncertainty: NaN, not 0
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["target_normalisation"]["std"] == pytest.approx(y.std())
    back = load_estimator(tmp_path / "m")
    np.testing.assert_allclose(back.predict({"columns": xt}), pred, rtol=1e-6)
    # a folder saved before targets were standardised loads as mean 0, std 1: the raw outputs, as before
    del meta["target_normalisation"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    old = load_estimator(tmp_path / "m")
    assert old.target_norm == {"mean": 0.0, "std": 1.0}
    np.testing.assert_allclose(old.predict({"columns": xt}), old.decision_function({"columns": xt})[:, 0], rtol=1e-6)


def test_gaussian_head_variance_is_in_the_targets_unit():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (800, 3)).astype(np.float32)
    y = 5000.0 + 1000.0 * x[:, 0] + 150.0 * rng.standard_normal(800)  # true scatter 150 K
    cfg = {**FAST, "loss": "gaussian_nll", "max_epochs": 60, "lr": 1e-2}
    est = make_estimator("mlp_columns", {"hidden": [32], "dropout": 0.0}, trainer=cfg, task="regression")
    est.fit({"columns": x}, y)
    mean, var = est.predict_mean_var({"columns": x})
    assert est.gives_variance
    assert np.sqrt(np.mean((mean - y) ** 2)) < 200
    assert 100 < np.sqrt(np.median(var)) < 220  # kelvin, not standardised units (~0.15)


def test_predict_mean_var_of_sklearn_and_ensembles():
    x, y = teff_like(200)
    rf = make_estimator("random_forest_regressor", {"n_estimators": 10}, task="regression").fit(x, y)
    mean, var = rf.predict_mean_var(x[:7])
    assert mean.shape == var.shape == (7,) and np.isnan(var).all() and not rf.gives_variance

    class Member:  # a fitted Gaussian member with fixed outputs
        task, gives_variance = "regression", True

        def __init__(self, mu, s2):
            self.mu, self.s2 = np.asarray(mu, float), np.asarray(s2, float)

        def predict_mean_var(self, X):
            return self.mu, self.s2

    ens = EnsembleEstimator([Member([5000.0, 10.0], [100.0, 1.0]), Member([5004.0, 12.0], [300.0, 3.0])])
    mu, s2 = ens.predict_mean_var(None)
    # mixture mean; mean member variance + variance of the member means: (100+300)/2 + 2^2, (1+3)/2 + 1^2
    np.testing.assert_allclose(mu, [5002.0, 11.0])
    np.testing.assert_allclose(s2, [204.0, 3.0])
    assert ens.gives_variance
    # a member without uncertainty: the total variance is unknown, the mean is still defined
    mixed = EnsembleEstimator([Member([1.0], [1.0]), rf])
    mu, s2 = mixed.predict_mean_var(x[:1])
    assert np.isfinite(mu).all() and np.isnan(s2).all() and not mixed.gives_variance


@pytest.mark.realdata
def test_mlp_matches_random_forest_on_lamost_teff(shared_data):
    """Teff of the LAMOST DR1 sample from its seven magnitudes and their colours: the tabular MLP reaches the
    R^2 of a random forest on the same split (it gave R^2 = -2.2 before targets were standardised)."""
    df = pd.read_csv(shared_data / "lamost-dr1-sample" / "Data" / "my_data3.csv")
    mags = df[[f"mag{i}" for i in range(1, 8)]].to_numpy(np.float64)
    keep = ((mags > 1.0) & (mags < 90.0)).all(axis=1) & np.isfinite(df["teff"].to_numpy())  # 0 / 99: no magnitude
    mags, teff = mags[keep], df["teff"].to_numpy(np.float64)[keep]
    x = np.concatenate([mags, mags[:, :-1] - mags[:, 1:]], axis=1).astype(np.float32)
    assert len(teff) > 1500
    order = np.random.default_rng(0).permutation(len(teff))
    tr, te = order[: int(0.8 * len(teff))], order[int(0.8 * len(teff)):]
    rf = make_estimator("random_forest_regressor", {"random_state": 0}, task="regression").fit(x[tr], teff[tr])
    mlp = make_estimator("mlp_columns", {}, trainer={"max_epochs": 60, "progress": False, "device": "cpu"},
                         task="regression").fit({"columns": x[tr]}, teff[tr])
    r2_rf, r2_mlp = r2(teff[te], rf.predict(x[te])), r2(teff[te], mlp.predict({"columns": x[te]}))
    assert r2_rf > 0.7
    assert r2_mlp > r2_rf - 0.05, (r2_mlp, r2_rf)


# ---------------------------------------------------------------------- model / task mismatch
def test_classifier_on_a_regression_target_names_the_model_to_use():
    with pytest.raises(ConfigError, match="use 'random_forest_regressor'"):
        make_estimator("random_forest", task="regression")
    with pytest.raises(ConfigError, match="use 'gradient_boosting'"):
        make_estimator("gradient_boosting_regressor", task="classification")
    with pytest.raises(ConfigError, match="does classification only, but the task is regression; use .scnet."):
        make_estimator("resnet18", task="regression")


def regression_table(path, n=200, seed=0, noise_only=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = rng.normal(size=n) * 500.0 + 6000.0 if noise_only else 6000.0 + 900.0 * X[:, 0] + 50.0 * rng.normal(size=n)
    ds = Dataset(ids=np.array([f"s{i}" for i in range(n)]), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
                 columns={f"c{k}": Column(X[:, k]) for k in range(3)},
                 targets={"teff": Target(y, "regression", unit="K")})
    return ds.save(path)


def reg_config(path, models, **extra):
    base = {
        "name": "reg",
        "datasets": {"t": {"source": "hdf5", "options": {"path": str(path)}, "target": "teff"}},
        "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
        "models": models,
        "report": {"embeddings": [], "confusion_matrices": False, "roc_curves": False},
    }
    base.update(extra)
    return parse_config(base)


def test_benchmark_checks_every_cells_task_before_training(tmp_path, monkeypatch):
    table = regression_table(tmp_path / "t.h5")
    cfg = reg_config(table, [{"name": "random_forest_regressor", "options": {"n_estimators": 5}},
                             {"name": "random_forest", "options": {"n_estimators": 5}}])

    def boom(*a, **k):
        raise AssertionError("a cell trained before the mismatch was found")

    monkeypatch.setattr(BenchmarkRunner, "run_cell", boom)
    with pytest.raises(ConfigError) as err:
        BenchmarkRunner(cfg, tmp_path / "run").run()
    msg = str(err.value)
    assert "\n" not in msg and "'random_forest'" in msg and "use 'random_forest_regressor'" in msg and "teff" in msg
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- trivial baselines
def test_every_cell_is_compared_with_the_trivial_baseline(tmp_path, capsys):
    table = regression_table(tmp_path / "noise.h5", noise_only=True)
    # a fully grown tree on a pure-noise target cannot beat the training mean (its RMSE is ~sqrt(2) times worse)
    cfg = reg_config(table, [{"name": "decision_tree_regressor"},
                             {"name": "mlp_columns", "trainer": {**FAST, "loss": "gaussian_nll", "max_epochs": 5}}])
    runner = BenchmarkRunner(cfg, tmp_path / "run")
    results = runner.run()
    cells = {c["model"]: c for c in results["cells"]}
    tree = cells["decision_tree_regressor"]
    assert tree["baseline"]["kind"] == "training_mean" and tree["beats_baseline"] is False
    assert tree["baseline"]["metrics"]["rmse"] < tree["metrics"]["rmse"]
    # the training mean, scored on the same 40 test objects
    split = runner.prepare("t", 0)
    y_tr, y_te = split.train.target("teff").values.read(), split.test.target("teff").values.read()
    assert tree["baseline"]["value"] == pytest.approx(y_tr.mean()) and tree["n_test"] == len(y_te) == 40
    assert tree["baseline"]["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean((y_te - y_tr.mean()) ** 2)))
    err = capsys.readouterr().err
    assert "does not beat the trivial baseline" in err and "decision_tree_regressor" in err
    # the Gaussian head is scored on its uncertainty
    net = cells["mlp_columns"]["metrics"]
    assert {"nll", "coverage_68", "coverage_95"} <= set(net) and 0 <= net["coverage_68"] <= net["coverage_95"] <= 1
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert "beats_baseline" in frame and "baseline" in frame and "coverage_95" in frame
    assert not frame.set_index("model").loc["decision_tree_regressor", "beats_baseline"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Trivial baseline" in md and "**NO**" in md and "do not beat the trivial baseline" in md


def test_classification_baseline_is_the_training_majority_class(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    y = np.r_[np.zeros(200, int), np.ones(100, int)]  # 2:1, "star" the majority
    X = rng.normal(size=(n, 2)) + 3.0 * y[:, None]
    ds = Dataset(ids=np.array([f"s{i}" for i in range(n)]), ra=np.zeros(n), dec=np.zeros(n),
                 columns={"a": Column(X[:, 0]), "b": Column(X[:, 1])},
                 targets={"class": Target(y, "class", ("star", "qso"))})
    path = ds.save(tmp_path / "c.h5")
    cfg = parse_config({
        "name": "cls", "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)}}},
        "representations": {"cols": {"kind": "columns", "columns": ["a", "b"]}},
        "models": [{"name": "logistic_regression"}], "protocol": {"kind": "cv", "k": 3},
        "report": {"embeddings": [], "confusion_matrices": False, "roc_curves": False},
    })
    cell = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"][0]
    base = cell["baseline"]
    assert base["kind"] == "majority_class" and base["value"] == "star"
    # the majority class of each fold's training part, pooled over the folds like the model's predictions
    assert base["metrics"]["accuracy"] == pytest.approx(200 / 300) and base["metrics"]["balanced_accuracy"] == 0.5
    assert cell["beats_baseline"] is True


# ---------------------------------------------------------------------- config problems before any work
def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("where, models, trainer, names", [
    # a bad per-model trainer key: the classical cell first would train and be saved before today's error
    ("per-model", [{"name": "random_forest_regressor"}, {"name": "mlp_columns", "trainer": {"max_epoch": 2}}],
     {}, ["'max_epoch'", "mlp_columns", "max_epochs"]),
    ("global", [{"name": "random_forest_regressor"}, {"name": "mlp_columns"}], {"max_epoch": 2},
     ["'max_epoch'", "trainer", "max_epochs"]),
    ("model option", [{"name": "random_forest_regressor"}, {"name": "mlp_columns", "options": {"hiden": [8]}}],
     {}, ["'hiden'", "mlp_columns", "hidden"]),
    ("classical option", [{"name": "random_forest_regressor", "options": {"n_estimator": 3}}], {},
     ["n_estimator", "random_forest_regressor", "n_estimators"]),
    ("standardise", [{"name": "mlp_columns", "standardise": ["colums"]}], {}, ["standardise", "'columns'"]),
])
def test_config_problems_are_one_line_before_any_data_or_output(tmp_path, where, models, trainer, names):
    regression_table(tmp_path / "t.h5")
    cfg = {"name": "bad", "datasets": {"t": {"source": "hdf5", "options": {"path": str(tmp_path / "t.h5")},
                                             "target": "teff"}},
           "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
           "models": models, "trainer": trainer}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    result = run_main("benchmark", str(tmp_path / "bad.yaml"), "--out", str(out))
    assert result.returncode == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in names:
        assert name in lines[0], (where, lines[0])
    assert not out.exists()


def test_validate_runs_before_any_data_is_loaded(tmp_path):
    cfg = parse_config({
        "name": "bad", "datasets": {"t": {"source": "hdf5", "options": {"path": str(tmp_path / "missing.h5")}}},
        "representations": {"cols": {"kind": "columns", "columns": ["c0"]}},
        "models": [{"name": "mlp_columns", "trainer": {"lr": -1}}],
    })
    with pytest.raises(ConfigError, match=r"model 'mlp_columns' \(models\[0\]\): trainer settings: 'lr'"):
        BenchmarkRunner(cfg, tmp_path / "run").run()  # not "missing.h5 not found": the config is checked first


def test_objects_a_single_regression_target_does_not_apply_to_are_left_out_and_counted(tmp_path):
    """A quasar has no SFR (NaN): with one regression target such objects are dropped before the split (a
    scikit-learn model would otherwise stop on NaN), counted in a note and in the selection; none is scored."""
    path = regression_table(tmp_path / "t.h5")
    ds = Dataset.load(path)
    y = ds.target("teff").values.read().copy()
    y[::4] = np.nan  # 50 of 200 do not apply
    ds.with_targets({"teff": Target(y, "regression", unit="K")}).save(tmp_path / "nan.h5")
    cfg = reg_config(tmp_path / "nan.h5", [{"name": "decision_tree_regressor", "options": {"max_depth": 3}}])
    runner = BenchmarkRunner(cfg, tmp_path / "run")
    cell = runner.run()["cells"][0]
    assert cell["n_test"] == 30 and np.isfinite(cell["metrics"]["rmse"])  # 20 % of the 150 that apply
    split = runner.prepare("t", 0)
    assert np.isfinite(split.train.target("teff").values.read()).all()
    assert any("50 of 200 objects have no 'teff'" in n for n in runner.notes)
    assert "50 of 200 objects have no 'teff'" in (tmp_path / "run" / "report.md").read_text()
    full, _ = runner._load("t")
    assert full.meta["selection"][-1] == {"cut": "teff applies (finite)", "kept": 150}
