"""Several targets (heads) through the benchmark: per-head scoring on the rows where a target applies,
checked by hand, and a class + radius dataset through holdout and cv with a two-head estimator."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.errors import ConfigError
from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.evaluation.protocols import HeadTruth, score_heads
from astromodal.experiments import parse_config
from astromodal.training.predictions import Categorical, Gaussian


def test_two_heads_scored_on_their_valid_rows_by_hand():
    # six test objects; class predicted right for 5 of 6 (row 5: true 1, predicted 0)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.6, 0.4], [0.55, 0.45]])
    y_class = np.array([0, 1, 0, 1, 0, 1])
    # a radius only for rows 0, 1, 3 (NaN elsewhere: not a star); truth (1, 2, 3), mean (1, 2.5, 2), var 1
    y_radius = np.array([1.0, 2.0, np.nan, 3.0, np.nan, np.nan])
    mean = np.array([1.0, 2.5, 99.0, 2.0, -99.0, 0.0])  # the predictions of rows without a radius are ignored
    preds = {"class": Categorical(proba, np.array([0, 1])),
             "radius": Gaussian(mean, np.ones(6), sigma_net=np.array([0.1, 0.2, 5.0, 0.3, 5.0, 5.0]))}
    truths = {"class": HeadTruth("class", "classification", y_class, np.array([0, 0, 1]), ["star", "qso"],
                                 ["star", "qso"]),
              "radius": HeadTruth("radius", "regression", y_radius, np.array([1.0, np.nan, 3.0]), unit="Rsun")}
    ctx = SimpleNamespace(cell=SimpleNamespace(id="d__r__m__s0"))
    heads = score_heads(ctx, preds, truths)
    c, r = heads["class"], heads["radius"]
    assert c.n == 6 and c.metrics["accuracy"] == pytest.approx(5 / 6)
    assert c.metrics["confusion_matrix"] == [[3, 0], [1, 2]] and c.metrics["per_class"]["qso"]["recall"] == 2 / 3
    assert c.baseline["value"] == "star" and c.beats_baseline  # training majority: star
    assert c.curves["roc"]["y_true"] == y_class.tolist()
    # residuals on the three stars: (0, 0.5, -1): RMSE sqrt(1.25 / 3), MAE 0.5, bias -1/6
    assert r.n == 3 and r.metrics["n"] == 3
    assert r.metrics["rmse"] == pytest.approx(math.sqrt(1.25 / 3)) and r.metrics["mae"] == pytest.approx(0.5)
    assert r.metrics["bias"] == pytest.approx(-1 / 6)
    # |z| = (0, 0.5, 1): 68 % interval (0.9945 sigma) holds two, 95 % all three; mean sigma 1
    assert r.metrics["coverage_68"] == pytest.approx(2 / 3) and r.metrics["coverage_95"] == 1.0
    assert r.metrics["mean_sigma"] == 1.0
    assert r.metrics["nll"] == pytest.approx(0.5 * math.log(2 * math.pi) + (0 + 0.25 + 1) / 6)
    # PIT Phi(z) = (0.5, 0.309, 0.841): bins 5, 3, 8
    assert r.curves["pit"]["n"] == 3 and [i for i, f in enumerate(r.curves["pit"]["fraction"]) if f] == [3, 5, 8]
    assert r.sigma_net == {"mean": pytest.approx(0.2), "median": pytest.approx(0.2)}
    # baseline: the training mean of the rows with a radius, (1 + 3) / 2 = 2; residuals (1, 0, -1)
    assert r.baseline["value"] == 2.0 and r.baseline["metrics"]["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert r.beats_baseline


def test_a_second_head_worse_than_its_baseline_is_flagged_in_results_csv():
    from astromodal.evaluation.benchmark_report import flat_rows

    m = {"accuracy": 0.9, "balanced_accuracy": 0.9, "macro_f1": 0.9,
         "ci95": {"accuracy": [0.8, 1.0], "balanced_accuracy": [0.8, 1.0]}}
    rec = {"dataset": "d", "representation": "r", "model": "m", "family": "neural", "seed": 0, "n_train": 10,
           "n_test": 5, "task": "classification", "metrics": m, "beats_baseline": True,
           "baseline": {"metrics": {"balanced_accuracy": 0.5}},
           "heads": {"class": {"task": "classification", "metrics": m, "beats_baseline": True},
                     "radius": {"task": "regression", "metrics": {"rmse": 3.0, "mae": 2.0},
                                "beats_baseline": False}}}
    (row,) = flat_rows([rec])
    assert row["beats_baseline"] is True and row["radius_beats_baseline"] is False


# ---------------------------------------------------------------------- through the runner
def stars_and_galaxies(n: int = 120, seed: int = 0) -> Dataset:
    """Two classes in 3 columns; a radius (linear in c2) for the stars only (NaN for galaxies)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 3)) + 2.5 * np.eye(2, 3)[y]
    radius = np.where(y == 0, 1.0 + 0.5 * X[:, 2] + 0.05 * rng.normal(size=n), np.nan)
    return Dataset(ids=np.arange(n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
                   columns={f"c{k}": Column(X[:, k]) for k in range(3)},
                   targets={"class": Target(y, "class", ("star", "galaxy")),
                            "radius": Target(radius, "regression", unit="Rsun")})


class TwoHeads:
    """A stand-in two-head estimator: a logistic regression for the class, a linear fit with its residual
    variance for the radius (on the rows that have one)."""

    task = "classification"

    def fit(self, X, y):
        from sklearn.linear_model import LinearRegression, LogisticRegression

        X = X["columns"] if isinstance(X, dict) else X
        assert isinstance(y, dict) and list(y) == ["class", "radius"]
        self.clf = LogisticRegression().fit(X, y["class"])
        self.classes_ = self.clf.classes_
        ok = np.isfinite(y["radius"])
        self.reg = LinearRegression().fit(X[ok], y["radius"][ok])
        self.s2 = float(np.mean((self.reg.predict(X[ok]) - y["radius"][ok]) ** 2))
        return self

    def predict_proba(self, X):
        return self.clf.predict_proba(X["columns"] if isinstance(X, dict) else X)

    def predict_heads(self, X):
        X = X["columns"] if isinstance(X, dict) else X
        return {"class": Categorical(self.clf.predict_proba(X), self.classes_),
                "radius": Gaussian(self.reg.predict(X), np.full(len(X), self.s2))}


def config(path, **extra):
    base = {"name": "mescr_toy",
            "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)}, "target": ["class", "radius"],
                               "heads": {"radius": {"kind": "gaussian"}}}},
            "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
            "models": [{"name": "mlp_columns"}], "report": {"embeddings": []}}
    base.update(extra)
    return parse_config(base)


@pytest.fixture()
def table(tmp_path):
    return stars_and_galaxies().save(tmp_path / "d.h5")


@pytest.mark.parametrize("protocol", [{"kind": "holdout"}, {"kind": "cv", "k": 3}])
def test_class_and_radius_heads_through_the_runner(tmp_path, table, monkeypatch, protocol):
    made = []

    def make(self, cell, task):
        made.append(self.config.datasets[cell.dataset].head_specs())
        return TwoHeads()

    monkeypatch.setattr(BenchmarkRunner, "_make_estimator", make)
    out = tmp_path / "run"
    (cell,) = BenchmarkRunner(config(table, protocol=protocol), out).run()["cells"]
    assert made[0] == {"class": {}, "radius": {"kind": "gaussian"}}
    assert list(cell["heads"]) == ["class", "radius"] and cell["task"] == "classification"
    assert cell["metrics"] == cell["heads"]["class"]["metrics"] and cell["metrics"]["accuracy"] > 0.9
    r = cell["heads"]["radius"]
    n_scored = cell["n_test"] // 2  # every other object is a star
    assert r["n"] == r["metrics"]["n"] == n_scored and r["unit"] == "Rsun"
    assert r["metrics"]["rmse"] < 0.2 and 0 <= r["metrics"]["coverage_68"] <= 1 and r["beats_baseline"]
    md = (out / "report.md").read_text()
    assert "Head: radius" in md and "coverage_68" in md and "nmad" in md and "F1 galaxy" in md
    assert "PIT histograms" in md
    frame = pd.read_csv(out / "results.csv")
    assert frame.loc[0, "radius_mae"] == pytest.approx(r["metrics"]["mae"])
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert cells[0]["heads"]["radius"]["curves"]["pit"]["n"] == n_scored
    if protocol["kind"] == "cv":
        assert len(r["fold_scores"]) == 3 and cell["n_test"] == 120


def test_every_head_task_is_checked_against_the_model(tmp_path, table):
    cfg = config(table, models=[{"name": "random_forest"}])
    with pytest.raises(ConfigError, match="dataset 'd'.*random_forest_regressor"):
        BenchmarkRunner(cfg, tmp_path / "run").run()
    assert not (tmp_path / "run").exists()


def test_class_and_radius_through_a_resample_ensemble_of_a_two_head_network(tmp_path, table):
    cfg = config(table, models=[{"name": "multi_input_net", "options": {"inputs": ["columns"]}}],
                 protocol={"kind": "resample_ensemble", "n_members": 2, "member_weights": "balanced"},
                 trainer={"max_epochs": 2, "patience": None, "batch_size": 32})
    out = tmp_path / "run"
    (cell,) = BenchmarkRunner(cfg, out).run()["cells"]
    assert list(cell["heads"]) == ["class", "radius"] and cell["n_members"] == 2
    r = cell["heads"]["radius"]
    assert r["n"] == 12 and r["sigma_net"]["mean"] > 0 and np.isfinite(r["metrics"]["nll"])  # 12 test stars
    assert all("train_loss_radius" in m for m in cell["members"])  # each member's part of the loss
    md = (out / "report.md").read_text()
    assert "Head: radius" in md and "Loss per head" in md and "val loss_radius" in md


def test_a_target_the_dataset_lacks_is_one_line(tmp_path, table):
    from astromodal.errors import BadValueError

    cfg = config(table, datasets={"d": {"source": "hdf5", "options": {"path": str(table)}, "target": ["class", "mass"]}})
    with pytest.raises(BadValueError, match=r"dataset 'd': unknown target\(s\) \['mass'\]; it has targets"):
        BenchmarkRunner(cfg, tmp_path / "run").run()
    assert not (tmp_path / "run").exists()
