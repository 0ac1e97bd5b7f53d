"""The Gaia XP instrument model (astromodal.data.simulate.gaia_xp) and the realism report's XP comparison sample."""

import importlib.util

import numpy as np
import pytest

from astromodal.errors import BadValueError, ConfigError
from astromodal.evaluation import realism

needs_gaiaxpy = pytest.mark.skipif(importlib.util.find_spec("gaiaxpy") is None, reason="GaiaXPy not installed")


@pytest.fixture(scope="module")
def gx():
    from astromodal.data.simulate import gaia_xp

    return gaia_xp


def test_lsf_fwhm_is_diffraction_and_pixel_in_quadrature(gx):
    # by hand at 500 nm: 1.03 * 500e-9 / 1.45 rad = 73.26 mas = 1.2438 pixels of 58.9 mas; sqrt(1.2438^2 + 1)
    assert gx.xp_lsf_fwhm_pixels(np.array([500.0]))[0] == pytest.approx(1.5960, abs=2e-4)
    # at 1000 nm the diffraction core doubles: sqrt(2.4876^2 + 1) = 2.6811
    assert gx.xp_lsf_fwhm_pixels(np.array([1000.0]))[0] == pytest.approx(2.6811, abs=2e-4)


@needs_gaiaxpy
def test_resolving_power_follows_the_prism_dispersion(gx):
    lam = np.array([336.0, 500.0, 610.0, 650.0, 800.0, 1020.0])
    R = gx.xp_resolving_power(lam)
    # BP: high in the blue, falling steeply; RP: ~50 at its blue end, ~24 at 1020 nm
    assert 65 < R[0] < 95 and R[0] > R[1] > R[2]
    assert 40 < R[3] < 60 and R[3] > R[4] > R[5] > 18
    # R = lambda / (FWHM_pix * dlambda/du), with dlambda/du from GaiaXPy's table
    assert R[1] == pytest.approx(500.0 / (gx.xp_lsf_fwhm_pixels(lam[1:2])[0] * gx.xp_nm_per_pixel(lam[1:2], "bp")[0]))
    with pytest.raises(ConfigError, match="arm"):
        gx.xp_nm_per_pixel(lam, "green")


@needs_gaiaxpy
def test_smoothing_keeps_a_flat_spectrum_and_widens_a_line_to_the_lsf(gx):
    from astromodal.data.simulate.physics import model_grid

    grid = model_grid()
    flat = np.full((1, len(grid)), 3.0)
    out = gx.xp_smooth(flat)
    assert out.shape == (1, 343)
    assert np.allclose(out, 3.0 * 1e-2, rtol=1e-6)  # erg/s/cm2/A -> W/m2/nm, flux conserved
    # a narrow emission line at 500 nm comes out with FWHM ~ lambda / R (plus the 2-nm samples)
    line = 1.0 + 50.0 * np.exp(-0.5 * ((grid - 5000.0) / 2.0) ** 2)
    prof = gx.xp_smooth(line[None, :])[0] / 1e-2 - 1.0
    lam = np.arange(336.0, 1021.0, 2.0)
    half = lam[prof > 0.5 * prof.max()]
    fwhm = half.max() - half.min() + 2.0
    expected = 500.0 / gx.xp_resolving_power(np.array([500.0]))[0]
    assert fwhm == pytest.approx(expected, rel=0.2)
    assert np.sum(prof) * 2.0 * 10.0 == pytest.approx(50.0 * 2.0 * np.sqrt(2 * np.pi), rel=0.02)  # line flux kept
    with pytest.raises(BadValueError, match="pixels"):
        gx.xp_smooth(np.ones((1, 10)))


@needs_gaiaxpy
def test_photon_noise_scales_with_brightness(gx):
    lam = np.arange(336.0, 1021.0, 2.0)
    f = np.full((2, 343), 1e-16)
    f[1] *= 100.0  # 5 magnitudes brighter
    pix = gx.xp_pixel_sigma(f, read_noise=0.0)
    lam_p, fp, sig = pix["bp"]
    rel = sig / fp
    mid = (lam_p > 450) & (lam_p < 600)
    assert np.allclose(rel[0, mid] / rel[1, mid], 10.0, rtol=1e-6)  # pure photon noise: sqrt(100)
    # by hand at one pixel: electrons = f lambda / (h c) * A * response * dlambda/du * t * transits
    j = np.flatnonzero(mid)[0]
    w_r, resp = gx._response()["bp"]
    e = (1e-16 * lam_p[j] * 1e-9 / (6.62607015e-34 * 2.99792458e8) * 0.7278 * np.interp(lam_p[j], w_r, resp)
         * gx.xp_nm_per_pixel(lam_p[j:j + 1], "bp")[0] * 4.42 * gx.XP_TRANSITS)
    assert rel[0, j] == pytest.approx(1.0 / np.sqrt(e), rel=1e-6)
    noisy, sigma = gx.xp_add_noise(np.random.default_rng(0), np.repeat(f[:1], 400, axis=0))
    z = (noisy - 1e-16) / sigma
    assert 0.9 < np.std(z[:, (lam > 400) & (lam < 600)]) < 1.1  # the drawn noise has the stated sigma


@needs_gaiaxpy
def test_observed_model_spectra_lie_in_the_span_of_gaiaxpys_bases(gx):
    from astromodal.data.simulate.stars import star_spectra

    teff = np.array([30000.0, 15000.0, 9500.0, 5800.0, 4200.0])
    model = star_spectra(teff, np.array([7.0, 3.5, 2.2, 1.0, 0.7]), np.full(5, 500.0), np.zeros(5),
                         logg=np.full(5, 4.2), feh=np.zeros(5), ebv=np.full(5, 0.1))
    out = gx.observe_gaia_xp(np.random.default_rng(1), model)
    assert out["coefficients"].shape == (5, 110) and out["flux"].shape == (5, 343)
    _, resid = gx.xp_fit(out["flux_true"])
    assert np.all(resid < 0.02)  # smoothed to XP's resolution, the spectra are (nearly) in the bases' span
    assert np.allclose(out["coefficients"], realism.xp_spectra_to_coefficients(out["flux"]), rtol=1e-6, atol=1e-9)
    bad = out["flux"].copy()
    bad[2, 5] = np.nan
    with pytest.raises(BadValueError, match="row 2"):
        gx.xp_fit(bad)


def test_comparison_rows_follow_study_c_class_balance():
    massive = np.r_[np.ones(300), np.zeros(2000)].astype(int)
    rows = realism.xp_comparison_rows(massive, 10000, seed=0)
    n_hi = int(massive[rows].sum())
    assert n_hi == 300 and len(rows) - n_hi == pytest.approx(300 * 9381 / 9527, abs=2)  # published 9,527 : 9,381
    assert len(np.unique(rows)) == len(rows)
    small = realism.xp_comparison_rows(massive, 100, seed=0)
    assert len(small) == 100 and massive[small].sum() == round(100 * realism.STUDY_C_MASSIVE_SHARE)
    assert np.array_equal(small, realism.xp_comparison_rows(massive, 100, seed=0))  # seeded
    with pytest.raises(ConfigError, match="massive"):
        realism.xp_comparison_rows(np.zeros(50, dtype=int), 100, seed=0)


def test_hot_subdwarfs_follow_their_published_properties():
    from astromodal.data.simulate import hot_subdwarfs as hs

    p = hs.sample_hot_subdwarfs(np.random.default_rng(3), 400)
    # R = sqrt(G M / g): by hand for log g 5.5, M 0.47 Msun: sqrt(6.674e-8 * 0.47 * 1.989e33 / 10^5.5) cm
    j = int(np.argmin(np.abs(p["logg"] - 5.5)))
    hand = np.sqrt(6.674e-8 * 0.47 * 1.989e33 / 10 ** p["logg"][j]) / 6.957e10
    assert p["radius"][j] == pytest.approx(hand, rel=1e-9) and 0.15 < hand < 0.25
    assert np.all((p["teff"] >= 20000) & (p["teff"] <= 55000))
    assert abs(p["binary"].mean() - 615 / 3084) < 0.06  # Solano et al. 2022
    single = p["binary"] == 0
    assert np.all(np.isnan(p["companion_teff"][single])) and np.all(p["companion_teff"][~single] < 6800.0)
    assert np.all((p["g"] > 3.0) & (p["g"] < 17.65 + 0.2))  # inside the XP limits (to the distance-bin width)
    assert np.all(p["ebv"] >= 0) and np.all(p["distance"] > 0)
    with pytest.raises(ConfigError, match="n must"):
        hs.sample_hot_subdwarfs(np.random.default_rng(0), 0)


def test_a_cool_companion_adds_red_flux():
    from astromodal.data.simulate import hot_subdwarfs as hs
    from astromodal.data.simulate.physics import model_grid

    p = {"teff": np.array([28000.0, 28000.0]), "logg": np.array([5.6, 5.6]), "radius": np.array([0.18, 0.18]),
         "binary": np.array([0, 1]), "companion_teff": np.array([np.nan, 5500.0]),
         "companion_radius": np.array([np.nan, 0.95]), "companion_logg": np.array([np.nan, 4.5]),
         "distance": np.array([400.0, 400.0]), "ebv": np.array([0.02, 0.02])}
    f = hs.hot_subdwarf_spectra(p)
    grid = model_grid()
    blue, red = np.argmin(np.abs(grid - 4500.0)), np.argmin(np.abs(grid - 9000.0))
    assert f[1, red] / f[0, red] > 1.5 > f[1, blue] / f[0, blue] > 1.0  # the G dwarf shows in the red
