"""Generic tables: aliases, labels, NaN handling, colours; ALS II fixed-width reader."""

from __future__ import annotations

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
