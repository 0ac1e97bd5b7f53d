"""``protocol.recalibrate`` carried into a saved model and applied by ``astromodal predict``: the temperature
and the variance scale fitted in the benchmark cell, checked against the raw outputs (``--no-recalibrate``)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.errors import DataFormatError
from astromodal.inference.catalogue import load_predictor, predict_catalogue


def _stars(path, n=300, seed=0):
    from astromodal.data.dataset import Column, Dataset, Target

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    radius = 1.0 + 0.5 * X[:, 2] + 0.3 * rng.normal(size=n)
    Dataset(ids=np.arange(n, dtype=np.int64) + 2**60, ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
            columns={f"c{k}": Column(X[:, k]) for k in range(3)},
            targets={"class": Target(y, "class", ("A", "F", "G")),
                     "radius": Target(radius, "regression", unit="Rsun")}).save(path)


def _train(tmp_path, targets, heads, recalibrate=True):
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    path = tmp_path / "stars.h5"
    if not path.exists():
        _stars(path)
    protocol = {"kind": "holdout", "test_fraction": 0.2, "seeds": [0]}
    if recalibrate:
        protocol.update(recalibrate=True, calibration_fraction=0.3)
    cfg = parse_config({"name": "recal", "protocol": protocol, "save_models": True,
                        "datasets": {"d": {"source": "hdf5", "options": {"path": str(path)}, "target": targets,
                                           "heads": heads}},
                        "representations": {"r": {"inputs": {"cols": {"kind": "columns",
                                                                       "columns": ["c0", "c1", "c2"]}}}},
                        "models": [{"name": "multi_input_net", "options": {"inputs": ["cols"], "hidden": 16}}],
                        "report": {"embeddings": []},
                        "trainer": {"max_epochs": 15, "batch_size": 32, "lr": 0.01, "seed": 1}})
    out = tmp_path / f"run_{'_'.join(targets)}_{int(recalibrate)}"
    (cell,) = BenchmarkRunner(cfg, out).run()["cells"]
    return cell, out / cell["model_dir"], path


def test_predict_applies_the_fitted_temperature_and_variance_scale(tmp_path):
    cell, model_dir, cat = _train(tmp_path, ["class", "radius"], {"radius": {"kind": "gaussian"}})
    T = cell["heads"]["class"]["calibration"]["parameter"]
    c = cell["heads"]["radius"]["calibration"]["parameter"]
    meta = json.loads((model_dir / "predictor.json").read_text())
    assert meta["recalibration"]["class"] == {"method": "temperature", "parameter": T}
    assert meta["recalibration"]["radius"] == {"method": "variance_scale", "parameter": c, "objective": "nll"}
    assert T != pytest.approx(1.0, abs=1e-3) and c != pytest.approx(1.0, abs=1e-3)

    said: list[str] = []
    cal = pq.read_table(predict_catalogue(model_dir, cat, tmp_path / "cal.parquet", log=said.append)).to_pandas()
    raw = pq.read_table(predict_catalogue(model_dir, cat, tmp_path / "raw.parquet", recalibrate=False,
                                          log=said.append)).to_pandas()
    assert any("recalibrated: class (temperature" in s and "radius (variance_scale" in s for s in said)
    probs = ["prob_A", "prob_F", "prob_G"]
    p_raw = raw[probs].to_numpy(np.float64)
    z = np.log(np.clip(p_raw, 1e-15, None)) / T
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(cal[probs].to_numpy(np.float64), expected, atol=2e-6)  # float32 columns
    assert (cal["class"] == raw["class"]).all()  # labels unchanged
    np.testing.assert_array_equal(cal["radius"], raw["radius"])  # means unchanged
    np.testing.assert_allclose(cal["radius_err"], np.sqrt(c) * raw["radius_err"], rtol=1e-12)
    assert (cal["id"] == np.arange(300) + 2**60).all()
    info = json.loads(pq.read_schema(tmp_path / "cal.parquet").metadata[b"astromodal"])
    assert info["recalibration"]["class"]["parameter"] == T and "recalibration" not in json.loads(
        pq.read_schema(tmp_path / "raw.parquet").metadata[b"astromodal"])
    # the choice is part of the resume fingerprint: parts of a raw run are not reused for a recalibrated one
    assert info["fingerprint"]["recalibrate"] is True


def test_a_one_head_model_recalibrates_its_classic_columns_and_the_cli_flag(tmp_path):
    cell, model_dir, cat = _train(tmp_path, ["class"], {})
    T = cell["heads"]["class"]["calibration"]["parameter"]
    runner = CliRunner()
    for name, flag in (("cal", []), ("raw", ["--no-recalibrate"])):
        res = runner.invoke(app, ["predict", str(model_dir), str(cat), "--out", str(tmp_path / f"{name}.parquet"),
                                  *flag])
        assert res.exit_code == 0, res.output
    cal = pq.read_table(tmp_path / "cal.parquet").to_pandas()
    raw = pq.read_table(tmp_path / "raw.parquet").to_pandas()
    probs = ["prob_A", "prob_F", "prob_G"]
    z = np.log(np.clip(raw[probs].to_numpy(np.float64), 1e-15, None)) / T
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(cal[probs].to_numpy(np.float64), expected / expected.sum(axis=1, keepdims=True),
                               atol=2e-6)
    assert (cal["label"] == raw["label"]).all()


def test_a_model_without_recalibration_and_a_damaged_one(tmp_path):
    _, model_dir, _ = _train(tmp_path, ["class"], {}, recalibrate=False)
    assert "recalibration" not in json.loads((model_dir / "predictor.json").read_text())
    assert load_predictor(model_dir).recalibration == {}
    meta_path = model_dir / "predictor.json"
    meta = json.loads(meta_path.read_text())
    for bad, why in (({"class": {"method": "variance_scale", "parameter": 2.0}}, "does not apply to a categorical"),
                     ({"radius": {"method": "temperature", "parameter": 2.0}}, "not one of the heads"),
                     ({"class": {"method": "temperature", "parameter": -1.0}}, "finite and positive"),
                     ({"class": {"method": "isotonic", "parameter": 1.0}}, "unknown recalibration method"),
                     ([1, 2], "not a JSON object")):
        meta_path.write_text(json.dumps({**meta, "recalibration": bad}))
        with pytest.raises(DataFormatError, match=why):
            load_predictor(model_dir)
