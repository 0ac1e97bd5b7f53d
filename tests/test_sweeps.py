"""Sweeps (``sweeps:`` config expansion) and per-model protocols (ModelConfig ``protocol``)."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest

from astromodal.errors import ConfigError
from astromodal.evaluation import benchmark as bm
from astromodal.evaluation import protocols
from astromodal.evaluation.benchmark import BenchmarkRunner, predictions_path, read_predictions
from astromodal.experiments import load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def _base() -> dict:
    return {
        "name": "sweeps",
        "datasets": {"sim": {"source": "simulate", "options": {"n": 240, "seed": 3}, "target": "spectral_type",
                             "keep_classes": ["F", "G", "K"]}},
        "representations": {
            "two": {"inputs": {"gri": {"kind": "rgb", "images": "sdss", "bands": "gri", "size": 16},
                               "urz": {"kind": "rgb", "images": "sdss", "bands": "urz", "size": 16}}},
            "cut": {"inputs": {"image": {"kind": "cutout", "images": "sdss", "bands": ["g", "r", "i"], "size": 16}}},
            "phot": {"kind": "columns", "columns": ["u", "g", "r", "i", "z"]},
        },
        "models": [{"name": "random_forest", "options": {"n_estimators": 5}, "representations": ["phot"]},
                   {"name": "logistic_regression", "label": "lr", "representations": ["two", "cut"]}],
        "protocol": {"kind": "holdout", "test_fraction": 0.25},
    }


def _cells(data: dict) -> list[tuple[str, str]]:
    cfg = parse_config(data)
    return [(c.representation, c.label) for c in BenchmarkRunner(cfg, Path("/tmp/unused")).cells()]


def test_model_sweep_adds_only_its_cells_labelled_name_equals_value():
    data = _base()
    data["sweeps"] = [{"name": "trees", "title": "Table 2", "model": "random_forest", "option": "n_estimators",
                       "values": [2, 4]}]
    cfg = parse_config(data)
    assert [m.label for m in cfg.models[2:]] == ["trees=2", "trees=4"]
    assert [m.options["n_estimators"] for m in cfg.models[2:]] == [2, 4]
    assert _cells(data) == [("phot", "random_forest"), ("two", "lr"), ("cut", "lr"),
                            ("phot", "trees=2"), ("phot", "trees=4")]
    assert cfg.sweep_of(model="trees=4") == ("trees", "4")


def test_representation_sweep_runs_only_with_the_models_on_its_base():
    data = _base()
    data["sweeps"] = [{"name": "res", "title": "Figure 5", "representation": "cut", "input_option": "size",
                       "values": [8, 32]}]
    cfg = parse_config(data)
    assert cfg.representations["res=8"].views()["image"].size == 8
    assert cfg.representations["res=32"].views()["image"].bands == ["g", "r", "i"]  # the rest as the base
    # random_forest (on phot only) gets no variant; lr, which runs on cut, gets both, nothing else is crossed
    assert _cells(data) == [("phot", "random_forest"), ("two", "lr"), ("cut", "lr"), ("res=8", "lr"),
                            ("res=32", "lr")]
    assert cfg.sweep_representations == ["res=8", "res=32"]
    assert cfg.representations["two"].views()["gri"].size == 16  # unrelated representations untouched


def test_a_model_without_a_list_does_not_run_on_sweep_variants():
    data = _base()
    data["models"] = [{"name": "random_forest", "options": {"n_estimators": 5}}]  # every representation
    data["sweeps"] = [{"name": "res", "representation": "cut", "input_option": "size", "values": [8]}]
    assert _cells(data) == [("two", "random_forest"), ("cut", "random_forest"), ("phot", "random_forest"),
                            ("res=8", "random_forest")]


def test_combination_sets_the_rgb_inputs_bands_in_order():
    data = _base()
    data["sweeps"] = [{"name": "bands", "title": "Table A1", "representation": "two",
                       "set": {"combination": ["gru+iuz", "gri+uz"]}}]
    cfg = parse_config(data)
    a, b = cfg.representations["bands=gru+iuz"].views(), cfg.representations["bands=gri+uz"].views()
    assert (a["gri"].bands, a["urz"].bands) == ("gru", "iuz")
    assert (b["gri"].bands, b["urz"].bands) == ("gri", "uz")
    assert a["gri"].size == 16 and a["gri"].images == "sdss"


def test_combination_on_cutout_views_sets_band_lists_and_generic_forms():
    data = _base()
    data["sweeps"] = [
        {"name": "cb", "representation": "cut", "inputs": ["image"], "set": {"combination": ["ugr"]}},
        {"name": "dot", "representation": "two", "set": {"urz.bands": ["uz", "gz"]}},
        {"name": "v", "representation": "two", "variants": {"small": {"gri": {"size": 8}, "urz": {"size": 8}}}},
    ]
    cfg = parse_config(data)
    assert cfg.representations["cb=ugr"].views()["image"].bands == ["u", "g", "r"]
    assert cfg.representations["dot=gz"].views()["urz"].bands == "gz"
    assert cfg.representations["dot=gz"].views()["gri"].bands == "gri"
    assert [v.size for v in cfg.representations["v=small"].views().values()] == [8, 8]


def test_shorthand_representation_sweep():
    data = _base()
    data["representations"]["short"] = {"kind": "cutout", "images": "sdss", "size": 32}
    data["models"][1]["representations"] = ["short"]
    data["sweeps"] = [{"name": "res", "representation": "short", "input_option": "size", "values": [8, 16]}]
    cfg = parse_config(data)
    assert cfg.representations["res=8"].kind == "cutout" and cfg.representations["res=8"].size == 8
    assert cfg.representations["res=16"].images == "sdss"


def test_dump_keeps_the_config_as_written_and_reads_back_to_the_same_cells():
    data = _base()
    data["sweeps"] = [{"name": "res", "representation": "cut", "input_option": "size", "values": [8]},
                      {"name": "trees", "model": "random_forest", "option": "n_estimators", "values": [2]}]
    cfg = parse_config(data)
    dump = cfg.model_dump()
    assert [m["label"] for m in dump["models"]] == [None, "lr"]
    assert list(dump["representations"]) == ["two", "cut", "phot"]
    assert _cells(dump) == _cells(data)
    plain = parse_config(_base()).model_dump()
    assert "sweeps" not in plain  # configs without sweeps dump as before


@pytest.mark.parametrize(("sweep", "message"), [
    ({"name": "s", "model": "nope", "option": "a", "values": [1]}, "sweep 's': model 'nope' is no model entry"),
    ({"name": "s", "representation": "nope", "input_option": "size", "values": [1]},
     "sweep 's': representation 'nope' is not defined"),
    ({"name": "s", "model": "lr", "representation": "cut", "values": [1]}, "give either 'model'"),
    ({"name": "s", "model": "lr", "values": [1]}, "names the model 'option'"),
    ({"name": "s", "model": "lr", "option": "C", "values": [1, 1]}, "value(s) ['1'] given twice"),
    ({"name": "s", "model": "lr", "option": "C", "values": []}, "at least one value"),
    ({"name": "s", "model": "lr", "option": "C", "values": [1], "set": {"a": [1]}}, "exactly one of"),
    ({"name": "s", "representation": "cut", "set": {"a": [1], "b": [2]}}, "set: one key"),
    ({"name": "s", "representation": "two", "set": {"combination": ["gri"]}},
     "combination 'gri' has 1 part(s) but representation 'two' has 2 RGB input(s)"),
    ({"name": "s", "representation": "two", "set": {"combination": ["gri+xyz"]}},
     "sweep 's' (s=gri+xyz): unknown band combination 'gri+xyz'"),
    ({"name": "s", "representation": "two", "inputs": ["nope"], "input_option": "size", "values": [8]},
     "inputs ['nope'] are not inputs of representation 'two'"),
    ({"name": "s", "representation": "phot", "input_option": "size", "values": [8]},
     "no input of representation 'phot' has the view key 'size'"),
    ({"name": "s", "representation": "cut", "input_option": "size", "values": [0]}, "sweep 's' (s=0)"),
    ({"name": "s", "representation": "cut", "models": ["ghost"], "input_option": "size", "values": [8]},
     "models ['ghost'] name no model entry"),
    ({"name": "s", "representation": "cut", "option": "C", "input_option": "size", "values": [8]},
     "option: a setting of a model sweep"),
    ({"name": "bad name", "model": "lr", "option": "C", "values": [1]}, "use letters, digits"),
])
def test_bad_sweeps_are_one_line_naming_the_sweep_and_key(sweep, message):
    data = _base()
    data["sweeps"] = [sweep]
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert message in str(exc.value)


def test_variant_labels_may_not_clash_and_sweep_names_are_unique():
    data = _base()
    data["models"][1]["label"] = "s=1"
    data["sweeps"] = [{"name": "s", "model": "random_forest", "option": "n_estimators", "values": [1]}]
    with pytest.raises(ConfigError, match="variant 's=1' clashes"):
        parse_config(data)
    data = _base()
    data["sweeps"] = [{"name": "s", "model": "lr", "option": "C", "values": [1]}] * 2
    with pytest.raises(ConfigError, match=r"sweep name\(s\) \['s'\] used twice"):
        parse_config(data)


def test_a_sweep_variant_with_a_bad_model_option_names_the_variant():
    data = _base()
    data["sweeps"] = [{"name": "s", "model": "random_forest", "option": "no_such_option", "values": [1]}]
    with pytest.raises(ConfigError, match="s=1"):
        BenchmarkRunner(parse_config(data), Path("/tmp/unused")).cells()


# ---------------------------------------------------------------------- per-model protocols
def _protocol_config() -> dict:
    data = _base()
    data["models"] = [
        {"name": "random_forest", "label": "single", "options": {"n_estimators": 5}, "representations": ["phot"]},
        {"name": "random_forest", "label": "ensemble", "options": {"n_estimators": 5}, "representations": ["phot"],
         "protocol": {"kind": "resample_ensemble", "n_members": 2, "member_weights": "balanced"}},
    ]
    return data


def test_protocol_override_is_merged_over_the_global_one_and_validated_whole():
    cfg = parse_config(_protocol_config())
    single, ens = cfg.models
    assert cfg.protocol_for(single) is cfg.protocol
    p = cfg.protocol_for(ens)
    assert (p.kind, p.n_members, p.member_weights, p.test_fraction) == ("resample_ensemble", 2, "balanced", 0.25)
    cells = BenchmarkRunner(cfg, Path("/tmp/unused")).cells()
    assert [c.protocol.kind for c in cells] == ["holdout", "resample_ensemble"]
    bad = _protocol_config()
    bad["models"][1]["protocol"] = {"n_members": 2}  # a resample setting on the global holdout kind
    with pytest.raises(ConfigError, match="model 'ensemble': protocol: .*n_members: setting"):
        parse_config(bad)
    bad["models"][1]["protocol"] = {"kind": "resample_ensemble", "no_such": 1}
    with pytest.raises(ConfigError, match="model 'ensemble': protocol: .*no_such"):
        parse_config(bad)


def test_changing_the_kind_drops_the_global_settings_of_another_kind():
    data = _protocol_config()
    data["protocol"] = {"kind": "resample_ensemble", "n_members": 3, "test_fraction": 0.25}
    data["models"][1]["protocol"] = None
    data["models"][0]["protocol"] = {"kind": "holdout"}
    cfg = parse_config(data)
    assert cfg.protocol_for(cfg.models[0]).kind == "holdout"
    assert cfg.protocol_for(cfg.models[0]).test_fraction == 0.25  # shared settings kept


def test_fingerprint_includes_the_effective_protocol():
    cfg = parse_config(_protocol_config())
    runner = BenchmarkRunner(cfg, Path("/tmp/unused"))
    runner._data_stamps = lambda d: []
    single, ens = runner.cells()
    plain = copy.deepcopy(_protocol_config())
    plain["models"][1].pop("protocol")
    runner2 = BenchmarkRunner(parse_config(plain), Path("/tmp/unused"))
    runner2._data_stamps = lambda d: []
    assert runner.fingerprint(single) == runner2.fingerprint(runner2.cells()[0])
    assert runner.fingerprint(ens) != runner2.fingerprint(runner2.cells()[1])


def test_the_test_split_does_not_depend_on_the_protocol_kind():
    cfg = parse_config(_protocol_config())
    runner = BenchmarkRunner(cfg, Path("/tmp/unused"))
    single, ens = runner.cells()
    assert runner._split_key(single) == runner._split_key(ens)
    a = runner.prepare("sim", 0, runner.protocol_of(single))
    b = runner.prepare("sim", 0, runner.protocol_of(ens))
    assert np.array_equal(a.test.ids.read(), b.test.ids.read())
    other = runner.prepare("sim", 0, cfg.protocol.model_copy(update={"test_fraction": 0.4}))
    assert len(other.test) != len(a.test)


def _keep_predictions(monkeypatch):
    """finish_on_test with the line that hands the test predictions to the runner (see notes H6.md)."""
    original = protocols.finish_on_test

    def finish(ctx, estimator, *args, **kwargs):
        record = original(ctx, estimator, *args, **kwargs)
        record["_test_predictions"] = protocols.predict_heads(estimator, ctx.X_test, ctx.targets)
        return record

    monkeypatch.setattr(protocols, "finish_on_test", finish)


def test_single_model_and_ensemble_are_tested_on_the_same_objects(tmp_path, monkeypatch):
    _keep_predictions(monkeypatch)
    data = _protocol_config()
    data["models"][1]["protocol"]["n_members"] = 2
    data["report"] = {"embeddings": [], "snr_column": "snr_r"}
    cfg = parse_config(data)
    out = tmp_path / "run"
    BenchmarkRunner(cfg, out).run()
    single = read_predictions(predictions_path(out / "cells", "sim__phot__single__s0"))
    ens = read_predictions(predictions_path(out / "cells", "sim__phot__ensemble__s0"))
    assert single is not None and ens is not None
    import json

    rec = json.loads((out / "cells" / "sim__phot__ensemble__s0.json").read_text())
    assert rec["n_members"] == 2 and "_test_predictions" not in rec
    assert np.array_equal(single["ids"], ens["ids"]) and len(single["ids"]) == rec["n_test"] > 0
    assert np.array_equal(single["heads"]["spectral_type"]["truth"], ens["heads"]["spectral_type"]["truth"])
    assert ens["heads"]["spectral_type"]["proba"].shape == (rec["n_test"], 3)
    assert len(single["columns"]["snr_r"]) == rec["n_test"]
    report = (out / "report.md").read_text()
    assert "Model 'ensemble': its own protocol" in report
    # resumed: nothing trained again, the predictions still beside the cells
    BenchmarkRunner(cfg, out).run()
    assert read_predictions(predictions_path(out / "cells", "sim__phot__single__s0")) is not None
    # the predictions carry the cell's fingerprint: a file written for another run of the cell (a crash
    # between the predictions and the JSON) is never read as this cell's, and the cell is trained again
    from astromodal.evaluation.benchmark import predictions_fingerprint, write_predictions

    path = predictions_path(out / "cells", "sim__phot__single__s0")
    assert predictions_fingerprint(path) == json.loads((out / "cells" / "sim__phot__single__s0.json").read_text())[
        "fingerprint"]
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    write_predictions(path, {**arrays, "__fingerprint__": np.asarray("another-run")})
    assert read_predictions(path, "not-this") is None and read_predictions(path) is not None
    runner = BenchmarkRunner(cfg, out)
    runner.run()
    assert any("sim__phot__single__s0" in n and "trained again" in n for n in runner.notes)
    assert predictions_fingerprint(path) != "another-run"


# ---------------------------------------------------------------------- fingerprints of the shipped configs
#: digest of every cell's (id, fingerprint) of each shipped config, computed with the tree before
#: per-model protocols and sweeps (data file stamps left out, SCORING_VERSION 2)
SHIPPED = {
    "astrospectra_mnist.yaml": "64290011264fc396",
    "astrospectra_mnist_sim.yaml": "330c32f63712aaeb",
    "contrastive_sim.yaml": "7d90321a7d79c5e7",
    "gaia_massive_stars.yaml": "2ba4173d62ddccd6",
    "gaia_massive_stars_real.yaml": "ea4ced2133c43d80",
    "lamost_real.yaml": "e7947652d1b8df08",
    "lamost_teff.yaml": "afb727f5b816460d",
    "multihead_sim.yaml": "86c83f57218af7a0",
    "sdss_photometry.yaml": "11d5a2dcab725081",
    "sdss_photometry_cv.yaml": "554708fc683051bf",
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_configs_keep_their_cell_fingerprints(name, monkeypatch):
    monkeypatch.setattr(bm, "SCORING_VERSION", 2)
    path = ROOT / "experiments" / name
    runner = BenchmarkRunner(load_config(path), Path("/tmp/unused"), config_path=path)
    runner._data_stamps = lambda d: []
    text = "\n".join(f"{c.id}={runner.fingerprint(c)}" for c in runner.cells())
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == SHIPPED[name]


def test_quick_run_gives_a_models_own_ensemble_the_small_budget_too():
    from astromodal.evaluation.benchmark import quick_overrides

    data = _protocol_config()
    data["models"][1]["protocol"]["n_members"] = 6
    data["sweeps"] = [{"name": "t", "model": "ensemble", "option": "n_estimators", "values": [1]}]
    q = quick_overrides(parse_config(data))
    got = [(m.label, q.protocol_for(m).kind, q.protocol_for(m).n_members, q.protocol_for(m).k) for m in q.models]
    assert got == [("single", "holdout", 6, 2), ("ensemble", "resample_ensemble", 2, 2),
                   ("t=1", "resample_ensemble", 2, 2)]


def test_a_variant_label_is_a_safe_file_name_part():
    data = _base()
    data["sweeps"] = [{"name": "s", "model": "lr", "option": "C", "values": ["a/b"]}]
    with pytest.raises(ConfigError, match=r"value\(s\) \['a/b'\]: a variant label may not"):
        parse_config(data)


def test_a_representation_sweep_runs_end_to_end_with_its_report_table(tmp_path, monkeypatch):
    _keep_predictions(monkeypatch)
    data = _base()
    data["models"] = [{"name": "random_forest", "label": "rf", "options": {"n_estimators": 5},
                       "representations": ["cut"]}]
    data["sweeps"] = [{"name": "res", "title": "Figure 5", "representation": "cut", "input_option": "size",
                       "values": [4, 8]}]
    data["report"] = {"embeddings": []}
    out = tmp_path / "run"
    cells = BenchmarkRunner(parse_config(data), out).run()["cells"]
    assert [c["representation"] for c in cells] == ["cut", "res=4", "res=8"]
    assert [c["n_test"] for c in cells] == [cells[0]["n_test"]] * 3
    report = (out / "report.md").read_text()
    assert "## Figure 5: res (size of representation 'cut')" in report
    assert (out / "figures" / "sweep_res_rf.png").is_file()
    assert not list((out / "figures").glob("cm_sim_res=*"))
    import json

    assert "res=4" not in json.dumps(json.loads((out / "config.json").read_text())["representations"])
