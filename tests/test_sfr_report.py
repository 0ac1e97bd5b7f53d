"""Study D report: comparisons with paired-bootstrap intervals and verdicts, subset filters, exploratory
figures, their config errors, and one end-to-end benchmark run with two comparisons."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, r2_score

from astromodal.data.sources import load_source
from astromodal.errors import ConfigError
from astromodal.evaluation.benchmark import (
    BenchmarkRunner,
    predictions_path,
    read_predictions,
    write_predictions,
)
from astromodal.evaluation.benchmark_report import (
    check_report_data,
    exploratory_section,
    metric_value,
    paired_bootstrap,
    paired_difference,
    run_comparison,
    target_bins,
    verdict,
)
from astromodal.evaluation.report import Report
from astromodal.experiments import SubsetConfig, parse_config

SIM = {"n": 240, "seed": 5, "instruments": ["sdss"], "image_size": 16}


@pytest.fixture(scope="module")
def sim():
    train, _ = load_source("simulate", SIM, ".")
    return train


def _config(**report) -> dict:
    return {
        "name": "sfr",
        "datasets": {"sim": {"source": "simulate", "options": SIM, "target": "redshift"}},
        "representations": {"phot": {"kind": "columns", "columns": ["u", "g", "r", "i", "z"]},
                            "colours": {"kind": "columns", "columns": ["g", "r"]}},
        "models": [{"name": "decision_tree_regressor", "label": "tree", "options": {"max_depth": 5}},
                   {"name": "random_forest_regressor", "label": "forest", "options": {"n_estimators": 10}},
                   {"name": "decision_tree_regressor", "label": "stump", "options": {"max_depth": 1},
                    "representations": ["colours"]}],
        "protocol": {"test_fraction": 0.3},
        "report": {"embeddings": [], **report},
    }


# ---------------------------------------------------------------------- the paired bootstrap
def _hand_made(n: int = 80, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y, y + rng.normal(scale=0.3, size=n), y + rng.normal(scale=0.6, size=n)


def test_paired_difference_is_the_same_resamples_of_both_cells():
    y, a, b = _hand_made()
    d, lo, hi = paired_difference(y, a, b, "r2", n_boot=300, seed=7)
    assert d == pytest.approx(r2_score(y, a) - r2_score(y, b))
    idx = np.random.default_rng([7, 0]).integers(0, len(y), size=(300, len(y)))  # the documented draws
    diffs = [r2_score(y[i], a[i]) - r2_score(y[i], b[i]) for i in idx]
    assert (lo, hi) == pytest.approx((np.percentile(diffs, 2.5), np.percentile(diffs, 97.5)))
    assert 0 < lo < d < hi
    d, lo, hi = paired_difference(y, a, b, "mae", n_boot=300, seed=7)
    diffs = [mean_absolute_error(y[i], a[i]) - mean_absolute_error(y[i], b[i]) for i in idx]
    assert (d, lo, hi) == pytest.approx((mean_absolute_error(y, a) - mean_absolute_error(y, b),
                                         np.percentile(diffs, 2.5), np.percentile(diffs, 97.5)))


def test_several_splits_average_each_splits_score():
    y1, a1, b1 = _hand_made(40, 1)
    y2, a2, b2 = _hand_made(50, 2)
    points, draws = paired_bootstrap([y1, y2], {"a": [a1, a2], "b": [b1, b2]}, ["rmse"], n_boot=50, seed=0)
    assert points["a"]["rmse"] == pytest.approx((np.sqrt(np.mean((a1 - y1) ** 2)) + np.sqrt(np.mean((a2 - y2) ** 2))) / 2)
    i1 = np.random.default_rng([0, 0]).integers(0, 40, size=(50, 40))
    i2 = np.random.default_rng([0, 1]).integers(0, 50, size=(50, 50))
    want = [(np.sqrt(np.mean((a1[p] - y1[p]) ** 2)) + np.sqrt(np.mean((a2[q] - y2[q]) ** 2))) / 2
            for p, q in zip(i1, i2, strict=True)]
    assert draws["a"]["rmse"] == pytest.approx(want)


def test_class_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    assert metric_value(y, p, "accuracy") == pytest.approx(4 / 6)
    assert metric_value(y, p, "balanced_accuracy") == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_the_verdict_says_both_ways_plainly():
    beats, text = verdict("fusion", "spectra", 0.12, 0.05, 0.2, "r2")
    assert beats and text == ("fusion beats spectra by 0.12 in r2 (95 % interval 0.05..0.2): more than the interval "
                              "width, the whole paired interval of the difference lies above 0.")
    beats, text = verdict("fusion", "spectra", 0.02, -0.03, 0.07, "r2")
    assert not beats and text.startswith("fusion does not beat spectra: the difference +0.02 in r2 lies inside the "
                                         "interval (95 % interval -0.03..0.07 includes 0)")
    beats, text = verdict("fusion", "spectra", -0.1, -0.2, -0.05, "r2")
    assert not beats and "spectra is better by 0.1" in text
    # lower is better for rmse: a negative difference is a gain
    beats, text = verdict("fusion", "spectra", -0.1, -0.2, -0.05, "rmse")
    assert beats and "by 0.1 in rmse (95 % interval 0.05..0.2)" in text


def test_subset_filters_keep_rows_where_the_condition_holds():
    v = np.array([0, 1, 2, np.nan, 3])
    assert SubsetConfig(column="n", op=">", value=0).mask(v).tolist() == [False, True, True, False, True]
    assert SubsetConfig(column="n", op="==", value=0).mask(v).tolist() == [True, False, False, False, False]
    assert SubsetConfig(column="n", op="<=", value=1).mask(v).tolist() == [True, True, False, False, False]
    assert SubsetConfig(column="n", op="!=", value="a").mask(np.array(["a", "b"])).tolist() == [False, True]
    with pytest.raises(ConfigError, match="column 'n' holds text; compare it with == or != only"):
        SubsetConfig(column="n", op=">", value=1).mask(np.array(["a"]))
    assert SubsetConfig(column="n_neighbours", op=">", value=0).text() == "n_neighbours > 0"


# ---------------------------------------------------------------------- comparisons from hand-made predictions
def _fake_run(tmp_path: Path, seeds=(0,)) -> tuple[list[dict], Path]:
    out = tmp_path / "fake"
    records = []
    for seed in seeds:
        y, a, b = _hand_made(90, 10 + seed)
        rng = np.random.default_rng(seed)
        neighbours = rng.integers(0, 3, len(y)).astype(float)
        c = y + rng.normal(scale=0.45, size=len(y))
        y[5] = np.nan  # an object without the target: left out of every cell
        for (rep, model), p in {("phot", "tree"): a, ("phot", "forest"): b, ("colours", "stump"): c}.items():
            cell = f"sim__{rep}__{model}__s{seed}"
            write_predictions(predictions_path(out / "cells", cell), {
                "ids": np.arange(len(y)) + 1000, "redshift__truth": y, "redshift__mean": p,
                "column__n_neighbours": neighbours, "__kinds__": np.asarray(json.dumps({"redshift": "gaussian"}))})
            records.append({"cell": cell, "dataset": "sim", "representation": rep, "model": model, "seed": seed,
                            "task": "regression", "heads": {"redshift": {"task": "regression"}}})
    return records, out


def test_a_comparison_ranks_its_cells_and_judges_the_best_against_the_reference(tmp_path):
    records, out = _fake_run(tmp_path)
    cfg = parse_config(_config(comparisons=[{
        "name": "q", "cells": ["tree", "forest"], "against": [{"model": "stump", "representation": "colours"}],
        "subset": {"column": "n_neighbours", "op": ">", "value": 0}}]))
    (entry,) = run_comparison(cfg.report.comparisons[0], records, cfg, out, n_boot=200)
    rows = entry["rows"]["all"]
    assert [r["cell"] for r in rows] == ["tree | phot", "stump | colours", "forest | phot"]
    pred = read_predictions(predictions_path(out / "cells", "sim__phot__tree__s0"))
    y, p = pred["heads"]["redshift"]["truth"], pred["heads"]["redshift"]["mean"]
    ok = np.isfinite(y)
    assert rows[0]["n"] == 89 and rows[0]["r2"] == pytest.approx(r2_score(y[ok], p[ok]))
    assert rows[0]["r2_lo"] < rows[0]["r2"] < rows[0]["r2_hi"]
    assert [r["against"] for r in rows] == [False, True, False]
    v = entry["versus"]["all"]
    assert (v["best"], v["against"]) == ("tree | phot", "stump | colours")
    stump = read_predictions(predictions_path(out / "cells", "sim__colours__stump__s0"))["heads"]["redshift"]["mean"]
    d, lo, hi = paired_difference(y[ok], p[ok], stump[ok], "r2", n_boot=200)
    assert (v["difference"], v["lo"], v["hi"]) == pytest.approx((d, lo, hi))
    assert v["beats"] and v["sentence"].startswith("tree | phot beats stump | colours by")
    # the subset: the objects with neighbours only
    keep = ok & (pred["columns"]["n_neighbours"] > 0)
    sub = entry["rows"]["subset"]
    assert sub[0]["n"] == int(keep.sum()) < 89
    tree = next(r for r in sub if r["cell"] == "tree | phot")
    assert tree["r2"] == pytest.approx(r2_score(y[keep], p[keep]))
    assert entry["subset"] == "n_neighbours > 0" and "on n_neighbours > 0:" in entry["summary"]
    assert any("1 test object(s) without a finite redshift" in n for n in entry["notes"])


def test_several_seeds_are_compared_on_the_seeds_every_cell_ran(tmp_path):
    records, out = _fake_run(tmp_path, seeds=(0, 1))
    records = [r for r in records if not (r["model"] == "stump" and r["seed"] == 1)]
    cfg = parse_config(_config(comparisons=[{"name": "q", "cells": ["tree"], "against": ["stump"],
                                             "metric": "mae"}]))
    (entry,) = run_comparison(cfg.report.comparisons[0], records, cfg, out, n_boot=100)
    assert entry["seeds"] == [0] and "compared on the seeds every cell ran on: [0]" in entry["notes"]
    cfg = parse_config(_config(comparisons=[{"name": "q", "cells": ["tree"], "against": ["forest"]}]))
    records, out = _fake_run(tmp_path / "two", seeds=(0, 1))
    (entry,) = run_comparison(cfg.report.comparisons[0], records, cfg, out, n_boot=100)
    scores = []
    for seed in (0, 1):
        h = read_predictions(predictions_path(out / "cells", f"sim__phot__tree__s{seed}"))["heads"]["redshift"]
        ok = np.isfinite(h["truth"])
        scores.append(r2_score(h["truth"][ok], h["mean"][ok]))
    assert entry["seeds"] == [0, 1] and entry["rows"]["all"][0]["r2"] == pytest.approx(np.mean(scores))


# ---------------------------------------------------------------------- config errors
@pytest.mark.parametrize(("comparison", "message"), [
    ({"name": "q", "cells": ["ghost"]}, "report.comparisons 'q': cells: 'ghost' is no model label"),
    ({"name": "q", "cells": ["tree"], "against": ["nobody"]}, "report.comparisons 'q': against: 'nobody' is no model"),
    ({"name": "q", "cells": [{"model": "tree", "representation": "nope"}]},
     "cells: representation 'nope' of 'tree' is not defined"),
    ({"name": "q", "cells": []}, "cells"),
    ({"name": "q", "cells": ["tree"], "against": []}, "against: name at least one cell"),
    ({"name": "q", "cells": ["tree"], "dataset": "other"}, "report.comparisons 'q': dataset 'other' is not defined"),
    ({"name": "q", "cells": ["tree"], "target": "sfr"}, "report.comparisons 'q': target 'sfr' is no target"),
    ({"name": "q", "cells": ["tree"], "metric": "f1"}, "metric"),
    ({"name": "q", "cells": ["tree"], "subset": {"column": "n", "op": "=~", "value": 1}}, "op"),
    ({"name": "q q", "cells": ["tree"]}, "use letters, digits"),
])
def test_bad_comparisons_are_one_line_naming_them(comparison, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(_config(comparisons=[comparison]))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_comparison_names_are_unique_and_exploratory_names_a_dataset():
    with pytest.raises(ConfigError, match=r"comparison name\(s\) \['q'\] used twice"):
        parse_config(_config(comparisons=[{"name": "q", "cells": ["tree"]}] * 2))
    with pytest.raises(ConfigError, match="report.exploratory: dataset 'x' is not defined"):
        parse_config(_config(exploratory={"target": "sfr", "dataset": "x"}))


@pytest.mark.parametrize(("report", "message"), [
    ({"comparisons": [{"name": "q", "cells": ["tree"], "subset": {"column": "nope", "op": ">", "value": 0}}]},
     "report.comparisons 'q': subset column 'nope' is no column of dataset 'sim'"),
    ({"exploratory": {"target": "nope"}}, "report.exploratory: target 'nope' is no target or column"),
    ({"exploratory": {"target": "class"}}, "target 'class' of dataset 'sim' is a class target"),
    ({"exploratory": {"target": "sfr", "images": "hst"}}, "images 'hst' is no images block of dataset 'sim'"),
    ({"exploratory": {"target": "sfr", "spectra": "lamost"}}, "spectra 'lamost' is no spectra block"),
    ({"exploratory": {"target": "sfr", "classes": "sfr"}}, "classes 'sfr' is no class target"),
    ({"exploratory": {"target": "sfr", "by": "nope"}}, "by 'nope' is no column"),
])
def test_report_data_is_checked_against_the_loaded_dataset(sim, report, message):
    cfg = parse_config(_config(**report))
    with pytest.raises(ConfigError) as exc:
        check_report_data(cfg, {"sim": sim})
    assert message in str(exc.value) and "\n" not in str(exc.value)


# ---------------------------------------------------------------------- exploratory figures
def test_exploratory_figures_exist_and_count_the_objects_without_a_target(sim, tmp_path):
    cfg = parse_config(_config(exploratory={"target": "sfr", "images": "sdss", "spectra": "sdss", "bins": 3,
                                            "per_bin": 2}))
    check_report_data(cfg, {"sim": sim})
    rep = Report("x")
    summary = exploratory_section(rep, cfg, {"sim": sim}, tmp_path)["sim"]
    sfr = sim.target("sfr").values.read()
    n_nan = int(np.isnan(sfr).sum())
    assert 0 < n_nan < len(sfr) and summary["n_nan"] == n_nan and summary["n"] == len(sfr)
    names = ["explore_images_sim.png", "explore_spectra_sim.png", "explore_hist_sim.png", "explore_box_sim.png"]
    assert summary["figures"] == [f"figures/{n}" for n in names]
    assert all((tmp_path / f).stat().st_size > 1000 for f in summary["figures"])
    codes = sim.target("class").values.read()
    per_class = ", ".join(f"{c} {int(np.isnan(sfr[codes == k]).sum())}" for k, c in enumerate(sim.target("class").class_names))
    assert summary["histogram_caption"].endswith(f"left out: {n_nan} without sfr ({per_class})")
    assert len(summary["bins"]) == 4
    which, edges = target_bins(sfr, 3)
    assert (which[np.isnan(sfr)] == -1).all() and np.bincount(which[which >= 0]).tolist() == [
        int(np.sum((sfr >= edges[0]) & (sfr < edges[1]))), int(np.sum((sfr >= edges[1]) & (sfr < edges[2]))),
        int(np.sum((sfr >= edges[2]) & (sfr <= edges[3])))]


# ---------------------------------------------------------------------- end to end
def test_a_benchmark_run_answers_two_comparisons(tmp_path):
    data = _config(comparisons=[
        {"name": "best_vs_stump", "title": "Trees against a stump on two colours", "cells": ["tree", "forest"],
         "against": ["stump"], "subset": {"column": "n_neighbours", "op": ">", "value": 0}},
        {"name": "ranking", "cells": ["tree", "forest", "stump"], "metric": "rmse"}])
    out = tmp_path / "run"
    results = BenchmarkRunner(parse_config(data), out).run()
    first, second = results["comparisons"]
    assert (first["name"], second["name"]) == ("best_vs_stump", "ranking")
    assert [r["cell"] for r in first["rows"]["all"]][:1] != [] and first["versus"]["all"]["against"] == "stump | colours"
    assert first["summary"].startswith("best_vs_stump: ") and first["versus"]["all"]["sentence"] in first["summary"]
    assert "subset" in first["rows"] and first["rows"]["subset"][0]["n"] < first["rows"]["all"][0]["n"]
    rmse = [r["rmse"] for r in second["rows"]["all"]]
    assert rmse == sorted(rmse) and second["versus"] == {}
    cell = next(c for c in results["cells"] if c["model"] == "tree")
    # "tree" runs on two representations: the row of this very cell (model and representation)
    row = next(r for r in second["rows"]["all"] if (r["model"], r["representation"]) == ("tree", cell["representation"]))
    assert row["rmse"] == pytest.approx(cell["metrics"]["rmse"])
    # the subset column is saved with each cell's test predictions
    pred = read_predictions(predictions_path(out / "cells", cell["cell"]))
    assert len(pred["columns"]["n_neighbours"]) == cell["n_test"]
    saved = json.loads((out / "results.json").read_text())
    assert [c["summary"] for c in saved["comparisons"]] == [first["summary"], second["summary"]]
    report = (out / "report.md").read_text()
    assert "## Trees against a stump on two colours (sim, redshift)" in report
    assert "### Test objects with n_neighbours > 0" in report and first["versus"]["all"]["sentence"] in report
