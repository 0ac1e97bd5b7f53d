"""The tables committed under benchmarks/results come from the code as it is now.

Each test reruns a few cells of a published real-data run with its shipped config (only the model
list is narrowed) and compares the scores with the committed ``results.csv``. The cheapest networks
take a minute or two and are marked ``realdata_slow`` (CI runs them after the main suite); the
other networks take many minutes each and are left to the full runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.experiments import load_config

REPO = Path(__file__).resolve().parents[1]


def published(run: str) -> pd.DataFrame:
    return pd.read_csv(REPO / "benchmarks" / "results" / run / "results.csv")


def rerun(config: str, tmp_path: Path, overrides: dict) -> pd.DataFrame:
    path = REPO / "experiments" / config
    cfg = load_config(path, {"report.embeddings": [], "report.confusion_matrices": False,
                             "report.roc_curves": False, **overrides})
    results = BenchmarkRunner(cfg, tmp_path / "run", config_path=path).run()
    rows = [{"dataset": c["dataset"], "representation": c["representation"], "model": c["model"],
             "seed": c["seed"], "accuracy": c["metrics"]["accuracy"], "balanced_accuracy": c["metrics"]["balanced_accuracy"]}
            for c in results["cells"]]
    return pd.DataFrame(rows)


def shipped(config: str, *labels: str) -> list[dict]:
    """The shipped config's model entries with these table labels (the label, else the name)."""
    models = [m.model_dump() for m in load_config(REPO / "experiments" / config).models
              if (m.label or m.name) in labels]
    assert len(models) == len(labels), f"{config}: not every one of {labels} is a model"
    return models


def assert_same(fresh: pd.DataFrame, run: str, tol: float = 0.002, objects: int = 0) -> None:
    """Every rerun cell's accuracy and balanced accuracy within ``tol`` of the published table, or within
    ``objects`` test objects of it (the networks: see :data:`NETWORK_OBJECTS`)."""
    keys = ["dataset", "representation", "model", "seed"]
    merged = fresh.merge(published(run), on=keys, suffixes=("", "_published"), validate="one_to_one")
    assert len(merged) == len(fresh), "a rerun cell is missing from the published table"
    allowed = np.maximum(tol, (objects + 0.5) / merged["n_test"].to_numpy(dtype=float))
    for metric in ("accuracy", "balanced_accuracy"):
        diff = (merged[metric] - merged[f"{metric}_published"]).abs()
        assert (diff <= allowed).all(), merged[[*keys, "n_test", metric, f"{metric}_published"]].to_string()


#: Networks are trained with oneDNN kernels chosen for the CPU's instruction set, so a rerun on another
#: processor ends a few objects apart (measured: the code that made the tables, rerun on an AVX512-FP16
#: Xeon, scores the Gaia XP 2D-CNN 0.9378 against the published 0.9343, two of 563 test objects, and
#: LAMOST SimpleCNN1 two of 176 spectra apart; LeNet and the Wide ANN exactly). Classical models are exact.
NETWORK_OBJECTS = 3


@pytest.mark.realdata
def test_lamost_real_table(tmp_path, shared_data):
    models = [{"name": m, "representations": ["Line", "Image"]}
              for m in ("logistic_regression", "kneighbors", "random_forest")]
    fresh = rerun("lamost_real.yaml", tmp_path, {"models": models})
    assert len(fresh) == 12
    # one object: logistic regression's lbfgs ends one borderline spectrum apart with the scikit-learn / scipy a
    # fresh install takes (measured with scikit-learn 1.9.1, scipy 1.17.1: Line AFGKM 0.8068 against the
    # published 0.8011, 1 of 176; the code that made the table gives the same 0.8068 there)
    assert_same(fresh, "lamost_real", objects=1)


@pytest.mark.realdata
def test_gaia_massive_stars_real_table(tmp_path, shared_data):
    models = [{"name": "logistic_regression", "representations": ["coefficients"]},
              {"name": "random_forest", "representations": ["coefficients"]}]
    fresh = rerun("gaia_massive_stars_real.yaml", tmp_path, {"models": models})
    assert_same(fresh, "gaia_massive_stars_real")
    # the reference (about 0.885) and the 0.90 target, from a fresh run
    ba = fresh.set_index("model")["balanced_accuracy"]
    assert ba["logistic_regression"] == pytest.approx(0.885, abs=0.01) and ba["random_forest"] >= 0.90


@pytest.mark.realdata
def test_sdss_photometry_table(tmp_path, shared_data):
    fresh = rerun("sdss_photometry.yaml", tmp_path, {"models": shipped("sdss_photometry.yaml", "HGB-tuned")})
    assert_same(fresh, "sdss_photometry")


@pytest.mark.realdata_slow
def test_gaia_massive_stars_real_networks(tmp_path, shared_data):
    # the two cheapest of the ten networks (seconds each): the neural path reproduces its table too
    nets = shipped("gaia_massive_stars_real.yaml", "Wide-ANN", "2D-CNN")
    fresh = rerun("gaia_massive_stars_real.yaml", tmp_path, {"models": nets})
    assert len(fresh) == 2
    assert_same(fresh, "gaia_massive_stars_real", objects=NETWORK_OBJECTS)


@pytest.mark.realdata_slow
def test_lamost_real_networks(tmp_path, shared_data):
    models = [{"name": m, "representations": ["Image"]} for m in ("simple_cnn1", "lenet")]
    fresh = rerun("lamost_real.yaml", tmp_path, {"models": models})
    assert len(fresh) == 4
    assert_same(fresh, "lamost_real", objects=NETWORK_OBJECTS)


@pytest.mark.realdata_slow
def test_sdss_photometry_vote(tmp_path, shared_data):
    vote = shipped("sdss_photometry.yaml", "Vote HGB-tuned+RF")
    fresh = rerun("sdss_photometry.yaml", tmp_path, {"models": vote})
    assert_same(fresh, "sdss_photometry")


@pytest.mark.realdata_slow
def test_sdss_photometry_cv_features(tmp_path, shared_data):
    # 5-fold CV over the whole table: distance-corrected magnitudes and survey metadata, the two
    # feature probes of benchmarks/results/sdss_photometry_cv (HGB-tuned, about 20 s a row)
    hgb = shipped("sdss_photometry_cv.yaml", "HGB-tuned")[0]
    reps = ["photometry", "photometry+z+M", "photometry+meta"]
    fresh = rerun("sdss_photometry_cv.yaml", tmp_path, {"models": [{**hgb, "representations": reps}]})
    assert len(fresh) == 3
    assert_same(fresh, "sdss_photometry_cv")
    acc = fresh.set_index("representation")["accuracy"]
    assert acc["photometry"] < 0.90 < acc["photometry+meta"]  # only the metadata crosses the 0.900 line


@pytest.mark.realdata_slow
def test_sdss_photometry_splits_seed(tmp_path, shared_data):
    # one of the ten split seeds of benchmarks/results/sdss_photometry_splits (the forest, about 40 s)
    fresh = rerun("sdss_photometry.yaml", tmp_path, {
        "models": [{"name": "random_forest", "representations": ["photometry+z"]}], "protocol.seeds": [3]})
    assert len(fresh) == 1
    assert_same(fresh, "sdss_photometry_splits")
