"""Ids stored as floats are kept only when each is an exact integer of its own float type, everywhere:
float32 holds every integer only below 2**24, float64 below 2**53 (tables, Gaia XP tables, predict)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astromodal.data.dataset import Column, Dataset, Spectra
from astromodal.errors import BadValueError, DataFormatError

#: just beyond float32's exact integers (representable in float32, but so is the rounding of 2**24 + 3)
BEYOND_F32 = np.float32(2**24 + 2)


def test_the_limit_depends_on_the_float_type():
    from astromodal.data.ids import as_int_ids, exact_integer_limit

    assert exact_integer_limit(np.float32) == 2**24 and exact_integer_limit(np.float64) == 2**53
    assert as_int_ids(np.array([2**24 - 1, 5], np.float32), "t").tolist() == [2**24 - 1, 5]
    with pytest.raises(BadValueError, match=r"t: id holds 16777218.0 at row 1, beyond 2\*\*24"):
        as_int_ids(np.array([5, BEYOND_F32], np.float32), "t")
    # the same value as float64 is exact
    assert as_int_ids(np.array([5, 2**24 + 2], np.float64), "t").tolist() == [5, 2**24 + 2]
    with pytest.raises(DataFormatError, match=r"beyond 2\*\*53"):
        as_int_ids(np.array([2.0**53 + 2]), "t", error=DataFormatError)


def test_table_float32_id_column(tmp_path):
    from astromodal.data.readers.tables import read_table

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"objid": pa.array([7.0, float(BEYOND_F32)], pa.float32()), "x": [1.0, 2.0]}), path)
    with pytest.raises(BadValueError, match=r"id column 'objid' holds 16777218.0 at row 1, beyond 2\*\*24"):
        read_table(path)
    pq.write_table(pa.table({"objid": pa.array([7.0, 2.0**24 - 1], pa.float32()), "x": [1.0, 2.0]}), path)
    ids = read_table(path).ids.read()
    assert ids.dtype == np.int64 and ids.tolist() == [7, 2**24 - 1]


def test_gaia_xp_float32_source_id(tmp_path):
    from astromodal.data.readers import read
    from astromodal.data.readers.gaia_xp import XP_SAMPLING_NM, write_xp_sampled

    flux = np.full((2, len(XP_SAMPLING_NM)), 1e-17)
    xp = Dataset(np.array([3, 4]), np.arange(2.0), np.arange(2.0),
                 spectra={"gaia_xp": Spectra(flux, np.asarray(XP_SAMPLING_NM) * 10.0)})
    path = write_xp_sampled(xp, tmp_path / "xp.parquet")
    table = pq.read_table(path)
    for ids, ok in (([3.0, float(BEYOND_F32)], False), ([3.0, 2.0**24 - 1], True)):
        column = table.schema.get_field_index("source_id")
        pq.write_table(table.set_column(column, "source_id", pa.array(ids, pa.float32())), tmp_path / "f.parquet")
        if ok:
            got = read(tmp_path / "f.parquet").ids.read()
            assert got.dtype == np.int64 and got.tolist() == [3, 2**24 - 1]
        else:
            with pytest.raises(DataFormatError, match=r"source_id holds 16777218.0 at row 1, beyond 2\*\*24"):
                read(tmp_path / "f.parquet")


def test_predict_float32_ids_of_an_hdf5_catalogue(tmp_path):
    from test_predict import COLS, train

    model = train(tmp_path, "m")
    cols = {c: Column(np.arange(3.0)) for c in COLS}
    oid = Column(np.array([1, 2, BEYOND_F32], np.float32))
    h5 = Dataset(np.arange(3), columns={**cols, "oid": oid}).save(tmp_path / "d.h5")
    out = tmp_path / "p.parquet"
    proc = subprocess.run([sys.executable, "-c", "from astromodal.cli import main; main()", "predict", str(model),
                           str(h5), "--out", str(out), "--trust", "--id-column", "oid"], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'oid'" in proc.stderr and "16777218.0 at row 2, beyond 2**24" in proc.stderr, proc.stderr
    assert not out.exists() and not out.with_name(out.name + ".parts").exists()
    # float32 ids of the dataset itself, the same rule
    h5 = Dataset(np.array([1, 2, BEYOND_F32], np.float32), columns=cols).save(tmp_path / "e.h5")
    from astromodal.inference.catalogue import predict_catalogue

    with pytest.raises(BadValueError, match=r"e.h5: id holds 16777218.0 at row 2, beyond 2\*\*24"):
        predict_catalogue(model, h5, out, trust=True)
    h5 = Dataset(np.array([1, 2, 2**24 - 1], np.float32), columns=cols).save(tmp_path / "g.h5")
    got = pq.read_table(predict_catalogue(model, h5, out, trust=True))
    assert got.schema.field("id").type == pa.int64() and got["id"].to_pylist() == [1, 2, 2**24 - 1]
    assert len(pd.read_parquet(out)) == 3
