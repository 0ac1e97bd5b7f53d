"""Registered evaluation protocols, the resample_ensemble protocol end to end, and ``benchmark --quick``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Column, Dataset, Target
from astromodal.errors import ConfigError
from astromodal.evaluation import protocols
from astromodal.evaluation.benchmark import QUICK_OBJECTS, BenchmarkRunner, quick_overrides
from astromodal.evaluation.protocols import TestedProtocol, get_protocol, protocol_names, register_protocol
from astromodal.experiments import load_config, parse_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def tiny(n: int = 180, seed: int = 0) -> Dataset:
    """Three separated classes in 4 columns, and a regression target (a linear function plus noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    value = 2.0 * X[:, 0] - X[:, 1] + rng.normal(scale=0.3, size=n)
    return Dataset(
        ids=np.array([f"s{i}" for i in range(n)]),
        ra=rng.uniform(0, 360, n),
        dec=rng.uniform(-60, 60, n),
        columns={f"c{k}": Column(X[:, k]) for k in range(4)},
        targets={"class": Target(y, "class", ("star", "galaxy", "qso")),
                 "value": Target(value, "regression", unit="dex")},
    )


def config(path, **extra) -> dict:
    base = {
        "name": "tiny",
        "datasets": {"t": {"source": "hdf5", "options": {"path": str(path)}}},
        "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2", "c3"]}},
        "models": [{"name": "logistic_regression"}],
        "report": {"embeddings": [], "roc_curves": False},
    }
    base.update(extra)
    return base


@pytest.fixture()
def table(tmp_path):
    return tiny().save(tmp_path / "tiny.h5")


# ---------------------------------------------------------------------- the registry
def test_registry_holds_the_protocols_and_refuses_unknown_ones():
    assert {"holdout", "cv", "kfold_ensemble", "resample_ensemble"} <= set(protocol_names())
    assert get_protocol("cv").uses_test_split is False and get_protocol("holdout").uses_test_split
    with pytest.raises(ConfigError, match="unknown protocol"):
        get_protocol("bootstrap")
    with pytest.raises(ValueError, match="already registered"):
        register_protocol("holdout")(type("Other", (TestedProtocol,), {}))
    with pytest.raises(ConfigError, match="protocol.kind.*unknown protocol 'bootstrap'"):
        parse_config(config("x.h5", protocol={"kind": "bootstrap"}))
    with pytest.raises(ConfigError, match="n_members.*resample_ensemble"):
        parse_config(config("x.h5", protocol={"kind": "holdout", "n_members": 3}))
    with pytest.raises(ConfigError, match="combine_weights"):
        parse_config(config("x.h5", protocol={"kind": "resample_ensemble", "n_members": 2, "combine_weights": [1]}))
    # the resample settings appear only where they apply (other configs keep their dump and fingerprints)
    assert "n_members" not in parse_config(config("x.h5")).protocol.model_dump()
    dump = parse_config(config("x.h5", protocol={"kind": "resample_ensemble"})).protocol.model_dump()
    assert dump["n_members"] == 6 and dump["member_weights"] == "uniform" and dump["combine_weights"] is None


def test_a_new_protocol_is_one_decorated_class(tmp_path, table):
    @register_protocol("first_half")
    class FirstHalf(TestedProtocol):
        """A toy: fit on the first half of the training split only."""

        def fit(self, ctx):
            half = len(ctx.y_train) // 2
            ctx.record["toy_rows"] = half
            return ctx.make().fit(ctx.X_train[:half], ctx.y_train[:half])

    try:
        cfg = parse_config(config(table, protocol={"kind": "first_half"}))
        results = BenchmarkRunner(cfg, tmp_path / "run").run()
        (cell,) = results["cells"]
        assert cell["toy_rows"] == 72 and cell["n_test"] == 36  # 144 training objects (80 % of 180), half used
        assert cell["metrics"]["accuracy"] > 0.8 and "baseline" in cell and "fit_seconds" in cell
    finally:
        protocols.PROTOCOLS._entries.pop("first_half", None)  # the toy leaves the registry as it was
        protocols.PROTOCOLS._meta.pop("first_half", None)


# ---------------------------------------------------------------------- resample_ensemble end to end
def test_resample_ensemble_through_astromodal_benchmark(tmp_path, table):
    cfg = config(table, protocol={"kind": "resample_ensemble", "n_members": 3, "member_weights": "balanced",
                                  "combine_weights": [1, 2, 1]}, save_models=True)
    path = tmp_path / "resample.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["benchmark", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    (cell_file,) = (out / "cells").glob("*.json")
    cell = json.loads(cell_file.read_text())
    assert cell["n_members"] == 3 and len(cell["members"]) == 3
    assert cell["combine_weights"] == pytest.approx([0.25, 0.5, 0.25]) and cell["member_weights"] == "balanced"
    assert cell["oob"]["metric"] == "accuracy" and cell["oob"]["score"] > 0.8 and cell["oob"]["n_covered"] > 100
    assert all(m["n_drawn"] == 144 and 0 < m["n_oob"] < 144 for m in cell["members"])
    assert cell["metrics"]["accuracy"] > 0.8 and (out / "report.md").is_file()
    assert (out / "models" / cell["cell"] / "ensemble.json").is_file()  # saved like a fold ensemble


def test_resample_regression_records_sigma_net(tmp_path, table):
    cfg = parse_config(config(
        table, datasets={"t": {"source": "hdf5", "options": {"path": str(table)}, "target": "value"}},
        models=[{"name": "mlp_columns", "options": {"hidden": [16]}}],
        trainer={"max_epochs": 3, "loss": "gaussian_nll", "batch_size": 32, "patience": None},
        protocol={"kind": "resample_ensemble", "n_members": 2}))
    (cell,) = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"]
    assert cell["task"] == "regression" and cell["n_members"] == 2 and cell["oob"]["metric"] == "rmse"
    assert np.isfinite(cell["oob"]["score"]) and cell["sigma_net"]["mean"] > 0
    assert np.isfinite(cell["metrics"]["nll"])  # the Eq. 1 variance reaches the Gaussian metrics
    md = (tmp_path / "run" / "report.md").read_text()
    assert "Resample ensembles" in md and f"{cell['sigma_net']['mean']:.4g}" in md


# ---------------------------------------------------------------------- --quick
def test_quick_overrides_budget():
    cfg = load_config(EXPERIMENTS / "gaia_massive_stars.yaml")
    quick = quick_overrides(cfg)
    assert all(d.max_objects == QUICK_OBJECTS for d in quick.datasets.values())
    assert quick.trainer["max_epochs"] == 1 and quick.trainer["patience"] is None
    assert quick.protocol.k == 2 and quick.output == str(Path("runs") / "gaia_massive_stars-quick")
    assert cfg.trainer["max_epochs"] == 50 and cfg.protocol.k == 10  # the config itself is untouched
    resample = parse_config({**config("x.h5", protocol={"kind": "resample_ensemble", "combine_weights": [1] * 6},
                                      models=[{"name": "mlp_columns", "trainer": {"max_epochs": 9}}]),
                             "output": "out/study"})
    q = quick_overrides(resample)
    assert q.protocol.n_members == 2 and q.protocol.combine_weights == [1, 1]
    assert q.models[0].trainer["max_epochs"] == 1 and q.output == "out/study-quick"


def test_benchmark_quick_on_a_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    res = CliRunner().invoke(app, ["benchmark", str(EXPERIMENTS / "gaia_massive_stars.yaml"), "--quick"])
    elapsed = time.perf_counter() - start
    assert res.exit_code == 0, res.output
    # about 11 s alone on 2 CPU cores; the bound leaves room for a loaded CI machine (a full run takes hours)
    assert elapsed < 180, f"--quick took {elapsed:.0f} s"
    out = tmp_path / "runs" / "gaia_massive_stars-quick"
    assert not (tmp_path / "runs" / "gaia_massive_stars").exists()  # never the full run's folder
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(cells) == 12 and all(c["n_members"] == 2 and len(c["folds"]) == 2 for c in cells)
    assert all(c["n_train"] == 240 for c in cells)  # 80 % of 300 objects
    assert all(f["epochs"] == 1 for c in cells if c["family"] == "neural" for f in c["folds"])  # one epoch
    assert "quick run (--quick)" in (out / "report.md").read_text()
