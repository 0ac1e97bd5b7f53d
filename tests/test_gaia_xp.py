"""Gaia XP: archive XP_SAMPLED round trips in four formats, parsing errors, sampling vs GaiaXPy, real npz."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.data.readers import gaia_xp as gx
from astromodal.errors import BadValueError


def _dataset(n: int = 4, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    flux = rng.uniform(50.0, 500.0, (n, 343))  # 1e-17 erg/s/cm2/A
    ivar = 1.0 / rng.uniform(1.0, 5.0, (n, 343)) ** 2
    ids = np.array([4295806720, 5764607523034234880, 38655544960, 1][:n], dtype=np.int64)
    return Dataset(ids, rng.uniform(0, 360, n), rng.uniform(-90, 90, n),
                   spectra={"gaia_xp": Spectra(flux, gx.XP_WAVELENGTH_A, ivar)},
                   targets={"massive": Target(np.array([0, 1, 1, 0][:n]), "class", ("low_mass", "massive"))})


def test_grid_is_the_archive_grid():
    assert len(gx.XP_WAVELENGTH_A) == 343
    assert gx.XP_WAVELENGTH_A[0] == 3360.0 and gx.XP_WAVELENGTH_A[-1] == 10200.0
    assert np.all(np.diff(gx.XP_WAVELENGTH_A) == 20.0)


@pytest.mark.parametrize("suffix", ["csv", "ecsv", "xml", "parquet"])
def test_sampled_round_trip(tmp_path, suffix):
    ds = _dataset()
    path = gx.write_xp_sampled(ds, tmp_path / f"xp.{suffix}", target="massive")
    back = gx.read_xp_sampled(path, target="massive", class_names=("low_mass", "massive"))
    assert back.ids.read().tolist() == ds.ids.read().tolist()  # 19-digit ids exact
    np.testing.assert_allclose(back.spectra["gaia_xp"].flux.read(), ds.spectra["gaia_xp"].flux.read(), rtol=1e-12)
    np.testing.assert_allclose(back.spectra["gaia_xp"].ivar.read(), ds.spectra["gaia_xp"].ivar.read(), rtol=1e-10)
    np.testing.assert_allclose(back.ra.read(), ds.ra.read(), rtol=1e-14)
    assert back.targets["massive"].values.read().tolist() == [0, 1, 1, 0]
    np.testing.assert_array_equal(back.spectra["gaia_xp"].wavelength, gx.XP_WAVELENGTH_A)


def test_csv_is_archive_layout_and_units(tmp_path):
    ds = _dataset(2)
    path = gx.write_xp_sampled(ds, tmp_path / "xp.csv")
    header, first = path.read_text().splitlines()[:2]
    assert header.split(",")[:3] == ["source_id", "ra", "dec"]
    flux_cell = first.split('"')[1]
    assert flux_cell.startswith("[") and flux_cell.endswith("]")
    # stored in W m^-2 nm^-1: 1e-17 erg/s/cm2/A units are 1e-19 of it
    first_value = float(flux_cell[1:].split(",")[0])
    assert first_value == pytest.approx(ds.spectra["gaia_xp"].flux.read()[0, 0] * 1e-19, rel=1e-15)


def test_unparseable_value_names_row_and_source_id(tmp_path):
    ds = _dataset(3)
    path = gx.write_xp_sampled(ds, tmp_path / "xp.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("[", "[abc, ", 1)  # row 1: one extra bad token at the start of flux
    # keep 343 values: drop the first real value
    head, rest = lines[2].split("[abc, ", 1)
    lines[2] = head + "[abc, " + rest.split(", ", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadValueError, match=r"value 1 'abc' is not a number at row 1 \(source_id 5764607523034234880\)"):
        gx.read_xp_sampled(path)


def test_wrong_length_names_row(tmp_path):
    ds = _dataset(3)
    path = gx.write_xp_sampled(ds, tmp_path / "xp.csv")
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("[", "[1.0, ", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadValueError, match=r"344 values at row 2 \(source_id 38655544960\)"):
        gx.read_xp_sampled(path)


def test_parse_array_strings_values_and_nan():
    arr = gx.parse_array_strings(["[1.5, 2, -3e-17]", "[nan, 0.25, 4]"], "flux")
    assert arr.shape == (2, 3)
    assert arr[0].tolist() == [1.5, 2.0, -3e-17]
    assert np.isnan(arr[1, 0]) and arr[1, 2] == 4.0


def test_missing_flux_samples_are_masked(tmp_path):
    ds = _dataset(2)
    flux_w = ds.spectra["gaia_xp"].flux.read() / gx.W_M2_NM_TO_FLUX_UNIT
    flux_w[1, :10] = np.nan
    spec = gx._spectra_from_flux(flux_w, np.full_like(flux_w, 1e-18), gx.XP_WAVELENGTH_A)
    assert spec.mask.read()[1, :10].all() and not spec.mask.read()[0].any()
    assert (spec.flux.read()[1, :10] == 0).all() and (spec.ivar.read()[1, :10] == 0).all()
    # 1e-18 W/m2/nm = 10 in 1e-17 erg/s/cm2/A -> ivar 1/100
    assert spec.ivar.read()[0, 0] == pytest.approx(0.01, rel=1e-12)


def _coefficients(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    scale = 300.0 * 0.6 ** np.arange(55)
    bp = rng.normal(0, 1, (n, 55)) * scale
    rp = rng.normal(0, 1, (n, 55)) * scale
    bp[:, 0] = abs(bp[:, 0]) + 500
    rp[:, 0] = abs(rp[:, 0]) + 500
    err = np.abs(bp) * 0.02 + 0.5
    corr = rng.uniform(-0.2, 0.2, (n, 55 * 54 // 2))
    return bp, rp, err, corr


def test_sampling_matches_gaiaxpy_with_errors_and_correlations(monkeypatch):
    bp, rp, err, corr = _coefficients(6)

    def no_network(*args, **kwargs):
        raise AssertionError("GaiaXPy tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    flux, sigma = gx.xp_continuous_to_sampled(bp, rp, err, err * 1.5, corr, corr[::-1])
    ref_flux, ref_sigma = gx.calibrate_with_gaiaxpy(bp, rp, None, err, err * 1.5, corr, corr[::-1])
    assert flux.shape == (6, 343)
    np.testing.assert_allclose(flux, ref_flux, rtol=1e-9, atol=1e-12 * np.abs(ref_flux).max())
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-9)


def test_sampling_is_linear_and_uncorrelated_errors():
    bp, rp, err, _ = _coefficients(3)
    f1, _ = gx.xp_continuous_to_sampled(bp, rp)
    f2, _ = gx.xp_continuous_to_sampled(2 * bp, 2 * rp)
    np.testing.assert_allclose(f2, 2 * f1, rtol=1e-12)
    # one coefficient with unit error, nothing else: sigma = |D_0k| * merge weight
    m = gx.xp_design_matrices()
    e = np.zeros((1, 55))
    e[0, 0] = 1.0
    _, sig = gx.xp_continuous_to_sampled(bp[:1], rp[:1], e, np.zeros((1, 55)))
    np.testing.assert_allclose(sig[0], np.abs(m["bp"][0]) * m["merge_bp"], rtol=1e-12, atol=1e-30)
    # merge weights: BP only at the blue end, RP only at the red end, sum 1 everywhere
    np.testing.assert_allclose(m["merge_bp"] + m["merge_rp"], 1.0)
    assert m["merge_bp"][0] == 1.0 and m["merge_rp"][-1] == 1.0


def test_continuous_table_reader(tmp_path):
    import pandas as pd

    bp, rp, err, corr = _coefficients(3)
    fmt = lambda a: ["[" + ", ".join(f"{v:.17g}" for v in row) + "]" for row in a]  # noqa: E731
    frame = pd.DataFrame({"source_id": [11, 22, 33], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 1.0, 2.0],
                          "bp_coefficients": fmt(bp), "rp_coefficients": fmt(rp),
                          "bp_coefficient_errors": fmt(err), "rp_coefficient_errors": fmt(err),
                          "bp_coefficient_correlations": fmt(corr), "rp_coefficient_correlations": fmt(corr)})
    frame.to_csv(tmp_path / "cont.csv", index=False)
    ds = gx.read_xp_continuous(tmp_path / "cont.csv")
    flux, sigma = gx.xp_continuous_to_sampled(bp, rp, err, err, corr, corr)
    np.testing.assert_allclose(ds.spectra["gaia_xp"].flux.read(), flux * 1e19, rtol=1e-12)
    np.testing.assert_allclose(ds.spectra["gaia_xp"].ivar.read(), 1.0 / (sigma * 1e19) ** 2, rtol=1e-10)
    assert ds.ids.read().tolist() == [11, 22, 33]


def test_registry_picks_xp_reader_by_content(tmp_path):
    from astromodal.data.readers import read

    ds = _dataset(2)
    gx.write_xp_sampled(ds, tmp_path / "xp.parquet")
    back = read(tmp_path / "xp.parquet")
    assert back.meta["reader"] == "gaia_xp_sampled" and len(back) == 2


@pytest.mark.realdata
def test_real_npz(shared_data):
    path = shared_data / "gaia-dr3-xp-binary" / "gaia_dr3_xp_c110_binary.npz"
    start = time.perf_counter()
    ds = gx.read_xp_continuous_npz(path)
    elapsed = time.perf_counter() - start
    assert len(ds) == 2815 and ds.spectra["gaia_xp"].n_pixels == 343
    assert elapsed < 30.0, f"converting 2,815 sources took {elapsed:.1f} s"
    counts = np.bincount(ds.class_codes("massive"))
    assert counts.tolist() == [2257, 558]
    assert ds.targets["massive"].class_names == ("low_mass", "massive")
    raw = np.load(path)
    np.testing.assert_array_equal(ds.columns["xp_rp_00"].values.read(), raw["X"][:, 55].astype(np.float64))
    flux = ds.spectra["gaia_xp"].flux.read()
    assert np.isfinite(flux).all()
    # a few sources against GaiaXPy itself
    ref, _ = gx.calibrate_with_gaiaxpy(raw["X"][:3, :55], raw["X"][:3, 55:])
    np.testing.assert_allclose(flux[:3], ref * 1e19, rtol=1e-9, atol=1e-9 * np.abs(ref * 1e19).max())
    # stars: positive median flux in 1e-17 erg/s/cm2/A
    assert (np.median(flux, axis=1) > 0).mean() > 0.99


def test_gaiaxpy_import_leaves_matplotlib_usetex_alone():
    """GaiaXPy sets text.usetex globally on import; our reader must not let that leak into later plots."""
    import matplotlib

    from astromodal.data.readers.gaia_xp import xp_design_matrices

    before = matplotlib.rcParams["text.usetex"]
    xp_design_matrices()
    assert matplotlib.rcParams["text.usetex"] == before
