"""Review findings of the realism report (issue 14): each mended behaviour on hand-made inputs."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from astromodal.data.simulate.gaia_xp import xp_fit, xp_operator
from astromodal.errors import BadValueError, ConfigError
from astromodal.evaluation import realism

MAIN = "import astromodal.cli.realism; from astromodal.cli import main; main()"


def _sdss_result(ks_values):
    rows = [{"group": "STAR", "feature": f"f{k}", "ks": v} for k, v in enumerate(ks_values)]
    task = {"sim_to_real": {"accuracy": 0.9, "recall": {}}, "within_real_cv": {"accuracy": 0.9}}
    return {"sets": {"sdss": {"ks": rows, "tasks": {"photometry": task, "photometry+z": task}}}}


def test_headline_counts_a_class_without_rows_as_not_met():
    rows = realism.headline(_sdss_result([0.1, math.nan, 0.05]))
    count = next(r for r in rows if r["measure"].startswith("per-class KS <= 0.15"))
    assert "2 of 3" in count["measure"] and "1 not measurable" in count["measure"] and count["met"] == "no"
    worst = next(r for r in rows if r["measure"].startswith("worst per-class KS"))
    assert worst["met"] == "no"  # every measured KS passes, but one could not be measured
    assert next(r for r in realism.headline(_sdss_result([0.1, 0.05]))
                if r["measure"].startswith("per-class KS"))["met"] == "yes"


def test_sdss_set_leaves_out_rows_of_other_classes(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["GALAXY"] * 20 + ["QSO"] * 20 + ["STAR"] * 20 + ["BLAZAR"] * 7
    frame = pd.DataFrame({b: rng.uniform(16, 20, len(classes)) for b in realism.SDSS_BANDS})
    frame["redshift"] = rng.uniform(0, 1, len(classes))
    frame["class"] = classes
    frame["right_ascension_angle"] = rng.uniform(0, 360, len(classes))
    frame["declination_angle"] = rng.uniform(-10, 10, len(classes))
    path = tmp_path / "objs.csv"
    frame.to_csv(path, index=False)
    out = realism.run_sdss(path, 150, 0, tmp_path / "fig", sdss_rows=1000, repeats=1)
    assert out["n_real"] == 60 and out["n_real_other_class"] == 7 and out["n_real_total"] == 67
    assert sum(out["real_counts"].values()) == 60


def test_xp_fit_refuses_non_finite_spectra_and_l2_names_a_zero_row():
    if importlib.util.find_spec("gaiaxpy") is None:
        pytest.skip("GaiaXPy is not installed")
    A = xp_operator()
    flux = np.ones((2, A.shape[1]))
    flux[1, 5] = np.nan
    with pytest.raises(BadValueError, match="row 1"):
        xp_fit(flux)
    with pytest.raises(BadValueError, match="row 1"):
        realism._l2(np.array([[1.0, 2.0], [0.0, 0.0]]))


def test_xp_operator_is_the_readers_merge():
    if importlib.util.find_spec("gaiaxpy") is None:
        pytest.skip("GaiaXPy is not installed")
    from astromodal.data.readers.gaia_xp import xp_continuous_to_sampled

    c = np.random.default_rng(1).normal(size=(3, 110))
    flux, _ = xp_continuous_to_sampled(c[:, :55], c[:, 55:])
    assert np.allclose(c @ xp_operator(), flux, rtol=1e-10, atol=1e-12 * np.abs(flux).max())


def test_study_forest_is_the_registry_model():
    from astromodal.models.registry import build_model

    assert realism.study_forest(3, 1).get_params() == build_model("random_forest", random_state=3,
                                                                  n_jobs=1).get_params()


def test_options_are_checked_in_one_place_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="--jobs"):
        realism.check_options(60, 0, "sdss", 100, 1, 0)
    with pytest.raises(ConfigError, match="--sdss-rows"):
        realism.run_realism(tmp_path / "f", n=60, sdss_rows=10)
    proc = subprocess.run([sys.executable, "-c", MAIN, "realism", "--out", str(tmp_path / "x"), "--jobs", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error:") and "--jobs" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_lamost_set_counts_spectra_of_other_subclasses(tmp_path, monkeypatch):
    from astromodal.data import readers
    from astromodal.data.simulate import simulate_survey

    fake = simulate_survey(n=120, seed=5, class_mix=(1.0, 0.0, 0.0), snr=30.0, instruments="lamost",
                           with_images=False, stellar_selection="lamost", associations=False)
    st = fake.targets["spectral_type"]
    fake.targets["subclass"] = st
    names = [str(st.class_names[int(c)]).upper() for c in np.asarray(st.values.read() if hasattr(st.values, "read")
                                                                     else st.values)]
    n_other = sum(name not in realism.LAMOST_CLASSES for name in names)
    monkeypatch.setattr(readers, "read", lambda path: fake)
    out = realism.run_lamost(tmp_path / "x.h5", 120, 0, tmp_path / "fig", repeats=1)
    assert out["n_real_other_class"] == n_other and out["n_real_total"] == len(names)
    assert out["n_real"] == len(names) - n_other
