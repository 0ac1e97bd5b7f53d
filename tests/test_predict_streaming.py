"""`astromodal predict` streams table catalogues: CSV, Parquet and FITS tables are read `--chunk-size` rows at a
time, each chunk goes through `predict_partition` and is written as its own fingerprinted part; a killed run
resumes at the first missing part; the result is the whole-table run's, row for row; memory does not grow with
the catalogue; a scikit-learn model never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table

from astromodal.data.readers import tables
from astromodal.errors import DataFormatError
from astromodal.inference import catalogue as cat
from astromodal.inference.catalogue import Partition, load_predictor, predict_catalogue, predict_partition
from test_predict import COLS, GAIA_ID, frame, train

SRC = Path(cat.__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return train(tmp_path_factory.mktemp("models"), "a")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A model with a recorded table preparation (features c0..c2 named, ids from source_id), as `benchmark`
    saves one trained on a table file: other numeric columns of a catalogue are not its inputs."""
    from astromodal.data.readers.tables import read_table
    from astromodal.experiments import RepresentationConfig
    from astromodal.inference.catalogue import save_predictor
    from astromodal.training.estimator import make_estimator
    from astromodal.transforms.representations import build_inputs, input_shapes

    base = tmp_path_factory.mktemp("prepared")
    ds = read_table(write(base / "train.csv", frame(300, seed=9)), features=COLS, label="class")
    rep = RepresentationConfig(kind="columns", columns=COLS)
    X = build_inputs(ds, rep)
    est = make_estimator("logistic_regression").fit(X["columns"], ds.targets["class"].values.read())
    return save_predictor(base / "m", est, rep, "class", "classification", list(ds.targets["class"].class_names),
                          "classical", input_shapes(X), preparation=ds.meta["preparation"])


def write(path: Path, df: pd.DataFrame) -> Path:
    fmt = tables.table_format(path)
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        df.to_parquet(path, row_group_size=97)  # row groups that do not line up with the chunks
    else:
        fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(Table.from_pandas(df))]).writeto(path)
    return path


def run(model, catalogue, out, chunk_size, **kw):
    return pq.read_table(predict_catalogue(model, catalogue, out, chunk_size=chunk_size, trust=True,
                                           log=kw.pop("log", lambda s: None), **kw))


@pytest.mark.parametrize("suffix", ["csv", "parquet", "fits"])
def test_chunked_reading_gives_the_whole_table_rows(tmp_path, suffix):
    df = frame(1003, seed=2)
    path = write(tmp_path / f"t.{suffix}", df)
    whole = tables.load_frame(path)
    assert tables.count_rows(path) == 1003
    for start in (0, 128, 300):  # a start inside a row group / chunk
        blocks = list(tables.iter_frames(path, 128, start=start))
        assert [len(b) for b in blocks[:-1]] == [128] * (len(blocks) - 1) and sum(map(len, blocks)) == 1003 - start
        pd.testing.assert_frame_equal(pd.concat(blocks, ignore_index=True), whole.iloc[start:].reset_index(drop=True))


@pytest.mark.parametrize("suffix", ["csv", "parquet", "fits"])
def test_streamed_predictions_equal_the_whole_table_run(tmp_path, model, monkeypatch, suffix):
    df = frame(1000, seed=1)
    path = write(tmp_path / f"c.{suffix}", df)
    keep = ["name", "flag", "class"]
    whole = run(model, path, tmp_path / "whole.parquet", 5000, keep=keep)  # one chunk: read whole
    calls = []
    real = tables.iter_frames
    monkeypatch.setattr(tables, "load_frame", lambda *a, **k: pytest.fail("a streamed table is never read whole"))
    monkeypatch.setattr(tables, "iter_frames", lambda *a, **k: (calls.append(a[1]), real(*a, **k))[1])
    streamed = run(model, path, tmp_path / "streamed.parquet", 128, keep=keep)
    assert calls and set(calls) == {128}
    assert streamed.schema.equals(whole.schema, check_metadata=False)
    assert streamed.drop_columns([]).equals(whole)  # every value, in order
    assert streamed["id"].to_pylist() == df["source_id"].tolist() and streamed["id"].to_pylist()[0] == GAIA_ID
    assert streamed.schema.field("id").type == pa.int64()
    info = json.loads(streamed.schema.metadata[b"astromodal"])
    assert info["rows"] == 1000 and info["fingerprint"]["chunk_size"] == 128


def test_row_number_ids_count_from_the_catalogue_not_the_chunk(tmp_path, model):
    df = frame(300, seed=3).drop(columns=["source_id"])
    path = write(tmp_path / "c.parquet", df)
    got = run(model, path, tmp_path / "p.parquet", 64)
    assert got["id"].to_pylist() == list(range(300)) and got.schema.field("id").type == pa.int64()
    named = run(model, path, tmp_path / "n.parquet", 64, id_column="name")  # --id-column: text ids as they are
    assert named["id"].to_pylist() == df["name"].tolist()


def test_a_killed_streamed_run_resumes_at_the_first_missing_part(tmp_path, model, monkeypatch):
    df = frame(1000, seed=4)
    path = write(tmp_path / "c.parquet", df)
    ref = run(model, path, tmp_path / "ref.parquet", 100)
    out = tmp_path / "p.parquet"
    real = cat._chunk_table
    made = {"n": 0}

    def dying(*a, **kw):
        made["n"] += 1
        if made["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(cat, "_chunk_table", dying)
    with pytest.raises(KeyboardInterrupt):
        run(model, path, out, 100)
    monkeypatch.setattr(cat, "_chunk_table", real)
    assert not out.exists() and sorted(p.name for p in (tmp_path / "p.parquet.parts").glob("part-*")) == [
        f"part-{i:05d}.parquet" for i in range(3)]
    prepared = []
    real_partition = cat._TableStream._partition
    monkeypatch.setattr(cat._TableStream, "_partition",
                        lambda self, fr, i: (prepared.append(i), real_partition(self, fr, i))[1])
    said = []
    got = run(model, path, out, 100, log=said.append)
    assert said == [f"resuming: 3 of 10 chunks done ({out}.parts)"]
    assert prepared == [0, *range(3, 10)]  # chunk 0 lays out the columns; then from the first missing part on
    assert got.equals(ref) and got["id"].to_pylist() == df["source_id"].tolist()
    assert not (tmp_path / "p.parquet.parts").exists()


def test_predict_partition_is_the_rows_of_one_part(tmp_path, model):
    df = frame(250, seed=5)
    path = write(tmp_path / "c.csv", df)
    whole = run(model, path, tmp_path / "p.parquet", 100)
    predictor = load_predictor(model, trust=True)
    stream = cat._TableStream.open(path, "table", predictor, 100, {}, (), str(path))
    assert stream is not None and stream.n == 250
    parts = [stream.first] + list(stream.partitions([True, False, False]))
    assert [(p.index, p.start, len(p.dataset)) for p in parts] == [(0, 0, 100), (1, 100, 100), (2, 200, 50)]
    tables_ = [predict_partition(predictor, p) for p in parts]  # default columns: the model's own
    assert pa.concat_tables(tables_).equals(whole.replace_schema_metadata(None))
    # a partition of an in-memory dataset, with the whole catalogue's side columns and an offset
    ds = parts[1].dataset
    again = predict_partition(predictor, Partition(ds, parts[1].side, 0, 1, 100))
    assert again.equals(tables_[1])


@pytest.mark.parametrize("driver", [{}, {"scheduler": "threads", "workers": 2}])
def test_a_csv_whose_chunks_disagree_on_column_types(tmp_path, prepared, driver):
    """The first chunk decides the column types, whatever the driver (the Dask one runs every chunk at once,
    then casts the parts whose types differ from chunk 0's)."""
    df = frame(300, seed=6)
    df["flag"] = df["flag"].astype("Int64")
    df.loc[250, "flag"] = pd.NA  # a gap in the last chunk only: that chunk reads the column as floats
    path = write(tmp_path / "c.csv", df)
    got = run(prepared, path, tmp_path / "p.parquet", 100, keep=["flag"], **driver)
    assert got.schema.field("flag").type == pa.int64()  # cast to the first chunk's type, no value changed
    flags = got["flag"].to_pylist()
    assert flags[250] is None and flags[:250] == df["flag"].iloc[:250].tolist()
    # integer ids in the first chunks, text ids in the last: one line naming the chunk, nothing written
    bad = frame(300, seed=6).astype({"source_id": object})
    bad.loc[280, "source_id"] = "J1234+5678"
    path = write(tmp_path / "bad.csv", bad)
    with pytest.raises(DataFormatError, match=r"chunk 2 .*id \(string here, int64 before\).*--id-column"):
        run(prepared, path, tmp_path / "b.parquet", 100, **driver)
    assert not (tmp_path / "b.parquet").exists()


def test_a_chunk_with_bad_values_is_named_by_its_rows(tmp_path, model):
    df = frame(300, seed=7)
    df.loc[230, "c1"] = np.nan
    path = write(tmp_path / "c.parquet", df)
    with pytest.raises(Exception, match=r"NaN.*row 30 .*rows 200\.\.299"):
        run(model, path, tmp_path / "p.parquet", 100)


# -------------------------------------------------------------------- start-up: no torch for a scikit-learn model
def test_a_scikit_learn_model_predicts_without_importing_torch(tmp_path, model):
    path = write(tmp_path / "c.csv", frame(200))
    out = tmp_path / "p.parquet"
    driver = ("import sys\nfrom astromodal.cli import main\n"
              f"sys.argv = ['astromodal', 'predict', {str(model)!r}, {str(path)!r}, '--out', {str(out)!r}, '--trust',"
              " '--chunk-size', '64']\n"
              "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
              "print(sorted(m for m in ('torch', 'kornia', 'lightning') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout
    assert len(pd.read_parquet(out)) == 200


# -------------------------------------------------------------------- memory does not grow with the catalogue
# the peak RSS of this process alone: VmHWM (ru_maxrss is inherited from the forking parent, pytest itself)
_MEASURE = """
import re, sys
from astromodal.inference.catalogue import load_predictor, predict_catalogue
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
model, path, out = sys.argv[1:4]
load_predictor(model, trust=True)  # every library imported before the baseline
base = hwm()
predict_catalogue(model, path, out, chunk_size=5000, trust=True, log=lambda s: None, keep=["name"])
print(hwm() - base)
"""


def _catalogue(path: Path, n: int) -> Path:
    rng = np.random.default_rng(n)
    df = pd.DataFrame({"source_id": 10**15 + 7 * np.arange(n, dtype=np.int64), "ra": rng.uniform(0, 360, n),
                       "dec": rng.uniform(-60, 60, n), **{f"c{k}": rng.normal(size=n) for k in range(3)},
                       "name": [f"star {i}" for i in range(n)]})
    df.to_parquet(path, row_group_size=20_000)
    return path


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc (Linux)")
def test_peak_memory_does_not_grow_with_the_catalogue(tmp_path, model):
    """Growth of the peak RSS over the loaded model, at 50,000 and 200,000 rows in chunks of 5,000. Held whole,
    the 150,000 more rows cost ~70 MB more on this machine (0.47 KB a row: 92 -> 163 MB); streamed, ~11 MB
    (75 -> 86 MB: Parquet's row-group read-ahead, not the rows). The bound, 30 MB (0.2 KB a row), leaves room
    for noise and still fails a reader that holds the catalogue."""
    growth = {}
    for n in (50_000, 200_000):
        path = _catalogue(tmp_path / f"c{n}.parquet", n)
        out = tmp_path / f"p{n}.parquet"
        proc = subprocess.run([sys.executable, "-c", _MEASURE, str(model), str(path), str(out)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        growth[n] = int(proc.stdout.split()[-1]) / 1024  # MB
        assert pq.read_metadata(out).num_rows == n
    assert growth[200_000] - growth[50_000] < 30, growth
