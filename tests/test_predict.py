"""`astromodal predict` end to end: resuming only its own run, exact ids, kept dtypes, positions, sigma, errors."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data.dataset import Column, Dataset, Target
from astromodal.experiments import RepresentationConfig
from astromodal.inference import catalogue as cat
from astromodal.inference.catalogue import load_predictor, predict_catalogue, save_predictor
from astromodal.training.estimator import make_estimator
from astromodal.transforms.representations import build_inputs, input_shapes

runner = CliRunner()
COLS = ["c0", "c1", "c2"]
GAIA_ID = 5937173300407375616


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", *args],
                          capture_output=True, text=True)


def frame(n: int = 1000, seed: int = 0, ra: str = "ra", dec: str = "dec") -> pd.DataFrame:
    """Two classes in three columns, with 64-bit ids, a text and an int column, and positions."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    ids = rng.choice(np.arange(2**62, 2**62 + 50 * n, dtype=np.int64), n, replace=False)
    ids[0] = GAIA_ID
    data = {"source_id": ids, ra: rng.uniform(0, 360, n), dec: rng.uniform(-60, 60, n)}
    for k, c in enumerate(COLS):
        data[c] = rng.normal(size=n) + (1.5 if k == 0 else 0.3) * y
    data["name"] = [f"star {i}" for i in range(n)]
    data["flag"] = rng.integers(-5, 5, n)
    data["class"] = np.where(y == 1, "qso", "star")
    return pd.DataFrame(data)


def train(tmp_path, name: str, C: float = 1.0, seed: int = 0, task: str = "classification", model: str = "logistic_regression",
          **kw):
    """A tiny saved model folder (a fitted estimator + predictor.json), as `benchmark` writes it."""
    df = frame(300, seed=seed)
    columns = {c: Column(df[c].to_numpy()) for c in COLS}
    if task == "classification":
        targets = {"class": Target.from_labels(df["class"], ("qso", "star"))}
    else:
        targets = {"teff": Target(5000 + 800 * df["c0"].to_numpy(), "regression", unit="K")}
    ds = Dataset(np.arange(len(df)), columns=columns, targets=targets)
    rep = RepresentationConfig(kind="columns", columns=COLS)
    X = build_inputs(ds, rep)
    target = next(iter(targets))
    t = targets[target]
    y = t.values.read()
    est = make_estimator(model, {"C": C} if model == "logistic_regression" else kw.pop("options", {}), task=task, **kw)
    est.fit(X if est.kind == "torch" else X["columns"], y)
    folder = tmp_path / name
    save_predictor(folder, est, rep, target, task, list(t.class_names), "classical" if est.kind == "sklearn" else "neural",
                   input_shapes(X))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return {"a": train(base, "a", C=1.0), "b": train(base, "b", C=0.001, seed=3)}


def write_csv(path, df):
    df.to_csv(path, index=False)
    return path


def invoke(*args):
    return runner.invoke(app, ["predict", *map(str, args)])


def interrupted(monkeypatch, k: int, *args):
    """Run predict and 'kill' it after k finished chunks (the chunk writer raises on chunk k+1)."""
    undo = _dying(monkeypatch, k)
    try:
        result = invoke(*args)
    finally:
        undo()
    assert result.exit_code != 0
    return result


@pytest.mark.parametrize("mismatch", ["model", "chunk_size", "catalogue"])
def test_resume_only_own_run(tmp_path, models, monkeypatch, mismatch):
    one = write_csv(tmp_path / "one.csv", frame(1000, seed=1))
    two = write_csv(tmp_path / "two.csv", frame(1000, seed=2))
    settings = {"model": models["a"], "catalogue": one, "chunk": 100}
    changed = dict(settings)
    changed.update({"model": {"model": models["b"]}, "chunk_size": {"chunk": 60},
                    "catalogue": {"catalogue": two}}[mismatch])

    def args(s, out, *more):
        return (s["model"], s["catalogue"], "--out", out, "--chunk-size", s["chunk"], "--trust", *more)

    refs = {}
    for label, s in (("same", settings), ("changed", changed)):
        ref = tmp_path / f"ref_{label}.parquet"
        assert invoke(*args(s, ref)).exit_code == 0
        refs[label] = pd.read_parquet(ref)
    out = tmp_path / "pred.parquet"
    k = random.Random(mismatch).randint(1, 8)
    interrupted(monkeypatch, k, *args(settings, out))
    assert not out.exists() and len(list((tmp_path / "pred.parquet.parts").glob("part-*.parquet"))) == k
    # another model / chunk size / catalogue: refused with one line naming the flag, nothing written
    bad = invoke(*args(changed, out))
    assert bad.exit_code != 0 and not out.exists()
    message = str(bad.exception) if bad.exception else bad.output
    assert "--restart" in message and "another run" in message
    # --restart starts afresh and gives exactly the uninterrupted run's rows
    good = invoke(*args(changed, out, "--restart"))
    assert good.exit_code == 0, good.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), refs["changed"])
    assert not (tmp_path / "pred.parquet.parts").exists()
    # a matching rerun after a kill resumes, and gives ids, order and values of an uninterrupted run
    out2 = tmp_path / "pred2.parquet"
    interrupted(monkeypatch, k, *args(settings, out2))
    again = invoke(*args(settings, out2))
    assert again.exit_code == 0, again.output
    assert f"resuming: {k} of 10 chunks done" in again.stderr
    got = pd.read_parquet(out2)
    pd.testing.assert_frame_equal(got, refs["same"])
    assert len(got) == 1000 and got["id"].tolist() == frame(1000, seed=1)["source_id"].tolist()


def test_resume_with_out_inside_the_model_folder(tmp_path, models, monkeypatch):
    import shutil

    model = tmp_path / "m"
    shutil.copytree(models["a"], model)
    csv = write_csv(tmp_path / "c.csv", frame(100))
    out = model / "pred.parquet"  # its parts folder lies in the model folder: not part of the model's identity
    interrupted(monkeypatch, 2, model, csv, "--out", out, "--trust", "--chunk-size", 25)
    again = invoke(model, csv, "--out", out, "--trust", "--chunk-size", 25)
    assert again.exit_code == 0, again.output
    assert "resuming: 2 of 4 chunks done" in again.stderr and len(pd.read_parquet(out)) == 100


def test_parts_without_fingerprint_are_foreign(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", frame(50))
    out = tmp_path / "p.parquet"
    parts = tmp_path / "p.parquet.parts"
    parts.mkdir()
    pq.write_table(pa.table({"id": ["x"]}), parts / "part-00000.parquet")  # left by an older astromodal
    proc = run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "--restart" in proc.stderr, proc.stderr
    assert not out.exists() and (parts / "part-00000.parquet").exists()
    # a parts folder holding a user's own file is never emptied, even with --restart
    (parts / "notes.txt").write_text("mine")
    proc = run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust", "--restart")
    assert proc.returncode == 1 and "notes.txt" in proc.stderr and (parts / "notes.txt").read_text() == "mine"
    (parts / "notes.txt").unlink()
    assert run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust", "--restart").returncode == 0
    assert len(pd.read_parquet(out)) == 50 and not parts.exists()


def test_out_checked_before_any_work(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", frame(50))
    folder = tmp_path / "folder"
    folder.mkdir()
    a_file = tmp_path / "file.txt"
    a_file.write_text("user data")
    for out in (folder, a_file / "p.parquet", a_file, csv):
        proc = run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust")
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert not out.with_name(out.name + ".parts").exists()
    assert a_file.read_text() == "user data" and list(folder.iterdir()) == []
    out = tmp_path / "p.parquet"
    first = run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust")
    assert first.returncode == 0 and first.stdout.strip() == f"predictions: {out}, 50 rows", first
    assert "predictions" not in first.stderr
    assert b"astromodal" in pq.read_schema(out).metadata
    again = run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust")
    assert again.returncode == 1 and "--overwrite" in again.stderr
    assert run_main("predict", str(models["a"]), str(csv), "--out", str(out), "--trust", "--overwrite").returncode == 0


def test_ids_survive_exactly_and_kept_columns_keep_their_dtype(tmp_path, models):
    df = frame(1000)
    csv = write_csv(tmp_path / "c.csv", df)
    out = tmp_path / "p.parquet"
    result = invoke(models["a"], csv, "--out", out, "--trust", "--keep", "name", "--keep", "flag", "--keep", "source_id",
                    "--chunk-size", "300")
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out)
    schema = pq.read_schema(out)
    assert schema.field("id").type == pa.int64() and schema.field("source_id").type == pa.int64()
    assert got["id"].tolist() == df["source_id"].tolist() and got["id"].nunique() == 1000
    assert got["id"].iloc[0] == GAIA_ID and got["source_id"].tolist() == df["source_id"].tolist()
    assert schema.field("name").type == pa.string() and got["name"].tolist() == df["name"].tolist()
    assert schema.field("flag").type == pa.int64() and got["flag"].tolist() == df["flag"].tolist()
    np.testing.assert_array_equal(got["ra"], df["ra"])
    # --id-column picks another column (text ids stay text); an unknown one lists the columns
    assert invoke(models["a"], csv, "--out", tmp_path / "n.parquet", "--trust", "--id-column", "name").exit_code == 0
    assert pd.read_parquet(tmp_path / "n.parquet")["id"].tolist() == df["name"].tolist()
    bad = invoke(models["a"], csv, "--out", tmp_path / "x.parquet", "--trust", "--id-column", "nope")
    assert bad.exit_code != 0 and "nope" in str(bad.exception) and "source_id" in str(bad.exception)


def test_any_position_columns(tmp_path, models):
    csv = write_csv(tmp_path / "v.csv", frame(200, ra="RA_ICRS", dec="DE_ICRS"))
    out = tmp_path / "p.parquet"
    assert invoke(models["a"], csv, "--out", out, "--trust").exit_code == 0
    got = pd.read_parquet(out)
    assert np.isfinite(got["ra"]).all() and np.isfinite(got["dec"]).all()
    np.testing.assert_array_equal(got["ra"], pd.read_csv(csv)["RA_ICRS"])
    # named columns
    df = frame(200).rename(columns={"ra": "alpha_deg", "dec": "delta_deg"})
    named = write_csv(tmp_path / "n.csv", df)
    assert invoke(models["a"], named, "--out", tmp_path / "n.parquet", "--trust", "--ra-column", "alpha_deg",
                  "--dec-column", "delta_deg").exit_code == 0
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "n.parquet")["dec"], df["delta_deg"])
    # no positions at all: said on stderr, and no NaN ra/dec columns
    nopos = write_csv(tmp_path / "x.csv", df)
    result = invoke(models["a"], nopos, "--out", tmp_path / "x.parquet", "--trust")
    assert result.exit_code == 0 and "no sky positions" in result.stderr
    assert "ra" not in pd.read_parquet(tmp_path / "x.parquet").columns


def test_hdf5_and_gaia_xp_keep_int64_ids(tmp_path, models):
    from astromodal.data.readers import read
    from astromodal.data.readers.gaia_xp import write_xp_sampled

    ids = np.array([GAIA_ID, 2**62 + 1, 2**62 + 3, 7], dtype=np.int64)
    ds = Dataset(ids, np.arange(4.0), np.arange(4.0), columns={c: Column(np.arange(4.0)) for c in COLS})
    back = Dataset.load(ds.save(tmp_path / "d.h5"))
    assert back.ids.read().dtype == np.int64 and back.ids.read().tolist() == ids.tolist()
    assert invoke(models["a"], tmp_path / "d.h5", "--out", tmp_path / "h.parquet", "--trust").exit_code == 0
    got = pq.read_table(tmp_path / "h.parquet")
    assert got.schema.field("id").type == pa.int64() and got["id"].to_pylist() == ids.tolist()
    from astromodal.data.dataset import Spectra
    from astromodal.data.readers.gaia_xp import XP_SAMPLING_NM

    flux = np.full((4, len(XP_SAMPLING_NM)), 1e-17)
    xp = Dataset(ids, np.arange(4.0), np.arange(4.0),
                 spectra={"gaia_xp": Spectra(flux, np.asarray(XP_SAMPLING_NM) * 10.0)})
    for suffix in ("csv", "parquet", "ecsv", "vot"):
        path = write_xp_sampled(xp, tmp_path / f"xp.{suffix}")
        got_ids = read(path).ids.read()
        assert got_ids.dtype == np.int64 and got_ids.tolist() == ids.tolist(), suffix
    # an empty source_id makes pandas read the column as floats: an error, never rounded ids
    table = pd.read_csv(tmp_path / "xp.csv", dtype={"source_id": str})
    table.loc[2, "source_id"] = None
    table.to_csv(tmp_path / "gap.csv", index=False)
    from astromodal.errors import DataFormatError

    with pytest.raises(DataFormatError, match="source_id .* not an exact integer"):
        read(tmp_path / "gap.csv")


def test_gaussian_head_writes_sigma(tmp_path):
    pytest.importorskip("torch")
    folder = train(tmp_path, "g", task="regression", model="mlp_columns",
                   trainer={"max_epochs": 3, "loss": "gaussian_nll", "batch_size": 64, "patience": None})
    plain = train(tmp_path, "p", task="regression", model="mlp_columns",
                  trainer={"max_epochs": 2, "batch_size": 64, "patience": None})
    csv = write_csv(tmp_path / "c.csv", frame(120))
    assert invoke(folder, csv, "--out", tmp_path / "g.parquet", "--chunk-size", "50").exit_code == 0
    got = pq.read_table(tmp_path / "g.parquet")
    assert got.schema.field("teff").type == pa.float64() and got.schema.field("teff_sigma").type == pa.float64()
    sigma = got["teff_sigma"].to_numpy()
    assert np.isfinite(sigma).all() and (sigma > 0).all()
    pred = load_predictor(folder)
    ds = Dataset(np.arange(120), columns={c: Column(frame(120)[c].to_numpy()) for c in COLS})
    mean, var = pred.estimator.predict_mean_var(pred.inputs(ds))
    np.testing.assert_allclose(sigma, np.sqrt(var), rtol=1e-6)
    np.testing.assert_allclose(got["teff"].to_numpy(), mean, rtol=1e-6)
    assert invoke(plain, csv, "--out", tmp_path / "p.parquet").exit_code == 0
    assert "teff_sigma" not in pq.read_schema(tmp_path / "p.parquet").names


def test_saved_predictor_replays_the_table_preparation(tmp_path):
    """Trained with colours on one file, the model predicts on another raw file (which has no colours)."""
    from astromodal.data.readers.tables import add_colours, read_table

    def raw(n, seed):
        r = np.random.default_rng(seed)
        y = np.arange(n) % 2
        g = r.uniform(15, 20, n)
        return pd.DataFrame({"objid": np.arange(10**15, 10**15 + n), "u": g + 1.0 + 1.2 * y + 0.2 * r.normal(size=n),
                             "g": g, "r": g - 0.3 + 0.05 * r.normal(size=n),
                             "class": np.where(y == 1, "QSO", "STAR")})

    train_csv = write_csv(tmp_path / "train.csv", raw(300, 1))
    test_csv = write_csv(tmp_path / "test.csv", raw(80, 2).drop(columns=["class"]))
    ds = add_colours(read_table(train_csv, features=["u", "g", "r"], label="class"), bands=("u", "g", "r"))
    rep = RepresentationConfig(kind="columns", columns=["u-g", "g-r"])
    X = build_inputs(ds, rep)
    est = make_estimator("logistic_regression").fit(X["columns"], ds.targets["class"].values.read())
    folder = tmp_path / "m"
    save_predictor(folder, est, rep, "class", "classification", list(ds.targets["class"].class_names), "classical",
                   input_shapes(X), preparation=ds.meta["preparation"])
    assert "preparation" in json.loads((folder / "predictor.json").read_text())
    assert load_predictor(folder, trust=True).preparation == ds.meta["preparation"]
    out = tmp_path / "p.parquet"
    predict_catalogue(folder, test_csv, out, trust=True, chunk_size=30)
    got = pd.read_parquet(out)
    test = add_colours(read_table(test_csv, features=["u", "g", "r"]), bands=("u", "g", "r"))
    expect = est.predict_proba(build_inputs(test, rep)["columns"])
    np.testing.assert_allclose(got["prob_QSO"], expect[:, 0], rtol=1e-6)
    assert got["id"].tolist() == pd.read_csv(test_csv)["objid"].tolist()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pickle", "model_json", "predictor_json", "predictor_keys"])
def test_tampered_model_is_one_line(tmp_path, damage):
    pytest.importorskip("torch")
    folder = train(tmp_path, "t", model="mlp_columns", trainer={"max_epochs": 1, "patience": None})
    csv = write_csv(tmp_path / "c.csv", frame(30))
    weights = folder / "model.pt"
    if damage == "garbage":
        weights.write_bytes(b"\x00garbage" * 50)
        named = weights
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:200])
        named = weights
    elif damage == "pickle":
        import pickle

        class Evil:
            def __reduce__(self):
                return (print, ("owned",))

        weights.write_bytes(pickle.dumps(Evil()))
        named = weights
    elif damage == "model_json":
        (folder / "model.json").write_text("{not json")
        named = folder / "model.json"
    elif damage == "predictor_json":
        (folder / "predictor.json").write_text("[1, 2")
        named = folder / "predictor.json"
    else:
        meta = json.loads((folder / "predictor.json").read_text())
        del meta["representation"]
        (folder / "predictor.json").write_text(json.dumps(meta))
        named = folder / "predictor.json"
    out = tmp_path / "p.parquet"
    proc = run_main("predict", str(folder), str(csv), "--out", str(out))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and str(named) in proc.stderr, proc.stderr
    assert "owned" not in proc.stdout and not out.exists()


def test_unknown_reader_is_an_error_for_every_input(tmp_path, models):
    csv = write_csv(tmp_path / "c.csv", frame(20))
    h5 = Dataset(np.arange(3), columns={c: Column(np.arange(3.0)) for c in COLS}).save(tmp_path / "d.h5")
    for catalogue in (csv, h5):
        proc = run_main("predict", str(models["a"]), str(catalogue), "--out", str(tmp_path / "p.parquet"),
                        "--trust", "--reader", "nosuch")
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "nosuch" in proc.stderr and "table" in proc.stderr and "lamost" in proc.stderr


def _dying(monkeypatch, k: int):
    """Make the chunk writer raise (a 'kill') on chunk k+1; returns the undo function."""
    real = cat._chunk_table
    calls = {"n": 0}

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] > k:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(cat, "_chunk_table", dying)
    return lambda: monkeypatch.setattr(cat, "_chunk_table", real)


def test_in_memory_dataset_resumes_only_a_dataset_with_the_same_values(tmp_path, models, monkeypatch):
    """Two datasets with the same ids and other values: the second never resumes into the first's parts."""
    def dataset(seed, nudge=0.0):
        df = frame(400, seed=seed)
        df.loc[250, "c1"] += nudge
        return Dataset(np.arange(400), df["ra"].to_numpy(), df["dec"].to_numpy(),
                       columns={c: Column(df[c].to_numpy()) for c in COLS})

    from astromodal.errors import ConfigError

    refs = {seed: pd.read_parquet(predict_catalogue(models["a"], dataset(seed), tmp_path / f"ref{seed}.parquet",
                                                    chunk_size=100, trust=True)) for seed in (1, 2)}
    out = tmp_path / "p.parquet"
    undo = _dying(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        predict_catalogue(models["a"], dataset(1), out, chunk_size=100, trust=True)
    undo()
    with pytest.raises(ConfigError, match="another run .*the catalogue"):
        predict_catalogue(models["a"], dataset(2), out, chunk_size=100, trust=True)
    assert not out.exists()
    # an equal dataset (another object, the same values) resumes, and gives the uninterrupted run's rows
    said = []
    predict_catalogue(models["a"], dataset(1), out, chunk_size=100, trust=True, log=said.append)
    assert said == [f"resuming: 2 of 4 chunks done ({out}.parts)"]
    pd.testing.assert_frame_equal(pd.read_parquet(out), refs[1])
    # one changed value is another catalogue, too
    undo = _dying(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        predict_catalogue(models["a"], dataset(2), out, chunk_size=100, trust=True, overwrite=True)
    undo()
    with pytest.raises(ConfigError, match="another run"):
        predict_catalogue(models["a"], dataset(2, nudge=1.0), out, chunk_size=100, trust=True, overwrite=True)
    predict_catalogue(models["a"], dataset(2), out, chunk_size=100, trust=True, overwrite=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out), refs[2])


def test_restart_removes_only_the_chunks_of_its_plan(tmp_path, models, monkeypatch):
    csv = write_csv(tmp_path / "c.csv", frame(200))
    out = tmp_path / "p.parquet"
    parts = tmp_path / "p.parquet.parts"
    args = (models["a"], csv, "--out", out, "--trust", "--chunk-size", 50)
    interrupted(monkeypatch, 2, *args)
    mine = {"part-extra.parquet": b"user data", "part-00099.parquet": b"beyond the plan", "part-1.parquet": b"x"}
    for name, data in mine.items():
        (parts / name).write_bytes(data)
    for more in ((), ("--restart",)):
        proc = run_main("predict", *map(str, args), *more)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert "part-00099.parquet" in proc.stderr and "part-1.parquet" in proc.stderr and not out.exists()
        assert {name: (parts / name).read_bytes() for name in mine} == mine
    for name in mine:
        (parts / name).unlink()
    # a user file that appears while predicting is left in place (with one line), never deleted
    real = cat._chunk_table

    def meanwhile(*a, **kw):
        (parts / "part-extra.parquet").write_bytes(b"user data")
        return real(*a, **kw)

    monkeypatch.setattr(cat, "_chunk_table", meanwhile)
    said = []
    predict_catalogue(models["a"], csv, out, chunk_size=50, trust=True, restart=True, log=said.append)
    assert (parts / "part-extra.parquet").read_bytes() == b"user data"
    assert sorted(p.name for p in parts.iterdir()) == ["part-extra.parquet"]
    assert said[-1].startswith(f"warning: {parts} is left in place") and "part-extra.parquet" in said[-1]
    assert len(pd.read_parquet(out)) == 200


def test_keep_reads_the_table_once(tmp_path, models, monkeypatch):
    from astromodal.data import readers
    from astromodal.data.readers import tables

    csv = write_csv(tmp_path / "c.csv", frame(100))
    counts = {"load_frame": 0, "choose_reader": 0}

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*a, **kw):
            counts[name] += 1
            return real(*a, **kw)

        monkeypatch.setattr(module, name, wrapper)

    counting(tables, "load_frame")
    counting(readers, "choose_reader")
    out = predict_catalogue(models["a"], csv, tmp_path / "p.parquet", trust=True, keep=["name", "flag"])
    assert counts == {"load_frame": 1, "choose_reader": 1}
    got = pd.read_parquet(out)
    assert got["name"].tolist() == frame(100)["name"].tolist() and got["flag"].tolist() == frame(100)["flag"].tolist()


def test_keep_with_a_two_table_fits_file(tmp_path):
    """--keep takes the columns from the table HDU the model's preparation read, not the first one."""
    from astropy.io import fits
    from astropy.table import Table

    from astromodal.data.readers.tables import read_table

    first, second = frame(60, seed=4), frame(60, seed=5)
    path = tmp_path / "two.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(Table.from_pandas(first)),
                  fits.table_to_hdu(Table.from_pandas(second))]).writeto(path)
    ds = read_table(path, features=COLS, label="class", hdu=2)
    assert ds.meta["preparation"]["hdu"] == 2
    rep = RepresentationConfig(kind="columns", columns=COLS)
    X = build_inputs(ds, rep)
    est = make_estimator("logistic_regression").fit(X["columns"], ds.targets["class"].values.read())
    folder = tmp_path / "m"
    save_predictor(folder, est, rep, "class", "classification", list(ds.targets["class"].class_names), "classical",
                   input_shapes(X), preparation=ds.meta["preparation"])
    out = tmp_path / "p.parquet"
    result = invoke(folder, path, "--out", out, "--trust", "--keep", "name", "--keep", "flag", "--keep", "source_id",
                    "--keep", "c0")
    assert result.exit_code == 0, result.output
    got, schema = pd.read_parquet(out), pq.read_schema(out)
    assert got["id"].tolist() == second["source_id"].tolist() and got["source_id"].tolist() == got["id"].tolist()
    assert schema.field("source_id").type == pa.int64() and schema.field("flag").type == pa.int64()
    assert schema.field("name").type == pa.string() and got["name"].tolist() == second["name"].tolist()
    assert got["flag"].tolist() == second["flag"].tolist()
    np.testing.assert_array_equal(got["c0"], second["c0"])
    np.testing.assert_array_equal(got["ra"], second["ra"])
    expect = est.predict_proba(X["columns"])
    np.testing.assert_allclose(got["prob_qso"], expect[:, 0], rtol=1e-6)


def test_a_file_put_at_out_while_predicting_is_never_replaced(tmp_path, models):
    """OUT is checked before any work and again before the final write: a user's file that appears there
    while the chunks run is kept, and the finished chunks stay to resume."""
    from astromodal.errors import ConfigError

    csv = write_csv(tmp_path / "c.csv", frame(200))
    out = tmp_path / "p.parquet"

    class Bar:
        def add_task(self, *a, **k):
            return 0

        def update(self, *a, **k):
            out.write_text("my notes")

    with pytest.raises(ConfigError, match="not written by astromodal"):
        predict_catalogue(models["a"], csv, out, chunk_size=100, trust=True, progress=Bar())
    assert out.read_text() == "my notes"
    assert (tmp_path / "p.parquet.parts").is_dir()


def test_a_one_head_classifier_gives_no_label_where_its_probabilities_are_nan(tmp_path, models, monkeypatch):
    """The classic one-head columns: a row whose probabilities are NaN gets a null label (argmax said 'qso')."""
    from astromodal.inference import catalogue

    real = catalogue.Predictor.predict_proba

    def nan_second_row(self, ds):
        p = np.asarray(real(self, ds), dtype=np.float64).copy()
        p[1] = np.nan
        return p

    monkeypatch.setattr(catalogue.Predictor, "predict_proba", nan_second_row)
    cat = write_csv(tmp_path / "cat.csv", frame(5, seed=4))
    got = pq.read_table(catalogue.predict_catalogue(models["a"], cat, tmp_path / "p.parquet", trust=True,
                                                    log=lambda s: None))
    labels = got.column("label").to_pylist()
    assert labels[1] is None and all(v in ("qso", "star") for i, v in enumerate(labels) if i != 1)
    assert got.schema.field("label").type == pa.string()
