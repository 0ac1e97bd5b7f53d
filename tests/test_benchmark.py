"""The benchmark runner end to end on a tiny table: cells, resume, protocols, report, saved models, predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Column, Dataset, Target
from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.experiments import parse_config


def blobs(n: int = 240, seed: int = 0) -> Dataset:
    """Three well separated classes in 4 catalogue columns."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    return Dataset(
        ids=np.array([f"s{i}" for i in range(n)]),
        ra=rng.uniform(0, 360, n),
        dec=rng.uniform(-60, 60, n),
        columns={f"c{k}": Column(X[:, k]) for k in range(4)},
        targets={"class": Target(y, "class", ("star", "galaxy", "qso"))},
    )


def config(path, **extra):
    base = {
        "name": "tiny",
        "datasets": {"blobs": {"source": "hdf5", "options": {"path": str(path)}}},
        "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2", "c3"]}},
        "models": [{"name": "logistic_regression"}, {"name": "random_forest", "options": {"n_estimators": 20}}],
        "report": {"embeddings": ["pca"]},
    }
    base.update(extra)
    return parse_config(base)


@pytest.fixture()
def table(tmp_path):
    return blobs().save(tmp_path / "blobs.h5")


def test_holdout_run_writes_report_and_resumes(tmp_path, table, monkeypatch):
    out = tmp_path / "run"
    results = BenchmarkRunner(config(table), out).run()
    accs = {c["model"]: c["metrics"]["accuracy"] for c in results["cells"]}
    assert set(accs) == {"logistic_regression", "random_forest"}
    assert min(accs.values()) > 0.9
    assert all(c["n_test"] == 48 for c in results["cells"])  # 20% of 240, stratified
    for name in ("report.md", "report.html", "results.json", "results.csv", "results.parquet"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    assert "**average**" in md and "logistic_regression" in md and "figures/cm_blobs_cols_random_forest.png" in md
    assert (out / "figures" / "pca_cols_blobs.png").is_file()
    cells = pd.read_parquet(out / "results.parquet")
    assert cells.shape[0] == 2
    # every score comes with its 95 % bootstrap interval over the 48 test objects
    assert (cells["accuracy_lo"] <= cells["accuracy"]).all() and (cells["accuracy"] <= cells["accuracy_hi"]).all()
    assert ((cells["accuracy_hi"] - cells["accuracy_lo"] > 0.01) | (cells["accuracy"] == 1.0)).all()
    assert "95 % bootstrap interval" in md

    # a re-run reads the finished cells back instead of training them again
    def boom(*a, **k):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(BenchmarkRunner, "run_cell", boom)
    again = BenchmarkRunner(config(table), out).run()
    assert {c["model"]: c["metrics"]["accuracy"] for c in again["cells"]} == accs
    # and writes the same report: the data table and embeddings included
    assert (out / "report.md").read_text() == md


def test_resume_retrains_only_cells_whose_settings_changed(tmp_path, table):
    out = tmp_path / "run"
    BenchmarkRunner(config(table), out).run()
    trained = []
    original = BenchmarkRunner.run_cell

    def spy(self, cell, data):
        trained.append(cell.model.name)
        return original(self, cell, data)

    import unittest.mock

    with unittest.mock.patch.object(BenchmarkRunner, "run_cell", spy):
        # report settings do not decide a result: nothing is trained again
        BenchmarkRunner(config(table, report={"embeddings": []}), out).run()
        # nor do trainer settings for scikit-learn models
        BenchmarkRunner(config(table, trainer={"max_epochs": 3}), out, precision="bf16-mixed").run()
        assert trained == []
        # a model option does: that cell alone is trained again, and the report says so
        models = [{"name": "logistic_regression"}, {"name": "random_forest", "options": {"n_estimators": 5}}]
        BenchmarkRunner(config(table, models=models), out).run()
    assert trained == ["random_forest"]
    assert "trained again because their settings changed" in (out / "report.md").read_text()


def test_unknown_model_leaves_no_output(tmp_path, table):
    from astromodal.errors import ConfigError

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="unknown model 'no_such_model'"):
        BenchmarkRunner(config(table, models=[{"name": "no_such_model"}]), out).run()
    assert not out.exists()


def test_same_seed_same_numbers(tmp_path, table):
    a = BenchmarkRunner(config(table), tmp_path / "a").run()
    b = BenchmarkRunner(config(table), tmp_path / "b").run()
    assert [c["metrics"] for c in a["cells"]] == [c["metrics"] for c in b["cells"]]


def test_cross_validation_protocol(tmp_path, table):
    cfg = config(table, protocol={"kind": "cv", "k": 4}, models=[{"name": "logistic_regression"}])
    (cell,) = BenchmarkRunner(cfg, tmp_path / "cv").run()["cells"]
    assert len(cell["fold_scores"]) == 4 and cell["n_test"] == 240  # every object predicted once, out of fold
    assert cell["metrics"]["accuracy"] == pytest.approx(np.mean(cell["fold_scores"]), abs=0.02)
    report = (tmp_path / "cv" / "report.md").read_text()
    assert "stratified 4-fold cross-validation over all objects" in report and "test split" not in report
    assert "Accuracy per model (mean ± std over the cross-validation folds)" in report


def test_cross_validation_records_the_network_size(tmp_path, table):
    cfg = config(table, protocol={"kind": "cv", "k": 3}, models=[{"name": "mlp_columns", "options": {"hidden": [8]}}],
                 trainer={"max_epochs": 2, "batch_size": 64, "patience": None})
    (cell,) = BenchmarkRunner(cfg, tmp_path / "cv").run()["cells"]
    assert cell["n_parameters"] == 4 * 8 + 8 + 8 * 3 + 3 and cell["n_members"] == 1


def test_kfold_ensemble_with_a_neural_model_then_predict(tmp_path, table):
    cfg = config(
        table,
        protocol={"kind": "kfold_ensemble", "k": 3},
        models=[{"name": "mlp_columns", "options": {"hidden": [16]}}],
        trainer={"max_epochs": 15, "batch_size": 32, "lr": 0.01, "patience": None},
        save_models=True,
    )
    out = tmp_path / "kf"
    (cell,) = BenchmarkRunner(cfg, out).run()["cells"]
    assert len(cell["folds"]) == 3 and cell["metrics"]["accuracy"] > 0.85
    # the size of one model as the study tables quote it (4 -> 16 -> 3), not the sum over the 3 fold models
    assert cell["n_parameters"] == 4 * 16 + 16 + 16 * 3 + 3 and cell["n_members"] == 3
    assert "val_accuracy" in (out / "report.md").read_text()
    model_dir = out / cell["model_dir"]
    pred = tmp_path / "pred.parquet"
    result = CliRunner().invoke(app, ["predict", str(model_dir), str(table), "--out", str(pred), "--chunk-size", "100"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(pred)
    assert len(frame) == 240 and {"id", "ra", "dec", "prob_star", "prob_galaxy", "prob_qso", "label"} <= set(frame.columns)
    truth = blobs().targets["class"].labels()
    assert np.mean(frame["label"].to_numpy() == truth) > 0.85
    assert not (tmp_path / "pred.parquet.parts").exists()


def test_cli_benchmark_bad_key_is_one_line(tmp_path, table):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"name": "x", "datasets": {}, "representations": {}, "models": [], "epochs": 3}))
    import subprocess
    import sys

    from astromodal.cli import main

    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "benchmark", str(cfg)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "unknown key 'epochs'" in proc.stderr and proc.stderr.count("\n") == 1
    assert main is not None


def test_results_json_is_plain_json(tmp_path, table):
    out = tmp_path / "r"
    BenchmarkRunner(config(table, models=[{"name": "logistic_regression"}]), out).run()
    data = json.loads((out / "results.json").read_text())
    assert data["cells"][0]["metrics"]["confusion_matrix"][0][0] > 10


def imbalanced(n: int = 300, seed: int = 1) -> Dataset:
    """A binary task, 1 positive in 5, overlapping classes, plus 4 'xp_*' columns and one other."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 5 == 0).astype(int)
    X = rng.normal(size=(n, 4)) + 0.9 * y[:, None]
    cols = {f"xp_{k}": Column(X[:, k] + 5.0) for k in range(4)}
    cols["other"] = Column(rng.normal(size=n))
    return Dataset(ids=np.arange(n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n), columns=cols,
                   targets={"massive": Target(y, "class", ("low_mass", "massive"))})


def test_threshold_from_out_of_fold_predictions_and_column_patterns(tmp_path):
    from astromodal.training.estimator import load_estimator

    path = imbalanced().save(tmp_path / "imb.h5")
    base = dict(datasets={"d": {"source": "hdf5", "target": "massive", "options": {"path": str(path)}}},
                representations={"xp": {"kind": "columns", "columns": ["xp_*"], "normalise": "l2"}},
                models=[{"name": "logistic_regression"}], save_models=True, report={"embeddings": []})
    plain = BenchmarkRunner(config(path, **base, protocol={"kind": "kfold_ensemble", "k": 4}), tmp_path / "a").run()
    tuned = BenchmarkRunner(config(path, **base, protocol={"kind": "kfold_ensemble", "k": 4,
                                                             "threshold": "balanced_accuracy"}), tmp_path / "b").run()
    (a,), (b,) = plain["cells"], tuned["cells"]
    assert "threshold" not in a and b["threshold"]["rule"] == "balanced_accuracy"
    thr = b["threshold"]["value"]
    assert 0 < thr < 0.5  # positives are rare: the best threshold sits below 0.5
    # the tuned threshold lifts balanced accuracy on the untouched test split; AUC is threshold-free
    assert b["metrics"]["balanced_accuracy"] > a["metrics"]["balanced_accuracy"]
    assert b["metrics"]["roc_auc"] == pytest.approx(a["metrics"]["roc_auc"])
    # the saved fold ensemble carries the threshold, and its labels follow it
    ens = load_estimator(tmp_path / "b" / b["model_dir"], trust=True)
    assert ens.threshold == pytest.approx(thr)
    xs = np.random.default_rng(0).normal(size=(50, 4)) + 5.0
    xs = xs / np.linalg.norm(xs, axis=1, keepdims=True)
    assert ens.predict(xs).tolist() == (ens.predict_proba(xs)[:, 1] >= thr).astype(int).tolist()
    assert f"{thr:.3f} (balanced_accuracy)" in (tmp_path / "b" / "report.md").read_text()


def test_column_patterns_and_standardise_option(tmp_path):
    from astromodal.errors import ConfigError
    from astromodal.experiments import RepresentationConfig
    from astromodal.transforms.representations import build_inputs, expand_columns

    ds = imbalanced()
    assert expand_columns(ds, ["xp_*", "other", "xp_0"]) == ["xp_0", "xp_1", "xp_2", "xp_3", "other"]
    with pytest.raises(ConfigError, match="matches none"):
        expand_columns(ds, ["bp_*"])
    x = build_inputs(ds, RepresentationConfig(kind="columns", columns=["xp_?"], normalise="l2"))["columns"]
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ConfigError, match="not per-object"):
        build_inputs(ds, RepresentationConfig(kind="columns", columns=["xp_0"], normalise="standard"))
    cfg = config(tmp_path / "x.h5", models=[{"name": "mlp_columns", "standardise": ["columns"]}])
    assert cfg.models[0].standardise == ["columns"]
    with pytest.raises(ConfigError, match="standardise"):
        config(tmp_path / "x.h5", models=[{"name": "mlp_columns", "standardise": ["flux"]}])


def test_predict_keeps_asked_columns_and_targets(tmp_path, table):
    cfg = config(table, models=[{"name": "logistic_regression"}], save_models=True)
    (cell,) = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"]
    model_dir = tmp_path / "run" / cell["model_dir"]
    pred = tmp_path / "p.parquet"
    result = CliRunner().invoke(app, ["predict", str(model_dir), str(table), "--out", str(pred), "--trust",
                                      "--keep", "class", "--keep", "c0"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(pred)
    truth = blobs().targets["class"].labels()
    assert frame["true_class"].tolist() == truth.tolist()  # the predicted target's truth, renamed
    np.testing.assert_allclose(frame["c0"], blobs().columns["c0"].values.read())
    assert np.mean(frame["label"] == frame["true_class"]) > 0.9
    bad = CliRunner().invoke(app, ["predict", str(model_dir), str(table), "--out", str(tmp_path / "q.parquet"),
                                   "--trust", "--keep", "nope"])
    assert bad.exit_code != 0 and "nope" in str(bad.exception) and not (tmp_path / "q.parquet").exists()


def xp_like(n: int = 120, length: int = 60, seed: int = 0, zero_row: int | None = None) -> Dataset:
    """Positive spectra whose slope tells two classes apart (a stand-in for Gaia XP)."""
    from astromodal.data.dataset import Spectra

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.linspace(0, 1, length)
    flux = 1.0 + (0.5 + y[:, None]) * x[None, :] + 0.05 * rng.normal(size=(n, length))
    if zero_row is not None:
        flux[zero_row] = 0.0
    return Dataset(ids=np.arange(1000, 1000 + n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
                   spectra={"gaia_xp": Spectra(flux.astype(np.float32), np.linspace(3360, 10200, length))},
                   targets={"massive": Target(y, "class", ("low_mass", "massive"))})


def test_predict_bad_spectra_are_one_line_errors(tmp_path):
    import subprocess
    import sys

    xp_like().save(tmp_path / "train.h5")
    cfg = parse_config({
        "name": "xp", "datasets": {"d": {"source": "hdf5", "target": "massive",
                                         "options": {"path": str(tmp_path / "train.h5")}}},
        "representations": {"XP": {"kind": "spectrum", "spectra": "gaia_xp", "normalise": "l2", "context": True}},
        "models": [{"name": "wide_ann"}], "trainer": {"max_epochs": 2, "patience": None},
        "save_models": True, "report": {"embeddings": [], "roc_curves": False}})
    (cell,) = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"]
    model_dir = tmp_path / "run" / cell["model_dir"]
    xp_like(length=50).save(tmp_path / "short.h5")
    xp_like(zero_row=7).save(tmp_path / "zero.h5")
    for catalogue, message in (("short.h5", "trained on [60]"), ("zero.h5", "norm is 0")):
        out = tmp_path / f"{catalogue}.parquet"
        proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "predict",
                               str(model_dir), str(tmp_path / catalogue), "--out", str(out)],
                              capture_output=True, text=True)
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert not out.exists() and not out.with_name(out.name + ".parts").exists()
    assert "1007" in proc.stderr or "row 7" in proc.stderr  # the all-zero spectrum is named


def test_fingerprint_follows_the_settings_that_change_a_network(tmp_path, table):
    cfg = config(table, models=[{"name": "mlp_columns"}, {"name": "logistic_regression"}])

    def prints(**kw):
        runner = BenchmarkRunner(cfg, tmp_path / "r", **kw)
        return [runner.fingerprint(c) for c in runner.cells()]

    base = prints()
    assert prints(device="cpu") == base  # the device is not a setting of the experiment
    for kw in ({"precision": "bf16-mixed"}, {"channels_last": True}):
        net, classical = prints(**kw)
        assert net != base[0] and classical == base[1]  # trainer settings decide only the network


def test_every_dataset_missing_is_an_error_naming_them(tmp_path, table):
    from astromodal.errors import DataFormatError

    cfg = config(table)
    cfg.datasets["blobs"].required = False
    cfg.datasets["blobs"].options["path"] = str(tmp_path / "gone.h5")
    with pytest.raises(DataFormatError, match=r"no cell could run: dataset 'blobs' skipped: .*gone\.h5 not found"):
        BenchmarkRunner(cfg, tmp_path / "run").run()
    assert not (tmp_path / "run").exists()


def test_grid_table_average_and_variance_hand_values():
    from astromodal.evaluation.benchmark_report import grid_table

    def rec(model: str, acc: float) -> dict:
        return {"model": model, "family": "classical", "dataset": "d", "representation": "r",
                "task": "classification", "metrics": {"accuracy": acc}}

    rows, columns = grid_table([rec("a", 0.80), rec("b", 0.90)])
    assert columns == ["model", "r-d"]
    by_model = {r["model"]: r for r in rows}
    assert by_model["a"]["r-d"] == "0.800"
    assert by_model["**average**"]["r-d"] == "0.850"
    assert by_model["**variance**"]["r-d"] == "0.00250"  # ((0.05)^2 + (0.05)^2) / 2
    rows, _ = grid_table([rec("a", 0.9790), rec("b", 0.9797)])
    assert rows[-1]["r-d"] == "1.2e-07"  # 0.00035^2: shown, not rounded away to 0.00000


def test_protocol_sentence_says_what_the_numbers_are():
    from astromodal.evaluation.benchmark_report import protocol_sentence
    from astromodal.experiments import ProtocolConfig

    holdout = protocol_sentence(ProtocolConfig(kind="holdout", seeds=[0, 1]))
    assert "stratified test split of 0.2" in holdout and "seeds [0, 1] (a seed sets the split" in holdout
    cv = protocol_sentence(ProtocolConfig(kind="cv", k=5))
    assert "5-fold cross-validation over all objects" in cv and "training part of 4 folds and tested once" in cv
    ens = protocol_sentence(ProtocolConfig(kind="kfold_ensemble", k=10, threshold="f1"))
    assert "threshold maximising f1 on the out-of-fold predictions of the training split" in ens
