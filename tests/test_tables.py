"""Generic tables: aliases, labels, NaN handling, colours; ALS II fixed-width reader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astromodal.data.readers.als import als_colspecs, read_als, read_als_table, sexagesimal_to_deg
from astromodal.data.readers.tables import add_absolute_magnitudes, add_colours, read_table
from astromodal.errors import BadValueError


def _sdss_like(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "class": ["GALAXY", "STAR", "QSO", "STAR", "GALAXY", "QSO"][:n],
        "right_ascension_angle": rng.uniform(0, 360, n),
        "declination_angle": rng.uniform(-10, 60, n),
        "ultraviolet_filter": np.linspace(20, 21, n),
        "green_filter": np.linspace(19, 20, n),
        "red_filter": np.linspace(18.5, 19, n),
        "near_infrared_filter": np.linspace(18, 18.5, n),
        "infrared_filter": np.linspace(17.9, 18.0, n),
        "redshift": np.linspace(0, 2, n),
    })


@pytest.mark.parametrize("suffix", ["csv", "parquet", "fits"])
def test_read_table_aliases_formats(tmp_path, suffix):
    frame = _sdss_like()
    path = tmp_path / f"t.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "parquet":
        frame.to_parquet(path)
    else:
        from astropy.table import Table

        Table.from_pandas(frame).write(path)
    ds = read_table(path, features=["u", "g", "r", "i", "z", "redshift"], label="class",
                    class_names=["STAR", "GALAXY", "QSO"])
    assert list(ds.columns) == ["u", "g", "r", "i", "z", "redshift"]
    assert ds.columns["u"].unit == "mag"
    np.testing.assert_allclose(ds.columns["g"].values.read(), frame["green_filter"].to_numpy())
    np.testing.assert_allclose(ds.ra.read(), frame["right_ascension_angle"].to_numpy())
    assert ds.class_codes("class").tolist() == [1, 0, 2, 0, 1, 2]
    assert ds.ids.read().tolist() == list(range(6))


def test_long_names_also_accepted():
    ds = read_table(_sdss_like(), features=["green_filter", "red_filter"], label="class")
    assert list(ds.columns) == ["g", "r"]


def test_colours_hand_values():
    ds = add_colours(read_table(_sdss_like(), features=["u", "g", "r", "i", "z"], label="class"))
    frame = _sdss_like()
    assert [c for c in ds.columns if "-" in c] == ["u-g", "g-r", "r-i", "i-z"]
    np.testing.assert_allclose(ds.columns["u-g"].values.read(), frame["ultraviolet_filter"] - frame["green_filter"])
    assert ds.columns["u-g"].values.read()[0] == pytest.approx(1.0)  # 20 - 19
    with pytest.raises(BadValueError, match="no neighbouring pair"):
        add_colours(read_table(_sdss_like(), features=["u", "r"], label="class"))


def test_absolute_magnitudes_low_redshift_hand_value():
    """At z = 0.01, D_L = (c z / H0) (1 + (1 - q0) z / 2) to second order, q0 = Om/2 - OL (Planck18:
    H0 = 67.66, Om = 0.3111, OL = 0.6889): 44.65 Mpc, DM = 5 log10(D_L / 10 pc) = 33.249."""
    frame = pd.DataFrame({"class": ["GALAXY", "STAR", "QSO"], "r": [18.0, 15.0, 19.0],
                          "g": [19.0, 16.0, 19.5], "redshift": [0.01, -0.0003, 0.01]})
    ds = add_absolute_magnitudes(read_table(frame, features=["g", "r", "redshift"], label="class"))
    assert [c for c in ds.columns if c.startswith("M_")] == ["M_g", "M_r"]
    assert ds.columns["M_r"].unit == "mag"
    c_km_s, h0, om, ol, z = 299792.458, 67.66, 0.3111, 0.6889, 0.01
    d_l_mpc = c_km_s * z / h0 * (1 + (1 - (om / 2 - ol)) * z / 2)
    dm = 5 * np.log10(d_l_mpc * 1e6 / 10)
    assert dm == pytest.approx(33.249, abs=1e-3)
    m_r = ds.columns["M_r"].values.read()
    assert m_r[0] == pytest.approx(18.0 - dm, abs=5e-3)
    assert ds.columns["M_g"].values.read()[2] == pytest.approx(19.5 - dm, abs=5e-3)
    # a star's (negative) redshift is taken as z_min = 1e-4: D_L = c z / H0 = 0.443 Mpc, DM = 28.23
    assert m_r[1] == pytest.approx(15.0 - 5 * np.log10(c_km_s * 1e-4 / h0 * 1e5), abs=5e-3)
    assert np.isfinite(m_r).all()


def test_absolute_magnitudes_errors():
    ds = read_table(_sdss_like(), features=["u", "g", "redshift"], label="class")
    with pytest.raises(BadValueError, match="redshift column 'zspec'"):
        add_absolute_magnitudes(ds, redshift="zspec")
    with pytest.raises(BadValueError, match="unknown cosmology 'Planck99'.*Planck18"):
        add_absolute_magnitudes(ds, cosmology="Planck99")
    with pytest.raises(BadValueError, match="no band"):
        add_absolute_magnitudes(ds, bands=("y",))


def test_table_source_adds_colours_and_absolute_magnitudes(tmp_path):
    from astromodal.data.sources import load_source
    from astromodal.errors import ConfigError

    _sdss_like().to_csv(tmp_path / "train.csv", index=False)
    _sdss_like(4).to_csv(tmp_path / "test.csv", index=False)
    opts = {"path": "train.csv", "test_path": "test.csv", "features": ["u", "g", "r", "i", "z", "redshift"],
            "label": "class", "colours": True, "absolute_magnitudes": {"cosmology": "WMAP9"}}
    train, test = load_source("table", opts, base=tmp_path)
    for ds in (train, test):
        assert {"u-g", "i-z", "M_u", "M_z"} <= set(ds.columns)
    from astropy.cosmology import WMAP9

    z = np.maximum(_sdss_like()["redshift"].to_numpy(), 1e-4)
    np.testing.assert_allclose(train.columns["M_r"].values.read(),
                               _sdss_like()["red_filter"].to_numpy() - WMAP9.distmod(z).value)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['h0'\]"):
        load_source("table", {**opts, "absolute_magnitudes": {"h0": 70}}, base=tmp_path)


def test_unknown_columns_list_the_table():
    with pytest.raises(BadValueError, match=r"unknown feature column 'w'.*'green_filter'"):
        read_table(_sdss_like(), features=["u", "w"], label="class")
    with pytest.raises(BadValueError, match=r"unknown label column 'kind'"):
        read_table(_sdss_like(), features=["u"], label="kind")


def test_nan_rows_error_or_dropped():
    frame = _sdss_like()
    frame.loc[3, "red_filter"] = np.nan
    with pytest.raises(BadValueError, match=r"first at row 3.*red_filter"):
        read_table(frame, features=["u", "r"], label="class")
    ds = read_table(frame, features=["u", "r"], label="class", dropna=True)
    assert len(ds) == 5 and ds.meta["n_dropped"] == 1
    assert ds.ids.read().tolist() == [0, 1, 2, 4, 5]


def test_unknown_class_and_regression():
    with pytest.raises(BadValueError, match="unknown class 'QSO'"):
        read_table(_sdss_like(), features=["u"], label="class", class_names=["STAR", "GALAXY"])
    ds = read_table(_sdss_like(), features=["u", "g"], label="redshift", task="regression")
    assert ds.targets["redshift"].kind == "regression"
    assert ds.targets["redshift"].values.read()[-1] == pytest.approx(2.0)


@pytest.mark.realdata
def test_real_sdss_dr17(shared_data):
    ds = read_table(shared_data / "sdss-dr17-photometry" / "StellarObjs.csv",
                    features=["u", "g", "r", "i", "z", "redshift"], label="class")
    assert len(ds) == 99999
    counts = dict(zip(ds.targets["class"].class_names, np.bincount(ds.class_codes("class")).tolist(), strict=True))
    assert counts == {"GALAXY": 59445, "QSO": 18961, "STAR": 21593}


# ------------------------------------------------------------------------------------------- ALS II
ALS_HEADER = ("ID_ALS", "RA_DR2", "DEC_DR2", "GLON", "GLAT", "Plx", "Plx_err", "BJ_dist", "SpT_ALS")
ALS_ROWS = (
    ("9", "05:57:36.490", "+17:00:52.495", "191.66856", "-3.705460", "0.062", "0.042", "7091", "B7II"),
    ("18", "06:12:44.177", "-00:30:00.000", "192.58376", "-0.083420", "3.651", "0.619", "287", "B0.5V"),
    ("29", "23:59:59.999", "-45:00:00.000", "192.83310", "0.509440", "", "", "", ""),
)
ALS_WIDTHS = (8, 14, 15, 11, 12, 9, 9, 9, 9)  # every field right-aligned under its name, as in ALS II
ALS_SAMPLE = "\n".join(
    "".join(v.rjust(w) for v, w in zip(row, ALS_WIDTHS, strict=True)) for row in (ALS_HEADER, *ALS_ROWS)
) + "\n"


def test_als_colspecs_and_values(tmp_path):
    path = tmp_path / "als.dat"
    path.write_text(ALS_SAMPLE)
    spans = als_colspecs(ALS_SAMPLE.splitlines()[0])
    assert spans[0] == ("ID_ALS", 0, 8) and spans[1][0] == "RA_DR2" and spans[1][1] == 8
    table = read_als_table(path)
    assert table["SpT_ALS"].tolist() == ["B7II", "B0.5V", ""]
    ds = read_als(path)
    assert ds.ids.read().tolist() == [9, 18, 29]
    np.testing.assert_allclose(ds.columns["l"].values.read(), [191.66856, 192.58376, 192.83310])
    assert ds.columns["parallax"].unit == "mas" and ds.columns["BJ_dist"].unit == "pc"
    assert np.isnan(ds.columns["parallax"].values.read()[2])
    # 05:57:36.490 = (5 + 57/60 + 36.49/3600) * 15 deg; -00:30 keeps its sign
    assert ds.ra.read()[0] == pytest.approx((5 + 57 / 60 + 36.49 / 3600) * 15, abs=1e-12)
    assert ds.dec.read()[1] == pytest.approx(-0.5, abs=1e-12)


def test_sexagesimal_negative_zero_degrees():
    out = sexagesimal_to_deg(pd.Series(["-00:00:36", "+10:30:00", ""]), hours=False)
    assert out[0] == pytest.approx(-0.01) and out[1] == pytest.approx(10.5) and np.isnan(out[2])


@pytest.mark.realdata
def test_real_als_b(shared_data):
    ds = read_als(shared_data / "als-ii-ob-stars" / "als_ii_b.dat")
    assert len(ds) == 2427
    ids = ds.columns["gaia_dr2_source_id"].values.read()
    assert ids[0] == 3349752230893885568  # exact 19-digit id
    # the file's GLON/GLAT agree with the Galactic coordinates of its RA/Dec
    from astromodal.analysis.associations import galactic_lb

    lon, lat = galactic_lb(ds.ra.read(), ds.dec.read())
    dl = (lon - ds.columns["l"].values.read() + 180) % 360 - 180
    assert np.nanmax(np.abs(dl * np.cos(np.radians(lat)))) < 0.01
    assert np.nanmax(np.abs(lat - ds.columns["b"].values.read())) < 0.01
    plx = ds.columns["parallax"].values.read()
    assert np.isnan(plx).sum() == 184


# ------------------------------------------------------------------ table options for real catalogues
@pytest.mark.realdata
def test_label_prefix_on_lamost_subclasses(shared_data):
    path = shared_data / "lamost-dr1-sample" / "Data" / "my_data3.csv"
    mags = [f"mag{k}" for k in range(1, 8)]
    ds = read_table(path, features=mags, label="subclass", label_prefix=1, target_name="class")
    frame = pd.read_csv(path)
    t = ds.targets["class"]
    assert t.class_names == ("A", "F", "G", "K")  # F5 -> F, A3V -> A, K0 -> K
    counts = dict(zip(t.class_names, np.bincount(t.values.read()).tolist(), strict=True))
    assert counts == frame["subclass"].str[:1].value_counts().to_dict() == {"F": 1280, "G": 1075, "K": 763, "A": 47}
    # the usual id column (obsid), kept as int64, and the ra/dec columns
    assert ds.ids.read().dtype == np.int64 and ds.ids.read()[:2].tolist() == [605006, 605015]
    np.testing.assert_allclose(ds.ra.read(), frame["ra"].to_numpy())
    assert ds.meta["preparation"]["label"]["label_prefix"] == 1
    with pytest.raises(BadValueError, match="label_prefix must be a whole number"):
        read_table(path, features=mags, label="subclass", label_prefix=0)
    with pytest.raises(BadValueError, match="does not apply to a regression label"):
        read_table(path, features=mags, label="teff", task="regression", label_prefix=1)


def test_table_source_label_prefix_and_per_file_renames(tmp_path):
    from astromodal.data.sources import load_source

    pd.DataFrame({"umag": [20.0, 21.0, 22.0], "gmag": [19.0, 19.5, 20.0], "sub": ["F5", "G2", "F9"],
                  "ident": [11, 12, 13]}).to_csv(tmp_path / "train.csv", index=False)
    pd.DataFrame({"U_MAG": [20.5, 21.5], "G": [19.1, 18.0], "sub": ["G5", "F0"],
                  "name": ["x1", "x2"]}).to_csv(tmp_path / "test.csv", index=False)
    opts = {"path": "train.csv", "test_path": "test.csv", "features": ["u", "g"], "label": "sub", "label_prefix": 1,
            "target_name": "class", "rename": {"umag": "u", "gmag": "g"}, "test_rename": {"U_MAG": "u", "G": "g"},
            "id_column": "ident", "test_id_column": "name", "colours": True}
    train, test = load_source("table", opts, base=tmp_path)
    assert list(train.columns) == list(test.columns) == ["u", "g", "u-g"]
    np.testing.assert_allclose(test.columns["u"].values.read(), [20.5, 21.5])
    np.testing.assert_allclose(test.columns["u-g"].values.read(), [20.5 - 19.1, 21.5 - 18.0])
    assert train.ids.read().tolist() == [11, 12, 13] and test.ids.read().tolist() == ["x1", "x2"]
    assert train.targets["class"].labels().tolist() == ["F", "G", "F"]
    assert test.targets["class"].class_names == ("F", "G")
    assert test.targets["class"].labels().tolist() == ["G", "F"]
    recipe = train.meta["preparation"]
    assert recipe["rename"] == {"umag": "u", "gmag": "g"} and recipe["raw_columns"] == {"u": "u", "g": "g"}
    assert recipe["derived"] == [{"step": "colours", "bands": ["u", "g", "r", "i", "z"]}]
    assert recipe["feature_columns"] == ["u", "g", "u-g"] and recipe["id_column"] == "ident"
    json.dumps(recipe)  # JSON-able
    with pytest.raises(BadValueError, match=r"unknown column to rename 'UMAG_X'"):
        load_source("table", {**opts, "rename": {"UMAG_X": "u"}}, base=tmp_path)
    with pytest.raises(BadValueError, match=r"rename .* gives column name\(s\) \['gmag'\] that the table already has"):
        load_source("table", {**opts, "rename": {"umag": "gmag"}}, base=tmp_path)


def test_table_source_unknown_option_lists_the_allowed(tmp_path):
    from astromodal.data.sources import load_source
    from astromodal.errors import ConfigError

    _sdss_like().to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['labels'\].*'label_prefix'"):
        load_source("table", {"path": "t.csv", "labels": "class"}, base=tmp_path)


def test_id_columns_default_and_dtypes(tmp_path):
    big = np.array([3349752230893885568, 3349752230893885569, 5937173300407375616], dtype=np.int64)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "SOURCE_ID": big, "id": [7, 8, 9]})
    frame.to_csv(tmp_path / "g.csv", index=False)
    frame.to_parquet(tmp_path / "g.parquet")
    for name in ("g.csv", "g.parquet"):
        ds = read_table(tmp_path / name)
        ids = ds.ids.read()
        assert ids.dtype == np.int64 and ids.tolist() == big.tolist()  # source_id first, any case, exact
        assert list(ds.columns) == ["x"]  # the id columns are not features
    assert read_table(frame, id_column="id").ids.read().tolist() == [7, 8, 9]  # an explicit one wins
    floats = read_table(pd.DataFrame({"x": [1.0, 2.0], "objid": [12.0, 1e15]})).ids.read()
    assert floats.dtype == np.int64 and floats.tolist() == [12, 10**15]
    text = read_table(pd.DataFrame({"x": [1.0, 2.0], "obsid": ["a7", "b8"]})).ids.read()
    assert text.dtype.kind == "U" and text.tolist() == ["a7", "b8"]
    assert read_table(pd.DataFrame({"x": [1.0, 2.0]})).ids.read().tolist() == [0, 1]  # row numbers
    with pytest.raises(BadValueError, match=r"id column 'objid' holds the non-integer number 2.5 at row 1"):
        read_table(pd.DataFrame({"x": [1.0, 2.0], "objid": [1.0, 2.5]}))
    with pytest.raises(BadValueError, match=r"id column 'id' is empty at 1 row\(s\), first at row 0"):
        read_table(pd.DataFrame({"x": [1.0, 2.0], "id": [np.nan, 2.0]}))


def test_positions_from_the_usual_names():
    frame = pd.DataFrame({"x": [1.0, 2.0], "RA_ICRS": [10.0, 20.0], "DE_ICRS": [-5.0, 5.0]})
    ds = read_table(frame)
    assert ds.ra.read().tolist() == [10.0, 20.0] and ds.dec.read().tolist() == [-5.0, 5.0]
    assert list(ds.columns) == ["x"]
    gaia = read_table(pd.DataFrame({"x": [1.0], "ra_gaia": [1.5], "dec_gaia": [2.5]}))
    assert (gaia.ra.read()[0], gaia.dec.read()[0]) == (1.5, 2.5)
    vizier = read_table(pd.DataFrame({"x": [1.0], "RAJ2000": [3.0], "DEJ2000": [4.0], "RAdeg": [9.0], "DEdeg": [9.0]}))
    assert (vizier.ra.read()[0], vizier.dec.read()[0]) == (3.0, 4.0)
    # explicit options win over the usual names
    both = pd.DataFrame({"x": [1.0], "ra": [1.0], "dec": [2.0], "alt_ra": [3.0], "alt_dec": [4.0]})
    ds = read_table(both, ra="alt_ra", dec="alt_dec")
    assert (ds.ra.read()[0], ds.dec.read()[0]) == (3.0, 4.0)
    assert ds.meta["preparation"]["ra"] == "alt_ra"
    assert np.isnan(read_table(pd.DataFrame({"x": [1.0], "ra": [1.0]})).dec.read()).all()  # no dec: none
    with pytest.raises(BadValueError, match="no dec column"):
        read_table(pd.DataFrame({"x": [1.0], "my_ra": [1.0]}), ra="my_ra")


# ------------------------------------------------------------------ the recorded preparation
def test_preparation_survives_views_and_replays_on_a_raw_file(tmp_path):
    from astromodal.data.preparation import replay_preparation
    from astromodal.data.sources import load_source

    train = _sdss_like(6)
    train.to_csv(tmp_path / "train.csv", index=False)
    opts = {"path": "train.csv", "features": ["u", "g", "r", "i", "z", "zz"], "label": "class", "colours": True,
            "absolute_magnitudes": {"redshift": "zz"}, "rename": {"redshift": "zz"}}
    ds, _ = load_source("table", opts, base=tmp_path)
    recipe = ds.meta["preparation"]
    assert [s["step"] for s in recipe["derived"]] == ["colours", "absolute_magnitudes"]
    assert recipe["derived"][1] == {"step": "absolute_magnitudes", "redshift": "zz", "bands": ["u", "g", "r", "i", "z"],
                                    "cosmology": "Planck18", "z_min": 1e-4}
    assert recipe["label"]["class_names"] == ["GALAXY", "QSO", "STAR"]
    a, b = ds.split(0.5, seed=0)
    assert a.meta["preparation"] == b.meta["preparation"] == ds.subset([0, 1]).meta["preparation"] == recipe
    assert ds.with_columns({"w": np.zeros(6)}).meta["preparation"] == recipe
    # another raw file: other rows, columns in another order, the label absent
    raw = _sdss_like(6).iloc[::-1].reset_index(drop=True)
    raw = raw[list(raw.columns[::-1])].drop(columns=["class"])
    raw.to_csv(tmp_path / "raw.csv", index=False)
    out = replay_preparation(recipe, tmp_path / "raw.csv")
    assert list(out.columns) == recipe["feature_columns"] == list(ds.columns)
    assert not out.targets
    np.testing.assert_allclose(out.column_matrix(list(out.columns)), ds.column_matrix(list(ds.columns))[::-1])
    np.testing.assert_allclose(out.ra.read(), raw["right_ascension_angle"].to_numpy())
    # with the label: coded with the training classes; a class outside them is named
    labelled = replay_preparation(recipe, tmp_path / "train.csv")
    assert labelled.targets["class"].class_names == ("GALAXY", "QSO", "STAR")
    assert labelled.targets["class"].labels().tolist() == train["class"].tolist()
    odd = train.assign(**{"class": ["STAR", "WD", "WD", "STAR", "GALAXY", "QSO"]})
    odd.to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(BadValueError, match=r"odd.csv: label column 'class': class 'WD' \(2 rows\) not among"):
        replay_preparation(recipe, tmp_path / "odd.csv")
    assert not replay_preparation(recipe, tmp_path / "odd.csv", label=False).targets
    with pytest.raises(BadValueError, match=r"unknown option\(s\) \['colour'\]"):
        replay_preparation(recipe, tmp_path / "raw.csv", colour=True)
    with pytest.raises(BadValueError, match=r"unknown feature column 'u'"):
        replay_preparation(recipe, tmp_path / "raw.csv", rename={"ultraviolet_filter": "uv"})


def test_missing_values_become_nan_and_are_replayed(tmp_path):
    from astromodal.data.preparation import replay_preparation
    from astromodal.data.readers.tables import read_table

    path = tmp_path / "cat.csv"
    pd.DataFrame({"obsid": [11, 12, 13, 14], "mag1": [15.0, 99.0, 16.0, 17.0], "mag2": [14.0, 14.5, 0.0, 15.5],
                  "teff": [5000.0, 5100.0, 5200.0, 5300.0]}).to_csv(path, index=False)
    with pytest.raises(BadValueError, match="first at row 1"):
        read_table(path, features=["mag1", "mag2"], label="teff", task="regression", missing_values=[99, 0])
    ds = read_table(path, features=["mag1", "mag2"], label="teff", task="regression", missing_values=[99, 0],
                    dropna=True)
    assert ds.ids.read().tolist() == [11, 14] and ds.meta["n_dropped"] == 2
    assert ds.meta["preparation"]["missing_values"] == [99.0, 0.0]
    with pytest.raises(BadValueError, match="first at row 1"):  # replayed without dropping (predict's way)
        replay_preparation(ds.meta["preparation"], path, dropna=False)
    with pytest.raises(BadValueError, match="missing_values"):
        read_table(path, features=["mag1"], missing_values=["n/a"])


def test_float_ids_beyond_2_53_are_refused_not_rounded(tmp_path):
    from astromodal.data.readers.tables import read_table

    frame = pd.DataFrame({"source_id": np.array([2.0**53 + 2, 4295806720000000001.0]), "g": [1.0, 2.0]})
    with pytest.raises(BadValueError, match="2\\*\\*53"):
        read_table(frame, features=["g"], id_column="source_id")
    ok = read_table(pd.DataFrame({"source_id": [5.0, 7.0], "g": [1.0, 2.0]}), features=["g"], id_column="source_id")
    assert ok.ids.read().dtype == np.int64 and ok.ids.read().tolist() == [5, 7]
