"""The survey simulator: each physical rule checked with numbers, determinism, storage and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import constants as const
from astropy import units as u
from scipy.stats import spearmanr

from astromodal.data.dataset import Dataset
from astromodal.data.instruments import GAIA_XP, LAMOST, SDSS, get_instrument
from astromodal.data.simulate import simulate_survey
from astromodal.data.simulate.astrometry import galactic_to_icrs, proper_motion_galactic
from astromodal.data.simulate.galaxies import emission_line_fluxes, sample_galaxies
from astromodal.data.simulate.photometry import nanomaggies
from astromodal.data.simulate.physics import luminosity_distance_pc, model_grid
from astromodal.data.simulate.quasars import quasar_spectra, sample_quasars
from astromodal.data.simulate.spectroscopy import observe_noise_free
from astromodal.data.simulate.stars import line_depths, star_spectra, tio_depth
from astromodal.errors import ConfigError


@pytest.fixture(scope="module")
def survey() -> Dataset:
    """300 objects, all spectra, no images."""
    return simulate_survey(n=300, seed=3, with_images=False)


def _stars(ds: Dataset) -> np.ndarray:
    return ds.class_codes("class") == 0


# ---------------------------------------------------------------- instruments
def test_instrument_grids():
    assert LAMOST.n_pixels == 3601 and LAMOST.wavelength[0] == pytest.approx(3700) and LAMOST.wavelength[-1] == pytest.approx(9100)
    assert np.allclose(np.diff(np.log(LAMOST.wavelength)), np.log(9100 / 3700) / 3600)
    assert np.allclose(np.diff(np.log10(SDSS.wavelength)), 1e-4) and SDSS.wavelength[-1] <= 9200.5
    assert GAIA_XP.n_pixels == 343 and GAIA_XP.wavelength[0] == 3360 and GAIA_XP.wavelength[-1] == 10200
    assert SDSS.bands == ("u", "g", "r", "i", "z") and SDSS.pixel_scale == 0.396
    with pytest.raises(ConfigError, match="known instruments"):
        get_instrument("hst")


def test_lsf_convolution_matches_analytic_gaussian():
    """A Gaussian line convolved to R gives a Gaussian of sigma^2 = sigma_line^2 + sigma_LSF^2 on the instrument grid."""
    lg = np.log(model_grid())
    c, s_line = np.log(6000.5), 3e-4
    flux = 1.0 + np.exp(-0.5 * ((lg - c) / s_line) ** 2)[None, :]
    for inst in (LAMOST, SDSS, GAIA_XP):
        got = observe_noise_free(flux, (inst,))[inst.name][0] / inst.flux_scale
        s_tot = np.hypot(s_line, inst.sigma_ln)
        want = 1.0 + s_line / s_tot * np.exp(-0.5 * ((np.log(inst.wavelength) - c) / s_tot) ** 2)
        assert np.max(np.abs(got - want)) < 2e-3, inst.name


# ---------------------------------------------------------------- stars
def test_wien_peak_moves_blueward():
    teff = np.array([4500.0, 5500.0, 6500.0, 7500.0, 9000.0])
    ones = np.ones_like(teff)
    grid = model_grid()
    cont = star_spectra(teff, ones, 10 * ones, 0 * ones, with_lines=False)
    peak = grid[np.argmax(cont, axis=1)]
    assert np.allclose(peak, 2.897771955e7 / teff, rtol=2e-4)  # Wien's law b = 2.8978e-3 m K
    full = star_spectra(teff, ones, 10 * ones, 0 * ones)
    kernel = np.ones(101) / 101
    smooth = np.array([np.convolve(f, kernel, mode="same") for f in full])[:, 60:-60]
    assert np.all(np.diff(grid[60:-60][np.argmax(smooth, axis=1)]) < 0)


def test_balmer_depth_peaks_near_a0_and_metals_grow_to_cool_stars():
    teff = np.geomspace(3000, 40000, 400)
    d = line_depths(teff)
    peak = teff[np.argmax(d["H_beta"])]
    assert 9000 < peak < 10500
    assert d["H_beta"][np.searchsorted(teff, 5500)] < 0.5 * d["H_beta"].max()
    assert d["H_beta"][np.searchsorted(teff, 25000)] < 0.5 * d["H_beta"].max()
    at = {t: line_depths(np.array([t])) for t in (3500.0, 5000.0, 6000.0, 9750.0)}
    assert at[5000.0]["CaII_K"][0] > at[9750.0]["CaII_K"][0] + 0.3
    assert at[5000.0]["G_band"][0] > 5 * at[9750.0]["G_band"][0]
    assert at[3500.0]["NaD_2"][0] > 2 * at[6000.0]["NaD_2"][0]
    assert tio_depth(np.array([3200.0]))[0] > 0.5 and tio_depth(np.array([5000.0]))[0] < 0.01


def test_balmer_depth_in_the_spectrum():
    """The spectrum over its continuum at H beta equals the tabulated depth (within sampling)."""
    teff = np.array([6000.0, 9750.0, 20000.0])
    ones = np.ones_like(teff)
    ratio = star_spectra(teff, ones, 10 * ones, 0 * ones) / star_spectra(teff, ones, 10 * ones, 0 * ones, False)
    grid = model_grid()
    win = np.abs(grid - 4861.3) < 3
    measured = 1 - ratio[:, win].min(axis=1)
    assert np.allclose(measured, line_depths(teff)["H_beta"], atol=0.01)
    assert np.argmax(measured) == 1


def test_radial_velocity_shifts_lines():
    teff, ones = np.array([9750.0, 9750.0]), np.ones(2)
    f = star_spectra(teff, ones, 10 * ones, np.array([0.0, 300.0]))
    grid = model_grid()
    win = np.abs(grid - 6563) < 30
    centre = grid[win][np.argmin(f[:, win], axis=1)]
    assert centre[1] - centre[0] == pytest.approx(6562.8 * 300 / 299792.458, abs=1.5)


def test_stefan_boltzmann_exact(survey):
    star = _stars(survey)
    teff = survey.targets["teff"].values.read()[star] * u.K
    radius = survey.targets["radius"].values.read()[star] * const.R_sun
    lum = (4 * np.pi * radius**2 * const.sigma_sb * teff**4 / const.L_sun).decompose().value
    assert np.allclose(survey.targets["luminosity"].values.read()[star], lum, rtol=1e-12)
    assert np.all(np.isnan(survey.targets["teff"].values.read()[~star]))


def test_spectral_types_and_massive_flag(survey):
    st = survey.target("spectral_type")
    labels = st.labels()
    star = _stars(survey)
    assert set(labels[~star]) == {"none"} and "none" not in set(labels[star])
    teff = survey.targets["teff"].values.read()
    ranges = {"O": (30000, 45000), "B": (10000, 30000), "A": (7300, 10000), "F": (6000, 7300), "G": (5300, 6000),
              "K": (3900, 5300), "M": (2400, 3900)}
    for t, (lo, hi) in ranges.items():
        sel = labels == t
        assert sel.sum() > 0 and np.all((teff[sel] >= lo) & (teff[sel] <= hi)), t
    massive = survey.target("massive").labels()
    assert np.array_equal(massive == "massive", np.isin(labels, ["O", "B"]))


def test_g_minus_r_falls_with_teff(survey):
    star = _stars(survey) & (survey.columns["r_err"].values.read() < 0.05)
    g_r = survey.columns["g"].values.read()[star] - survey.columns["r"].values.read()[star]
    rho = spearmanr(g_r, survey.targets["teff"].values.read()[star]).statistic
    assert rho < -0.95


# ---------------------------------------------------------------- astrometry
def test_parallax_recovers_distance(survey):
    star = _stars(survey)
    plx = survey.columns["parallax"].values.read()[star]
    err = survey.columns["parallax_error"].values.read()[star]
    dist = survey.targets["distance"].values.read()[star]
    pull = (plx - 1000.0 / dist) / err
    assert 0.8 < np.std(pull) < 1.2 and abs(np.mean(pull)) < 0.25
    good = survey.columns["parallax_over_error"].values.read()[star] > 10
    assert good.sum() > 50
    rel = np.abs(1000.0 / plx[good] - dist[good]) / dist[good]
    assert np.mean(rel < 3 * err[good] / plx[good] * 1.2) > 0.97
    from astromodal.data.simulate.astrometry import parallax_error_mas

    # Gaia DR3-like errors: ~0.02 mas for G < 13, ~0.1 mas at G = 17 (the SDSS-like stars are mostly fainter)
    assert np.all((parallax_error_mas(np.array([10.0, 12.9])) > 0.015) & (parallax_error_mas(np.array([10.0, 12.9]))
                                                                          < 0.025))
    assert 0.07 < parallax_error_mas(np.array([17.0]))[0] < 0.15
    extragalactic = ~star
    assert abs(np.mean(survey.columns["parallax"].values.read()[extragalactic]
                       / survey.columns["parallax_error"].values.read()[extragalactic])) < 0.3


def test_proper_motion_formula_and_rotation():
    pm_l, pm_b = proper_motion_galactic(np.array([47.4047, 0.0]), np.array([0.0, -94.8094]), np.array([1000.0, 2000.0]))
    assert np.allclose(pm_l, [10.0, 0.0]) and np.allclose(pm_b, [0.0, -10.0])
    ra, dec, pmra, pmdec = galactic_to_icrs(np.array([30.0, 200.0]), np.array([5.0, -40.0]), pm_l, pm_b)
    assert np.allclose(np.hypot(pmra, pmdec), np.hypot(pm_l, pm_b), rtol=1e-9)
    assert galactic_to_icrs(np.array([0.0]), np.array([90.0]))[1][0] == pytest.approx(27.128, abs=0.01)


def test_ob_associations_recoverable_by_dbscan():
    from sklearn.cluster import DBSCAN
    from sklearn.metrics import adjusted_rand_score

    # the Gaia all-sky selection holds O/B stars; the SDSS-like default of instruments=() (a high-latitude
    # footprint whose type mix follows the local luminosity function) holds none
    ds = simulate_survey(n=700, seed=5, class_mix=(1, 0, 0), instruments=(), with_images=False,
                         stellar_selection="gaia")
    groups = ds.meta["associations"]
    assoc = ds.columns["association_id"].values.read()
    assert len(groups) >= 2 and all(g["n_members"] >= 15 for g in groups)
    assert [int((assoc == g["id"]).sum()) for g in groups] == [g["n_members"] for g in groups]
    massive = ds.target("massive").labels() == "massive"
    assert np.all(assoc[~massive] == -1)
    sel = massive & (ds.columns["parallax_over_error"].values.read() >= 3)
    lr, br = np.radians(ds.columns["l"].values.read()[sel]), np.radians(ds.columns["b"].values.read()[sel])
    d = 1000.0 / ds.columns["parallax"].values.read()[sel]
    xyz = np.stack([d * np.cos(br) * np.cos(lr), d * np.cos(br) * np.sin(lr), d * np.sin(br)], axis=1) / 1000.0
    found = DBSCAN(eps=0.2, min_samples=8).fit_predict(xyz)  # kpc
    assert adjusted_rand_score(assoc[sel], found) > 0.9


# ---------------------------------------------------------------- galaxies and quasars
def test_kennicutt_line_fluxes_exact():
    p = sample_galaxies(np.random.default_rng(0), 50)
    f = emission_line_fluxes(p)
    d_cm = luminosity_distance_pc(p["redshift"]) * (1 * u.pc).to(u.cm).value
    assert np.allclose(7.9e-42 * 4 * np.pi * d_cm**2 * f["H_alpha"], p["sfr"], rtol=1e-12)
    assert np.allclose(f["H_alpha"] / f["H_beta"], 2.86)


def test_luminosity_distance_matches_astropy():
    from astropy.cosmology import Planck18

    z = np.array([0.02, 0.1, 0.3, 1.0, 3.0])
    assert np.allclose(luminosity_distance_pc(z), Planck18.luminosity_distance(z).to(u.pc).value, rtol=1e-4)


def test_halpha_flux_gives_back_sfr(survey):
    """Continuum-subtracted Halpha flux measured in the SDSS-like spectra recovers the SFR by Kennicutt."""
    gal = survey.class_codes("class") == 1
    spec = survey.spectra["sdss"]
    flux = spec.flux.read()[gal].astype(np.float64) * 1e-17
    wave = spec.wavelength
    z = survey.targets["redshift"].values.read()[gal]
    rest = wave[None, :] / (1 + z[:, None])
    dlam = np.gradient(wave)[None, :]

    def band(lo, hi):
        return (rest > lo) & (rest < hi)

    with np.errstate(invalid="ignore"):  # galaxies whose Halpha lies beyond the spectrum: NaN, left out below
        cont = (np.sum(flux * band(6495, 6530), 1) + np.sum(flux * band(6605, 6640), 1)) / (
            band(6495, 6530).sum(1) + band(6605, 6640).sum(1))
    line = np.sum((flux - cont[:, None]) * band(6553, 6573) * dlam, axis=1)
    d_cm = survey.targets["distance"].values.read()[gal] * (1 * u.pc).to(u.cm).value
    sfr_est = 7.9e-42 * 4 * np.pi * d_cm**2 * line
    sfr = survey.targets["sfr"].values.read()[gal]
    # lines this window estimate can measure: true rest EW > 3 A (quenched galaxies with SFR ~0.5 Msun/yr have
    # EW ~1 A), Halpha and its continuum windows inside the spectrum
    with np.errstate(invalid="ignore"):
        ew_true = survey.targets["halpha_flux"].values.read()[gal] / cont / (1 + z)
    strong = (ew_true > 3.0) & (6650 * (1 + z) < wave[-1])
    assert strong.sum() >= 12  # SDSS-I to -IV galaxy mix: ~30 % main sample, the rest mostly beyond z = 0.38
    ratio = sfr_est[strong] / sfr[strong]
    assert abs(np.median(ratio) - 1) < 0.03 and np.mean(np.abs(ratio - 1) < 0.1) > 0.9


def test_4000_break_in_galaxies(survey):
    gal = survey.class_codes("class") == 1
    spec = survey.spectra["sdss"]
    z = survey.targets["redshift"].values.read()[gal]
    rest = spec.wavelength[None, :] / (1 + z[:, None])
    fnu = spec.flux.read()[gal] * rest**2
    red = np.sum(fnu * ((rest > 4000) & (rest < 4100)), 1) / np.sum((rest > 4000) & (rest < 4100), 1)
    blue = np.sum(fnu * ((rest > 3850) & (rest < 3950)), 1) / np.sum((rest > 3850) & (rest < 3950), 1)
    assert np.all(red / blue > 1.0) and np.median(red / blue) > 1.15


def test_quasar_mgii_at_redshifted_wavelength():
    p = sample_quasars(np.random.default_rng(1), 4)
    p["redshift"] = np.array([0.4, 0.9, 1.5, 2.2])
    lines = quasar_spectra(p) - quasar_spectra(p, with_lines=False)
    grid = model_grid()
    expected = 2798.8 * (1 + p["redshift"])
    for k in range(4):
        win = np.abs(grid - expected[k]) < 150
        assert abs(grid[win][np.argmax(lines[k, win])] - expected[k]) < 3.0
    observed = observe_noise_free(quasar_spectra(p), (LAMOST,))["lamost"]
    cont = observe_noise_free(quasar_spectra(p, with_lines=False), (LAMOST,))["lamost"]
    for k in range(3):  # MgII of z = 2.2 is outside the LAMOST window
        win = np.abs(LAMOST.wavelength - expected[k]) < 150
        assert abs(LAMOST.wavelength[win][np.argmax((observed - cont)[k, win])] - expected[k]) < 4.0


def test_calzetti_curve_hand_values():
    from astromodal.data.simulate.physics import calzetti_k

    # x = 0.55 um: 2.659 (-2.156 + 1.509/0.55 - 0.198/0.55^2 + 0.011/0.55^3) + 4.05 = 4.04789
    # x = 0.6563 um: 2.659 (-1.857 + 1.040/0.6563) + 4.05 = 3.32580
    assert np.allclose(calzetti_k(np.array([5500.0, 6563.0])), [4.04789, 3.32580], atol=2e-5)


def test_main_sequence_and_dust_relations_hand_values():
    from astropy.cosmology import Planck18

    from astromodal.data.simulate.galaxies import (
        garn_best_a_halpha,
        main_sequence_log_sfr,
        stellar_mass_function,
    )

    t = Planck18.age(0.5).to("Gyr").value
    assert np.isclose(main_sequence_log_sfr(np.array([10.5]), np.array([0.5]))[0],
                      (0.84 - 0.026 * t) * 10.5 - (6.51 - 0.11 * t), atol=1e-3)
    assert np.isclose(garn_best_a_halpha(np.array([11.0]))[0], 0.91 + 0.77 + 0.11 - 0.09)
    mu = 10 ** (10.0 - 10.66)
    assert np.isclose(stellar_mass_function(np.array([10.0]))[0],
                      np.log(10) * np.exp(-mu) * mu * (3.96e-3 * mu**-0.35 + 0.79e-3 * mu**-1.47))


@pytest.fixture(scope="module")
def galaxy_sample():
    from astromodal.data.simulate.galaxies import galaxy_spectra
    from astromodal.data.simulate.photometry import ab_magnitudes

    p = sample_galaxies(np.random.default_rng(5), 1500)
    return p, ab_magnitudes(galaxy_spectra(p)), galaxy_spectra(p, with_lines=False)


def test_galaxy_target_samples_pass_their_cuts(galaxy_sample):
    from astromodal.data.simulate.galaxies import TARGET_SAMPLES, selected

    p, mags, _ = galaxy_sample
    for k, name in enumerate(TARGET_SAMPLES):
        rows = p["target_sample"] == k
        assert rows.sum() > 100 and np.all(selected(name, p["model_mags"][rows]))
    main = p["target_sample"] == 0
    assert np.all(p["model_mags"][main, 1] < 17.77)
    # the full spectra (lines and absorption included) keep the main sample at r < 17.77 within 0.1 mag
    assert np.quantile(mags[main, 2], 0.95) < 17.8 and np.max(mags[main, 2]) < 17.77 + 0.5
    # the redshift distribution follows from the cuts: the main sample is nearby, LRGs reach z ~ 0.7
    assert np.median(p["redshift"][main]) < 0.15 and np.quantile(p["redshift"][p["target_sample"] == 2], 0.9) > 0.6


def test_selection_magnitudes_match_the_continuum(galaxy_sample):
    from astromodal.data.simulate.galaxies import continuum_magnitudes
    from astromodal.data.simulate.photometry import ab_magnitudes

    p, _, continuum = galaxy_sample
    # no lines, no absorption: the tabulated g r i equal the full-grid continuum magnitudes
    full = ab_magnitudes(continuum, ("g", "r", "i"))
    sub = {k: v[:200] for k, v in p.items()}
    assert np.allclose(continuum_magnitudes(sub), p["model_mags"][:200])
    # model_mags: SDSS g r i first, then the z and DECam g r z of the eBOSS cuts
    assert np.median(np.abs(full[:200] - p["model_mags"][:200, :3])) < 0.05


def test_quenched_galaxies_redder_at_fixed_mass_and_quenching_rises_with_mass(galaxy_sample):
    from astromodal.data.simulate.galaxies import quenched_fraction

    p, mags, _ = galaxy_sample
    gr = mags[:, 1] - mags[:, 2]
    q = p["quenched"]
    bin_ = (p["log_mass"] > 10.4) & (p["log_mass"] < 10.8) & (p["target_sample"] == 0)
    assert (bin_ & q).sum() > 20 and (bin_ & ~q).sum() > 10
    assert np.median(gr[bin_ & q]) > np.median(gr[bin_ & ~q]) + 0.2
    assert np.all(np.diff(quenched_fraction(np.linspace(9, 12, 20))) > 0)


def test_d4000_larger_for_low_specific_sfr(galaxy_sample):
    p, _, continuum = galaxy_sample
    rest = model_grid()[None, :] / (1 + p["redshift"][:, None])
    fnu = continuum * rest**2
    red = np.sum(fnu * ((rest > 4000) & (rest < 4100)), 1) / np.sum((rest > 4000) & (rest < 4100), 1)
    blue = np.sum(fnu * ((rest > 3850) & (rest < 3950)), 1) / np.sum((rest > 3850) & (rest < 3950), 1)
    d4000 = red / blue
    ssfr = np.log10(p["sfr"]) - p["log_mass"]
    assert spearmanr(ssfr, d4000)[0] < -0.7
    assert np.median(d4000[ssfr < -11.5]) > 1.6 > 1.4 > np.median(d4000[ssfr > -10])


def test_quasars_reach_z5_with_magnitude_limits_and_forest():
    from astromodal.data.simulate.quasars import QSO_SAMPLES, continuum_magnitudes, lyman_transmission

    p = sample_quasars(np.random.default_rng(2), 3000)
    z = p["redshift"]
    assert z.max() > 4.0 and 0.03 < np.mean(z > 3) < 0.3 and z.min() >= 0.1 and z.max() <= 5.0
    ri = continuum_magnitudes(z, p["abs_mag_2500"], p["alpha"])
    for k, (_, band, lo, hi) in enumerate(QSO_SAMPLES.values()):
        rows = p["target_sample"] == k
        col = 0 if band == "r" else 1
        assert np.all(ri[rows, col] < np.where(z[rows] < 3, lo, hi))
    assert np.quantile(ri[:, 0], 0.5) > 19.5  # faint: most are BOSS/eBOSS targets near r = 22
    assert 0.25 < np.std(p["alpha"]) < 0.35
    # forest transmission exp(-0.0018 (1 + z_abs)^3.92) (Faucher-Giguere et al. 2008), falling with z
    one_plus_z_abs = np.array([3.1, 3.5, 3.9])  # a z = 3 quasar, redward of its Lyman limit (3647 A)
    t = lyman_transmission(1215.67 * one_plus_z_abs, np.full(3, 3.0))
    assert np.allclose(t, np.exp(-0.0018 * one_plus_z_abs**3.92)) and np.all(np.diff(t) < 0)


# The stars of issue 14 (magnitude-limited selection, reddening, [Fe/H], kinematics) change every star array:
# the bit-identity test of the galaxy change is replaced by the physics tests of tests/test_simulator_stars.py.


# ---------------------------------------------------------------- survey-level behaviour
def test_class_counts_targets_and_snr(survey):
    assert survey.summary()["targets"]["class"]["counts"] == {"star": 180, "galaxy": 75, "qso": 45}
    for name, s in survey.spectra.items():
        snr = np.median(np.abs(s.flux.read()) * np.sqrt(s.ivar.read()), axis=1)
        assert np.allclose(np.median(snr), 30.0, rtol=0.1), name
    assert set(survey.targets) >= {"class", "spectral_type", "massive", "teff", "radius", "luminosity", "redshift",
                                   "sfr", "distance"}
    stars_only = simulate_survey(n=40, seed=1, class_mix=(1.0, 0.0, 0.0), instruments=("lamost",), with_images=False)
    assert set(stars_only.target("class").labels()) == {"star"}


def test_same_seed_same_bytes_different_seed_differs():
    kw = {"n": 40, "image_size": 16, "instruments": ("lamost", "gaia_xp")}
    a, b, c = simulate_survey(seed=7, **kw), simulate_survey(seed=7, **kw), simulate_survey(seed=8, **kw)
    for name in a.spectra:
        assert a.spectra[name].flux.read().tobytes() == b.spectra[name].flux.read().tobytes()
    assert a.images["sdss"].pixels.read().tobytes() == b.images["sdss"].pixels.read().tobytes()
    for name in a.columns:
        assert np.array_equal(a.columns[name].values.read(), b.columns[name].values.read(), equal_nan=True)
    assert not np.array_equal(a.spectra["lamost"].flux.read(), c.spectra["lamost"].flux.read())
    no_img = simulate_survey(seed=7, with_images=False, **kw)
    assert no_img.spectra["lamost"].flux.read().tobytes() == a.spectra["lamost"].flux.read().tobytes()


def test_images_shape_bands_and_point_source_flux():
    # 200 objects: about 20 isolated point sources brighter than r = 17 (the count moves with the stellar sample)
    ds = simulate_survey(n=200, seed=2, instruments=(), neighbour_fraction=0.2)
    im = ds.images["sdss"]
    assert im.pixels.shape == (200, 5, 64, 64) and im.bands == ("u", "g", "r", "i", "z") and im.pixel_scale == 0.396
    pix = im.pixels.read()
    assert pix.dtype == np.float32
    n_nb = ds.columns["n_neighbours"].values.read()
    assert 0 < np.sum(n_nb > 0) < 100
    r = ds.columns["r"].values.read()
    point = (ds.class_codes("class") != 1) & (n_nb == 0) & (r < 17.0)  # sky noise of the sum < 3 % of the flux
    assert point.sum() > 10
    total = pix[point, 2].sum(axis=(1, 2))
    assert np.allclose(total / nanomaggies(r[point]), 1.0, atol=0.05)
    # the flux is centred: the brightest pixel of an isolated point source is within 1 px of the centre
    peak = np.array([np.unravel_index(np.argmax(p), p.shape) for p in pix[point, 2]])
    assert np.all(np.abs(peak - 32) <= 1)
    gal = (ds.class_codes("class") == 1) & (n_nb == 0) & (ds.columns["r"].values.read() < 19)
    assert gal.sum() >= 3
    ratio = pix[gal, 2].sum(axis=(1, 2)) / nanomaggies(ds.columns["r"].values.read()[gal])
    assert np.all(ratio < 1.1) and np.median(ratio) > 0.8


def test_save_and_load_round_trip(tmp_path):
    ds = simulate_survey(n=30, seed=4, image_size=16)
    path = ds.save(tmp_path / "sim.h5")
    back = Dataset.load(path)
    assert len(back) == 30
    assert np.array_equal(back.spectra["sdss"].flux.read(), ds.spectra["sdss"].flux.read())
    assert np.array_equal(back.images["sdss"].pixels.read(), ds.images["sdss"].pixels.read())
    assert np.array_equal(back.target("spectral_type").labels(), ds.target("spectral_type").labels())
    assert back.meta["associations"] == ds.meta["associations"]
    assert back.spectra["gaia_xp"].unit == "W / (m2 nm)"


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="'n'"):
        simulate_survey(n=0)
    with pytest.raises(ConfigError, match="class_mix"):
        simulate_survey(n=10, class_mix=(1, -1, 0))
    with pytest.raises(ConfigError, match="unknown simulate option"):
        simulate_survey(n=10, colour="red")
    with pytest.raises(ConfigError, match="unknown instrument"):
        simulate_survey(n=10, instruments=("lamost", "hst"))


# ---------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from astromodal.cli import app

    out = tmp_path / "sim.h5"
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", "--n", "25", "--seed", "2", "--out", str(out), "--no-images",
                              "--class-mix", "0.5,0.3,0.2", "--snr", "20", "--instruments", "lamost"])
    assert res.exit_code == 0, res.output
    ds = Dataset.load(out)
    assert len(ds) == 25 and list(ds.spectra) == ["lamost"] and not ds.images
    assert ds.summary()["targets"]["class"]["counts"] == {"star": 13, "galaxy": 7, "qso": 5}  # exact rounding
    bad = tmp_path / "bad.h5"
    for n in ("0", "-5"):
        res = runner.invoke(app, ["simulate", "--n", n, "--out", str(bad)])
        assert res.exit_code != 0 and isinstance(res.exception, ConfigError) and "--n" in str(res.exception)
        assert not bad.exists() and not list(tmp_path.glob(".bad.h5*"))
    helptext = runner.invoke(app, ["simulate", "--help"]).output
    for option in ("--n", "--seed", "--out", "--class-mix", "--snr", "--image-size", "--no-images"):
        assert option in helptext


def test_threads_do_not_change_the_arrays(monkeypatch):
    from astromodal.data.simulate import survey as survey_module

    kw = {"n": 60, "seed": 9, "image_size": 16, "instruments": ("sdss",), "batch_size": 16}
    monkeypatch.setattr(survey_module, "SIM_THREADS", 2)
    threaded = simulate_survey(**kw)
    monkeypatch.setattr(survey_module, "SIM_THREADS", 1)
    serial = simulate_survey(**kw)
    assert threaded.spectra["sdss"].flux.read().tobytes() == serial.spectra["sdss"].flux.read().tobytes()
    assert threaded.images["sdss"].pixels.read().tobytes() == serial.images["sdss"].pixels.read().tobytes()
