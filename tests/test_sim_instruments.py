"""Physics of the LAMOST instrument model (lamost_instrument.py) and of the issue-14 stellar-spectrum changes."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.instruments import LAMOST, SDSS
from astromodal.data.simulate import lamost_instrument as li
from astromodal.data.simulate import stars
from astromodal.data.simulate.physics import model_grid
from astromodal.data.simulate.spectroscopy import add_noise, observe

WAVE = LAMOST.wavelength


@pytest.fixture
def quiet(monkeypatch):
    """The instrument with every random systematic switched off: no sky, no calibration residual, no
    telluric residual, full fibre throughput (only the photon + read noise and the coverage masks remain)."""
    for name, value in (("RESPONSE_SIGMAS", (0.0, 0.0, 0.0)), ("BLUE_END_SIGMA", 0.0), ("ARM_RATIO_SIGMA", 0.0),
                        ("SKY_LINE_RESIDUAL", 0.0), ("SKY_CONTINUUM_RESIDUAL", 0.0), ("SKY_SHIFT_SIGMA", 0.0),
                        ("TELLURIC_RESIDUAL", 0.0), ("FIBRE_THROUGHPUT", (1.0, 1.0)),
                        ("SKY_BRIGHTNESS_FACTOR", (1.0, 1.0)), ("SKY_CONTINUUM_MAG", 60.0), ("SKY_LINES", ()),
                        ("BADPROFILE_SIGMA", 0.0)):
        monkeypatch.setattr(li, name, value)
    li._grid_terms.cache_clear()
    yield
    li._grid_terms.cache_clear()


def test_telluric_a_and_b_bands_sit_where_the_atmosphere_puts_them():
    t = li.telluric_transmission(WAVE, np.array([1.0, 1.4]), np.array([5.0, 5.0]))
    region = (WAVE > 7400) & (WAVE < 7800)
    deepest = WAVE[region][np.argmin(t[0, region])]
    assert 7594.0 <= deepest <= 7621.0  # the O2 A band head and R branch
    mid = np.argmin(np.abs(WAVE - 7607.0))
    assert t[0, mid] == pytest.approx(np.exp(-1.10), rel=0.02)  # band optical depth 1.1 at airmass 1
    assert t[1, mid] == pytest.approx(np.exp(-1.10 * 1.4**0.6), rel=0.02)  # O2 grows as X^0.6
    b_band = np.argmin(np.abs(WAVE - 6875.0))
    assert t[0, b_band] == pytest.approx(np.exp(-0.45), rel=0.05)
    for clear in (5000.0, 6700.0, 7500.0, 8000.0):  # between the bands the sky is clear
        assert t[0, np.argmin(np.abs(WAVE - clear))] == pytest.approx(1.0, abs=1e-3)
    wet = li.telluric_transmission(WAVE, np.array([1.0]), np.array([10.0]))
    h2o = np.argmin(np.abs(WAVE - 8250.0))
    assert wet[0, h2o] == pytest.approx(t[0, h2o] ** 2, rel=1e-6)  # H2O depth proportional to PWV


def test_noise_follows_the_photon_and_read_noise_model_on_a_flat_spectrum(quiet):
    flat = np.full((3000, len(WAVE)), 50.0)
    obs = observe(np.random.default_rng(1), flat, 30.0, LAMOST)
    good = ~obs.mask
    # median S/N per good pixel is the requested one
    sn = np.where(good, obs.flux * np.sqrt(obs.ivar), np.nan)
    assert np.nanmedian(sn) == pytest.approx(30.0, rel=0.03)
    # var = f / (k T) + r / (k T)^2 per pixel: k from the pixel of peak throughput, then every pixel follows
    thru = li.system_throughput(WAVE)
    var = 1.0 / np.where(good[0], obs.ivar[0], 1.0)
    r = li.READ_NOISE_E**2 * li.TRACE_PIXELS * li.EXPOSURES
    j = int(np.argmax(np.where(good[0], thru, 0.0)))
    # var_j (k T_j)^2 = 50 k T_j + r  ->  quadratic in x = k T_j
    x = (50.0 + np.sqrt(50.0**2 + 4.0 * var[j] * r)) / (2.0 * var[j])
    kt = x * thru / thru[j]
    expected = 50.0 / kt + r / kt**2
    assert np.allclose(var[good[0]], expected[good[0]], rtol=1e-6)
    assert not np.allclose(var[good[0]], var[j])  # the noise is not white: it follows the throughput
    # the realised noise has that variance: chi^2 per good pixel ~ 1
    chi2 = ((obs.flux - 50.0) ** 2 * obs.ivar)[good]
    assert chi2.mean() == pytest.approx(1.0, abs=0.02)


def test_masked_pixels_have_zero_ivar_and_are_filled_like_the_reader_fills_real_ones():
    rng = np.random.default_rng(3)
    flux = np.full((300, len(WAVE)), 3.0)  # a faint star: sky lines are masked (BRIGHTSKY)
    obs = observe(rng, flux, 20.0, LAMOST)
    assert obs.mask.any(axis=1).all()
    assert np.all(obs.ivar[obs.mask] == 0.0) and np.all(obs.ivar[~obs.mask] > 0.0)
    assert obs.mask[:, WAVE > li.COVERAGE[1] + li.COVERAGE_JITTER].all()  # NODATA beyond the red end
    assert not obs.mask[:, (WAVE > 6000) & (WAVE < 6200)].any()  # no sky line there
    oi = np.argmin(np.abs(WAVE - 5577.3))
    assert obs.mask[:, oi].mean() > 0.9  # [O I] 5577 outshines a faint star
    from astromodal.transforms.spectra import fill_masked

    assert np.allclose(fill_masked(obs.flux.astype(np.float64), obs.mask), obs.flux, atol=1e-4)
    bright = observe(np.random.default_rng(3), np.full((50, len(WAVE)), 2000.0), 20.0, LAMOST)
    assert not bright.mask[:, oi].any()  # ... but not a bright one


def test_calibration_residual_is_smooth_multiplicative_and_about_ten_percent():
    s = li.calibration_residual(np.random.default_rng(0), WAVE, 4000)
    assert np.all(s > 0)
    ln_s = np.log(s)
    rms = np.sqrt(np.mean(ln_s[:, (WAVE > 4000) & (WAVE < 9000)] ** 2))
    assert 0.07 < rms < 0.13  # ~10 %: Xiang et al. 2015, Du et al. 2016
    assert np.max(np.abs(np.diff(ln_s, 2, axis=1))) < 1e-3  # smooth: no pixel-scale structure
    blue = np.std(ln_s[:, np.argmin(np.abs(WAVE - 3710))])
    assert blue > np.std(ln_s[:, np.argmin(np.abs(WAVE - 5000))])  # worse at the blue end


def test_response_is_applied_multiplicatively(quiet, monkeypatch):
    monkeypatch.setattr(li, "RESPONSE_SIGMAS", (0.14, 0.10, 0.06))
    monkeypatch.setattr(li, "TELLURIC_RESIDUAL", 1.0)
    a = np.full((20, len(WAVE)), 100.0)
    b = 100.0 * (WAVE / 5000.0) ** -2.0 * np.ones((20, 1))
    oa = observe(np.random.default_rng(5), a, 1e7, LAMOST)
    ob = observe(np.random.default_rng(5), b, 1e7, LAMOST)
    good = ~(oa.mask | ob.mask)
    assert np.allclose((ob.flux / oa.flux)[good], (b / a)[good], rtol=1e-4)
    assert np.abs(oa.flux[good] / 100.0 - 1.0).max() > 0.05  # the residual response is there


def test_observation_is_deterministic_and_other_instruments_keep_white_noise():
    flux = np.full((10, len(WAVE)), 40.0)
    one, two = (observe(np.random.default_rng(9), flux, 25.0, LAMOST) for _ in range(2))
    for x, y in zip(one, two, strict=True):
        assert np.array_equal(x, y)
    f = np.full((4, SDSS.n_pixels), 10.0)
    obs = observe(np.random.default_rng(2), f, 25.0, SDSS)
    noisy, ivar = add_noise(np.random.default_rng(2), f, 25.0)
    assert np.array_equal(obs.flux, noisy) and np.allclose(obs.ivar, ivar[:, None]) and not obs.mask.any()


def test_sky_lines_are_in_rayleigh_at_the_fibre():
    cont, lines = li.sky_spectrum(WAVE)
    near = np.abs(WAVE - 5577.3) < 10.0
    energy = np.trapezoid(lines[near], WAVE[near])
    sr = (np.pi / 180 / 3600) ** 2 * li.FIBRE_AREA_ARCSEC2
    photons = 250.0 * 1e6 / (4 * np.pi) * sr  # 250 R of [O I] 5577
    assert energy == pytest.approx(photons * 6.62607015e-27 * 2.99792458e18 / 5577.3, rel=0.02)
    # continuum: AB 21 mag per arcsec^2 times the fibre area
    j = np.argmin(np.abs(WAVE - 5500.0))
    f_nu = cont[j] * WAVE[j] ** 2 / 2.99792458e18
    assert -2.5 * np.log10(f_nu / li.FIBRE_AREA_ARCSEC2) - 48.6 == pytest.approx(21.0, abs=1e-6)


# ---------------------------------------------------------------- stars
def test_interstellar_na_d_follows_poznanski_2012():
    grid = model_grid()
    teff, ones = np.full(3, 9000.0), np.ones(3)
    ebv = np.array([0.02, 0.1, 0.3])
    reddened = stars.star_spectra(teff, ones, 10 * ones, 0 * ones, ebv=ebv)
    plain = stars.star_spectra(teff, ones, 10 * ones, 0 * ones, ebv=ebv, with_lines=False) * np.exp(
        -stars.absorption_tau(teff, 0 * ones))
    win = (grid > 5878) & (grid < 5908)
    ew = np.trapezoid(1.0 - reddened[:, win] / plain[:, win], grid[win], axis=1)
    expected = (np.log10(ebv) + 1.85) / 1.17  # log10 E(B-V) = 1.17 EW(D1 + D2) - 1.85
    assert np.allclose(ew, expected, rtol=0.03)


def test_continuum_gives_the_published_colours_of_the_sun_and_vega():
    from astromodal.data.simulate.photometry import ab_magnitudes

    teff = np.array([5772.0, 9600.0])
    ones = np.ones(2)
    f = stars.star_spectra(teff, stars.dwarf_radius(teff), 10 * ones, 0 * ones, logg=np.array([4.44, 4.0]),
                           feh=0 * ones)
    m = ab_magnitudes(f, ("g", "r", "i"))
    g_r = m[:, 0] - m[:, 1]
    assert g_r[0] == pytest.approx(0.44, abs=0.05)  # Holmberg et al. (2006)
    assert g_r[1] == pytest.approx(-0.24, abs=0.06)  # Vega, AB
    cont = stars.star_spectra(teff, ones, 10 * ones, 0 * ones, with_lines=False)  # still a black body
    assert np.allclose(model_grid()[np.argmax(cont, axis=1)], 2.897771955e7 / teff, rtol=2e-4)


def test_g_band_tio_and_balmer_strengths_follow_spectral_classification():
    g = stars.g_band_depth(np.array([9750.0, 6500.0, 5772.0, 5000.0]))
    ew = g * (stars.G_BAND[1] - stars.G_BAND[0])
    assert ew[0] < 0.1 and 2.0 < ew[1] < 4.5 and 4.5 < ew[2] < 7.0 and ew[3] > ew[2]
    tio = stars.tio_depth(np.array([3850.0, 3660.0, 3560.0, 3210.0]))  # M0, M1, M2, M4 (Reid et al. 1995)
    assert np.allclose(tio, [0.15, 0.37, 0.50, 0.71], atol=0.06)
    d = stars.line_depths(np.array([9750.0, 6500.0]))["H_beta"]
    assert d[0] == pytest.approx(0.50, abs=0.01) and d[1] < 0.5 * d[0]


def test_magnitude_limited_teff_weighting():
    rng = np.random.default_rng(0)
    m_type = np.full(20000, stars.SPECTRAL_TYPES.index("M"))
    uniform = stars.sample_teff(rng, m_type, 0.0)
    weighted = stars.sample_teff(rng, m_type)
    lo, hi = stars.TEFF_RANGES["M"]
    assert uniform.min() >= lo and weighted.max() <= hi
    assert np.median(np.log(uniform)) == pytest.approx(0.5 * (np.log(lo) + np.log(hi)), abs=0.01)
    assert np.median(weighted) > np.median(uniform) + 300.0  # early M dominate a magnitude-limited sample
    # A stars live shorter than the disc: the L weighting is cancelled by the lifetimes (beta_eff ~ 0.04)
    a_type = np.full(20000, stars.SPECTRAL_TYPES.index("A"))
    a_w, a_u = stars.sample_teff(rng, a_type), stars.sample_teff(rng, a_type, 0.0)
    assert abs(np.median(a_w) - np.median(a_u)) < 250.0


def test_mgh_band_is_a_dwarf_feature():
    dwarf, giant = stars.mgh_depth(np.array([4300.0, 4300.0]), np.array([4.6, 2.5]))
    assert dwarf > 0.1 and giant < 0.01 * dwarf  # the luminosity criterion of K stars
    assert stars.mgh_depth(np.array([6000.0]), np.array([4.5]))[0] < 0.02
