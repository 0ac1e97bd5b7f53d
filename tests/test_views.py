"""Named inputs ("views"): every view kind against hand-computed values, the one-kind shorthand of every
shipped config against the code before views (bit for bit), the mapping form (two cutouts + columns), a
registered view kind, the runner's input checks and an old predictor.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import yaml

from astromodal import simulate_survey
from astromodal.data.dataset import Column, Dataset, Images, Spectra, Target
from astromodal.data.views import VIEWS, View
from astromodal.errors import ConfigError
from astromodal.experiments import RepresentationConfig, parse_config
from astromodal.registry import Registry
from astromodal.transforms.representations import build_inputs, flatten_inputs
from astromodal.transforms.spectra import log_grid

REPO = Path(__file__).resolve().parents[1]
#: the source tree before views (the lead's pristine copy), to compare arrays against; tests skip without it
PRISTINE = Path(os.environ.get("ASTROMODAL_PRISTINE", "/tmp/pristine")) / "src"


def tiny() -> Dataset:
    """Two objects with hand-checkable values in every kind of block."""
    flux = np.array([[3.0, 0.0, 4.0], [1.0, 2.0, 2.0]])
    const = np.full((2, 3601), 2.0)
    pix = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4)
    return Dataset(
        ids=np.array([10, 11]),
        spectra={"s": Spectra(flux, np.array([4000.0, 5000.0, 6000.0])),
                 "flat": Spectra(const, log_grid(3700.0, 9100.0, 3601))},
        images={"im": Images(pix, ("g", "r"))},
        columns={"x_a": Column(np.array([3.0, 1.0])), "x_b": Column(np.array([4.0, 2.0])), "y": Column(np.array([7.0, 8.0]))},
        targets={"class": Target(np.array([0, 1]), "class", ("a", "b"))},
    )


def rep(**kw) -> RepresentationConfig:
    return RepresentationConfig(**kw)


def test_registry_is_generic_and_names_known_entries():
    reg: Registry[type] = Registry("widget")
    reg.register("b", colour="red")(int)
    reg.register("a")(str)
    assert reg.get("b") is int and reg.meta("b") == {"colour": "red"} and reg.names() == ["a", "b"]
    with pytest.raises(ConfigError, match=r"unknown widget 'c'; registered: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)
    assert {"line", "spectrum_image", "spectrum", "context", "columns", "cutout"} <= set(VIEWS.names())


def test_every_view_kind_against_hand_computed_values():
    ds = tiny()
    views = {"sp": {"kind": "spectrum", "spectra": "s"}, "l2": {"kind": "spectrum", "spectra": "s", "normalise": "l2"},
             "mm": {"kind": "spectrum", "spectra": "s", "normalise": "minmax"},
             "ctx": {"kind": "context", "spectra": "s"},
             "cols": {"kind": "columns", "columns": ["x_*", "y"]},
             "cols2": {"kind": "columns", "columns": ["x_a", "x_b"], "normalise": "l2"},
             "cut": {"kind": "cutout", "images": "im", "bands": ["r"], "size": 2},
             "line": {"kind": "line", "spectra": "flat", "preprocessing": {"normalise": "none"}}}
    X = ds.inputs(rep(inputs=views).views())
    assert all(a.dtype == np.float32 for a in X.values())
    np.testing.assert_array_equal(X["sp"], [[3, 0, 4], [1, 2, 2]])
    np.testing.assert_allclose(X["l2"], [[0.6, 0, 0.8], [1 / 3, 2 / 3, 2 / 3]], rtol=1e-6)
    np.testing.assert_allclose(X["mm"], [[0.75, 0, 1], [0, 1, 1]], rtol=1e-6)
    np.testing.assert_array_equal(X["ctx"], [[4, 0], [2, 1]])
    np.testing.assert_array_equal(X["cols"], [[3, 4, 7], [1, 2, 8]])
    np.testing.assert_allclose(X["cols2"], [[0.6, 0.8], [1 / 5 ** 0.5, 2 / 5 ** 0.5]], rtol=1e-6)
    # band r of object 0 is 16..31 in a 4 x 4 grid: 2 x 2 block means
    np.testing.assert_array_equal(X["cut"][0, 0], [[16 + 2.5, 16 + 4.5], [16 + 10.5, 16 + 12.5]])
    assert X["cut"].shape == (2, 1, 2, 2)
    np.testing.assert_array_equal(X["line"], np.full((2, 721), 2.0))  # mean filter of a constant
    # spectrum_image: the line vector zero-padded to 784, as 8-bit grey levels / 255, row by row
    mm_line = {"kind": "line", "spectra": "flat", "preprocessing": {}}
    ramp = Dataset(ids=np.arange(2), spectra={"f": Spectra(np.stack([np.linspace(1, 2, 3601), np.linspace(5, 3, 3601)]),
                                                           log_grid(3700.0, 9100.0, 3601))})
    mm_line["spectra"] = "f"
    got = ramp.inputs(rep(inputs={"v": mm_line, "im": {"kind": "spectrum_image", "spectra": "f"}}).views())
    want = np.round(255 * np.concatenate([got["v"].astype(np.float64), np.zeros((2, 63))], axis=1)) / 255
    np.testing.assert_allclose(got["im"], want.reshape(2, 1, 28, 28), atol=1e-7)
    # line from AstroSpectra-MNIST images: the first 721 grey levels / 255
    png = np.arange(2 * 784).reshape(2, 1, 28, 28) % 256
    mn = Dataset(ids=np.arange(2), images={"m": Images(png.astype(np.uint8), ("grey",))})
    back = build_inputs(mn, rep(kind="line", images="m"))["spectrum"]
    np.testing.assert_allclose(back, png.reshape(2, -1)[:, :721] / 255, atol=1e-7)


def test_shorthand_names_and_aliases():
    ds = tiny()
    assert list(rep(kind="spectrum", spectra="s", context=True).views()) == ["context", "spectrum"]
    assert list(rep(kind="line", spectra="flat").views()) == ["spectrum"]
    for kind in ("image", "spectrum_image"):
        assert [type(v).__name__ for v in rep(kind=kind).views().values()] == ["SpectrumImageView"]
    a = build_inputs(ds, rep(kind="images", images="im", bands=["g"], size=2))
    b = build_inputs(ds, rep(kind="cutout", images="im", bands=["g"], size=2))
    assert list(a) == list(b) == ["image"] and np.array_equal(a["image"], b["image"])


def test_bad_view_options_are_one_line_config_errors():
    base = {"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": [{"name": "random_forest"}]}
    with pytest.raises(ConfigError) as e:
        parse_config({**base, "representations": {"r": {"inputs": {"gri": {"kind": "cutout", "bandz": ["g"]}}}}})
    msg = str(e.value)
    assert "\n" not in msg and "input 'gri' (cutout view): unknown key 'bandz'" in msg
    assert "allowed keys here: bands, images, isolate, isolate_options, kind, size" in msg
    with pytest.raises(ConfigError, match="unknown view kind 'cutouts'; registered: .*cutout"):
        parse_config({**base, "representations": {"r": {"inputs": {"gri": {"kind": "cutouts"}}}}})
    with pytest.raises(ConfigError, match="either 'kind'"):
        parse_config({**base, "representations": {"r": {"kind": "line", "inputs": {"a": {"kind": "line"}}}}})
    with pytest.raises(ConfigError, match="not per-object"):
        parse_config({**base, "representations": {"r": {"inputs": {"c": {"kind": "columns", "columns": ["u"],
                                                                           "normalise": "standard"}}}}})
    with pytest.raises(ConfigError, match="representation kind 'columns': input 'columns'.*'columns': Field required"):
        rep(kind="columns").views()


def _shipped_representations() -> list[tuple[str, str, dict]]:
    out = []
    for f in sorted((REPO / "experiments").glob("*.yaml")):
        for name, r in yaml.safe_load(f.read_text())["representations"].items():
            if "kind" in r:  # the one-kind shorthand (the mapping form is newer than the pristine tree)
                out.append((f.name, name, r))
    return out


def _dataset_for_shipped(path: Path) -> tuple[Path, list[dict]]:
    """A tiny dataset holding every block and column the shipped representations read (block names mapped
    onto it), saved to ``path``; and those representations."""
    ds = simulate_survey(n=8, seed=3, instruments=("lamost", "sdss", "gaia_xp"), image_size=8)
    from astromodal.transforms.spectra import image_representation

    mnist = (np.round(image_representation(ds, "lamost") * 255)).astype(np.uint8)
    rng = np.random.default_rng(0)
    reps = []
    for _, _, r in _shipped_representations():
        r = dict(r)
        if r.get("images") == "mnist":
            pass
        elif "images" in r:
            r["images"] = "sdss"
        reps.append(r)
    names = {c for r in reps for c in r.get("columns", []) if not any(ch in c for ch in "*?[")}
    extra = {c: Column(rng.normal(size=len(ds)) + 3) for c in sorted(names) if c not in ds.columns}
    extra.update({f"xp_{b}_{k}": Column(rng.normal(size=len(ds)) + 2) for b in ("bp", "rp") for k in range(3)})
    ds = ds.with_columns(extra)
    ds = Dataset(ds.ids.read(), ds.ra.read(), ds.dec.read(), dict(ds.spectra),
                 {**ds.images, "mnist": Images(mnist, ("grey",))}, dict(ds.columns), dict(ds.targets))
    return ds.save(path), reps


_BUILD = """
import json, sys, numpy as np
from astromodal.data.dataset import Dataset
from astromodal.experiments import RepresentationConfig
from astromodal.transforms.representations import build_inputs, flatten_inputs
ds = Dataset.load(sys.argv[1], lazy=False)
out = {}
for i, r in enumerate(json.loads(open(sys.argv[2]).read())):
    X = build_inputs(ds, RepresentationConfig(**r))
    out.update({f"{i}/{k}": v for k, v in X.items()})
    out[f"{i}/flat"] = flatten_inputs(X)
np.savez(sys.argv[3], **out)
# what cell fingerprints and predictor.json store
dumps = [RepresentationConfig(**r).model_dump() for r in json.loads(open(sys.argv[2]).read())]
open(sys.argv[3] + ".json", "w").write(json.dumps(dumps, sort_keys=True))
"""


@pytest.mark.skipif(not PRISTINE.is_dir(), reason="no pristine source tree to compare against")
def test_shorthand_of_every_shipped_config_gives_the_same_arrays(tmp_path):
    h5, reps = _dataset_for_shipped(tmp_path / "d.h5")
    (tmp_path / "reps.json").write_text(json.dumps(reps))
    script = tmp_path / "build.py"
    script.write_text(_BUILD)
    for tree, out in ((PRISTINE, "old.npz"), (REPO / "src", "new.npz")):
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run([sys.executable, str(script), str(h5), str(tmp_path / "reps.json"), str(tmp_path / out)],
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    old, new = np.load(tmp_path / "old.npz"), np.load(tmp_path / "new.npz")
    assert sorted(old.files) == sorted(new.files) and len(old.files) >= 2 * len(reps)
    for k in old.files:
        assert old[k].dtype == new[k].dtype and np.array_equal(old[k], new[k]), k
    # the same dumps, so finished cells keep their fingerprints (a re-run resumes, trains nothing again)
    assert (tmp_path / "old.npz.json").read_text() == (tmp_path / "new.npz.json").read_text()


def test_two_cutouts_and_columns_build_three_named_arrays():
    ds = simulate_survey(n=30, seed=2, instruments=("sdss",), image_size=16)
    r = rep(inputs={"gri": {"kind": "cutout", "images": "sdss", "bands": ["g", "r", "i"], "size": 8},
                    "urz": {"kind": "cutout", "images": "sdss", "bands": ["u", "r", "z"]},
                    "astrometry": {"kind": "columns", "columns": ["parallax", "pmra", "pmdec"]}})
    X = ds.inputs(r.views())
    assert {k: v.shape for k, v in X.items()} == {"gri": (30, 3, 8, 8), "urz": (30, 3, 16, 16), "astrometry": (30, 3)}
    pix = ds.images["sdss"].pixels.read()
    np.testing.assert_array_equal(X["urz"][:, 1], pix[:, 2].astype(np.float32))
    np.testing.assert_allclose(X["gri"][:, 0], pix[:, 1].reshape(30, 8, 2, 8, 2).mean(axis=(2, 4)), rtol=1e-6)
    np.testing.assert_array_equal(X["astrometry"][:, 0], ds.columns["parallax"].values.read().astype(np.float32))
    # the saved config round-trips (predictor.json stores model_dump())
    again = RepresentationConfig(**json.loads(json.dumps(r.model_dump())))
    assert again.views() == r.views()
    # classical models see all arrays side by side: the known names first, then the others sorted
    flat = flatten_inputs({"columns": X["astrometry"], **X})
    assert flat.shape == (30, 3 + 3 * 64 + 3 + 3 * 256)
    np.testing.assert_array_equal(flat[:, :3], X["astrometry"])


def test_registering_a_view_kind_is_one_decorated_class():
    @VIEWS.register("flux_sum_test")
    class FluxSum(View):
        kind: Literal["flux_sum_test"] = "flux_sum_test"
        spectra: str

        def build(self, ds):
            return ds.spectra[self.spectra].flux.read().sum(axis=1, keepdims=True).astype(np.float32)

    cfg = parse_config({"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": [{"name": "random_forest"}],
                        "representations": {"r": {"inputs": {"total": {"kind": "flux_sum_test", "spectra": "s"}}}}})
    X = tiny().inputs(cfg.representations["r"].views())
    np.testing.assert_array_equal(X["total"], [[7.0], [5.0]])


def _runner(models, representations):
    from astromodal.evaluation.benchmark import BenchmarkRunner

    cfg = parse_config({"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": models,
                        "representations": representations})
    return BenchmarkRunner(cfg, Path("unused"))


def test_runner_checks_model_inputs_against_representation_names():
    reps = {"cols": {"kind": "columns", "columns": ["u", "g"]},
            "xp": {"kind": "spectrum", "spectra": "gaia_xp", "context": True},
            "line": {"kind": "line", "spectra": "lamost"}}
    cells = _runner([{"name": "random_forest"}, {"name": "mlp_columns"}], reps).cells()
    assert [(c.model.name, c.representation) for c in cells] == [
        ("random_forest", "cols"), ("random_forest", "xp"), ("random_forest", "line"), ("mlp_columns", "cols")]
    with pytest.raises(ConfigError, match=r"model 'mlp_columns' reads input\(s\) \['columns'\] that representation "
                                          r"'line' lacks \(its inputs: \['spectrum'\]\)"):
        _runner([{"name": "mlp_columns", "representations": ["cols", "line"]}], reps).cells()
    with pytest.raises(ConfigError, match=r"reads input\(s\) \['columns'\] but no representation gives them all: "
                                          r"'xp' gives \['context', 'spectrum'\]; 'line' gives \['spectrum'\]"):
        _runner([{"name": "mlp_columns"}], {k: reps[k] for k in ("xp", "line")}).cells()


def test_model_option_inputs_overrides_the_class_attribute():
    from astromodal.models.registry import get_model

    spec = get_model("mlp_columns")
    assert spec.declared_inputs({}) == ("columns",)
    assert spec.declared_inputs({"inputs": ["gri", "astrometry"]}) == ("gri", "astrometry")
    assert get_model("random_forest").declared_inputs({}) is None
    with pytest.raises(ConfigError, match="list of input names"):
        spec.declared_inputs({"inputs": "gri"})


_OLD_PREDICTOR = """
import sys, numpy as np
from astromodal.data.dataset import Dataset
from astromodal.experiments import RepresentationConfig
from astromodal.inference.catalogue import save_predictor
from astromodal.training.estimator import make_estimator
from astromodal.transforms.representations import build_inputs, flatten_inputs, input_shapes
ds = Dataset.load(sys.argv[1], lazy=False)
rep = RepresentationConfig(kind="images", images="im", bands=["r"], size=2)
X = build_inputs(ds, rep)
t = ds.targets["class"]
est = make_estimator("logistic_regression", {}, task="classification").fit(flatten_inputs(X), t.values.read())
save_predictor(sys.argv[2], est, rep, "class", "classification", list(t.class_names), "classical", input_shapes(X))
np.save(sys.argv[3], est.predict_proba(flatten_inputs(X)))
"""


@pytest.mark.skipif(not PRISTINE.is_dir(), reason="no pristine source tree to compare against")
def test_a_predictor_saved_before_views_still_predicts(tmp_path):
    from astromodal.inference.catalogue import load_predictor

    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    pix = rng.normal(size=(40, 2, 4, 4)) + y[:, None, None, None]
    ds = Dataset(ids=np.arange(40), images={"im": Images(pix, ("g", "r"))},
                 targets={"class": Target(y, "class", ("a", "b"))})
    ds.save(tmp_path / "d.h5")
    (tmp_path / "old.py").write_text(_OLD_PREDICTOR)
    done = subprocess.run([sys.executable, str(tmp_path / "old.py"), str(tmp_path / "d.h5"), str(tmp_path / "m"),
                           str(tmp_path / "p.npy")], env={**os.environ, "PYTHONPATH": str(PRISTINE)},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((tmp_path / "m" / "predictor.json").read_text())
    assert meta["representation"]["kind"] == "images" and "inputs" not in meta["representation"]
    pred = load_predictor(tmp_path / "m", trust=True)
    np.testing.assert_array_equal(pred.predict_proba(ds), np.load(tmp_path / "p.npy"))


def test_a_fusion_model_reads_the_inputs_named_in_its_options():
    import torch
    from torch import nn

    from astromodal.models.registry import register_model
    from astromodal.training.estimator import make_estimator

    @register_model("fusion_views_test", modality="multimodal")
    class Fusion(nn.Module):
        def __init__(self, input_shape, n_outputs=2, inputs=("a",), input_shapes=None):
            super().__init__()
            self.names = tuple(inputs)
            width = sum(int(np.prod(input_shapes[k])) for k in self.names)
            self.head = nn.Linear(width, n_outputs)

        def forward(self, **x):
            assert set(x) == set(self.names)
            return self.head(torch.cat([x[k].flatten(1) for k in self.names], dim=1))

    opts = {"inputs": ["gri", "astrometry"]}
    reps = {"mescr": {"inputs": {"gri": {"kind": "cutout", "bands": ["g", "r", "i"], "size": 4},
                                 "astrometry": {"kind": "columns", "columns": ["parallax", "pmra", "pmdec"]}}},
            "cols": {"kind": "columns", "columns": ["parallax"]}}
    cells = _runner([{"name": "fusion_views_test", "options": opts}], reps).cells()
    assert [c.representation for c in cells] == ["mescr"]
    ds = simulate_survey(n=30, seed=4, instruments=("sdss",), image_size=8)
    X = ds.inputs(parse_config({"name": "x", "datasets": {"d": {"source": "simulate"}}, "models": [],
                                "representations": reps}).representations["mescr"].views())
    est = make_estimator("fusion_views_test", opts, trainer={"max_epochs": 1, "device": "cpu", "progress": False})
    est.fit(X, ds.targets["class"].values.read())
    assert est.input_shapes == {"gri": [3, 4, 4], "astrometry": [3]}
    assert est.predict_proba(X).shape == (30, 3)


def test_cutout_asinh_stretch_is_a_fixed_function_of_each_pixel():
    ds = simulate_survey(n=12, seed=4, instruments=(), image_size=8)
    raw = ds.inputs(rep(inputs={"x": {"kind": "cutout", "images": "sdss"}}).views())["x"]
    r = rep(inputs={"x": {"kind": "cutout", "images": "sdss", "stretch": "asinh", "softening": 0.1}})
    np.testing.assert_allclose(ds.inputs(r.views())["x"], np.arcsinh(raw.astype(np.float64) / 0.1), rtol=1e-6)
    # per object: the stretch of a subset is the subset of the stretch (never fitted)
    np.testing.assert_array_equal(ds.subset(np.arange(3, 7)).inputs(r.views())["x"], ds.inputs(r.views())["x"][3:7])
    # the default (no stretch) dumps as before stretches existed
    assert "stretch" not in rep(inputs={"x": {"kind": "cutout", "images": "sdss"}}).model_dump()["inputs"]["x"]
    with pytest.raises(ValueError, match="softening"):  # pydantic's ValidationError, a config error line
        rep(inputs={"x": {"kind": "cutout", "images": "sdss", "stretch": "asinh", "softening": 0}})
