"""Building a HiSS-Cube ML cube from survey files: flux-conserving rebinning (against hand values and spectres),
inverse-variance epoch combination, epoch grouping by position, the SDSS frame noise map, bad input one line
each, and the real field + three epochs of one star -> a one-object cube (also through the CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from astromodal.cli import app
from astromodal.data import cube as cb
from astromodal.data.readers import hisscube as hc
from astromodal.errors import ConfigError, DataFormatError

runner = CliRunner()


def _edges(centres):
    """The bins spectres uses: edges at the midpoints between samples, the ends half a step out."""
    c = np.asarray(centres, dtype=np.float64)
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (c[1] - c[0]) / 2], mid, [c[-1] + (c[-1] - c[-2]) / 2]])


def test_rebinning_conserves_flux():
    rng = np.random.default_rng(0)
    wave = 10 ** np.arange(np.log10(3700.0), np.log10(9300.0), 1e-4)  # the SDSS log-linear grid
    flux = 5 + np.sin(wave / 37.0) + rng.normal(0, 0.3, len(wave))
    new, _ = cb.rebin_spectrum(wave, flux, np.ones_like(flux))
    grid = hc.cube_grid()
    ok = np.isfinite(new)
    assert ok.all()  # 3700-9300 A covers every new bin
    e_new = _edges(grid)
    lo, hi = e_new[0], e_new[-1]
    e_old = _edges(wave)
    overlap = np.clip(np.minimum(e_old[1:], hi) - np.maximum(e_old[:-1], lo), 0, None)
    integral_in = float((flux * overlap).sum())
    integral_out = float((new * np.diff(e_new)).sum())
    assert abs(integral_out - integral_in) / integral_in < 1e-6


def test_rebinning_by_hand_and_against_spectres():
    import spectres

    wave = np.array([1.0, 2.0, 3.0, 4.0])  # bins 0.5-1.5, 1.5-2.5, 2.5-3.5, 3.5-4.5
    flux = np.array([1.0, 2.0, 5.0, 4.0])
    sig = np.array([1.0, 2.0, 2.0, 1.0])
    grid = np.array([2.0, 3.5])  # bins 1.25-2.75, 2.75-4.25
    f, s = cb.rebin_spectrum(wave, flux, sig, grid)
    # bin 1: 0.25 of bin 1, all of bin 2, 0.25 of bin 3 over a width 1.5; bin 2: 0.75 of bins 3 and 4
    np.testing.assert_allclose(f, [(0.25 * 1 + 1.0 * 2 + 0.25 * 5) / 1.5, (0.75 * 5 + 0.75 * 4) / 1.5])
    np.testing.assert_allclose(s, [np.sqrt(0.25 ** 2 * 1 + 1.0 * 4 + 0.25 ** 2 * 4) / 1.5,
                                   np.sqrt(0.75 ** 2 * 4 + 0.75 ** 2 * 1) / 1.5])
    ref_f, ref_s = spectres.spectres(grid, wave, flux, spec_errs=sig, verbose=False)
    np.testing.assert_allclose(f, ref_f)
    np.testing.assert_allclose(s, ref_s)
    # a bad input pixel makes the new bins it touches bad; a new bin not wholly covered is NaN
    f2, _ = cb.rebin_spectrum(wave, np.array([np.nan, 2.0, 5.0, 4.0]), sig, grid)
    assert np.isnan(f2[0]) and f2[1] == pytest.approx(4.5)
    with pytest.raises(DataFormatError, match="x.fits: no usable sample on the cube grid"):
        cb.rebin_spectrum(wave, np.array([1.0, 2.0, np.nan, 4.0]), sig, grid, where="x.fits")
    f3, _ = cb.rebin_spectrum(wave, flux, sig, np.array([2.0, 3.5, 5.0]))
    assert np.isfinite(f3[:2]).all() and np.isnan(f3[2])


def test_spectrum_without_overlap_is_one_line():
    wave = np.linspace(9000.0, 10000.0, 50)
    with pytest.raises(DataFormatError, match=r"spec-0001-50000-0001\.fits: the spectrum covers 9000\.0-10000\.0 "
                                              r"Angstrom: no overlap with the cube grid 3839\.7-8914\.6") as exc:
        cb.rebin_spectrum(wave, np.ones(50), np.ones(50), where="spec-0001-50000-0001.fits")
    assert "\n" not in str(exc.value)


def test_inverse_variance_combination_by_hand():
    fluxes = np.array([[1.0, np.nan, 3.0, 2.0],
                       [2.0, np.nan, np.nan, 4.0],
                       [4.0, np.nan, 5.0, 6.0]])
    sigmas = np.array([[1.0, 1.0, 1.0, 1.0],
                       [2.0, 1.0, 1.0, 1.0],
                       [np.nan, 1.0, 0.5, 0.0]])  # epoch 3 sample 0 and 3: no usable sigma -> excluded
    f, s = cb.combine_epochs(fluxes, sigmas)
    # sample 0: w = 1, 1/4 -> (1 + 2/4) / 1.25 = 1.2, sigma = 1/sqrt(1.25)
    assert f[0] == pytest.approx(1.2) and s[0] == pytest.approx(1 / np.sqrt(1.25))
    assert np.isnan(f[1]) and np.isnan(s[1])  # masked in every epoch
    # sample 2: epochs 1 and 3, w = 1, 4 -> (3 + 20) / 5 = 4.6, sigma = 1/sqrt(5)
    assert f[2] == pytest.approx(4.6) and s[2] == pytest.approx(1 / np.sqrt(5))
    assert f[3] == pytest.approx(3.0) and s[3] == pytest.approx(1 / np.sqrt(2))


def test_epochs_grouped_by_position():
    d = 1.0 / 3600  # one arcsec
    ra = np.array([10.0, 10.0 + 2.5 * d, 10.1, 10.0 + 5.0 * d])  # a chain 0 - 1 - 3 within 3"; 2 apart
    labels = cb.group_positions(ra, np.zeros(4), 3.0)
    assert labels.tolist() == [0, 0, 1, 0]
    assert cb.group_positions(ra, np.zeros(4), 2.0).tolist() == [0, 1, 2, 3]  # 2.5" apart: no chain


def test_frame_noise_map_by_hand(tmp_path):
    assert cb.sdss_gain("r", 3, 2820) == 4.72 and cb.sdss_dark_variance("r", 3, 2820) == 1.3225
    assert cb.sdss_gain("u", 2, 1000) == 1.595 and cb.sdss_gain("u", 2, 2000) == 1.825
    assert cb.sdss_dark_variance("z", 4, 1000) == 9.61 and cb.sdss_dark_variance("z", 4, 2000) == 12.6025
    h, w = 6, 8
    img = np.full((h, w), 1.0, dtype=np.float32)  # 1 nanomaggy = 200 counts at 0.005 nanomaggies/count
    cols = fits.ColDefs([fits.Column("ALLSKY", format=f"{4 * 3}E", dim="(4, 3)", array=np.full((1, 3, 4), 100.0)),
                         fits.Column("XINTERP", format=f"{w}E", array=np.linspace(0, 3, w)[None]),
                         fits.Column("YINTERP", format=f"{h}E", array=np.linspace(0, 2, h)[None])])
    path = tmp_path / "frame-r-002820-3-0122.fits"
    fits.HDUList([fits.PrimaryHDU(img), fits.ImageHDU(np.full(w, 0.005, dtype=np.float32)),
                  fits.BinTableHDU.from_columns(cols)]).writeto(path)
    sigma = cb.frame_sigma(path, "r", 3, 2820)
    # dn = 1 / 0.005 + 100 = 300 counts; sigma = 0.005 sqrt(300 / 4.72 + 1.3225)
    np.testing.assert_allclose(sigma, 0.005 * np.sqrt(300 / 4.72 + 1.3225), rtol=1e-6)
    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(img).writeto(bare)
    with pytest.raises(DataFormatError, match=r"bare\.fits: no SDSS frame calibration"):
        cb.frame_sigma(bare, "r", 3, 2820)


# ------------------------------------------------------------------------------------------ the real field
@pytest.mark.realdata
def test_real_one_object_cube(shared_data, tmp_path):
    folder = shared_data / "sdss-frame-5band"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    out = tmp_path / "star.h5"
    specs = [str(folder / f"spec-{k}.fits") for k in ("3126-54804-0211", "3127-54835-0622", "7330-56684-0434")]
    args = ["build", "cube", *sum((["--spectra", s] for s in specs), []), "--frames", str(folder), "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "3 spectra (0 copies skipped) -> 1 objects; kept 1" in res.output
    again = runner.invoke(app, args)  # refused before any work
    assert isinstance(again.exception, ConfigError) and "pass --overwrite" in str(again.exception)
    from astromodal.data.readers import read

    ds = read(out)
    assert len(ds) == 1 and ds.ids.read().tolist() == ["3126-54804-0211"]
    assert ds.columns["n_epochs"].values.read().tolist() == [3]
    assert ds.columns["plate"].values.read().tolist() == [3126] and ds.targets["class"].labels().tolist() == ["STAR"]
    assert ds.meta["cube"]["epochs"]["3126-54804-0211"] == ["3126-54804-0211", "3127-54835-0622", "7330-56684-0434"]
    assert ds.ra.read()[0] == pytest.approx(38.3018, abs=1e-3) and ds.dec.read()[0] == pytest.approx(-0.1339, abs=1e-3)
    im0, im1 = ds.images["image_z0"], ds.images["image_z1"]
    assert im0.pixels.shape == (1, 5, 64, 64) and im1.pixels.shape == (1, 5, 32, 32)
    pix, err = im0.pixels.read().astype(np.float64), im0.errors.read().astype(np.float64)
    assert (err > 0).all() and np.isfinite(err).all()
    assert pix[0, 2, 30:34, 30:34].max() > 20 * np.median(err[0, 2])  # the star stands out of the noise in r
    np.testing.assert_allclose(im1.errors.read()[0, :, 5, 7],
                               np.sqrt((err[0, :, 10:12, 14:16] ** 2).sum(axis=(1, 2))) / 4, rtol=1e-5)
    s0 = ds.spectra["spectrum_z0"]
    assert s0.n_pixels == 4620 and s0.mask.read().mean() < 0.1
    # the combined spectrum is at least as precise as the best epoch, sample by sample
    one = cb.rebin_spectrum(*_epoch(folder / "spec-3126-54804-0211.fits"))
    both = np.isfinite(one[1]) & ~s0.mask.read()[0]
    assert (1 / np.sqrt(s0.ivar.read()[0][both]) <= one[1][both] * (1 + 1e-4)).all()
    # a copy of one epoch's file is the same PLATE-MJD-FIBER: skipped, never a fourth epoch (sigma / sqrt 2)
    import shutil

    copy = tmp_path / "copy" / "spec-3126-54804-0211.fits"
    copy.parent.mkdir()
    shutil.copyfile(specs[0], copy)
    again_out = tmp_path / "star2.h5"
    res = runner.invoke(app, [*args[:-1], str(again_out), "--spectra", str(copy)])
    assert res.exit_code == 0, res.output
    assert "4 spectra (1 copies skipped) -> 1 objects" in res.output
    ds2 = read(again_out)
    assert ds2.columns["n_epochs"].values.read().tolist() == [3]
    np.testing.assert_array_equal(ds2.spectra["spectrum_z0"].ivar.read(), s0.ivar.read())


def _epoch(path):
    from astromodal.data.readers.sdss import read_spectrum_file

    r = read_spectrum_file(path, "and")
    flux = np.where(r["mask"], np.nan, r["flux"])
    sigma = np.where(r["mask"], np.nan, 1 / np.sqrt(np.where(r["mask"], 1.0, r["ivar"])))
    return r["wave"], flux, sigma
