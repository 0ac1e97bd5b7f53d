"""`astromodal predict --scheduler threads|processes|local|tcp://...`: the Dask driver writes the same parts as the
sequential one (same rows and values, resumable by either), loads the model once per worker, and the HATS
path (LSDB) reads and writes sky-partitioned catalogues with exact ids."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from astromodal.atomic import MARKER, is_tool_written
from astromodal.cli import app
from astromodal.errors import ConfigError
from astromodal.inference import dask_driver
from astromodal.inference.catalogue import predict_catalogue
from test_predict import GAIA_ID, frame, train

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return train(tmp_path_factory.mktemp("models"), "a")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """1,000 objects with 64-bit ids (one of them a real Gaia DR3 id), a text and an int column, positions."""
    path = tmp_path_factory.mktemp("cat") / "c.parquet"
    frame(1000, seed=11).to_parquet(path, row_group_size=97)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, model, catalogue):
    """The sequential driver's output (chunks of 128 rows), the reference every other driver must equal."""
    out = tmp_path_factory.mktemp("ref") / "seq.parquet"
    return pq.read_table(run(model, catalogue, out, keep=["name", "flag"]))


@pytest.fixture(scope="module")
def cluster():
    """An in-process LocalCluster of 2 workers (threads: cheap to start), reached by its tcp:// address."""
    from distributed import LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                          dashboard_address=None) as c:
            yield c.scheduler_address


def run(model, catalogue, out, chunk_size=128, **kw):
    return predict_catalogue(model, catalogue, out, chunk_size=chunk_size, trust=True, log=kw.pop("log", lambda s: None),
                             **kw)


def invoke(*args):
    return runner.invoke(app, ["predict", *map(str, args)])


@pytest.mark.parametrize("scheduler", ["threads", "cluster"])
def test_the_dask_driver_gives_the_sequential_rows_and_values(tmp_path, model, catalogue, reference, cluster,
                                                              scheduler):
    sched = cluster if scheduler == "cluster" else "threads"
    out = tmp_path / "dask.parquet"
    got = pq.read_table(run(model, catalogue, out, keep=["name", "flag"], scheduler=sched,
                            workers=2 if scheduler == "threads" else None))
    assert got.schema.equals(reference.schema, check_metadata=False)
    assert got.replace_schema_metadata(None).equals(reference.replace_schema_metadata(None))  # every value, in order
    assert got["id"].to_pylist()[0] == GAIA_ID and got.schema.field("id").type == pa.int64()
    assert json.loads(got.schema.metadata[b"astromodal"])["fingerprint"] == \
        json.loads(reference.schema.metadata[b"astromodal"])["fingerprint"]
    assert not (tmp_path / "dask.parquet.parts").exists()


def test_worker_processes_give_the_sequential_rows(tmp_path, model, catalogue, reference):
    """Dask's multiprocessing scheduler: 2 worker processes, the tasks (no model in them) pickled to them and
    the parts written there, the same parts. Forked here to keep the test fast (a forked worker inherits this
    process's loaded model; a spawned one, Dask's default, loads it once: checked by hand, see the notes)."""
    import dask

    with dask.config.set({"multiprocessing.context": "fork"}):
        got = pq.read_table(run(model, catalogue, tmp_path / "p.parquet", keep=["name", "flag"],
                                scheduler="processes", workers=2))
    assert got.replace_schema_metadata(None).equals(reference.replace_schema_metadata(None))


def test_the_model_is_loaded_once_per_worker_not_per_task(tmp_path, model, catalogue, cluster):
    dask_driver._PREDICTORS.clear()
    before = dask_driver.LOADS["n"]
    run(model, catalogue, tmp_path / "p.parquet", chunk_size=50, scheduler=cluster)  # 20 tasks, 2 in-process workers
    assert dask_driver.LOADS["n"] - before == 0  # the workers share this process: the caller's model is reused
    dask_driver._PREDICTORS.clear()
    job = dask_driver.Job(str(model), dask_driver_digest(model), True, True, None, [])
    a, b = dask_driver.worker_predictor(job), dask_driver.worker_predictor(job)
    assert a is b and dask_driver.LOADS["n"] - before == 1


def dask_driver_digest(model):
    from astromodal.inference.catalogue import model_digest

    return model_digest(model)


def test_a_killed_dask_run_resumes_from_its_parts(tmp_path, model, catalogue, reference, monkeypatch):
    out = tmp_path / "p.parquet"
    real = dask_driver.predict_task
    calls = {"n": 0}

    def dying(job, task, schema):  # chunks run in the order Dask chooses: the fourth one started is killed
        calls["n"] += 1
        if calls["n"] == 4:
            calls["killed"] = task.index
            raise KeyboardInterrupt  # the run is killed while that chunk is predicted
        return real(job, task, schema)

    monkeypatch.setattr(dask_driver, "predict_task", dying)
    with pytest.raises(KeyboardInterrupt):
        run(model, catalogue, out, keep=["name", "flag"], scheduler="threads", workers=1)
    monkeypatch.setattr(dask_driver, "predict_task", real)
    parts = tmp_path / "p.parquet.parts"
    finished = sorted(p.name for p in parts.glob("part-*.parquet"))
    assert f"part-{calls['killed']:05d}.parquet" not in finished and len(finished) >= 3 and not out.exists()
    if len(finished) > 1:
        (parts / finished[-1]).unlink()  # a lost part is predicted again too
    said = []
    got = pq.read_table(run(model, catalogue, out, keep=["name", "flag"], scheduler="threads", workers=2,
                            log=said.append))
    assert any(s.startswith("resuming: ") for s in said), said
    assert got.replace_schema_metadata(None).equals(reference.replace_schema_metadata(None))
    # and the sequential driver resumes a Dask run's parts, part for part
    assert len(got) == 1000 and got["id"].to_pylist() == pd.read_parquet(catalogue)["source_id"].tolist()


def test_hdf5_and_in_memory_datasets_give_the_sequential_rows(tmp_path, model, cluster):
    """An astromodal HDF5 file (each worker opens it lazily and reads its rows) and an in-memory Dataset (each
    task carries its rows): the Dask driver's rows are the sequential driver's."""
    from astromodal.data.dataset import Column, Dataset
    from test_predict import COLS

    df = frame(700, seed=13)
    ds = Dataset(df["source_id"].to_numpy(), df["ra"].to_numpy(), df["dec"].to_numpy(),
                 columns={c: Column(df[c].to_numpy()) for c in COLS})
    h5 = ds.save(tmp_path / "d.h5")
    for source, name in ((h5, "h5"), (ds, "mem")):
        seq = pq.read_table(run(model, source, tmp_path / f"{name}_seq.parquet", chunk_size=100, keep=["c1"]))
        for sched in ("threads", cluster):
            got = pq.read_table(run(model, source, tmp_path / f"{name}_dask.parquet", chunk_size=100, keep=["c1"],
                                    scheduler=sched, overwrite=True))
            assert got.replace_schema_metadata(None).equals(seq.replace_schema_metadata(None)), (name, sched)
        assert seq["id"].to_pylist() == df["source_id"].tolist()


def test_dataset_output_is_one_file_per_chunk(tmp_path, model, catalogue, reference):
    out = tmp_path / "pred"
    run(model, catalogue, out, keep=["name", "flag"], scheduler="threads", workers=2, out_format="dataset")
    files = sorted(p.name for p in out.glob("*.parquet"))
    assert files == [f"part-{i:05d}.parquet" for i in range(8)]  # 1,000 rows in chunks of 128
    assert is_tool_written(out) and (out / MARKER).is_file()
    got = pq.read_table(out)  # a Parquet dataset: readers skip _common_metadata and the marker
    assert got.replace_schema_metadata(None).equals(reference.replace_schema_metadata(None))
    info = json.loads(pq.read_schema(out / "_common_metadata").metadata[b"astromodal"])
    assert info["rows"] == 1000
    # the output rule: an existing folder astromodal did not write is never touched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ConfigError, match="did not write"):
        run(model, catalogue, mine, out_format="dataset")
    assert (mine / "notes.txt").read_text() == "keep"
    with pytest.raises(ConfigError, match="--overwrite"):
        run(model, catalogue, out, out_format="dataset")
    run(model, catalogue, out, out_format="dataset", overwrite=True)  # astromodal's own: replaced


def test_hats_round_trip_keeps_rows_ids_and_values(tmp_path, model):
    import lsdb

    df = frame(600, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lsdb.from_dataframe(df, ra_column="ra", dec_column="dec", partition_rows=150, margin_threshold=None).to_hats(
            tmp_path / "in_hats", as_collection=False, progress_bar=False)
    df.to_parquet(tmp_path / "c.parquet")
    seq = pd.read_parquet(run(model, tmp_path / "c.parquet", tmp_path / "seq.parquet", keep=["name", "flag"]))
    out = tmp_path / "out_hats"
    run(model, tmp_path / "in_hats", out, keep=["name", "flag"], scheduler="threads", workers=2, out_format="hats")
    assert is_tool_written(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = lsdb.read_hats(out)
        # the input's partitions, each its own part's predictions (no re-partitioning of the whole output)
        assert back.get_healpix_pixels() == lsdb.read_hats(tmp_path / "in_hats").get_healpix_pixels()
        assert back.npartitions > 1
        got = pd.DataFrame(back.compute()).reset_index(drop=True)
    assert len(got) == 600 and got["id"].is_unique
    assert str(got["id"].dtype).startswith("int64")  # exact 64-bit ids, never floats
    got = got.astype({c: seq[c].dtype for c in seq.columns if c != "name"}).sort_values("id").reset_index(drop=True)
    got["name"] = got["name"].astype(object)
    seq = seq.sort_values("id").reset_index(drop=True)
    seq["name"] = seq["name"].astype(object)
    assert set(got["id"]) == set(df["source_id"]) and GAIA_ID in set(got["id"])
    same_rows(got[list(seq.columns)], seq)
    # the sequential driver reads the HATS catalogue the same way (one chunk per HATS partition)
    seq2 = pd.read_parquet(run(model, tmp_path / "in_hats", tmp_path / "s2.parquet", keep=["name", "flag"]))
    seq2 = seq2.sort_values("id").reset_index(drop=True)
    seq2["name"] = seq2["name"].astype(object)
    same_rows(seq2, seq)
    # a file catalogue to HATS: the predictions partitioned afresh (lsdb.from_dataframe), the same rows
    flat = tmp_path / "flat_hats"
    run(model, tmp_path / "c.parquet", flat, keep=["name", "flag"], out_format="hats")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = pd.DataFrame(lsdb.read_hats(flat).compute()).reset_index(drop=True)
    again = again.astype({c: seq[c].dtype for c in seq.columns if c != "name"}).sort_values("id")
    again = again.reset_index(drop=True)
    again["name"] = again["name"].astype(object)
    same_rows(again[list(seq.columns)], seq)
    assert json.loads((flat / "astromodal.json").read_text())["rows"] == 600


def same_rows(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Ids, positions, labels and kept columns exactly; probabilities to float32 rounding: a HATS catalogue's
    chunks are its sky partitions, and the model's batched arithmetic over other batches may differ in the
    last bit (1 float32 ulp is 6e-8 at 1)."""
    assert list(got.columns) == list(ref.columns)
    for c in ref.columns:
        if c.startswith("prob_"):
            np.testing.assert_allclose(got[c].to_numpy(), ref[c].to_numpy(), rtol=0, atol=3e-7, err_msg=c)
        else:
            pd.testing.assert_series_equal(got[c], ref[c], check_exact=True)


def main_exit(monkeypatch, capsys, *args) -> tuple[int, str]:
    """Run the console entry point in this process: (exit status, standard error)."""
    from astromodal.cli import main

    monkeypatch.setattr(sys, "argv", ["astromodal", "predict", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    return int(exit_.value.code or 0), capsys.readouterr().err


def test_a_bad_scheduler_is_a_usage_error(tmp_path, model, catalogue, monkeypatch, capsys):
    for bad in ("fast", "tcp://nohost", "tcp://host:99999"):
        code, err = main_exit(monkeypatch, capsys, model, catalogue, "--out", tmp_path / "p.parquet", "--trust",
                              "--scheduler", bad)
        assert code == 2, err
        assert "Usage:" in err and "--scheduler" in err and "Traceback" not in err
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "p.parquet.parts").exists()
    with pytest.raises(ConfigError, match="--workers"):
        run(model, catalogue, tmp_path / "q.parquet", workers=2)  # workers without a scheduler that uses them


def test_an_unreachable_scheduler_is_one_line(tmp_path, model, catalogue, monkeypatch, capsys):
    monkeypatch.setattr(dask_driver, "CONNECT_TIMEOUT", 2.0)
    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    code, err = main_exit(monkeypatch, capsys, model, catalogue, "--out", tmp_path / "p.parquet", "--trust",
                          "--scheduler", f"tcp://127.0.0.1:{port}")
    assert code == 1 and time.perf_counter() - t0 < 30, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("predict ")]  # not the progress bar
    assert len(lines) == 1 and lines[0].startswith("error: --scheduler tcp://127.0.0.1:") and \
        "no Dask scheduler answered within 2 s" in lines[0], err
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "p.parquet.parts").exists()
    # found before any work: the model is never loaded, the catalogue never read
    monkeypatch.setattr("astromodal.inference.catalogue.load_predictor", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(ConfigError, match="no Dask scheduler answered"):
        run(model, catalogue, tmp_path / "q.parquet", scheduler=f"tcp://127.0.0.1:{port}")


def test_sequential_start_up_imports_no_dask(tmp_path, model):
    import subprocess

    code = ("import sys\nfrom astromodal.cli import main\nsys.argv = ['astromodal', 'predict', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('dask', 'distributed', 'lsdb', 'hats') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert "--scheduler" in proc.stdout and "--out-format" in proc.stdout


def test_bad_hats_input_and_output_format_are_one_line(tmp_path, model, catalogue):
    from astromodal.errors import DataFormatError

    (tmp_path / "not_hats").mkdir()
    with pytest.raises(DataFormatError, match="not a readable HATS catalogue"):
        run(model, tmp_path / "not_hats", tmp_path / "p.parquet", reader="hats")
    with pytest.raises(ConfigError, match="--out-format 'csv': unknown; known: file, dataset, hats"):
        run(model, catalogue, tmp_path / "q.parquet", out_format="csv")
    assert not list(tmp_path.glob("*.parts"))
