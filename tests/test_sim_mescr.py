"""What MESCR needs from the simulator: ruwe, pm, pm_error, snr_r, saturated, and cutouts whose star flux
follows its magnitudes, with a Gaussian PSF and the sky noise of the photometric depths."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.simulate import simulate_survey
from astromodal.data.simulate.imaging import (
    FWHM_TO_SIGMA,
    PIXEL_SCALE,
    PSF_FWHM,
    render_cutouts,
    sky_sigma_per_pixel,
)
from astromodal.data.simulate.photometry import BANDS, nanomaggies
from astromodal.data.simulate.quality import psf_snr, saturated_flag, total_proper_motion


@pytest.fixture(scope="module")
def stars():
    return simulate_survey(n=600, seed=4, class_mix=(1, 0, 0), instruments=(), neighbour_fraction=0.0)


def test_snr_r_hand_value_and_the_cutouts_sky_noise():
    # r = 20, 5-sigma depth 22.3: S/N = 5 * 10^(0.4 * 2.3) = 41.59; seeing 1.2 times worse: / 1.2
    assert psf_snr(np.array([20.0]))[0] == pytest.approx(41.5919, rel=1e-4)
    assert psf_snr(np.array([20.0]), seeing=np.array([1.2]))[0] == pytest.approx(41.5919 / 1.2, rel=1e-4)
    # the same from the images' noise model: F / (sigma_pix sqrt(sum P^-2 ...)) with a discrete unit Gaussian PSF
    s = PSF_FWHM["r"] * FWHM_TO_SIGMA / PIXEL_SCALE
    y, x = np.mgrid[:64, :64] - 32.0
    psf = np.exp(-(x**2 + y**2) / (2 * s**2))
    psf /= psf.sum()
    snr_from_pixels = nanomaggies(20.0) / (sky_sigma_per_pixel("r") / np.sqrt((psf**2).sum()))
    assert snr_from_pixels == pytest.approx(41.5919, rel=0.01)
    # the simulated sky: per-pixel sigma of empty cutouts in every band
    empty = render_cutouts(np.random.default_rng(0), np.zeros((40, 5)), np.zeros(40, dtype=bool),
                           {k: np.ones(40) for k in ("sersic_n", "r_e_arcsec", "axis_ratio", "position_angle")},
                           64, 0.0)[0]
    for k, band in enumerate(BANDS):
        assert empty[:, k].std() == pytest.approx(sky_sigma_per_pixel(band), rel=0.02)


def test_star_flux_in_the_cutouts_follows_its_magnitudes(stars):
    mags = np.stack([stars.columns[b].values.read() for b in BANDS], axis=1)
    pix = stars.images["sdss"].pixels.read()
    bright = np.flatnonzero(np.all(mags < 17.0, axis=1) & (stars.columns["n_neighbours"].values.read() == 0))
    assert len(bright) >= 15  # the SDSS-like stars reach r = 21.85: fewer of 600 are brighter than 17 in every band
    summed = pix[bright].sum(axis=(2, 3), dtype=np.float64)  # the whole 64 px cutout: a 25" aperture
    ratio = summed / nanomaggies(mags[bright])
    assert np.median(ratio, axis=0) == pytest.approx(np.ones(5), abs=0.01)
    # each star within 4 sigma of the sky noise summed over the 64 x 64 aperture (3.9 % of a z = 16.2 star's
    # flux in z, under 1 % in g r i) plus the catalogue's 1 % floor
    sky = np.array([sky_sigma_per_pixel(b) for b in BANDS]) * 64.0
    tol = 4.0 * np.hypot(sky[None, :] / nanomaggies(mags[bright]), 0.01)
    assert np.all(np.abs(ratio - 1) < tol)
    # a point source peaks on the centre pixel (placed within half a pixel of the cutout's centre)
    r = pix[bright, BANDS.index("r")]
    peak_y, peak_x = np.unravel_index(r.reshape(len(r), -1).argmax(axis=1), (64, 64))
    assert np.all(np.abs(peak_y - 32) <= 1) and np.all(np.abs(peak_x - 32) <= 1)


def test_snr_r_uses_the_cutouts_seeing_and_saturation_follows_magnitudes(stars):
    r = stars.columns["r"].values.read()
    snr = stars.columns["snr_r"].values.read()
    bright = (r < 18) & (r > 12)
    seeing = psf_snr(r[bright]) / snr[bright]  # 1 / (seeing factor) up to the catalogue noise
    assert seeing.min() > 0.83 and seeing.max() < 1.22 and seeing.std() > 0.05  # factors 0.85-1.2
    flat = simulate_survey(n=600, seed=4, class_mix=(1, 0, 0), instruments=(), with_images=False)
    ratio = psf_snr(r[bright]) / flat.columns["snr_r"].values.read()[bright]  # nominal seeing without images
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)
    sat = stars.columns["saturated"].values.read()
    assert sat.dtype == bool and sat[r < 13.0].all() and not sat[np.all(np.stack(
        [stars.columns[b].values.read() for b in BANDS]) > 15.5, axis=0)].any()
    # hand values: r 14.0 saturates at the nominal seeing (limit 14.1); at seeing 1.2 the limit is
    # 14.1 - 5 log10(1.2) = 13.70 mag
    mags = np.array([[16.0, 15.0, 14.0, 14.5, 15.0], [16.0, 15.0, 14.2, 14.5, 15.0], [11.9, 16, 16, 16, 16]])
    assert saturated_flag(mags).tolist() == [True, False, True]
    assert saturated_flag(mags, seeing=np.array([1.2, 1.0, 1.0])).tolist() == [False, False, True]


def test_ruwe_is_gaia_like_and_pm_is_propagated(stars):
    ruwe = simulate_survey(n=4000, seed=9, instruments=(), with_images=False).columns["ruwe"].values.read()
    assert ruwe.min() > 0.5 and np.median(ruwe) == pytest.approx(1.0, abs=0.03)
    assert 0.04 < (ruwe > 1.4).mean() < 0.09  # the binary tail (Lindegren et al. 2021 cut)
    # pm = |(3, 4)| = 5; error sqrt((3 * 0.1)^2 + (4 * 0.2)^2) / 5 = 0.17088; pm = 0: sqrt((0.1^2 + 0.2^2) / 2)
    pm, err = total_proper_motion(np.array([3.0, 0.0]), np.array([4.0, 0.0]), np.array([0.1, 0.1]),
                                  np.array([0.2, 0.2]))
    assert pm.tolist() == [5.0, 0.0] and err == pytest.approx([0.170880, 0.158114], abs=1e-6)
    cols = stars.columns
    assert cols["pm"].values.read() == pytest.approx(np.hypot(cols["pmra"].values.read(), cols["pmdec"].values.read()))
    assert cols["pm"].unit == "mas/yr" and np.all(cols["pm_error"].values.read() > 0)


def test_existing_arrays_are_unchanged_by_the_quality_columns(monkeypatch):
    """The quality columns come from a random stream of their own: drawing many more numbers from it leaves
    every other array byte for byte the same (only the randomly drawn column, ruwe, moves). (This test held
    recorded sums before; every physics change of issue 14 moved them, which says nothing about streams.)"""
    from astromodal.data.simulate import survey

    opts = {"n": 120, "seed": 5, "instruments": ("sdss",), "image_size": 32, "neighbour_fraction": 0.3}
    ds = simulate_survey(**opts)
    original = survey.quality_columns

    def greedy(rng, *args, **kw):
        rng.random(100_000)  # a stream shared with any other component would shift all of its numbers
        return original(rng, *args, **kw)

    monkeypatch.setattr(survey, "quality_columns", greedy)
    other = simulate_survey(**opts)
    assert {"ruwe", "pm", "pm_error", "snr_r", "saturated"} <= set(ds.columns)
    np.testing.assert_array_equal(ds.spectra["sdss"].flux.read(), other.spectra["sdss"].flux.read())
    np.testing.assert_array_equal(ds.images["sdss"].pixels.read(), other.images["sdss"].pixels.read())
    np.testing.assert_array_equal(ds.ra.read(), other.ra.read())
    for k in set(ds.columns) - {"ruwe"}:
        np.testing.assert_array_equal(ds.columns[k].values.read(), other.columns[k].values.read(), err_msg=k)
    for k in ds.targets:
        np.testing.assert_array_equal(ds.targets[k].values.read(), other.targets[k].values.read(), err_msg=k)
    assert not np.array_equal(ds.columns["ruwe"].values.read(), other.columns["ruwe"].values.read())


def test_quality_columns_survive_save_and_load(tmp_path):
    from astromodal.data.dataset import Dataset

    ds = simulate_survey(n=40, seed=2, instruments=(), with_images=False)
    back = Dataset.load(ds.save(tmp_path / "s.h5"), lazy=False)
    for key in ("ruwe", "pm", "pm_error", "snr_r", "saturated"):
        assert np.array_equal(back.columns[key].values.read(), ds.columns[key].values.read())
    assert back.columns["saturated"].values.read().dtype == bool
