"""`astromodal predict` writes every head of a model: class label + probabilities, mean + 1-sigma (Eq. 1 for
an ensemble) + sigma_net, point values; renames (MESCR Table A2 names), collisions, resume, old folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Column, Dataset, Target
from astromodal.errors import BadValueError, ConfigError
from astromodal.experiments import RepresentationConfig
from astromodal.inference import catalogue as cat
from astromodal.inference.catalogue import load_predictor, predict_catalogue, save_predictor
from astromodal.training.ensemble import EnsembleEstimator
from astromodal.training.predictions import Categorical, Gaussian

PRISTINE = Path(os.environ.get("ASTROMODAL_PRISTINE", "/tmp/pristine")) / "src"
REP = RepresentationConfig(kind="columns", columns=["x"])
CLASSES = ["A", "K", "M"]
runner = CliRunner()


class Member:
    """A fitted two-head model with hand-set outputs: class probabilities ``proba`` for every object;
    radius mean ``x + shift`` with variance ``var`` (``var=None``: a point head)."""

    kind = "fake"
    task = "classification"
    classes_ = np.arange(3)

    def __init__(self, proba, shift, var, heads=("spectral_type", "radius")):
        self.proba, self.shift, self.var = np.asarray(proba, float), float(shift), var
        self.head_names = list(heads)
        self.head_tasks = {heads[0]: "classification", **{h: "regression" for h in heads[1:]}}
        self.head_classes = {heads[0]: np.arange(3), **{h: None for h in heads[1:]}}
        self.heads = {heads[0]: SimpleNamespace(kind="categorical"),
                      **{h: SimpleNamespace(kind="point" if var is None else "gaussian") for h in heads[1:]}}

    def predict_heads(self, X):
        x = np.asarray(X["columns"], float)[:, 0]
        out = {self.head_names[0]: Categorical(np.tile(self.proba, (len(x), 1)), np.arange(3))}
        for h in self.head_names[1:]:
            mean = x + self.shift
            out[h] = Gaussian.point(mean) if self.var is None else Gaussian(mean, np.full(len(x), self.var))
        return out

    def save(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.json").write_text(json.dumps({"kind": "fake", "shift": self.shift}))


def fake_folder(tmp_path, monkeypatch, estimator, name="m", heads=None):
    """A model folder for ``estimator`` written by save_predictor; loading it gives ``estimator`` back."""
    heads = heads or {"spectral_type": {"task": "classification", "class_names": CLASSES},
                      "radius": {"task": "regression", "unit": "Rsun"}}
    first = next(iter(heads))
    folder = save_predictor(tmp_path / name, estimator, REP, first, heads[first]["task"],
                            heads[first].get("class_names", []), "neural", {"columns": [1]}, heads=heads)
    loaded = {str(folder): estimator}
    import astromodal.training.estimator as est_mod  # load_predictor imports load_estimator when called

    previous = est_mod.load_estimator

    def load(path, trust=False):
        return loaded[str(path)] if str(path) in loaded else previous(path, trust=trust)

    monkeypatch.setattr(est_mod, "load_estimator", load)
    return folder


def dataset(n=7):
    x = np.arange(n, dtype=float) * 0.5
    return Dataset(np.arange(100, 100 + n), np.linspace(10, 20, n), np.linspace(-5, 5, n),
                   columns={"x": Column(x), "psfMag_u": Column(x + 18), "psfMag_g": Column(x + 17),
                            "other": Column(x * 0)},
                   targets={"radius": Target(x * 2, "regression", unit="Rsun")})


P1, P2 = [0.6, 0.3, 0.1], [0.2, 0.2, 0.6]


def test_every_head_of_an_ensemble_with_table_a2_names(tmp_path, monkeypatch):
    """Weights 0.25 / 0.75: prob = 0.25 P1 + 0.75 P2 = (0.3, 0.225, 0.475), label M; radius members x and
    x + 2 with variances 1 and 3: mean x + 1, Eq. 1 variance (1 + 3) / 2 + 1 = 3, sigma_net 1."""
    ens = EnsembleEstimator([Member(P1, 0.0, 1.0), Member(P2, 2.0, 3.0)], weights=[0.25, 0.75])
    folder = fake_folder(tmp_path, monkeypatch, ens)
    meta = json.loads((folder / "predictor.json").read_text())
    assert meta["heads"] == [
        {"name": "spectral_type", "kind": "categorical", "task": "classification", "class_names": CLASSES, "unit": ""},
        {"name": "radius", "kind": "gaussian", "task": "regression", "class_names": [], "unit": "Rsun"}]
    ds = dataset()
    out = predict_catalogue(folder, ds, tmp_path / "p.parquet", chunk_size=3, keep=["psfMag_*"],
                            rename={"id": "objid", "spectral_type": "spectral_class", "radius_sigma_net": "sigma_net"})
    got = pq.read_table(out)
    assert got.column_names == ["objid", "ra", "dec", "spectral_class", "prob_A", "prob_K", "prob_M", "radius",
                                "radius_err", "sigma_net", "psfMag_u", "psfMag_g"]
    df = got.to_pandas()
    x = np.arange(7) * 0.5
    assert df["objid"].tolist() == list(range(100, 107))
    np.testing.assert_allclose(df[["prob_A", "prob_K", "prob_M"]].to_numpy(), np.tile([0.3, 0.225, 0.475], (7, 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(df[["prob_A", "prob_K", "prob_M"]].sum(axis=1), 1.0, rtol=1e-6)
    assert df["spectral_class"].tolist() == ["M"] * 7
    np.testing.assert_allclose(df["radius"], x + 1.0)
    np.testing.assert_allclose(df["radius_err"], np.sqrt(3.0))
    np.testing.assert_allclose(df["sigma_net"], 1.0)
    np.testing.assert_array_equal(df["psfMag_u"], x + 18)
    assert got.schema.field("spectral_class").type == pa.string()
    assert got.schema.field("prob_A").type == pa.float32() and got.schema.field("radius_err").type == pa.float64()
    info = json.loads(got.schema.metadata[b"astromodal"])
    assert [h["columns"] for h in info["heads"]] == [["spectral_class", "prob_A", "prob_K", "prob_M"],
                                                     ["radius", "radius_err", "sigma_net"]]
    assert info["heads"][1]["unit"] == "Rsun"


def test_a_single_model_has_no_sigma_net_and_a_point_head_only_its_value(tmp_path, monkeypatch):
    one = fake_folder(tmp_path, monkeypatch, Member(P1, 0.5, 4.0), name="one")
    df = pd.read_parquet(predict_catalogue(one, dataset(), tmp_path / "one.parquet"))
    assert list(df.columns) == ["id", "ra", "dec", "spectral_type", "prob_A", "prob_K", "prob_M", "radius",
                                "radius_err"]
    assert df["spectral_type"].tolist() == ["A"] * 7
    np.testing.assert_allclose(df["radius_err"], 2.0)
    # point heads: the value alone; an ensemble of them adds the spread of the member means
    point = fake_folder(tmp_path, monkeypatch, Member(P1, 0.0, None), name="point")
    assert json.loads((point / "predictor.json").read_text())["heads"][1]["kind"] == "point"
    assert "radius_err" not in pd.read_parquet(predict_catalogue(point, dataset(), tmp_path / "pt.parquet")).columns
    ens = fake_folder(tmp_path, monkeypatch, EnsembleEstimator([Member(P1, 0.0, None), Member(P2, 3.0, None)]),
                      name="ens")
    df = pd.read_parquet(predict_catalogue(ens, dataset(), tmp_path / "e.parquet", keep=["radius"]))
    assert [c for c in df.columns if c.startswith(("radius", "true_"))] == ["radius", "radius_sigma_net",
                                                                            "true_radius"]
    np.testing.assert_allclose(df["radius"], np.arange(7) * 0.5 + 1.5)
    np.testing.assert_allclose(df["radius_sigma_net"], 1.5)
    np.testing.assert_allclose(df["true_radius"], np.arange(7) * 1.0)


def test_two_class_heads_name_their_probabilities_by_head(tmp_path, monkeypatch):
    class TwoClassHeads(Member):
        def __init__(self):
            super().__init__(P1, 0.0, 1.0, heads=("a", "b"))
            self.head_tasks = {"a": "classification", "b": "classification"}
            self.head_classes = {"a": np.arange(3), "b": np.arange(2)}
            self.heads = {"a": SimpleNamespace(kind="categorical"), "b": SimpleNamespace(kind="binary")}

        def predict_heads(self, X):
            n = len(X["columns"])
            return {"a": Categorical(np.tile(P1, (n, 1)), np.arange(3)),
                    "b": Categorical(np.tile([0.1, 0.9], (n, 1)), np.arange(2))}

    heads = {"a": {"task": "classification", "class_names": CLASSES},
             "b": {"task": "classification", "class_names": ["no", "yes"]}}
    folder = fake_folder(tmp_path, monkeypatch, TwoClassHeads(), heads=heads)
    df = pd.read_parquet(predict_catalogue(folder, dataset(3), tmp_path / "p.parquet"))
    assert list(df.columns)[3:] == ["a", "prob_a_A", "prob_a_K", "prob_a_M", "b", "prob_b_no", "prob_b_yes"]
    assert df["a"].tolist() == ["A"] * 3 and df["b"].tolist() == ["yes"] * 3
    np.testing.assert_allclose(df["prob_b_yes"], 0.9, rtol=1e-6)


def test_collisions_and_bad_renames_are_one_line_before_any_work(tmp_path, monkeypatch):
    folder = fake_folder(tmp_path, monkeypatch, Member(P1, 0.0, 1.0))
    ds = dataset()
    ds.columns["ra"] = Column(np.zeros(7))
    ds.columns["prob_A"] = Column(np.ones(7))
    out = tmp_path / "p.parquet"
    cases = [({"keep": ["ra"]}, "--keep 'ra': the output has its own column 'ra' (the sky positions); leave it out, "
                                "or give the output's column another name with --rename ra=NEW"),
             ({"keep": ["prob_A"]}, "--keep 'prob_A': the output has its own column 'prob_A' (head 'spectral_type')"),
             ({"rename": {"radius": "ra"}}, "two output columns would be named 'ra' (the sky positions; head 'radius')"),
             ({"rename": {"nope": "x"}}, "--rename nope=x: the output has no column 'nope'; its columns: id, ra, dec, "
                                         "spectral_type, prob_A"),
             ({"keep": ["psf*_z"]}, "--keep 'psf*_z': matches no column or target of the dataset"),
             ({"layout": "wide"}, "--layout 'wide': unknown; known: auto, heads")]
    for options, message in cases:
        with pytest.raises((ConfigError, BadValueError)) as err:
            predict_catalogue(folder, ds, out, **options)
        assert message in str(err.value) and "\n" not in str(err.value), (options, str(err.value))
        assert not out.exists() and not (tmp_path / "p.parquet.parts").exists()
    # renaming astromodal's own column frees its name for the kept one
    df = pd.read_parquet(predict_catalogue(folder, ds, out, keep=["ra"], rename={"ra": "ra_model"}))
    assert list(df.columns[:3]) == ["id", "ra_model", "dec"] and df["ra"].tolist() == [0.0] * 7
    # the verb: a malformed --rename is one line, exit code not 0
    bad = runner.invoke(app, ["predict", str(folder), str(tmp_path / "x.h5"), "--out", str(tmp_path / "q.parquet"),
                              "--rename", "class"])
    assert bad.exit_code != 0 and "--rename 'class': give OLD=NEW" in str(bad.exception)


def test_resume_after_a_kill_gives_one_row_per_object_with_every_head(tmp_path, monkeypatch):
    ens = EnsembleEstimator([Member(P1, 0.0, 1.0), Member(P2, 2.0, 3.0)], weights=[0.25, 0.75])
    folder = fake_folder(tmp_path, monkeypatch, ens)
    ds = dataset(23)
    renames = {"spectral_type": "spectral_class"}
    ref = pd.read_parquet(predict_catalogue(folder, ds, tmp_path / "ref.parquet", chunk_size=5, rename=renames))
    real, calls = cat._chunk_table, {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    out = tmp_path / "p.parquet"
    monkeypatch.setattr(cat, "_chunk_table", dying)
    with pytest.raises(KeyboardInterrupt):
        predict_catalogue(folder, ds, out, chunk_size=5, rename=renames)
    monkeypatch.setattr(cat, "_chunk_table", real)
    assert len(list((tmp_path / "p.parquet.parts").glob("part-*.parquet"))) == 2
    # other output columns (another rename, the per-head layout) are another run: refused, one line
    with pytest.raises(ConfigError, match=r"another run \(the output columns \(heads, --layout, --rename\)"):
        predict_catalogue(folder, ds, out, chunk_size=5, rename={"spectral_type": "cls"})
    said: list[str] = []
    predict_catalogue(folder, ds, out, chunk_size=5, rename=renames, log=said.append)
    assert said == [f"resuming: 2 of 5 chunks done ({out}.parts)"]
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, ref)
    assert len(got) == 23 and got["id"].tolist() == list(range(100, 123)) and "spectral_class" in got.columns


# ---------------------------------------------------------------------- folders of one head, old and new
def _table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return pd.DataFrame({"source_id": np.arange(n) + 10**15, "ra": rng.uniform(0, 360, n),
                         "dec": rng.uniform(-60, 60, n), "parallax": rng.normal(size=n),
                         "c0": rng.normal(size=n) + y, "c1": rng.normal(size=n),
                         "class": np.where(y == 1, "qso", "star")})


_SAVE = """
import sys, numpy as np, pandas as pd
from astromodal.data.dataset import Column, Dataset, Target
from astromodal.experiments import RepresentationConfig
from astromodal.inference.catalogue import save_predictor, predict_catalogue
from astromodal.training.ensemble import EnsembleEstimator
from astromodal.training.estimator import make_estimator
from astromodal.transforms.representations import build_inputs, input_shapes
out, csv, predict = sys.argv[1], sys.argv[2], sys.argv[3] == "predict"
df = pd.read_csv(csv)
ds = Dataset(np.arange(len(df)), columns={c: Column(df[c].to_numpy()) for c in ["c0", "c1"]},
             targets={"class": Target.from_labels(df["class"], ("qso", "star")),
                      "teff": Target(5000 + 800 * df["c0"].to_numpy(), "regression", unit="K")})
rep = RepresentationConfig(kind="columns", columns=["c0", "c1"])
X = build_inputs(ds, rep)
trainer = {"max_epochs": 2, "batch_size": 32, "patience": None, "progress": False, "device": "cpu"}
gauss = {**trainer, "loss": "gaussian_nll"}
def reg(seed):
    return make_estimator("mlp_columns", {}, task="regression", trainer={**gauss, "seed": seed}).fit(
        X, ds.targets["teff"].values.read())
if not predict:
    y = ds.targets["class"].values.read()
    sk = make_estimator("logistic_regression").fit(X["columns"], y)
    save_predictor(out + "/sk", sk, rep, "class", "classification", ["qso", "star"], "classical", input_shapes(X))
    save_predictor(out + "/reg", reg(0), rep, "teff", "regression", [], "neural", input_shapes(X))
    save_predictor(out + "/ens", EnsembleEstimator([reg(1), reg(2)]), rep, "teff", "regression", [], "neural",
                   input_shapes(X))
    two = make_estimator("multi_input_net", {"inputs": ["columns"], "hidden": 8}, trainer=gauss, heads={"class": {}, "teff": {"kind": "gaussian"}}).fit(
        X, {"class": y, "teff": ds.targets["teff"].values.read()})
    save_predictor(out + "/two", two, rep, "class", "classification", ["qso", "star"], "neural", input_shapes(X))
for name in ["sk", "reg", "ens", "two"]:
    predict_catalogue(out + "/" + name, csv, out + "/" + name + "_" + sys.argv[4] + ".parquet", chunk_size=25,
                      trust=True, keep=["c1"], log=lambda s: None)
"""


def _run(tree, *args):
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _SAVE, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.skipif(not PRISTINE.is_dir(), reason="no pristine source tree (git archive HEAD src) to compare against")
def test_folders_saved_by_the_previous_version_predict_identically(tmp_path):
    """Folders written and predicted by the code before this change (one head: classifier, Gaussian
    regressor, an ensemble of two; and a two-head model, of which that code wrote the first head only):
    the new code gives the same one-head tables, and every head of the two-head model."""
    csv = tmp_path / "c.csv"
    _table().to_csv(csv, index=False)
    _run(PRISTINE, tmp_path, csv, "save", "old")
    assert "heads" not in json.loads((tmp_path / "sk" / "predictor.json").read_text())
    _run(Path(__file__).resolve().parents[1] / "src", tmp_path, csv, "predict", "new")
    for name in ["sk", "reg", "ens"]:
        old, new = pq.read_table(tmp_path / f"{name}_old.parquet"), pq.read_table(tmp_path / f"{name}_new.parquet")
        assert new.column_names == old.column_names and new.schema.equals(old.schema, check_metadata=False), name
        assert new.equals(old), name
    assert pq.read_schema(tmp_path / "ens_new.parquet").names == ["id", "ra", "dec", "parallax", "teff",
                                                                  "teff_sigma", "c1"]
    old, new = pd.read_parquet(tmp_path / "two_old.parquet"), pd.read_parquet(tmp_path / "two_new.parquet")
    assert list(new.columns) == ["id", "ra", "dec", "parallax", "class", "prob_qso", "prob_star", "teff", "teff_err",
                                 "c1"]
    assert new["class"].tolist() == old["label"].tolist()
    np.testing.assert_array_equal(new[["prob_qso", "prob_star"]], old[["prob_qso", "prob_star"]])
    pred = load_predictor(tmp_path / "two")
    assert not pred.described and [(h.name, h.kind) for h in pred.heads] == [("class", "categorical"),
                                                                           ("teff", "gaussian")]


class RegMember:
    """A one-head Gaussian regressor with hand-set outputs: mean ``x + shift``, variance ``var``."""

    kind = "fake"
    task = "regression"
    classes_ = None
    gives_variance = True
    head_names = ["radius"]
    head_tasks = {"radius": "regression"}
    heads = {"radius": SimpleNamespace(kind="gaussian")}

    def __init__(self, shift, var):
        self.shift, self.var = shift, var

    def predict_mean_var(self, X):
        x = np.asarray(X["columns"], float)[:, 0]
        return x + self.shift, np.full(len(x), self.var)

    def predict_heads(self, X):
        return {"radius": Gaussian(*self.predict_mean_var(X))}

    save = Member.save


def test_a_predictor_json_without_heads_predicts_as_before(tmp_path, monkeypatch):
    """The layout of every earlier predictor.json (no "heads"): a one-head model writes the columns it always
    wrote, with the same values; ``layout="heads"`` asks for the per-head columns."""
    ens = EnsembleEstimator([RegMember(0.0, 1.0), RegMember(2.0, 3.0)])
    folder = fake_folder(tmp_path, monkeypatch, ens, heads={"radius": {"task": "regression", "unit": "Rsun"}})
    meta = json.loads((folder / "predictor.json").read_text())
    df = pd.read_parquet(predict_catalogue(folder, dataset(), tmp_path / "new.parquet"))
    assert [h["name"] for h in meta.pop("heads")] == ["radius"]
    (folder / "predictor.json").write_text(json.dumps(meta))
    old = pd.read_parquet(predict_catalogue(folder, dataset(), tmp_path / "old.parquet"))
    assert list(old.columns) == list(df.columns) == ["id", "ra", "dec", "radius", "radius_sigma"]
    pd.testing.assert_frame_equal(old, df)
    np.testing.assert_allclose(df["radius"], np.arange(7) * 0.5 + 1.0)
    np.testing.assert_allclose(df["radius_sigma"], np.sqrt(3.0))
    assert [(h.name, h.kind) for h in load_predictor(folder).heads] == [("radius", "gaussian")]
    # the per-head layout on request: <head>, <head>_err, <head>_sigma_net
    wide = pd.read_parquet(predict_catalogue(folder, dataset(), tmp_path / "w.parquet", layout="heads"))
    assert list(wide.columns) == ["id", "ra", "dec", "radius", "radius_err", "radius_sigma_net"]
    np.testing.assert_allclose(wide["radius_err"], df["radius_sigma"])
    np.testing.assert_allclose(wide["radius_sigma_net"], 1.0)


# ---------------------------------------------------------------------- a benchmark's multi-input model
def test_a_benchmark_multi_head_multi_input_model_predicts_from_its_hdf5(tmp_path):
    """Cutouts + astrometry -> class + radius, a two-member resample ensemble trained by `benchmark`; predicting
    its test split from HDF5 in chunks of 7 gives the benchmark's own inputs' predictions."""
    pytest.importorskip("torch")
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    cfg = parse_config({
        "name": "mh", "save_models": True, "report": {"embeddings": []},
        "datasets": {"sim": {"source": "simulate", "target": ["class", "radius"],
                             "heads": {"class": {"kind": "categorical"}, "radius": {"kind": "gaussian"}},
                             "options": {"n": 120, "seed": 1, "instruments": [], "image_size": 16}}},
        "representations": {"m": {"inputs": {
            "gri": {"kind": "cutout", "images": "sdss", "bands": ["g", "r", "i"], "stretch": "asinh",
                    "softening": 0.05},
            "astrometry": {"kind": "columns", "columns": ["parallax", "pmra", "pmdec"]}}}},
        "models": [{"name": "multi_input_net", "options": {"inputs": ["gri", "astrometry"], "channels": [4],
                                                           "hidden": 8}, "standardise": ["gri", "astrometry"]}],
        "protocol": {"kind": "resample_ensemble", "n_members": 2, "member_weights": "balanced", "seeds": [0]},
        "trainer": {"max_epochs": 1, "batch_size": 64}})
    bench = BenchmarkRunner(cfg, tmp_path / "run", command="test")
    bench.run()
    model = next((tmp_path / "run" / "models").iterdir())
    meta = json.loads((model / "predictor.json").read_text())
    assert [(h["name"], h["kind"], h["unit"]) for h in meta["heads"]] == [("class", "categorical", ""),
                                                                         ("radius", "gaussian", "Rsun")]
    data = bench.prepare("sim", 0)
    data.test.save(tmp_path / "test.h5")
    out = predict_catalogue(model, tmp_path / "test.h5", tmp_path / "p.parquet", chunk_size=7, keep=["class"])
    df = pd.read_parquet(out)
    pred = load_predictor(model)
    heads = pred.estimator.predict_heads(data.inputs_test["m"])  # the benchmark's own inputs of the test split
    names = ["star", "galaxy", "qso"]
    assert list(df.columns[-8:]) == ["class", "prob_star", "prob_galaxy", "prob_qso", "radius", "radius_err",
                                     "radius_sigma_net", "true_class"]
    assert len(df) == len(data.test) and df["id"].tolist() == data.test.ids.read().tolist()
    np.testing.assert_allclose(df[[f"prob_{c}" for c in names]], heads["class"].proba, rtol=1e-5, atol=1e-6)
    assert df["class"].tolist() == [names[i] for i in heads["class"].classes[heads["class"].proba.argmax(1)]]
    np.testing.assert_allclose(df["radius"], heads["radius"].mean, rtol=1e-5)
    np.testing.assert_allclose(df["radius_err"], np.sqrt(heads["radius"].var), rtol=1e-5)
    np.testing.assert_allclose(df["radius_sigma_net"], heads["radius"].sigma_net, rtol=1e-4, atol=1e-6)
    assert (df["radius_err"] >= df["radius_sigma_net"] - 1e-9).all()  # Eq. 1 includes the spread


def test_the_verb_writes_every_head(tmp_path, monkeypatch):
    """The CLI: --rename and --keep reach the library; the result line on standard output."""
    folder = fake_folder(tmp_path, monkeypatch, EnsembleEstimator([Member(P1, 0.0, 1.0), Member(P2, 2.0, 3.0)]))
    dataset().save(tmp_path / "cat.h5")
    out = tmp_path / "p.parquet"
    done = runner.invoke(app, ["predict", str(folder), str(tmp_path / "cat.h5"), "--out", str(out), "--keep", "psfMag_*",
                               "--rename", "id=objid", "--rename", "spectral_type=spectral_class", "--rename",
                               "radius_sigma_net=sigma_net"])
    assert done.exit_code == 0, done.output
    assert f"predictions: {out}, 7 rows" in done.stdout
    names = pq.read_schema(out).names
    assert names[:10] == ["objid", "ra", "dec", "spectral_class", "prob_A", "prob_K", "prob_M", "radius", "radius_err",
                          "sigma_net"]
    assert names[10:] == [c for c in Dataset.load(tmp_path / "cat.h5").columns if c.startswith("psfMag_")]  # its order
    with pytest.raises(ConfigError, match="given twice"):
        cat.parse_renames(["a=b", "a=c"])


def test_a_kept_true_column_beside_a_heads_truth_is_an_error_not_a_silent_swap(tmp_path, monkeypatch):
    """--keep radius is written as true_radius; a catalogue column true_radius kept too would replace it."""
    folder = fake_folder(tmp_path, monkeypatch, Member(P1, 0.0, 1.0))
    ds = dataset()
    ds.columns["true_radius"] = Column(np.full(7, -1.0))
    with pytest.raises(ConfigError) as err:
        predict_catalogue(folder, ds, tmp_path / "p.parquet", keep=["radius", "true_radius"])
    assert "--keep 'true_radius' and --keep 'radius' would both be written as 'true_radius'" in str(err.value)
    assert not (tmp_path / "p.parquet").exists()


def test_a_class_head_with_nan_probabilities_has_no_label(tmp_path, monkeypatch):
    """Rows whose probabilities are NaN get a null label (argmax would say class 'A'); others decide as usual."""
    class NanRows(Member):
        def predict_heads(self, X):
            out = super().predict_heads(X)
            proba = np.tile(P2, (len(out["radius"]), 1))
            proba[1] = np.nan
            out["spectral_type"] = Categorical(proba, np.arange(3))
            return out

    folder = fake_folder(tmp_path, monkeypatch, NanRows(P1, 0.0, 1.0))
    got = pq.read_table(predict_catalogue(folder, dataset(3), tmp_path / "p.parquet"))
    assert got.column("spectral_type").to_pylist() == ["M", None, "M"]


def test_linear_writes_a_dex_head_as_the_linear_quantity(tmp_path, monkeypatch):
    """--linear log_radius=radius: radius = 10**mean, radius_err = ln(10) radius err (first order), the same for
    sigma_net; the ensemble above in dex: mean x + 1, err sqrt(3), sigma_net 1."""
    heads = {"spectral_type": {"task": "classification", "class_names": CLASSES},
             "log_radius": {"task": "regression", "unit": "dex"}}
    ens = EnsembleEstimator([Member(P1, 0.0, 1.0, heads=tuple(heads)), Member(P2, 2.0, 3.0, heads=tuple(heads))],
                            weights=[0.25, 0.75])
    folder = fake_folder(tmp_path, monkeypatch, ens, heads=heads)
    df = pd.read_parquet(predict_catalogue(folder, dataset(), tmp_path / "p.parquet",
                                           linear={"log_radius": "radius"}, rename={"radius_sigma_net": "sigma_net"}))
    assert list(df.columns)[-6:] == ["log_radius", "log_radius_err", "log_radius_sigma_net", "radius", "radius_err",
                                     "sigma_net"]
    x = np.arange(7) * 0.5
    np.testing.assert_allclose(df["radius"], 10 ** (x + 1.0))
    np.testing.assert_allclose(df["radius_err"], np.log(10) * 10 ** (x + 1.0) * np.sqrt(3.0))
    np.testing.assert_allclose(df["sigma_net"], np.log(10) * 10 ** (x + 1.0) * 1.0)
    with pytest.raises(ConfigError, match="--linear spectral_type=t: 'spectral_type' is not a regression head"):
        predict_catalogue(folder, dataset(), tmp_path / "q.parquet", linear={"spectral_type": "t"})
    from typer.testing import CliRunner

    from astromodal.cli import app

    res = CliRunner().invoke(app, ["predict", str(folder), str(tmp_path / "x.h5"), "--out", str(tmp_path / "r.pq"),
                                   "--linear", "log_radius"])
    assert res.exit_code != 0 and "--linear 'log_radius': give OLD=NEW" in str(res.exception)
