"""Stars of the simulator (issue 14): extinction law, reddening, line strengths against Teff / log g / [Fe/H],
magnitude-limited selection, Galactic populations and kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.simulate import simulate_survey
from astromodal.data.simulate.photometry import ab_magnitudes, bandpass, extinction_coefficient
from astromodal.data.simulate.physics import C_ANGSTROM, fitzpatrick99, model_grid
from astromodal.data.simulate.stars import line_depths, star_spectra


def test_fitzpatrick99_matches_its_table_3():
    # Fitzpatrick (1999) Table 3, R_V = 3.1: A(lambda) / E(B-V) at the spline anchors (26500 ... 2600 A)
    lam = np.array([26500.0, 12200.0, 6000.0, 5470.0, 4670.0, 4110.0, 2700.0, 2600.0])
    table = np.array([0.265, 0.829, 2.688, 3.055, 3.806, 4.315, 6.265, 6.591])
    assert np.allclose(fitzpatrick99(lam), table, rtol=2e-3)
    # by definition A(B) - A(V) ~ E(B - V) at the B and V wavelengths
    assert fitzpatrick99(np.array([4400.0]))[0] - fitzpatrick99(np.array([5500.0]))[0] == pytest.approx(1.0, abs=0.05)


def test_flat_fnu_source_has_zero_colours_and_ebv_reddens_g_r_by_the_law():
    grid = model_grid()
    flat = (3631e-23 * C_ANGSTROM / grid**2)[None, :]  # f_nu = 3631 Jy: AB magnitude 0 in every band
    base = ab_magnitudes(flat)[0]
    assert np.allclose(base, 0.0, atol=1e-4) and np.allclose(np.diff(base), 0.0, atol=1e-9)  # zero AB colours
    ebv = 0.2
    red = flat * 10 ** (-0.4 * ebv * fitzpatrick99(grid))
    mags = ab_magnitudes(red)[0]
    # by hand: the band-mean transmission of each band (response weighted in d ln lambda)
    for k, band in enumerate("ugriz"):
        w = bandpass(band, grid)
        want = -2.5 * np.log10(np.sum(w * 10 ** (-0.4 * ebv * fitzpatrick99(grid))) / np.sum(w))
        assert mags[k] - base[k] == pytest.approx(want, abs=1e-9)
    g_r = mags[1] - mags[2]
    assert g_r == pytest.approx(ebv * (extinction_coefficient("g") - extinction_coefficient("r")), rel=0.02)
    assert 1.0 < g_r / ebv < 1.4  # E(g - r) / E(B - V) ~ 1.2 (Schlafly & Finkbeiner 2011: 1.2 for F99)


def test_colour_falls_monotonically_with_teff():
    teff = np.geomspace(3000.0, 30000.0, 30)
    ones = np.ones_like(teff)
    m = ab_magnitudes(star_spectra(teff, ones, 10 * ones, 0 * ones))
    g_r = m[:, 1] - m[:, 2]
    # g - r falls from K dwarfs up; through the M dwarfs it saturates (the TiO bands depress r as much as g, as
    # in the SDSS M dwarf sequence, Hawley et al. 2002): flat there within 0.01, never bluer than at 4100 K
    warm = teff > 3900.0
    assert np.all(np.diff(g_r[warm]) < 0)
    assert np.all(np.diff(g_r[~warm]) < 0.01) and g_r[~warm].min() > g_r[warm][0]
    assert np.all(np.diff(m[:, 2] - m[:, 3]) < 0.005)  # r - i (flat at the hot end)
    sun = ab_magnitudes(star_spectra(np.array([5772.0]), np.ones(1), np.full(1, 10.0), np.zeros(1)))[0]
    assert 1.2 < sun[0] - sun[1] < 1.6  # the Sun's u - g is 1.43 (a black body alone gives 0.92)


def test_line_depths_follow_teff_gravity_and_metallicity():
    t = np.array([4500.0])
    dwarf, giant = line_depths(t, np.array([4.6]), np.zeros(1)), line_depths(t, np.array([2.0]), np.zeros(1))
    assert dwarf["NaI_8183"][0] > giant["NaI_8183"][0] + 0.1  # the Na I 8190 doublet: a dwarf indicator
    assert giant["CaT_8542"][0] > dwarf["CaT_8542"][0]  # the Ca II triplet: stronger in giants
    poor, rich = line_depths(t, None, np.array([-2.0])), line_depths(t, None, np.array([0.3]))
    for name in ("FeI_5270", "Mg_b", "NaD_2", "CaI_4227"):
        assert rich[name][0] > poor[name][0] + 0.1, name
    hot, cool = line_depths(np.array([9750.0])), line_depths(np.array([4500.0]))
    assert hot["H_delta"][0] > 3 * cool["H_delta"][0] and cool["FeI_5270"][0] > 10 * hot["FeI_5270"][0]
    # a metal-poor K star is brighter in u (less blanketing) at the same Teff
    ones = np.ones(2)
    m = ab_magnitudes(star_spectra(np.full(2, 5000.0), ones, 10 * ones, 0 * ones, feh=np.array([0.0, -1.5])))
    assert (m[0, 0] - m[0, 1]) - (m[1, 0] - m[1, 1]) > 0.2


@pytest.fixture(scope="module")
def sdss_stars():
    return simulate_survey(n=1500, seed=4, class_mix=(1, 0, 0), instruments=(), with_images=False,
                           associations=False)


def test_stars_follow_the_magnitude_limits_of_the_survey(sdss_stars):
    r = sdss_stars.columns["r"].values.read()
    # SEGUE bright/faint plates, SDSS-I/II and BOSS stars: 14 < r < 21.85 on the continuum, lines and noise aside
    assert np.mean((r > 13.7) & (r < 22.3)) > 0.95
    assert 17.0 < np.median(r) < 19.5
    lam = simulate_survey(n=600, seed=4, class_mix=(1, 0, 0), instruments=(), with_images=False,
                          associations=False, stellar_selection="lamost")
    assert np.quantile(lam.columns["r"].values.read(), 0.95) < 18.2
    assert np.median(lam.columns["r"].values.read()) < np.median(sdss_stars.columns["r"].values.read())


def test_populations_metallicity_kinematics_and_reddening(sdss_stars):
    pop = sdss_stars.target("population").labels()
    feh = sdss_stars.targets["feh"].values.read()
    rv = sdss_stars.targets["redshift"].values.read() * 299792.458
    ebv = sdss_stars.targets["ebv"].values.read()
    b = sdss_stars.columns["b"].values.read()
    assert set(pop) <= {"young_disc", "thin_disc", "thick_disc", "halo"} and (pop == "halo").sum() > 50
    assert np.mean(feh[pop == "halo"]) < -1.2 and np.mean(feh[pop == "thin_disc"]) > -0.4
    assert np.std(rv[pop == "halo"]) > 100 and np.std(rv[pop == "thin_disc"]) < 60
    assert np.all(np.abs(b) > 20) and np.all(ebv >= 0)
    logg = sdss_stars.targets["logg"].values.read()
    giant = sdss_stars.target("luminosity_class").labels() == "III"
    assert np.median(logg[giant]) < 3.3 < 4.0 < np.median(logg[~giant])


def test_unknown_stellar_selection_is_a_config_error():
    from astromodal.errors import ConfigError

    with pytest.raises(ConfigError, match="stellar_selection"):
        simulate_survey(n=10, stellar_selection="hipparcos")


def test_the_default_stellar_selection_follows_the_first_instrument():
    from astromodal.data.simulate import simulate_survey
    from astromodal.errors import ConfigError

    for instruments, want in ((["gaia_xp"], "gaia"), (["lamost", "sdss"], "lamost"), (["sdss"], "sdss"), ([], "sdss")):
        ds = simulate_survey(n=60, seed=2, instruments=instruments, with_images=False, class_mix=[1, 0, 0],
                             associations=False)
        assert ds.meta["stellar_selection"] == want
    gaia = simulate_survey(n=400, seed=2, instruments=["gaia_xp"], with_images=False, class_mix=[1, 0, 0],
                           associations=False)
    from astropy.coordinates import SkyCoord  # all sky: stars at low Galactic latitude too
    lat = SkyCoord(ra=gaia.ra, dec=gaia.dec, unit="deg").galactic.b.deg
    assert (abs(lat) < 10).mean() > 0.1  # an SDSS-like footprint would have none below |b| = 20
    # the limit (r 17.65) applies to continuum magnitudes: an M dwarf's TiO bands and noise make its catalogue r
    # up to ~0.9 mag fainter
    assert gaia.columns["r"].values.read().max() < 18.7
    with pytest.raises(ConfigError, match="stellar_selection"):
        simulate_survey(n=10, stellar_selection="hipparcos")


def test_sky_directions_follow_the_galaxy_o_b_stars_in_the_plane():
    """A star's direction is weighted by the stars its sightline holds inside the limits: young O/B field
    stars (a 60 pc disc) lie at low latitude and kiloparsecs away, not at high latitude near the Sun."""
    from astropy.coordinates import SkyCoord

    ds = simulate_survey(n=1500, seed=5, instruments=["gaia_xp"], with_images=False, class_mix=[1, 0, 0],
                         associations=False)
    lat = np.abs(SkyCoord(ra=ds.ra, dec=ds.dec, unit="deg").galactic.b.deg)
    ob = ds.target("massive").values.read() == 1
    assert ob.sum() > 100
    assert np.mean(lat[ob] > 20) < 0.15  # uniform directions would put 66 % there
    assert np.median(ds.target("distance").values.read()[ob]) > 1000.0
    assert np.mean(lat[~ob] > 20) > np.mean(lat[ob] > 20)  # older, thicker populations reach higher


def test_fast_spectrum_paths_equal_the_formula_as_written():
    """star_spectra's fast paths (the continuum opacity from ln(grid) - ln(1 + v/c) on the grid's blue columns
    only, the extinction folded into the absorption's exponential, the in-place black body) give the formula
    pi B_lambda(lambda / (1 + v/c)) (R/d)^2 exp(-tau) 10^(-0.4 E(B-V) k) with the public pieces, to 1e-12."""
    from astromodal.data.simulate import stars
    from astromodal.data.simulate.physics import C_KMS, PC_CM, R_SUN_CM, f99_on_grid, planck_lambda

    rng = np.random.default_rng(8)
    n = 30
    teff, logg, feh = rng.uniform(3200, 40000, n), rng.uniform(0.5, 5.0, n), rng.uniform(-2.0, 0.4, n)
    rv, ebv = rng.uniform(-600.0, 600.0, n), rng.uniform(0.0, 1.0, n)
    radius, dist = rng.uniform(0.2, 20.0, n), rng.uniform(10.0, 5000.0, n)
    grid = model_grid()
    shift = 1.0 + rv / C_KMS
    rest = grid[None, :] / shift[:, None]
    fast = np.zeros((n, grid.size))
    stars._add_continuum_tau_on_grid(fast, shift, teff, logg, feh)
    assert np.allclose(fast, stars.continuum_tau(rest, teff, logg, feh), rtol=1e-12, atol=1e-13)

    tau = stars.absorption_tau(teff, rv, logg, feh)
    want = (np.pi * planck_lambda(rest, teff[:, None]) * ((radius * R_SUN_CM / (dist * PC_CM)) ** 2)[:, None]
            * np.exp(-tau) * 10.0 ** (-0.4 * ebv[:, None] * f99_on_grid()[None, :]))
    stars._interstellar_nad(want, ebv)
    got = star_spectra(teff, radius, dist, rv, logg=logg, feh=feh, ebv=ebv)
    assert np.allclose(got, want, rtol=1e-10, atol=0.0)
    bare = star_spectra(teff, radius, dist, rv, with_lines=False, ebv=ebv)
    stars._interstellar_nad(bare, ebv)  # the lines' path adds Na D; the bare one has no lines at all
    assert np.allclose(bare * np.exp(-tau), want, rtol=1e-10, atol=0.0)


@pytest.mark.parametrize("selection", ["sdss", "lamost", "gaia"])
def test_distance_windows_hold_every_nonzero_sightline_weight(selection):
    """The distances _magnitude_limited skips (outside each star's window) have zero weight on every candidate
    sightline, and inside it the windowed weights are those of the whole grid, bit for bit."""
    from astromodal.data.simulate import astrometry as ast
    from astromodal.data.simulate import survey as sv
    from astromodal.data.simulate.stars import sample_stars

    rng = np.random.default_rng(11)
    stars = sample_stars(rng, 64, 0.15)
    abs_mag, r_band, m_lo, m_hi = sv._component_limits(rng, stars, selection)
    _, b_min = sv.STELLAR_SELECTIONS[selection]
    k = sv.SIGHTLINE_CANDIDATES
    l_deg, b_deg = (a.reshape(64, k) for a in ast.survey_sightlines(rng, 64 * k, b_min))
    patch = 10.0 ** rng.normal(0.0, 0.2, 64)
    young = stars["massive"] == 1
    args = (abs_mag, r_band, m_lo, m_hi, patch)
    full, _, _, _ = sv._sightline_weights(l_deg, b_deg, young, *args)
    j0, n = sv._distance_windows(b_deg, *args)
    width = int(n.max())
    win, _, _, _ = sv._sightline_weights(l_deg, b_deg, young, *args, window=(j0, width))
    grid = np.arange(full.shape[2])
    outside = (grid[None, :] < j0[:, None]) | (grid[None, :] >= (j0 + n)[:, None])
    assert np.all(full[np.broadcast_to(outside[:, None, :], full.shape)] == 0.0)
    assert (full > 0).any() and width < full.shape[2] * (0.35 if selection == "sdss" else 0.75)  # the saving
    idx = np.minimum(j0[:, None] + np.arange(width), full.shape[2] - 1)
    valid = (j0[:, None] + np.arange(width)) < full.shape[2]
    picked = np.take_along_axis(full, np.broadcast_to(idx[:, None, :], win.shape), axis=2)
    assert np.array_equal(np.where(valid[:, None, :], picked, 0.0), win)
