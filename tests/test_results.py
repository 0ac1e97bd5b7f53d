"""Typed cell results: round trip, old cells scored again, multi-target config checks, standardise by
input name, and the report written from results and a data summary alone (no runner)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.errors import ConfigError
from astromodal.evaluation.benchmark import BenchmarkRunner
from astromodal.experiments import parse_config


def blobs(n: int = 150, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4)) + 3.0 * np.eye(3, 4)[y]
    return Dataset(ids=np.arange(n), ra=rng.uniform(0, 360, n), dec=rng.uniform(-60, 60, n),
                   columns={f"c{k}": Column(X[:, k]) for k in range(4)},
                   targets={"class": Target(y, "class", ("star", "galaxy", "qso"))})


def config(path, **extra):
    base = {"name": "tiny", "datasets": {"b": {"source": "hdf5", "options": {"path": str(path)}}},
            "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1", "c2", "c3"]}},
            "models": [{"name": "logistic_regression"}], "report": {"embeddings": [], "roc_curves": False}}
    base.update(extra)
    return parse_config(base)


@pytest.fixture()
def table(tmp_path):
    return blobs().save(tmp_path / "b.h5")


def test_a_cell_reads_back_as_a_typed_result(tmp_path, table):
    from astromodal.evaluation.results import CellResult, HeadResult

    out = tmp_path / "run"
    BenchmarkRunner(config(table), out).run()
    (path,) = (out / "cells").glob("*.json")
    record = json.loads(path.read_text())
    cell = CellResult.model_validate(record)
    assert cell.to_record() == record  # the typed result writes back exactly the record it was read from
    assert list(cell.heads) == ["class"] and isinstance(cell.heads["class"], HeadResult)
    head = cell.heads["class"]
    # a single-target cell keeps its keys at the top level: they are the primary head's
    assert cell.metrics == head.metrics and cell.class_names == head.class_names == ["star", "galaxy", "qso"]
    assert cell.baseline == head.baseline and cell.beats_baseline is head.beats_baseline is True
    assert head.ci95 == cell.metrics["ci95"] and head.n == cell.n_test == 30
    assert "unit" not in record and "sigma_net" not in record  # no key a classification cell never had


@pytest.mark.parametrize("edit", ["no_fingerprint", "older_scoring"])
def test_a_cell_of_an_older_version_is_trained_again(tmp_path, table, monkeypatch, edit):
    import astromodal.evaluation.benchmark as bm

    out = tmp_path / "run"
    runner = BenchmarkRunner(config(table), out)
    if edit == "older_scoring":  # the cells of a run whose scoring version was the one before
        monkeypatch.setattr(bm, "SCORING_VERSION", bm.SCORING_VERSION - 1)
    runner.run()
    (path,) = (out / "cells").glob("*.json")
    if edit == "no_fingerprint":  # a cell written before fingerprints existed
        record = json.loads(path.read_text())
        del record["fingerprint"]
        path.write_text(json.dumps(record))
    monkeypatch.undo()
    trained = []
    original = BenchmarkRunner.run_cell

    def spy(self, cell, data):
        trained.append(cell.id)
        return original(self, cell, data)

    monkeypatch.setattr(BenchmarkRunner, "run_cell", spy)
    BenchmarkRunner(config(table), out).run()
    assert len(trained) == 1
    assert json.loads(path.read_text())["fingerprint"] == BenchmarkRunner(config(table), out).fingerprint(
        BenchmarkRunner(config(table), out).cells()[0])
    BenchmarkRunner(config(table), out).run()  # now current: reused
    assert len(trained) == 1


@pytest.mark.parametrize(("dataset", "message"), [
    ({"target": ["class", "radius", "class"]}, "target(s) ['class'] named twice"),
    ({"target": []}, "name at least one target"),
    ({"target": ["class", "radius"], "heads": {"mass": {"kind": "gaussian"}}}, "heads ['mass'] name no target"),
    ({"target": ["class", "radius"], "heads": {"radius": {"kind": "gaussian", "wieght": 2}}},
     "unknown key 'datasets.b.heads.radius.wieght'"),
    ({"target": ["class", "radius"], "heads": {"radius": {"kind": "laplace"}}}, "unknown head kind 'laplace'"),
    ({"target": "class", "heads": {"class": {"weight": -1}}}, "'datasets.b.heads.class.weight'"),
    ({"target": ["class", "radius"], "heads": {"radius": {"kind": "gaussian", "class_weight": "balanced"}}},
     "class_weight is for class heads, not a gaussian head"),
])
def test_multi_target_config_errors_are_one_line(tmp_path, dataset, message):
    with pytest.raises(ConfigError) as info:
        config(tmp_path / "x.h5", datasets={"b": {"source": "hdf5", "options": {"path": "x.h5"}, **dataset}})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_multi_target_config_and_its_dump():
    d = config("x.h5").datasets["b"]
    assert d.targets == ["class"] and d.head_specs() is None and "heads" not in d.model_dump()
    two = config("x.h5", datasets={"b": {"source": "hdf5", "options": {}, "target": ["class", "radius"],
                                         "heads": {"radius": {"kind": "gaussian", "weight": 0.5}}}}).datasets["b"]
    assert two.primary == "class" and two.targets == ["class", "radius"]
    assert two.head_specs() == {"class": {}, "radius": {"kind": "gaussian", "weight": 0.5}}
    # read back from its dump (as --quick does) the specs name no key left unset
    again = type(two).model_validate(two.model_dump())
    assert again.head_specs() == {"class": {}, "radius": {"kind": "gaussian", "weight": 0.5}}
    one = config("x.h5", datasets={"b": {"source": "hdf5", "target": ["class"]}}).datasets["b"]
    assert one.target == "class" and one.model_dump() == d.model_dump() | {"options": {}}


def test_standardise_takes_any_input_name_of_the_representations():
    from astromodal.experiments import standardised_inputs

    reps = {"mescr": {"inputs": {"gri": {"kind": "cutout", "images": "sdss", "bands": ["g", "r", "i"]},
                                 "astrometry": {"kind": "columns", "columns": ["parallax"]}}},
            "xp": {"kind": "spectrum", "spectra": "gaia_xp", "context": True}}
    cfg = config("x.h5", representations=reps, models=[{"name": "mlp_columns", "standardise": ["gri", "astrometry"]},
                                                        {"name": "wide_ann"}])
    assert cfg.models[0].standardise == ["gri", "astrometry"]
    assert standardised_inputs(cfg.models[0], cfg.representations["mescr"]) == ["gri", "astrometry"]
    # by default the inputs whose view kind is columns or context (today's names give today's choice)
    assert standardised_inputs(cfg.models[1], cfg.representations["mescr"]) == ["astrometry"]
    assert standardised_inputs(cfg.models[1], cfg.representations["xp"]) == ["context"]
    assert cfg.models[1].model_dump()["standardise"] is None  # the dump (and fingerprint) is unchanged
    with pytest.raises(ConfigError, match=r"standardise names input\(s\) \['urz'\]"):
        config("x.h5", representations=reps, models=[{"name": "mlp_columns", "standardise": ["urz"]}])
    with pytest.raises(ConfigError, match="standardise names"):  # only the representations the model runs on
        config("x.h5", representations=reps,
               models=[{"name": "mlp_columns", "representations": ["xp"], "standardise": ["astrometry"]}])


def test_report_from_results_and_a_data_summary_alone(tmp_path):
    from astromodal.evaluation.benchmark_report import write_benchmark_report
    from astromodal.evaluation.results import (
        CellResult,
        DatasetSummary,
        DataSummary,
        HeadResult,
        TargetSummary,
    )

    cls = HeadResult(kind="categorical", task="classification", class_names=["star", "galaxy"], n=4,
                     metrics={"accuracy": 0.75, "balanced_accuracy": 0.75, "macro_f1": 0.73, "roc_auc": None,
                              "per_class": {"star": {"f1": 0.8}, "galaxy": {"f1": 0.66}},
                              "confusion_matrix": [[2, 0], [1, 1]], "n": 4,
                              "ci95": {"accuracy": [0.5, 1.0], "balanced_accuracy": [0.5, 1.0],
                                       "macro_f1": [0.4, 1.0]}},
                     baseline={"kind": "majority_class", "value": "star",
                               "metrics": {"accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.33}},
                     beats_baseline=True)
    radius = HeadResult(kind="gaussian", task="regression", unit="Rsun", n=2,
                        metrics={"rmse": 0.1, "mae": 0.08, "r2": 0.9, "bias": 0.01, "sigma": 0.1, "nmad": 0.07,
                                 "n": 2, "nll": -0.5, "coverage_68": 0.5, "coverage_95": 1.0, "median_sigma": 0.1,
                                 "mean_sigma": 0.12},
                        curves={"pit": {"edges": list(np.linspace(0, 1, 11)), "fraction": [0.5] + [0.0] * 8 + [0.5],
                                        "n": 2}},
                        baseline={"kind": "training_mean", "value": 1.0, "metrics": {"rmse": 0.5, "mae": 0.4, "r2": 0}},
                        beats_baseline=True, sigma_net={"mean": 0.031, "median": 0.03})
    cell = CellResult(cell="d__r__m__s0", dataset="d", representation="r", model="m", model_name="mlp_columns",
                      family="neural", seed=0, n_train=16, n_test=4, task="classification",
                      history=[{"epoch": 1, "train_loss": 1.0, "train_loss_class": 0.6, "train_loss_radius": 0.4}])
    cell.set_heads({"class": cls, "radius": radius})
    data = DataSummary(datasets=[DatasetSummary(name="d", source="simulate", n_train=20, targets=[
        TargetSummary(name="class", kind="class", class_names=["star", "galaxy"],
                      train_counts={"star": 10, "galaxy": 10}, n_train_valid=20),
        TargetSummary(name="radius", kind="regression", unit="Rsun", n_train_valid=10)])])
    cfg = parse_config({"name": "hand", "datasets": {"d": {"source": "simulate", "target": ["class", "radius"]}},
                        "representations": {"r": {"kind": "columns", "columns": ["c0"]}},
                        "models": [{"name": "mlp_columns"}], "report": {"embeddings": []}})
    seen = []
    out = tmp_path / "report"
    results = write_benchmark_report([cell], data, cfg, out, command="astromodal benchmark hand.yaml",
                                     notes=["a note"], hooks=[lambda rep, ctx: seen.append(ctx.data is data)])
    md = (out / "report.md").read_text()
    assert seen == [True] and "Note: a note" in md and "astromodal benchmark hand.yaml" in md
    assert "Head: class" in md and "Head: radius" in md and "F1 galaxy" in md
    assert "coverage_95" in md and "mean_sigma" in md and "0.0310" in md  # sigma_net of the radius head
    assert "train loss_radius" in md and "0.4000" in md  # the radius head's part of the loss
    assert "10 of 20 (before the split)" in md  # objects with a radius among the 20
    assert (out / "figures" / "pit_d_r_m_radius.png").is_file() and "PIT histograms" in md
    assert results["cells"][0]["heads"]["radius"]["metrics"]["nmad"] == 0.07
    assert json.loads((out / "results.json").read_text()) == results
    import pandas as pd

    frame = pd.read_csv(out / "results.csv")
    assert frame.loc[0, "accuracy"] == 0.75 and frame.loc[0, "radius_mae"] == 0.08
