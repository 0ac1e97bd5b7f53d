"""MPA-JHU DR7 SFR catalogue readers and the join to SDSS spectra, on small files in the catalogue's format."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from astromodal.data.dataset import Column, Dataset
from astromodal.data.readers.mpajhu import join_sfr, read_mpajhu_sfr, resolve_target
from astromodal.data.sources import load_source
from astromodal.errors import BadValueError, ConfigError, DataFormatError

# six catalogue rows: FLAG 0, 0, 1 (-99), 2 (-99), 0 with a -99 AVG, 0 (no spectrum has it)
INFO = {"PLATEID": [411, 412, 412, 500, 600, 700], "MJD": [51817, 51871, 51931, 51990, 52000, 52100],
        "FIBERID": [119, 308, 319, 1, 2, 3], "RA": [46.5574, 46.5605, 46.5605, 10.0, 20.0, 30.0],
        "DEC": [-0.3415, -0.3444, -0.3444, 1.0, 2.0, 3.0], "Z": [0.0294, 0.0286, 0.0287, 0.1, 0.2, 0.3]}
AVG = [-0.5, 0.25, -99.0, -99.0, -99.0, 1.5]
FLAG = [0, 0, 1, 2, 0, 0]


def _sfr_columns(n_rows: int = 6, flag: bool = True) -> dict:
    avg = np.asarray(AVG[:n_rows], dtype=np.float32)
    cols = {"AVG": avg, "MEDIAN": avg + 0.01, "MODE": avg + 0.02, "P2P5": np.where(avg == -99, -99, avg - 0.6),
            "P16": np.where(avg == -99, -99, avg - 0.3), "P84": np.where(avg == -99, -99, avg + 0.3),
            "P97P5": np.where(avg == -99, -99, avg + 0.6), "ENTROPY": np.ones(n_rows, np.float32)}
    if flag:
        cols["FLAG"] = np.asarray(FLAG[:n_rows], dtype=np.int32)
    return cols


@pytest.fixture()
def catalogue(tmp_path):
    info = Table({k: np.asarray(v, dtype=np.int32 if k in ("PLATEID", "MJD", "FIBERID") else np.float64)
                  for k, v in INFO.items()})
    info["KCOR_MAG"] = np.zeros((6, 3), np.float32)  # an array column, as the real gal_info has
    info.write(tmp_path / "gal_info_dr7_v5_2.fit")
    Table(_sfr_columns()).write(tmp_path / "gal_totsfr_dr7_v5_2.fits")
    return tmp_path / "gal_info_dr7_v5_2.fit", tmp_path / "gal_totsfr_dr7_v5_2.fits"


def _spectra() -> Dataset:
    """Three 'spectra' as the SDSS reader gives them: two in the catalogue (FLAG 0), one FLAG 1, one absent."""
    plate, mjd, fiber = [411, 412, 412, 999], [51817, 51871, 51931, 55000], [119, 308, 319, 5]
    ids = np.array([f"{p:04d}-{m:05d}-{f:04d}" for p, m, f in zip(plate, mjd, fiber, strict=True)])
    return Dataset(ids, columns={k: Column(np.asarray(v, np.int64)) for k, v in
                                 (("plate", plate), ("mjd", mjd), ("fiberid", fiber))})


def test_read_filters_flag_and_sentinels(catalogue):
    cat = read_mpajhu_sfr(*catalogue)
    # FLAG != 0 removes rows 3 and 4; the -99 AVG removes row 5 (FLAG 0): rows 1, 2, 6 stay
    assert cat.frame["PLATEID"].tolist() == [411, 412, 700]
    assert cat.frame["AVG"].tolist() == pytest.approx([-0.5, 0.25, 1.5])
    assert cat.frame["PLATEID"].dtype == np.int64 and cat.frame["MJD"].dtype == np.int64
    assert cat.meta["selection"] == [{"cut": "input", "kept": 6}, {"cut": "FLAG in [0]", "kept": 4},
                                     {"cut": "AVG != -99 and finite", "kept": 3}]
    assert cat.target == "AVG" and "target_alias" not in cat.meta
    # another target column, another sentinel count (P16 is -99 on the same rows)
    cat16 = read_mpajhu_sfr(*catalogue, target="p16")
    assert cat16.target == "P16" and cat16.frame["P16"].tolist() == pytest.approx([-0.8, -0.05, 1.2])


def test_avr_is_an_alias_for_avg(catalogue):
    with pytest.warns(UserWarning, match="AVR.*AVG"):
        cat = read_mpajhu_sfr(*catalogue, target="AVR")
    assert cat.target == "AVG" and "AVG" in cat.meta["target_alias"]
    assert resolve_target("avr")[0] == "AVG"
    with pytest.raises(ConfigError, match="'SFR'.*AVG"):
        resolve_target("SFR")


def test_join_attaches_target_nan_where_unmatched(catalogue):
    cat = read_mpajhu_sfr(*catalogue)
    out = join_sfr(_spectra(), cat)
    sfr = out.targets["sfr"]
    assert sfr.kind == "regression" and sfr.unit == "log10(Msun/yr)"
    v = sfr.values.read()
    assert v[:2] == pytest.approx([-0.5, 0.25])
    assert np.isnan(v[2]) and np.isnan(v[3])  # FLAG 1 was filtered; 999-55000-0005 is not in the catalogue
    assert out.columns["sfr_p16"].values.read()[:2] == pytest.approx([-0.8, -0.05])
    assert out.meta["sfr_join"]["matched"] == 2 and out.meta["sfr_join"]["unmatched"] == 2
    assert out.meta["sfr_join"]["catalogue"]["selection"][-1]["kept"] == 3
    assert list(out.ids.read()) == list(_spectra().ids.read())  # order kept
    kept = join_sfr(_spectra(), cat, drop_unmatched=True)
    assert list(kept.ids.read()) == ["0411-51817-0119", "0412-51871-0308"]


def test_join_accepts_a_dataframe_and_drops_sentinels(catalogue):
    frame = pd.DataFrame({"plateid": [411, 412], "mjd": [51817, 51871], "fiberid": [119, 308], "avg": [-99.0, 0.3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # AVG: no warning
        out = join_sfr(_spectra(), frame, target="AVG")
    v = out.targets["sfr"].values.read()
    assert np.isnan(v[0]) and v[1] == pytest.approx(0.3)
    with pytest.warns(UserWarning, match="AVR"):
        join_sfr(_spectra(), frame, target="AVR")


def test_bad_input_is_one_line(catalogue, tmp_path):
    info, _ = catalogue
    no_flag = tmp_path / "no_flag.fits"
    Table(_sfr_columns(flag=False)).write(no_flag)
    with pytest.raises(DataFormatError) as err:
        read_mpajhu_sfr(info, no_flag)
    assert "no_flag.fits" in str(err.value) and "no column FLAG" in str(err.value) and "\n" not in str(err.value)
    short = tmp_path / "short.fits"
    Table(_sfr_columns(n_rows=5)).write(short)
    with pytest.raises(DataFormatError, match=r"has 6 rows but .*short.fits has 5.*same length"):
        read_mpajhu_sfr(info, short)
    no_fiber = tmp_path / "no_fiber.fits"
    Table({k: v for k, v in INFO.items() if k != "FIBERID"}).write(no_fiber)
    with pytest.raises(DataFormatError, match=r"no_fiber.fits: no column FIBERID"):
        read_mpajhu_sfr(no_fiber, catalogue[1])
    frame = pd.DataFrame({"PLATEID": [411, 411], "MJD": [51817, 51817], "FIBERID": [119, 119], "AVG": [0.1, 0.2]})
    with pytest.raises(BadValueError, match="411-51817-119.*2 rows"):
        join_sfr(_spectra(), frame)
    with pytest.raises(DataFormatError, match="no column MJD"):
        join_sfr(_spectra(), frame.drop(columns="MJD"))
    bare = Dataset(np.arange(2))
    with pytest.raises(BadValueError, match="no column 'plate'"):
        join_sfr(bare, frame.iloc[:1])


@pytest.mark.realdata
def test_source_joins_real_spectra(catalogue, shared_data):
    """The ``mpajhu_sfr`` source: two real SDSS spectra folders' files joined to the small catalogue."""
    info, sfr = catalogue
    folder = shared_data / "sdss-spectra-images" / "galaxy_small" / "spectra" / "0411"
    ds, test = load_source("mpajhu_sfr", {"path": str(folder), "gal_info": str(info), "totsfr": str(sfr)})
    assert test is None and len(ds) == 3
    v = dict(zip(ds.ids.read(), ds.targets["sfr"].values.read(), strict=True))
    assert v["0411-51817-0119"] == pytest.approx(-0.5)
    assert np.isnan(v["0411-51873-0101"]) and np.isnan(v["0411-51914-0103"])
    assert ds.meta["sfr_join"]["matched"] == 1
    with pytest.raises(ConfigError, match="unknown option"):
        load_source("mpajhu_sfr", {"path": str(folder), "gal_info": str(info), "totsfr": str(sfr), "avr": 1})


def test_the_source_declares_the_reader_s_options():
    from astromodal.data.readers.mpajhu import MPAJHU_OPTIONS
    from astromodal.data.sources import SOURCES

    assert tuple(SOURCES.meta("mpajhu_sfr")["options"]) == MPAJHU_OPTIONS
