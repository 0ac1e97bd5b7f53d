"""Calibration: ECE / reliability, z-scores, temperature and variance scaling by hand, and
``protocol.recalibrate`` through the benchmark (held-out calibration rows, before / after, the report)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from astromodal.errors import BadValueError, ConfigError
from astromodal.evaluation.calibration import (
    Recalibrator,
    TemperatureScaling,
    VarianceScaling,
    calibration_section,
    calibration_split,
)
from astromodal.evaluation.metrics import (
    ECE_BINS,
    gaussian_calibration_metrics,
    probability_calibration_metrics,
    reliability,
    uncertainty_metrics,
)
from astromodal.training.predictions import Categorical, Gaussian

# four objects: confidences 0.9 (right), 0.8 (wrong), 0.6 (right), 0.7 (wrong)
PROBA = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
Y = np.array([0, 1, 0, 0])


# ---------------------------------------------------------------------- metrics by hand
def test_reliability_bins_and_ece_by_hand():
    r = reliability(Y, PROBA, bins=4)  # edges 0, .25, .5, .75, 1
    # bin 2 (0.5, 0.75]: confidences 0.6, 0.7 -> mean 0.65, one right -> 0.5; bin 3: 0.85 and 0.5
    assert r["count"] == [0, 0, 2, 2] and r["confidence"][:2] == [None, None] and r["accuracy"][:2] == [None, None]
    assert r["confidence"][2:] == pytest.approx([0.65, 0.85]) and r["accuracy"][2:] == [0.5, 0.5]
    # ECE = 2/4 * |0.5 - 0.65| + 2/4 * |0.5 - 0.85| = 0.075 + 0.175; MCE = 0.35
    assert r["ece"] == pytest.approx(0.25) and r["mce"] == pytest.approx(0.35) and r["n"] == 4
    # bins are right-closed: a confidence of exactly 0.5 falls in the first of two bins
    assert reliability([0], [[0.5, 0.5]], bins=2)["count"] == [1, 0]
    assert ECE_BINS == 15 and reliability(Y, PROBA)["bins"] == 15 and len(reliability(Y, PROBA)["count"]) == 15
    with pytest.raises(BadValueError, match="code 2"):
        reliability([2, 0, 0, 0], PROBA)


def test_probability_calibration_metrics_by_hand():
    m = probability_calibration_metrics(Y, PROBA, bins=4)
    assert m["accuracy"] == 0.5 and m["mean_confidence"] == pytest.approx(0.75) and m["ece"] == pytest.approx(0.25)
    # Brier: (0.02 + 1.28 + 0.32 + 0.98) / 4; NLL: -(ln 0.9 + ln 0.2 + ln 0.6 + ln 0.3) / 4
    assert m["brier"] == pytest.approx(0.65)
    assert m["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.2) + math.log(0.6) + math.log(0.3)) / 4)
    assert m["reliability"]["count"] == [0, 0, 2, 2]


def test_z_scores_by_hand():
    # truth (0, 1, -1), mean 0, variances (1, 1, 4): z = (0, 1, -0.5)
    m = uncertainty_metrics([0.0, 1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 4.0])
    assert m["z_mean"] == pytest.approx(1 / 6)
    assert m["z_std"] == pytest.approx(math.sqrt(14) / 6)  # sqrt(mean z^2 - mean^2) = sqrt(15/36 - 1/36)
    g = gaussian_calibration_metrics([0.0, 1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 4.0])
    assert g["z_rms"] == pytest.approx(math.sqrt(1.25 / 3)) and g["coverage_68"] == pytest.approx(2 / 3)
    assert g["pit"]["n"] == 3 and [i for i, f in enumerate(g["pit"]["fraction"]) if f] == [3, 5, 8]


# ---------------------------------------------------------------------- the recalibrators
def test_temperature_scaling_by_hand_and_its_threshold():
    ts = TemperatureScaling(2.0)
    # softmax(log p / 2) of (0.8, 0.2): proportional to (sqrt 0.8, sqrt 0.2) = (2, 1) sqrt 0.2 -> (2/3, 1/3)
    np.testing.assert_allclose(ts.apply([[0.8, 0.2]]), [[2 / 3, 1 / 3]], rtol=1e-12)
    # the binary threshold 0.8 becomes expit(logit(0.8) / 2) = expit(ln 2) = 2/3: the same decisions
    assert ts.threshold(0.8) == pytest.approx(2 / 3) and ts.threshold(None) is None
    raw = Categorical(PROBA, np.array([0, 1]), threshold=0.65)
    assert (ts.transform(raw).labels == raw.labels).all() and ts.transform(raw).threshold == pytest.approx(
        1 / (1 + math.exp(-math.log(0.65 / 0.35) / 2)))
    state = ts.to_json()
    assert state == {"method": "temperature", "parameter": 2.0}
    back = Recalibrator.from_json(state)
    assert isinstance(back, TemperatureScaling) and back.temperature == 2.0
    with pytest.raises(BadValueError, match="positive"):
        TemperatureScaling(0.0)


def test_temperature_recovers_a_known_temperature_of_overconfident_probabilities():
    from scipy.special import softmax

    rng = np.random.default_rng(1)
    logits = 1.5 * rng.normal(size=(20000, 4))
    honest = softmax(logits, axis=1)
    y = (rng.random(len(honest))[:, None] > np.cumsum(honest, axis=1)).sum(axis=1)  # drawn from honest
    over = softmax(2.5 * logits, axis=1)  # the model's logits are 2.5 times too large
    ts = TemperatureScaling().fit(over, y)
    assert ts.temperature == pytest.approx(2.5, rel=0.05)
    # it is the NLL minimiser: a 5 % larger or smaller temperature fits worse
    nll = [probability_calibration_metrics(y, TemperatureScaling(t).apply(over))["nll"]
           for t in (ts.temperature / 1.05, ts.temperature, ts.temperature * 1.05)]
    assert nll[1] < nll[0] and nll[1] < nll[2]
    assert probability_calibration_metrics(y, ts.apply(over))["ece"] < 0.5 * probability_calibration_metrics(
        y, over)["ece"]
    assert (np.argmax(ts.apply(over), axis=1) == np.argmax(over, axis=1)).all()  # classes never change


def test_variance_scale_is_mean_z_squared_by_hand_and_recovers_a_known_scale():
    # residuals (1, -2, 3) with variances (1, 1, 1): c = (1 + 4 + 9) / 3
    vs = VarianceScaling().fit([1.0, -2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert vs.scale == pytest.approx(14 / 3)
    assert vs.to_json() == {"method": "variance_scale", "parameter": vs.scale, "objective": "nll"}
    back = Recalibrator.from_json({"method": "variance_scale", "parameter": 2.0, "objective": "coverage"})
    assert isinstance(back, VarianceScaling) and back.scale == 2.0 and back.objective == "coverage"
    # residuals (2, 2) with variances (1, 4): z^2 = (4, 1) -> c = 2.5; the variances become (2.5, 10)
    vs2 = VarianceScaling().fit([2.0, 2.0], [0.0, 0.0], [1.0, 4.0])
    assert vs2.scale == pytest.approx(2.5)
    np.testing.assert_allclose(vs2.apply([1.0, 4.0]), [2.5, 10.0])
    nll = [uncertainty_metrics([2.0, 2.0], [0.0, 0.0], c * np.array([1.0, 4.0]))["nll"] for c in (2.4, 2.5, 2.6)]
    assert nll[1] < nll[0] and nll[1] < nll[2]
    # a known scale: sigmas 3 times too small (variance 9 times)
    rng = np.random.default_rng(2)
    mu = rng.normal(size=20000)
    y = mu + 3.0 * rng.normal(size=len(mu))
    fit = VarianceScaling().fit(y, mu, np.ones(len(mu)))
    assert fit.scale == pytest.approx(9.0, rel=0.03)
    after = gaussian_calibration_metrics(y, mu, fit.apply(np.ones(len(mu))))
    assert after["z_rms"] == pytest.approx(1.0) and abs(after["coverage_68"] - 0.68) < 0.01
    # a prediction: NaN rows (no target) are left out of the fit; means and sigma_net unchanged
    pred = Gaussian(np.zeros(3), np.ones(3), sigma_net=np.array([0.1, 0.2, 0.3]))
    v = VarianceScaling().fit_on(pred, np.array([1.0, np.nan, 3.0]))
    assert v.scale == pytest.approx(5.0)
    out = v.transform(pred)
    np.testing.assert_allclose(out.var, [5.0, 5.0, 5.0])
    assert (out.mean == 0).all() and (out.sigma_net == pred.sigma_net).all()
    with pytest.raises(BadValueError, match="every residual is zero"):
        VarianceScaling().fit([0.0], [0.0], [1.0])


def test_coverage_variance_scale_by_hand_and_on_heavy_tails():
    # |z| = (1, 2, 3, 4, 5, 6), variance 1: the 68th percentile (linear) is at rank 0.68 * 5 = 3.4 -> 4.4;
    # c = (4.4 / 0.994458)^2
    from astromodal.evaluation.metrics import Z68

    vs = VarianceScaling(objective="coverage").fit([1.0, 2, 3, 4, 5, 6], np.zeros(6), np.ones(6))
    assert vs.scale == pytest.approx((4.4 / Z68) ** 2)
    # z-scores mostly N(0, 0.5^2) with 5 % at 20 sigma: mean z^2 is huge (~20), so the NLL scale widens every
    # sigma and over-covers; the coverage scale brings the 68 % coverage back
    rng = np.random.default_rng(4)
    z = np.where(rng.random(20000) < 0.05, 20.0, 0.5) * rng.normal(size=20000)
    ones = np.ones(len(z))
    nll = VarianceScaling().fit(z, 0 * z, ones)
    cov = VarianceScaling(objective="coverage").fit(z, 0 * z, ones)
    c_nll = gaussian_calibration_metrics(z, 0 * z, nll.apply(ones))["coverage_68"]
    c_cov = gaussian_calibration_metrics(z, 0 * z, cov.apply(ones))["coverage_68"]
    assert c_nll > 0.9 and abs(c_cov - 0.68) < 0.005
    with pytest.raises(BadValueError, match="unknown variance scale objective 'mad'"):
        VarianceScaling(objective="mad")


def test_calibration_split_is_disjoint_stratified_and_seeded():
    labels = np.array([0] * 60 + [1] * 40)
    fit, cal = calibration_split(100, 0.15, labels, seed=3)
    assert len(cal) == 15 and len(fit) == 85 and not set(fit) & set(cal)
    assert sorted([*fit, *cal]) == list(range(100))
    assert np.bincount(labels[cal]).tolist() == [9, 6]  # 15 % of each class
    again = calibration_split(100, 0.15, labels, seed=3)
    assert (again[1] == cal).all() and not (calibration_split(100, 0.15, labels, seed=4)[1] == cal).all()
    with pytest.raises(BadValueError, match="recalibrate \\(cell x\\): a class has a single training object"):
        calibration_split(10, 0.2, np.array([0] * 9 + [1]), seed=0, where="cell x")


# ---------------------------------------------------------------------- the config
def test_recalibrate_settings_and_fingerprints():
    from astromodal.experiments import parse_config

    def cfg(protocol):
        return parse_config({"name": "t", "datasets": {"d": {"source": "hdf5", "options": {"path": "x.h5"}}},
                             "representations": {"c": {"kind": "columns", "columns": ["a"]}},
                             "models": [{"name": "logistic_regression"}], "protocol": protocol})

    off = cfg({"kind": "holdout"}).protocol.model_dump()
    assert "recalibrate" not in off and "calibration_fraction" not in off  # old fingerprints unchanged
    on = cfg({"kind": "holdout", "recalibrate": True}).protocol.model_dump()
    assert on["recalibrate"] is True and on["calibration_fraction"] == 0.15
    with pytest.raises(ConfigError, match="calibration_fraction: setting\\(s\\) of recalibrate: true"):
        cfg({"kind": "holdout", "calibration_fraction": 0.2})
    with pytest.raises(ConfigError, match="variance_scale: setting"):
        cfg({"kind": "holdout", "variance_scale": "coverage"})
    assert cfg({"kind": "holdout", "recalibrate": True, "variance_scale": "coverage"}).protocol.variance_scale == \
        "coverage"
    with pytest.raises(ConfigError, match="variance_scale"):
        cfg({"kind": "holdout", "recalibrate": True, "variance_scale": "mad"})
    with pytest.raises(ConfigError, match="recalibrate: the cv protocol has no test split"):
        cfg({"kind": "cv", "recalibrate": True})
    with pytest.raises(ConfigError, match="calibration_fraction"):
        cfg({"kind": "holdout", "recalibrate": True, "calibration_fraction": 1.0})


# ---------------------------------------------------------------------- through the benchmark
class Spy:
    """A two-head estimator (class: logistic regression; radius: linear fit) whose sigma is HALF the
    training residual spread (variance 4 times too small) and which keeps every input it was given."""

    task = "classification"
    head_names = ["class", "radius"]
    head_tasks = {"class": "classification", "radius": "regression"}
    calls: list[tuple[str, np.ndarray]] = []

    def fit(self, X, y, X_val=None, y_val=None):
        from sklearn.linear_model import LinearRegression, LogisticRegression

        assert isinstance(X, dict) and isinstance(y, dict) and list(y) == ["class", "radius"]
        X = X["columns"]
        seen = X[:, 0] if X_val is None else np.concatenate([X[:, 0], X_val["columns"][:, 0]])
        Spy.calls.append(("fit", seen.copy()))
        self.clf = LogisticRegression().fit(X, y["class"])
        self.classes_ = self.clf.classes_
        ok = np.isfinite(y["radius"])
        self.reg = LinearRegression().fit(X[ok], y["radius"][ok])
        self.s2 = float(np.mean((self.reg.predict(X[ok]) - y["radius"][ok]) ** 2)) / 4.0
        return self

    def predict_proba(self, X):
        return self.clf.predict_proba(X["columns"])

    def predict_heads(self, X):
        X = X["columns"]
        Spy.calls.append(("predict", X[:, 0].copy()))
        return {"class": Categorical(self.clf.predict_proba(X), self.classes_),
                "radius": Gaussian(self.reg.predict(X), np.full(len(X), self.s2))}


def stars(n: int = 400, seed: int = 0):
    from astromodal.data.dataset import Column, Dataset, Target

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 3)) + 1.0 * np.eye(2, 3)[y]
    radius = np.where(y == 0, 1.0 + 0.5 * X[:, 2] + 0.2 * rng.normal(size=n), np.nan)  # galaxies: NaN
    return Dataset(ids=np.arange(n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
                   columns={f"c{k}": Column(X[:, k]) for k in range(3)},
                   targets={"class": Target(y, "class", ("star", "galaxy")),
                            "radius": Target(radius, "regression", unit="Rsun"),
                            "flux": Target(X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n), "regression")})


def run_cells(tmp_path, monkeypatch, name, protocol):
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    path = tmp_path / "d.h5"
    if not path.exists():
        stars().save(path)
    monkeypatch.setattr(BenchmarkRunner, "_make_estimator", lambda self, cell, task: Spy())
    cfg = parse_config({"name": "cal", "protocol": protocol,
                        "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)},
                                           "target": ["class", "radius"], "heads": {"radius": {"kind": "gaussian"}}}},
                        "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
                        "models": [{"name": "mlp_columns"}], "report": {"embeddings": []}})
    Spy.calls = []
    (cell,) = BenchmarkRunner(cfg, tmp_path / name).run()["cells"]
    return cell, list(Spy.calls)


def test_holdout_recalibrates_on_held_out_rows_and_leaves_the_test_split(tmp_path, monkeypatch):
    plain, plain_calls = run_cells(tmp_path, monkeypatch, "plain", {"kind": "holdout"})
    cell, calls = run_cells(tmp_path, monkeypatch, "recal", {"kind": "holdout", "recalibrate": True})
    assert "calibration" not in plain and "calibration" not in plain["heads"]["radius"]
    # plain: fit on the training split, predict the test split; recalibrated: fit on part of it, predict the
    # test split, then the calibration rows
    assert [c[0] for c in plain_calls] == ["fit", "predict"] and [c[0] for c in calls] == ["fit", "predict", "predict"]
    train, test = set(plain_calls[0][1]), set(plain_calls[1][1])
    fitted, tested, held = set(calls[0][1]), set(calls[1][1]), set(calls[2][1])
    assert tested == test  # the same test rows as without recalibration
    assert not fitted & held and fitted | held == train and not held & test  # calibration rows never fitted
    split = cell["calibration"]
    assert split["n_calibration"] == len(held) == math.ceil(0.15 * 320) and split["n_fit"] == len(fitted) == 272
    assert split["stratified_on"] == "class" and split["headline"] == "raw" and cell["n_train"] == 320
    assert cell["n_test"] == plain["n_test"] == 80
    # the radius sigmas are 2 times too small: c near 4; coverage after near 0.68
    r = cell["heads"]["radius"]["calibration"]
    assert r["method"] == "variance_scale" and r["objective"] == "nll" and 2.5 < r["parameter"] < 6.5 and r["n"] == 40
    assert r["n_calibration"] == 24  # the stars among the 48 calibration rows (stratified: 24 of each class)
    assert r["fit"]["nll_after"] < r["fit"]["nll_before"]
    assert r["before"]["coverage_68"] < 0.5 and abs(r["after"]["coverage_68"] - 0.68) < abs(
        r["before"]["coverage_68"] - 0.68)
    assert r["before"]["z_std"] > 1.5 and r["after"]["z_std"] == pytest.approx(r["before"]["z_std"] / math.sqrt(
        r["parameter"]))
    # headline metrics stay the raw model's
    m = cell["heads"]["radius"]["metrics"]
    assert m["coverage_68"] == r["before"]["coverage_68"] and m["nll"] == r["before"]["nll"] and "z_std" in m
    c = cell["heads"]["class"]
    assert c["calibration"]["method"] == "temperature" and c["calibration"]["parameter"] > 0
    assert c["calibration"]["after"]["accuracy"] == c["calibration"]["before"]["accuracy"]
    assert "reliability" in c["calibration"]["before"] and c["metrics"]["ece"] == pytest.approx(
        c["calibration"]["before"]["ece"])
    assert len(c["curves"]["reliability"]["count"]) == 15 and sum(c["curves"]["reliability"]["count"]) == 80
    assert plain["heads"]["class"]["metrics"]["ece"] >= 0  # the raw ECE of every class head

    # the report section: before / after tables and the figures, embedded in the HTML
    from astromodal.evaluation.report import Report

    out = tmp_path / "rep"
    rep = Report("calibration")
    calibration_section(rep, [cell], out)
    md_path, html_path = rep.write(out)
    md = md_path.read_text()
    assert "## Calibration" in md and "Calibration: head radius" in md and "cov68 recal." in md and "ece raw" in md
    assert "headline metrics of every other table are the raw model's" in md
    figs = sorted(p.name for p in (out / "figures").iterdir())
    assert figs == ["pit_calibration_d_cols_mlp_columns_radius.png", "reliability_d_cols_mlp_columns_class.png"]
    assert html_path.read_text().count("data:image/png;base64") == 2
    rep2 = Report("raw")
    calibration_section(rep2, [plain], tmp_path / "rep2")  # no recalibration: the raw ECE and reliability only
    assert "no post-hoc recalibration" in rep2.to_markdown() and (tmp_path / "rep2" / "figures").exists()


def test_kfold_ensemble_recalibrates_on_rows_no_fold_saw(tmp_path, monkeypatch):
    cell, calls = run_cells(tmp_path, monkeypatch, "kfold", {"kind": "kfold_ensemble", "k": 3, "recalibrate": True,
                                                             "variance_scale": "coverage"})
    fits = [set(x) for kind, x in calls if kind == "fit"]
    held = set(calls[-1][1])  # the calibration rows are predicted last
    assert len(fits) == 3 and len(held) == cell["calibration"]["n_calibration"] == 48
    assert not set().union(*fits) & held and len(set().union(*fits)) == cell["calibration"]["n_fit"] == 272
    assert {h["calibration"]["method"] for h in cell["heads"].values()} == {"temperature", "variance_scale"}
    assert cell["heads"]["radius"]["calibration"]["objective"] == "coverage"


def test_pretrain_probe_on_the_simulator_recalibrates_the_probe(tmp_path):
    """The encoder and its probe both fitted without the calibration rows; images and spectra (named inputs)."""
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config
    from test_pretrain_probe import _config

    _, data = _config(tmp_path, recalibrate=True, calibration_fraction=0.25)
    data["trainer"]["max_epochs"] = 1
    cfg = parse_config(data)
    (cell,) = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"]
    assert cell["calibration"]["n_calibration"] == 48 and cell["calibration"]["n_fit"] == 144  # of 192
    cal = cell["heads"]["class"]["calibration"]
    assert cal["method"] == "temperature" and cal["n"] == cell["n_test"] == 48 and cal["n_calibration"] == 48
    assert cal["fit"]["nll_after"] <= cal["fit"]["nll_before"] + 1e-9  # T = 1 is among the candidates


def test_a_classical_model_on_one_target_and_a_regressor_without_variance(tmp_path):
    """Array inputs and one target array: the classifier is recalibrated; a point regressor is skipped, named."""
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    path = stars().save(tmp_path / "d.h5")

    def run(target, model, name):
        cfg = parse_config({"name": "cal", "protocol": {"kind": "holdout", "recalibrate": True},
                            "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)}, "target": target}},
                            "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2"]}},
                            "models": [{"name": model}], "report": {"embeddings": []}})
        return BenchmarkRunner(cfg, tmp_path / name).run()["cells"][0]

    c = run("class", "logistic_regression", "clf")
    cal = c["heads"]["class"]["calibration"]
    assert cal["method"] == "temperature" and cal["n_calibration"] == 48 and cal["n"] == 80
    assert cal["fit"]["nll_after"] <= cal["fit"]["nll_before"] + 1e-12
    r = run("flux", "ridge", "reg")  # no variance predicted: nothing to rescale
    assert "calibration" not in r["heads"]["flux"] and r["calibration"]["skipped"] == {"flux": "no predicted variance"}
    assert r["calibration"]["stratified_on"] is None and r["calibration"]["n_calibration"] == 48
