"""Every shipped study config runs end to end on a small budget (the full runs are in benchmarks/results).

The overrides shrink data, folds and epochs; the models, representations, protocol and report of each
config are the shipped ones, so a broken config (a wrong block name, a model that cannot read the
representation, a threshold rule on a multi-class task) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.experiments import load_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
QUICK_TRAINER = {"trainer.max_epochs": 1, "trainer.patience": None}


def run(name: str, tmp_path, overrides: dict) -> dict:
    path = EXPERIMENTS / name
    cfg = load_config(path, {**QUICK_TRAINER, "report.embeddings": [], **overrides})
    return BenchmarkRunner(cfg, tmp_path / "run", config_path=path, command=f"astromodal benchmark {path}").run()


def test_gaia_massive_stars_simulated(tmp_path):
    res = run("gaia_massive_stars.yaml", tmp_path, {"datasets.xp.options.n": 300, "protocol.k": 2})
    cells = res["cells"]
    assert len(cells) == 12  # ten networks and two classical references
    assert {c["model"] for c in cells} >= {"CNN", "2D-CNN", "CNN-attention", "CNN-GRU", "CNN-LSTM", "Deep-ANN",
                                           "Wide-ANN", "FCN", "StarNet", "StellarNet"}
    for c in cells:
        assert len(c["folds"]) == 2 and c["metrics"]["roc_auc"] is not None
    md = (tmp_path / "run" / "report.md").read_text()
    assert "val_accuracy" in md and "ROC curves" in md
    json.loads((tmp_path / "run" / "results.json").read_text())


def test_astrospectra_mnist_simulated(tmp_path):
    models = [{"name": "logistic_regression", "representations": ["Line", "Image"]},
              {"name": "simple_cnn1", "representations": ["Image"]}]
    res = run("astrospectra_mnist_sim.yaml", tmp_path, {"datasets.v1.options.n": 300, "datasets.v2.options.n": 400,
                                                         "models": models})
    assert {(c["dataset"], c["representation"]) for c in res["cells"]} == {
        ("v1", "Line"), ("v1", "Image"), ("v2", "Line"), ("v2", "Image")}
    assert "Table 1: classical models" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.realdata
def test_gaia_massive_stars_real(tmp_path, shared_data):
    models = [{"name": "logistic_regression"}, {"name": "wide_ann", "representations": ["XP"],
                                                 "standardise": ["spectrum", "context"]}]
    res = run("gaia_massive_stars_real.yaml", tmp_path, {"datasets.gaia_xp.max_objects": 400, "protocol.k": 2,
                                                          "models": models})
    assert {(c["model"], c["representation"]) for c in res["cells"]} == {
        ("logistic_regression", "XP"), ("logistic_regression", "coefficients"), ("wide_ann", "XP")}
    assert all(0.0 <= c["threshold"]["value"] <= 1.0 for c in res["cells"])


@pytest.mark.realdata
def test_sdss_photometry_real(tmp_path, shared_data):
    res = run("sdss_photometry.yaml", tmp_path, {"datasets.sdss17.max_objects": 1500,
                                                  "models": [{"name": "random_forest", "options": {"n_estimators": 30}},
                                                             {"name": "mlp_columns"}]})
    acc = {(c["model"], c["representation"]): c["metrics"]["accuracy"] for c in res["cells"]}
    assert len(acc) == 4
    # redshift separates stars (z ~ 0) and most quasars: it helps even on 1,200 training objects
    assert acc[("random_forest", "photometry+z")] > acc[("random_forest", "photometry")]


@pytest.mark.realdata
def test_sdss_photometry_cv_real(tmp_path, shared_data):
    res = run("sdss_photometry_cv.yaml", tmp_path, {"datasets.sdss17.max_objects": 1500, "protocol.k": 2})
    cells = res["cells"]
    assert len(cells) == 5 * 3  # five feature sets x RF, HGB-tuned, their vote
    assert {len(c["fold_scores"]) for c in cells} == {2}
    assert {c["n_test"] for c in cells} == {1500}  # cross-validation: every object tested once


@pytest.mark.realdata
def test_lamost_real(tmp_path, shared_data):
    res = run("lamost_real.yaml", tmp_path, {"protocol.k": 2, "models": [
        {"name": "logistic_regression", "representations": ["Line", "Image"]},
        {"name": "simple_cnn1", "representations": ["Image"]}]})
    by = {(c["dataset"], c["representation"], c["model"]): c for c in res["cells"]}
    assert len(by) == 6
    assert by[("AFGKM", "Line", "logistic_regression")]["n_test"] == 176  # every spectrum scored out of fold
    assert by[("FGK", "Line", "logistic_regression")]["class_names"] == ["F", "G", "K"]
    assert by[("FGK", "Line", "logistic_regression")]["n_test"] == 118


@pytest.mark.realdata
def test_lamost_teff(tmp_path, shared_data):
    # the real Teff table: sentinel magnitudes dropped, every cell against the training mean, the Gaussian
    # head's sigma scored (the full run is benchmarks/results/lamost_teff)
    res = run("lamost_teff.yaml", tmp_path, {"trainer.max_epochs": 3})
    cells = {c["model"]: c for c in res["cells"]}
    assert set(cells) == {"random_forest_regressor", "hist_gradient_boosting_regressor", "MLP", "MLP-gaussian"}
    for c in cells.values():
        assert c["n_train"] + c["n_test"] == 1765  # 3,165 stars less the 1,400 with an unmeasured magnitude
        assert c["baseline"]["metrics"]["rmse"] > 500
    assert cells["random_forest_regressor"]["beats_baseline"]
    assert {"nll", "coverage_68", "coverage_95"} <= set(cells["MLP-gaussian"]["metrics"])


def test_sfr_sim_simulated(tmp_path):
    """Study D's config on a small budget: every baseline, fusion, probe and isolation cell trains on the
    HiSS-Cube-layout simulation and the report answers each comparison (the 4 x 4 grid is left to the full
    run: its cells are the same intermediate fusion on other zoom blocks, tested in test_sweep_grid)."""
    res = run("sfr_sim.yaml", tmp_path, {"datasets.sim.options.n": 260, "sweeps": [],
                                         "report.exploratory": None})
    cells = {(c["model"], c["representation"]) for c in res["cells"]}
    assert {("early", "both"), ("intermediate", "both"), ("late", "both"), ("cross_attention", "both"),
            ("clip_knn", "both"), ("clip_mlp", "both"), ("cnn_image", "image_crop"), ("cnn_image", "image_mask"),
            ("forest", "spectra_photometry"), ("boosting", "photometry")} <= cells
    assert len(res["cells"]) == 23  # with the grid's own entry (intermediate_grid) on its base representation
    out = json.loads((tmp_path / "run" / "results.json").read_text())
    names = {c["name"] for c in out["comparisons"]}
    assert names == {"modality", "fusions", "trees", "probes", "isolation"}
    modality = next(c for c in out["comparisons"] if c["name"] == "modality")
    assert modality["versus"]["all"]["sentence"] and modality["summary"]
    for c in res["cells"]:  # quasars have no SFR: only galaxies are scored
        assert c["task"] == "regression" and c["n_test"] < 0.2 * 260
