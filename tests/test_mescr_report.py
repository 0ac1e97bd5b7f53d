"""Study B (MESCR) report sections, from hand-made records: Table 1 form, radius in dex, Figure 4a / 4b,
sweep tables and figures, the example-input grid and the calibration hook."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from astromodal.data.sources import load_source
from astromodal.evaluation.benchmark import predictions_path, read_predictions, write_predictions
from astromodal.evaluation.benchmark_report import radius_metrics, table1_rows, write_benchmark_report
from astromodal.evaluation.metrics import bootstrap_confusion, classification_metrics, regression_metrics
from astromodal.evaluation.results import DataSummary
from astromodal.experiments import parse_config

NAMES = ["A", "B", "C"]
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def _class_metrics() -> dict:
    m = classification_metrics(Y_TRUE, Y_PRED, class_names=NAMES)
    m["ci95"] = bootstrap_confusion(m["confusion_matrix"], seed=0)
    return m


def test_per_class_table_has_precision_and_recall_the_right_way_round():
    rows = {r["class"]: r for r in table1_rows(_class_metrics(), NAMES)}
    # A: 3 true, 2 predicted, both right -> precision 2/2, recall 2/3 (MESCR's public code swaps them)
    assert rows["A"]["precision"] == pytest.approx(1.0) and rows["A"]["recall"] == pytest.approx(2 / 3)
    assert rows["A"]["F1"] == pytest.approx(0.8) and rows["A"]["count"] == 3
    # B: 2 true, 2 predicted (rows 2, 3), 1 right
    assert (rows["B"]["precision"], rows["B"]["recall"], rows["B"]["count"]) == pytest.approx((0.5, 0.5, 2))
    # C: 1 true, 2 predicted (rows 4, 5), 1 right
    assert (rows["C"]["precision"], rows["C"]["recall"], rows["C"]["F1"]) == pytest.approx((0.5, 1.0, 2 / 3))
    assert rows["**macro**"]["F1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert rows["**accuracy**"]["F1"] == pytest.approx(4 / 6) and rows["**accuracy**"]["count"] == 6


def test_radius_metrics_by_hand():
    m = radius_metrics([1.0, 10.0, 100.0], [10.0, 10.0, 10.0], var=[4.0, 4.0, 4.0], sigma_net=[1.0, 2.0, 3.0],
                       unit="Rsun")
    assert m["mae_dex"] == pytest.approx(2 / 3)  # |1 - 0|, |1 - 1|, |1 - 2|
    assert m["sigma_dex"] == pytest.approx(np.sqrt(2 / 3))
    assert m["mae"] == pytest.approx(33.0)  # 9, 0, 90
    assert m["sigma"] == pytest.approx(np.sqrt(((9 + 27) ** 2 + 27 ** 2 + (-90 + 27) ** 2) / 3))
    assert m["mean_sigma_pred"] == pytest.approx(2.0) and m["mean_sigma_net"] == pytest.approx(2.0)
    log = radius_metrics([0.0, 1.0], [1.0, 1.0], unit="dex")  # log10 radius already
    assert log["mae_dex"] == pytest.approx(0.5) and log["sigma"] == pytest.approx(4.5)  # residuals 9, 0 Rsun
    part = radius_metrics([1.0, -1.0], [10.0, 5.0])  # a non-positive value has no log: left out of dex
    assert part["n_dex"] == 1 and part["mae_dex"] == pytest.approx(1.0)


def _config(**report) -> object:
    data = {
        "name": "mescr_report",
        "datasets": {"sim": {"source": "simulate", "options": {"n": 150, "seed": 2}, "target": ["spectral_type", "radius"],
                             "keep_classes": ["F", "G", "K"]}},
        "representations": {"two": {"inputs": {"gri": {"kind": "rgb", "images": "sdss", "bands": "gri", "size": 16},
                                               "urz": {"kind": "rgb", "images": "sdss", "bands": "urz", "size": 16}}}},
        "models": [{"name": "logistic_regression", "label": "m"}],
        "report": {"embeddings": [], **report},
        "sweeps": [{"name": "res", "title": "Figure 5", "representation": "two", "input_option": "size",
                    "values": [8, 16]}],
    }
    return parse_config(data)


def _record(cell_rep: str, with_radius: bool = True, calibration: bool = False) -> dict:
    cm = _class_metrics()
    heads = {"spectral_type": {"kind": "categorical", "task": "classification", "metrics": cm, "class_names": NAMES,
                               "n": 6}}
    if with_radius:
        heads["radius"] = {"kind": "gaussian", "task": "regression", "unit": "Rsun", "n": 6,
                           "metrics": regression_metrics(np.ones(6), np.ones(6) * 2, np.ones(6)),
                           "sigma_net": {"mean": 0.5, "median": 0.5}}
    if calibration:
        heads["radius"]["calibration"] = {"method": "variance_scale", "parameter": 1.5}
    return {"cell": f"sim__{cell_rep}__m__s0", "dataset": "sim", "representation": cell_rep, "model": "m",
            "family": "classical", "seed": 0, "n_train": 10, "n_test": 6, "task": "classification",
            "metrics": cm, "class_names": NAMES, "heads": heads, "fit_seconds": 1.5 if cell_rep != "res=16" else 3.0}


def _write_npz(out: Path, cell: str) -> None:
    truth = np.array([1.0, 10.0, 100.0, 1.0, 10.0, 100.0])
    write_predictions(predictions_path(out / "cells", cell), {
        "ids": np.arange(6), "__kinds__": np.asarray('{"spectral_type": "categorical", "radius": "gaussian"}'),
        "spectral_type__truth": Y_TRUE, "spectral_type__label": Y_PRED,
        "radius__truth": truth, "radius__mean": np.full(6, 10.0), "radius__var": np.full(6, 4.0),
        "radius__sigma_net": np.linspace(1, 2, 6), "column__snr_r": np.array([5.0, 10, 20, 40, 80, 160])})


def _report(tmp_path: Path, cfg, records) -> str:
    ds, _ = load_source("simulate", {"n": 150, "seed": 2}, ".")
    from astromodal.data.sources import keep_classes

    ds = keep_classes(ds, "spectral_type", ["F", "G", "K"])
    write_benchmark_report(records, DataSummary(datasets=[]), cfg, tmp_path, command="astromodal benchmark x",
                           datasets={"sim": ds})
    return (tmp_path / "report.md").read_text()


def test_every_study_b_section_appears_when_its_data_exists(tmp_path, monkeypatch):
    calls = []
    try:
        from astromodal.evaluation import calibration

        monkeypatch.setattr(calibration, "calibration_section", lambda rep, recs, out: calls.append(len(recs)),
                            raising=False)
    except ImportError:
        fake = types.ModuleType("astromodal.evaluation.calibration")
        fake.calibration_section = lambda rep, recs, out: calls.append(len(recs))
        monkeypatch.setitem(sys.modules, "astromodal.evaluation.calibration", fake)
    cfg = _config(snr_column="snr_r", image_grid=["gri", "urz"], image_grid_per_class=2)
    records = [_record("two", calibration=True), _record("res=8"), _record("res=16")]
    for r in records:
        _write_npz(tmp_path, r["cell"])
    assert read_predictions(predictions_path(tmp_path / "cells", "sim__two__m__s0"))["heads"]["radius"]["mean"][0] == 10
    text = _report(tmp_path, cfg, records)
    assert "Per-class scores on the test split (Table 1 form)" in text
    assert "| A | 0.800 | 0.667 | 1.000 | 3 |" in text  # F1, recall, precision, count
    assert "Radius (regression heads) in the paper's terms" in text
    assert "0.6667" in text  # MAE dex of the hand-made predictions (2/3)
    assert "Figure 4a form" in text and "Figure 4b form" in text
    assert (tmp_path / "figures" / "radius_sim_two_m_radius.png").is_file()
    assert (tmp_path / "figures" / "snr_sim_two_m_radius.png").is_file()
    assert "Figure 5: res (size of representation 'two')" in text
    assert (tmp_path / "figures" / "sweep_res_m.png").is_file()
    assert "| 8 | m |" in text and "| 3 |" in text  # fit seconds of res=16
    assert "0.6667 [" in text  # the sweep table's MAE dex with its bootstrap interval
    assert "Example inputs per class" in text and (tmp_path / "figures" / "inputs_sim_two.png").is_file()
    assert calls == [1]  # the config's own cell: a sweep's variants get no calibration figures each
    # a sweep variant's cells get their table, not a confusion matrix each
    assert not list((tmp_path / "figures").glob("cm_sim_res=8*"))
    assert list((tmp_path / "figures").glob("cm_sim_two_*"))


def test_sections_are_left_out_without_their_data(tmp_path):
    cfg = _config()
    text = _report(tmp_path, cfg, [_record("two", with_radius=False)])
    assert "Table 1 form" in text
    for absent in ("Radius (regression heads)", "Figure 4a", "Figure 4b", "Example inputs per class", "Figure 5:"):
        assert absent not in text


def test_without_saved_predictions_the_radius_table_reads_the_record(tmp_path):
    text = _report(tmp_path, _config(snr_column="snr_r"), [_record("two")])
    assert "Radius (regression heads) in the paper's terms" in text
    assert "Figure 4a" not in text  # no predictions: no scatter


def test_per_class_tables_can_be_switched_off(tmp_path):
    text = _report(tmp_path, _config(per_class_tables=False), [_record("two", with_radius=False)])
    assert "Table 1 form" not in text
