"""Simulator photometry realism (issue 14): the real SDSS response curves (speclite), the dust_extinction F99
law through them, the Milky Way foreground of extragalactic objects, and the SDSS-like populations."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.simulate.photometry import (
    ab_magnitudes,
    bandpass,
    coarse_ab_magnitudes,
    coarse_band_grid,
    extinction_coefficient,
    filter_curve,
)
from astromodal.data.simulate.physics import AB_ZERO_FNU, C_ANGSTROM, fitzpatrick99, model_grid, planck_lambda
from astromodal.errors import ConfigError

BANDS6 = ("u", "g", "r", "i", "z", "G")


def _flat_fnu(mag: float, lam: np.ndarray) -> np.ndarray:
    """f_lambda of a source with constant f_nu of AB magnitude ``mag``."""
    return (AB_ZERO_FNU * 10 ** (-0.4 * mag) * C_ANGSTROM / lam**2)[None, :]


def test_the_bands_are_speclite_sdss_curves():
    lam, resp = filter_curve("r")
    # sdss2010-r (Doi et al. 2010): tabulated 5380-7040 A, peak near 0.5 photons per photon
    assert 5300 < lam[0] < 5400 and 7000 < lam[-1] < 7100 and 0.4 < resp.max() < 0.6
    assert bandpass("r", np.array([5000.0, 6200.0, 8000.0])).tolist()[0::2] == [0.0, 0.0]
    with pytest.raises(ConfigError, match="unknown photometric band"):
        bandpass("y", lam)


def test_flat_fnu_source_has_zero_ab_colours_and_its_magnitude():
    grid = model_grid()
    mags = ab_magnitudes(_flat_fnu(20.0, grid), BANDS6)[0]
    assert np.allclose(mags, 20.0, atol=1e-3)
    assert np.all(np.abs(np.diff(mags)) < 1e-3)
    lam, _ = coarse_band_grid(("u", "g", "r", "i", "z"))
    coarse = coarse_ab_magnitudes(_flat_fnu(20.0, lam), ("u", "g", "r", "i", "z"))[0]
    assert np.allclose(coarse, 20.0, atol=1e-3)


def test_flat_f_lambda_magnitude_by_hand_from_the_filter_table():
    # f_lambda = F constant: <f_nu> = (F / c) int lambda R d lambda / int R / lambda d lambda (photon counting,
    # Fukugita et al. 1996), computed on speclite's own table with the trapezoid rule
    grid = model_grid()
    F = 1e-16
    mags = ab_magnitudes(np.full((1, len(grid)), F), ("g", "r", "i"))[0]
    for k, band in enumerate(("g", "r", "i")):
        lam, resp = filter_curve(band)
        mean_fnu = F / C_ANGSTROM * np.trapezoid(lam * resp, lam) / np.trapezoid(resp / lam, lam)
        assert mags[k] == pytest.approx(-2.5 * np.log10(mean_fnu) - 48.60, abs=2e-3)


def test_speclite_itself_agrees_on_a_black_body():
    from astropy import units as u
    from speclite.filters import load_filters

    grid = model_grid()
    f_lam = np.pi * planck_lambda(grid, 6000.0) * 1e-20
    ours = ab_magnitudes(f_lam[None, :])[0]
    wide = np.geomspace(2900.0, 11200.0, 20000)  # speclite wants the whole tabulated curve covered
    f_wide = np.pi * planck_lambda(wide, 6000.0) * 1e-20
    theirs = load_filters("sdss2010-*").get_ab_magnitudes(f_wide * u.erg / (u.s * u.cm**2 * u.AA), wide * u.AA)
    assert np.allclose(ours, [theirs[f"sdss2010-{b}"][0] for b in "ugriz"], atol=5e-3)


def test_f99_is_dust_extinction_and_reddens_g_r_by_the_law():
    # A(B) - A(V) = E(B - V) by definition (B ~ 4400 A, V ~ 5500 A)
    assert fitzpatrick99(np.array([4400.0]))[0] - fitzpatrick99(np.array([5500.0]))[0] == pytest.approx(1.0, abs=0.05)
    grid = model_grid()
    source = np.pi * planck_lambda(grid, 7000.0)[None, :]  # Schlafly & Finkbeiner (2011) used a 7000 K source
    ebv = 0.1
    d = ab_magnitudes(source * 10 ** (-0.4 * ebv * fitzpatrick99(grid)))[0] - ab_magnitudes(source)[0]
    # Schlafly & Finkbeiner 2011 Table 6 (F99, R_V = 3.1, a 7000 K source): A_g = 3.303, A_r = 2.285 per SFD
    # E(B - V), and E(B - V)_true = 0.86 E(B - V)_SFD (their recalibration): E(g - r) / E(B - V) = 1.018 / 0.86
    # = 1.184. Through the speclite curves: 1.147 (a 7000 K black body); the scale-free ratios A_b / A_r match
    # the table to 1.1 % (z) and 0.4 % (u g i), the absolute coefficients lie 2-3 % below it (tolerance 4 %)
    table = np.array([4.239, 3.303, 2.285, 1.698, 1.263])
    assert (d[1] - d[2]) / ebv == pytest.approx(1.018 / 0.86, rel=0.04)
    assert np.allclose(d / d[2], table / table[2], rtol=0.015)
    assert np.allclose(d / ebv, table / 0.86, rtol=0.04)
    coeff = np.array([extinction_coefficient(b) for b in "ugriz"])  # band means, flat f_nu limit
    assert np.allclose(coeff, d / ebv, rtol=0.02)


# ---------------------------------------------------------------- populations (issue 14, SDSS photometry)
def test_foreground_extinction_of_extragalactic_objects_follows_the_law():
    from astromodal.data.simulate import astrometry as ast
    from astromodal.data.simulate.survey import _foreground_extinction

    n = 4000
    lon, b = ast.extragalactic_positions(np.random.default_rng(1), n)
    mags = np.zeros((n, 6))
    _foreground_extinction(np.random.default_rng(2), mags, {"l": lon, "b": b}, np.arange(n))
    coeff = np.array([extinction_coefficient(band) for band in BANDS6])
    ebv = mags[:, 2] / coeff[2]
    assert np.allclose(mags, ebv[:, None] * coeff[None, :])  # A_band = R_band E(B - V), every band
    # E(B - V) = 0.02 / |sin b| (Schlegel et al. 1998 poles) times a 0.2 dex log-normal patchiness
    resid = np.log10(ebv * np.abs(np.sin(np.radians(b))) / 0.02)
    assert abs(np.median(resid)) < 0.02 and np.std(resid) == pytest.approx(0.2, rel=0.1)


def test_survey_galaxies_include_eboss_to_z_one():
    from astromodal.data.simulate.galaxies import TARGET_SAMPLES, sample_galaxies, selected

    p = sample_galaxies(np.random.default_rng(3), 1200)
    names = list(TARGET_SAMPLES)
    assert names[:3] == ["main", "lowz", "cmass"]  # the earlier target_sample codes are kept
    lrg, elg = (p["target_sample"] == names.index(k) for k in ("eboss_lrg", "eboss_elg"))
    assert lrg.sum() > 50 and elg.sum() > 50
    assert np.all(selected("eboss_lrg", p["model_mags"][lrg])) and np.all(selected("eboss_elg", p["model_mags"][elg]))
    # the eBOSS cuts reach beyond CMASS: LRGs at z ~ 0.6-1.0, ELGs at z ~ 0.6-1.2 (Prakash 2016; Raichoor 2017)
    assert 0.65 < np.median(p["redshift"][lrg]) < 0.95 and 0.7 < np.median(p["redshift"][elg]) < 1.2
    assert np.quantile(p["redshift"], 0.9) > 0.7
    # CMASS by hand: d_perp = (r - i) - (g - r) / 8 = 0.8 - 0.175 > 0.55, 17.5 < i < 19.9 and
    # i < 19.86 + 1.6 (d_perp - 0.8) = 19.58; with i 0.2 mag fainter d_perp = 0.425 fails
    gri = np.array([[21.0, 19.6, 18.8, 18.5, 21.0, 19.6, 18.5]])
    assert selected("cmass", gri)[0] and not selected("cmass", gri + [0, 0, 0.2, 0, 0, 0, 0])[0]


def test_quasar_dust_and_lyman_series_by_hand():
    from astromodal.data.simulate.quasars import lyman_series_transmission, smc_k, smc_transmission

    # the SMC bar (Gordon et al. 2003): A(V) / E(B - V) = R_V = 2.74 at V; steeper than the Milky Way in the UV
    assert smc_k(np.array([5500.0]))[0] == pytest.approx(2.74, rel=0.02)
    assert smc_k(np.array([1500.0]))[0] > 1.5 * fitzpatrick99(np.array([1500.0]))[0] / 3.1 * 2.74 / 2.74
    assert smc_transmission(np.array([5500.0]), np.array([0.1]))[0, 0] == pytest.approx(10 ** (-0.4 * 0.274), rel=0.01)
    # a z = 3 quasar at 3800 A observed: blueward of Ly beta (4103 A) and Ly gamma (3890 A), redward of Ly delta
    t = lyman_series_transmission(np.array([3800.0]), np.array([3.0]))[0]
    tau = 1.7 / 3.6 * 0.0018 * (3800 / 1025.72) ** 3.92 + 1.2 / 3.6 * 0.0018 * (3800 / 972.54) ** 3.92
    assert t == pytest.approx(np.exp(-tau), rel=1e-9)
    assert lyman_series_transmission(np.array([4200.0]), np.array([3.0]))[0] == 1.0


def test_quasar_colours_are_reddened_and_wider_than_a_bare_power_law():
    from astromodal.data.simulate.quasars import quasar_spectra, sample_quasars

    p = sample_quasars(np.random.default_rng(4), 400)
    assert np.mean(p["ebv_smc"]) == pytest.approx(0.025, rel=0.2) and 0.005 < np.mean(p["ebv_smc"] > 0.1) < 0.05
    dusty = ab_magnitudes(quasar_spectra(p))
    bare = ab_magnitudes(quasar_spectra({k: v for k, v in p.items() if k != "ebv_smc"}))
    gr_dusty, gr_bare = dusty[:, 1] - dusty[:, 2], bare[:, 1] - bare[:, 2]
    assert np.all(gr_dusty >= gr_bare - 1e-9) and np.median(gr_dusty - gr_bare) > 0.02


def test_sdss_stellar_sample_is_faint_and_has_no_distant_ob_stars():
    from astromodal.data.simulate import simulate_survey
    from astromodal.data.simulate.survey import survey_type_shares

    share = survey_type_shares("sdss")
    assert share.sum() == pytest.approx(1.0) and share[:2].sum() < 1e-3  # no O/B stars at high latitude
    assert share[3:6].sum() > 0.5  # F, G, K dominate (LeDrew 2001 local fractions times the survey volume)
    ds = simulate_survey(n=600, seed=3, class_mix=(1, 0, 0), instruments="sdss", with_images=False,
                         associations=False)
    r = ds.columns["r"].values.read()
    # SEGUE bright/faint plates split at r = 17.8 (Yanny et al. 2009) and the BOSS stars reach r = 21.85
    assert 18.0 < np.median(r) < 19.5 and np.mean(r > 20.1) > 0.1
    assert np.mean(ds.targets["spectral_type"].values.read() <= 1) < 0.01


def test_catalogue_systems_by_hand():
    from astromodal.data.simulate.photometry import catalogue_magnitudes

    # SDSS: u_AB = u_SDSS - 0.04, z_AB = z_SDSS + 0.02; Gaia DR3 G: zero points 25.6874 (Vega), 25.8010 (AB)
    out = catalogue_magnitudes(np.array([[20.0, 20.0, 20.0, 20.0, 20.0, 18.0]]), BANDS6)
    assert out[0] == pytest.approx([20.04, 20.0, 20.0, 20.0, 19.98, 17.8864], abs=1e-12)
    with pytest.raises(ConfigError, match="catalogue system"):
        catalogue_magnitudes(np.zeros((1, 1)), ("decam_g",))


def test_survey_catalogue_is_in_the_sdss_and_gaia_systems(monkeypatch):
    """The same survey with the offsets set to zero (pure AB): G moves by exactly -0.1136 (its noise does not
    depend on the magnitude), u by +0.04 and z by -0.02 up to the magnitude-dependent flux noise, g r i not."""
    from astromodal.data.simulate import photometry
    from astromodal.data.simulate.survey import simulate_survey

    def catalogue(offsets):
        monkeypatch.setattr(photometry, "CATALOGUE_OFFSETS", offsets)
        ds = simulate_survey(n=60, seed=4, instruments=(), with_images=False)
        return {k: ds.columns[k].values.read() for k in ("u", "g", "r", "i", "z", "phot_g_mean_mag")}

    real = catalogue(dict(photometry.CATALOGUE_OFFSETS))
    ab = catalogue({b: 0.0 for b in photometry.CATALOGUE_OFFSETS})
    assert real["phot_g_mean_mag"] - ab["phot_g_mean_mag"] == pytest.approx(np.full(60, 25.6874 - 25.8010), abs=1e-9)
    for band in ("g", "r", "i"):
        assert np.array_equal(real[band], ab[band])
    assert np.median(real["u"] - ab["u"]) == pytest.approx(0.04, abs=0.005)
    assert np.median(real["z"] - ab["z"]) == pytest.approx(-0.02, abs=0.005)
