"""Two-axis representation sweeps (``sweeps[].grid``): config expansion, errors, and the report's heat maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score

from astromodal.errors import ConfigError
from astromodal.evaluation.benchmark import BenchmarkRunner, predictions_path, read_predictions
from astromodal.experiments import parse_config


def _base(grid: dict | None = None, **sweep) -> dict:
    data = {
        "name": "grid",
        "datasets": {"sim": {"source": "simulate", "options": {"n": 200, "seed": 4, "instruments": ["sdss"],
                                                                "image_size": 16}, "target": "redshift"}},
        "representations": {
            "both": {"inputs": {"image": {"kind": "cutout", "images": "sdss", "size": 8},
                                "photo": {"kind": "columns", "columns": ["u", "g", "r", "i", "z"]}}},
            "phot": {"kind": "columns", "columns": ["u", "g", "r", "i", "z"]},
        },
        "models": [{"name": "decision_tree_regressor", "label": "tree", "options": {"max_depth": 4},
                    "representations": ["phot"]},
                   {"name": "decision_tree_regressor", "label": "fusion", "options": {"max_depth": 4},
                    "representations": ["both"]}],
        "protocol": {"test_fraction": 0.3},
        "report": {"embeddings": []},
    }
    if grid is not None:
        data["sweeps"] = [{"name": "res", "representation": "both", "grid": grid, **sweep}]
    return data


GRID = {"image.size": [4, 8, 16], "image.stretch": ["none", "asinh"]}


def test_the_grid_is_the_cartesian_product_labelled_name_equals_v1_v2():
    data = _base(GRID, models=["fusion"], axis_labels={"image.size": ["4 px", "8 px", "16 px"]})
    cfg = parse_config(data)
    labels = ["res=4,none", "res=4,asinh", "res=8,none", "res=8,asinh", "res=16,none", "res=16,asinh"]
    assert cfg.sweep_representations == labels
    assert cfg.sweep_of(representation="res=16,asinh") == ("res", "16,asinh")
    v = cfg.representations["res=4,asinh"].views()
    assert (v["image"].size, v["image"].stretch, v["image"].images) == (4, "asinh", "sdss")
    assert v["photo"].columns == ["u", "g", "r", "i", "z"]  # the rest as the base
    cells = [(c.representation, c.label) for c in BenchmarkRunner(cfg, Path("/tmp/unused")).cells()]
    assert cells == [("phot", "tree"), ("both", "fusion"), *[(r, "fusion") for r in labels]]
    s = cfg.sweeps[0]
    assert s.grid_axes() == [("image.size", ["4", "8", "16"], ["4 px", "8 px", "16 px"]),
                             ("image.stretch", ["none", "asinh"], ["none", "asinh"])]
    assert not s.numeric()
    # the dump keeps the sweep as written and reads back to the same variants
    dump = cfg.model_dump()
    assert list(dump["representations"]) == ["both", "phot"]
    assert parse_config(dump).sweep_representations == labels


def test_two_inputs_on_one_grid_and_plain_sweeps_dump_as_before():
    data = _base({"image.size": [4, 8], "photo.normalise": ["none", "l2"]})
    cfg = parse_config(data)
    v = cfg.representations["res=8,l2"].views()
    assert (v["image"].size, v["photo"].normalise) == (8, "l2")
    plain = _base()
    plain["sweeps"] = [{"name": "s", "representation": "both", "input_option": "size", "values": [4]}]
    assert "grid" not in parse_config(plain).model_dump()["sweeps"][0]
    assert "axis_labels" not in parse_config(plain).model_dump()["sweeps"][0]


@pytest.mark.parametrize(("grid", "extra", "message"), [
    ({"image.size": [4]}, {}, "sweep 'res': grid: exactly two axes '<input>.<key>', got 1"),
    ({"image.size": [4], "image.stretch": ["none"], "photo.normalise": ["l2"]}, {}, "exactly two axes"),
    ({"image.size": [], "image.stretch": ["none"]}, {}, "sweep 'res': grid: axis 'image.size' has no values"),
    ({"image.size": [4, 4], "image.stretch": ["none"]}, {}, "axis 'image.size': value(s) ['4'] given twice"),
    ({"size": [4], "image.stretch": ["none"]}, {}, "axis 'size' is not of the form '<input>.<key>'"),
    ({"nope.size": [4], "image.stretch": ["none"]}, {}, "grid: 'nope' is not an input of representation 'both'"),
    ({"image.nokey": [4], "image.stretch": ["none"]}, {}, "grid: input 'image' (cutout view) has no key 'nokey'"),
    ({"image.size": [0], "image.stretch": ["none"]}, {}, "sweep 'res' (res=0,none)"),
    ({"image.size": [4], "image.stretch": ["none"]}, {"axis_labels": {"image.size": ["a", "b"]}},
     "axis_labels: 'image.size' has 2 name(s) for 1 value(s)"),
    ({"image.size": [4], "image.stretch": ["none"]}, {"axis_labels": {"x.y": ["a"]}}, "'x.y' is no grid axis"),
    ({"image.size": [4], "image.stretch": ["none"]}, {"values": [1]}, "give exactly one of"),
    ({"image.size": [4], "image.stretch": ["none"]}, {"inputs": ["image"]}, "inputs: not with 'grid'"),
])
def test_bad_grids_are_one_line_naming_the_sweep(grid, extra, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(_base(grid, **extra))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_grid_belongs_to_representation_sweeps_and_axis_labels_to_grids():
    data = _base()
    data["sweeps"] = [{"name": "m", "model": "tree", "grid": GRID}]
    with pytest.raises(ConfigError, match="sweep 'm': grid: a setting of a representation sweep"):
        parse_config(data)
    data["sweeps"] = [{"name": "m", "representation": "both", "input_option": "size", "values": [4],
                       "axis_labels": {"image.size": ["4 px"]}}]
    with pytest.raises(ConfigError, match="sweep 'm': axis_labels: a setting of a 'grid' sweep"):
        parse_config(data)


def test_the_heat_maps_hold_the_cells_metrics_with_intervals_and_times(tmp_path):
    data = _base({"image.size": [4, 8], "image.stretch": ["none", "asinh"]}, title="Resolution x stretch",
                 axis_labels={"image.size": ["4 px", "8 px"]})
    out = tmp_path / "run"
    results = BenchmarkRunner(parse_config(data), out).run()
    cells = {c["representation"]: c for c in results["cells"] if c["model"] == "fusion"}
    g = results["grids"]["res"]["fusion"]
    assert (g["rows"], g["columns"], g["metric"]) == (["4 px", "8 px"], ["none", "asinh"], "r2")
    for i, size in enumerate(["4", "8"]):
        for j, stretch in enumerate(["none", "asinh"]):
            rec = cells[f"res={size},{stretch}"]
            pred = read_predictions(predictions_path(out / "cells", rec["cell"]))
            h = pred["heads"]["redshift"]
            assert g["value"][i][j] == pytest.approx(rec["metrics"]["r2"], abs=1e-9)
            assert g["value"][i][j] == pytest.approx(r2_score(h["truth"], h["mean"]), abs=1e-9)
            assert g["lo"][i][j] <= g["value"][i][j] <= g["hi"][i][j]
            assert g["fit_seconds"][i][j] == pytest.approx(rec["fit_seconds"])
    figures = out / "figures"
    assert (figures / "grid_res_fusion_r2.png").is_file() and (figures / "grid_res_fusion_fit_seconds.png").is_file()
    report = (out / "report.md").read_text()
    assert "## Resolution x stretch: res (image.size x image.stretch of representation 'both')" in report
    assert "figures/grid_res_fusion_r2.png" in report and "figures/grid_res_fusion_fit_seconds.png" in report
    assert json.loads((out / "results.json").read_text())["grids"]["res"]["fusion"]["value"] == g["value"]
    assert "comparisons" not in results and "exploratory" not in results  # only when configured
    assert np.isfinite(np.asarray(g["lo"], dtype=float)).all()
