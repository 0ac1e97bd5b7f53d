"""The realism report: its measures on hand-made samples with known answers, and the verb end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import astromodal.cli.realism  # noqa: F401  (registers the verb)
from astromodal.cli import app
from astromodal.data.simulate.gaia_xp import xp_fit, xp_operator
from astromodal.errors import ConfigError
from astromodal.evaluation import realism

runner = CliRunner()
MAIN = "import astromodal.cli.realism; from astromodal.cli import main; main()"


def run_main(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", MAIN, *args], capture_output=True, text=True, env=env)


def test_ks_of_identical_samples_is_zero_and_of_disjoint_ones_is_one():
    x = np.random.default_rng(0).normal(size=500)
    rows = {r["feature"]: r for r in realism.ks_table({"same": x, "apart": x, "nan": x},
                                                      {"same": x.copy(), "apart": x + 100.0,
                                                       "nan": np.full(3, np.nan)})}
    assert rows["same"]["ks"] == 0.0 and rows["same"]["p"] == pytest.approx(1.0)
    assert rows["apart"]["ks"] == 1.0 and rows["apart"]["p"] < 1e-100
    assert np.isnan(rows["nan"]["ks"]) and rows["nan"]["n_real"] == 0  # NaNs dropped, never a silent number
    per_pixel = realism.ks_per_column(np.c_[x, x], np.c_[x, x + 100.0])
    assert per_pixel.tolist() == [0.0, 1.0]


def test_two_sample_test_auc_near_half_for_one_distribution_and_near_one_when_shifted():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    same = realism.c2st_auc(a, b, seed=0, max_iter=50)
    assert abs(same["auc"] - 0.5) < 0.1 and same["n_sim"] == same["n_real"] == 400
    shifted = realism.c2st_auc(a, b + 3.0, seed=0, max_iter=50)
    assert shifted["auc"] > 0.97
    assert realism.c2st_auc(a, b, seed=0, max_iter=50) == same  # repeatable
    with pytest.raises(ConfigError):
        realism.c2st_auc(a, b[:, :3])


def test_transfer_and_within_real_cv_score_a_separable_problem():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 40)
    X = rng.normal(size=(120, 3)) * 0.1 + y[:, None]
    tr = realism.transfer(X, y, X + 0.01, y, ["a", "b", "c"])
    assert tr["accuracy"] == 1.0 and tr["recall"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    y_wrong = (y + 1) % 3  # real labels disagree with the simulated ones: recall 0 everywhere
    assert realism.transfer(X, y, X, y_wrong, ["a", "b", "c"])["balanced_accuracy"] == 0.0
    cv = realism.within_real_cv(X, y, ["a", "b", "c"], k=5)
    assert cv["accuracy"] == 1.0 and len(cv["accuracy_folds"]) == 5


def test_xp_fit_reproduces_spectra_in_the_span_of_gaiaxpy_bases():
    if importlib.util.find_spec("gaiaxpy") is None:  # not importorskip: importing GaiaXPy turns on usetex
        pytest.skip("GaiaXPy is not installed")
    A = xp_operator()
    c = np.zeros((2, 110))
    c[:, [0, 1, 55, 56]] = [[100.0, -30.0, 80.0, -20.0], [50.0, 10.0, 120.0, 5.0]]
    coef, resid = xp_fit(c @ A)
    assert coef.shape == (2, 110) and np.all(resid < 0.03)
    assert np.allclose(realism.xp_spectra_to_coefficients(1e19 * (c @ A)), 1e19 * coef)  # any flux unit


def test_mean_scores_averages_independent_runs():
    runs = [{"accuracy": 0.5, "balanced_accuracy": 0.4, "recall": {"a": 0.2}, "n": 10},
            {"accuracy": 0.7, "balanced_accuracy": 0.6, "recall": {"a": 0.4}, "n": 10}]
    m = realism.mean_scores(runs)
    assert m["accuracy"] == pytest.approx(0.6) and m["accuracy_std"] == pytest.approx(0.1)
    assert m["recall"] == {"a": pytest.approx(0.3)} and m["runs"] == 2


def test_parse_sets():
    assert realism.parse_sets("sdss, lamost,sdss") == ("sdss", "lamost")
    assert realism.parse_sets(None) == realism.SETS
    with pytest.raises(ConfigError, match="--sets"):
        realism.parse_sets("lamost,hubble")


def test_missing_real_set_is_skipped_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROMODAL_DATA", str(tmp_path / "nothing"))
    result = runner.invoke(app, ["realism", "--out", str(tmp_path / "out"), "--sets", "sdss", "--n", "60"])
    assert result.exit_code == 0, result.output
    assert "sdss: skipped (real data not found" in result.stdout
    assert "skipped" in (tmp_path / "out" / "report.md").read_text()


def test_refuses_an_output_folder_with_user_files_before_any_work(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    proc = run_main("realism", "--out", str(out), "--n", "60")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    bad = run_main("realism", "--out", str(tmp_path / "x"), "--sets", "hubble")
    assert bad.returncode == 1 and "--sets" in bad.stderr and not (tmp_path / "x").exists()


@pytest.mark.realdata
def test_realism_end_to_end_on_the_real_sets(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ASTROMODAL_DATA", str(shared_data))
    monkeypatch.setenv("ASTROMODAL_NO_PROGRESS", "1")
    out = tmp_path / "realism"
    args = ["realism", "--out", str(out), "--n", "200", "--sdss-rows", "600", "--seed", "1", "--repeats", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("report.md", "report.html", "realism.csv", "realism.json"):
        assert (out / name).is_file(), name
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert {"lamost_median_spectra.png", "sdss_histograms.png", "gaia_xp_median_coefficients.png"} <= set(figures)
    csv = pd.read_csv(out / "realism.csv")
    assert set(csv["set"]) == {"lamost", "sdss", "gaia_xp"}
    summary = json.loads((out / "realism.json").read_text())
    lam = summary["sets"]["lamost"]
    assert lam["n_real"] == 176 and lam["real_counts"] == {"A": 40, "F": 46, "G": 34, "K": 38, "M": 18}
    transfer = lam["tasks"]["AFGKM"]["sim_to_real"]
    assert 0.0 <= transfer["recall"]["G"] <= 1.0
    assert len(transfer["accuracy_runs"]) == 2 and transfer["accuracy"] == pytest.approx(
        np.mean(transfer["accuracy_runs"]))  # the mean over independent simulations
    assert set(lam["tasks"]) == {"AFGKM", "FGK"}
    sdss = summary["sets"]["sdss"]
    assert sdss["n_real"] == 600 and sdss["n_real_total"] == 99999
    assert {(r["group"], r["feature"]) for r in sdss["ks"]} == {
        (c, f) for c in realism.SDSS_CLASSES for f in realism.SDSS_KS_FEATURES}
    assert all(0.0 <= r["ks"] <= 1.0 for r in sdss["ks"])
    xp = summary["sets"]["gaia_xp"]
    assert {"coefficients", "coefficients_roundtrip", "coefficients_floor", "sampled343"} <= set(xp["c2st"])
    assert all(0.0 <= v["auc"] <= 1.0 for v in xp["c2st"].values())
    assert "sim->real" in result.stdout and "target" in result.stdout  # the headline: stdout
    # a second run into the same folder is refused without --overwrite (before any work)
    again = runner.invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, ConfigError)
