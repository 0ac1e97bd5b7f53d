"""Study D's quantities in the simulator: log SFR, stellar mass, D4000, Halpha flux (Kennicutt), cutout colours,
neighbours, and NaN targets for the objects SFR does not apply to (stars, quasars)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from scipy.optimize import curve_fit
from scipy.stats import spearmanr

from astromodal.data.dataset import Dataset
from astromodal.data.simulate import simulate_survey
from astromodal.data.simulate.galaxies import EMISSION_LINES, d4000_narrow
from astromodal.data.simulate.physics import model_grid
from astromodal.training.estimator import valid_rows

PC_CM = (1 * u.pc).to(u.cm).value
NEW_TARGETS = ("log_sfr", "log_mass", "d4000", "halpha_flux")


@pytest.fixture(scope="module")
def spectra_survey() -> Dataset:
    """500 objects with SDSS-like spectra at S/N 1e5 per pixel (noiseless in effect), no images."""
    return simulate_survey(n=500, seed=11, instruments=["sdss"], with_images=False, snr=1e5)


@pytest.fixture(scope="module")
def image_survey() -> Dataset:
    """600 objects, mostly galaxies, 32 px cutouts, 30 % of them with neighbours, no spectra."""
    return simulate_survey(n=600, seed=12, class_mix=(0.2, 0.7, 0.1), instruments=(), image_size=32,
                           neighbour_fraction=0.3)


def _t(ds: Dataset, name: str) -> np.ndarray:
    return ds.targets[name].values.read()


def test_new_targets_are_galaxy_only_and_in_range(spectra_survey):
    ds = spectra_survey
    cls = ds.class_codes("class")
    gal = cls == 1
    for name in (*NEW_TARGETS, "sfr"):
        v = _t(ds, name)
        assert ds.targets[name].kind == "regression"
        assert np.isfinite(v[gal]).all() and np.isnan(v[~gal]).all(), name  # stars and quasars: NaN
    assert ds.targets["log_sfr"].unit == "log10(Msun/yr)"  # the MPA-JHU AVG scale
    np.testing.assert_allclose(10 ** _t(ds, "log_sfr")[gal], _t(ds, "sfr")[gal], rtol=1e-12)
    log_sfr, log_m = _t(ds, "log_sfr")[gal], _t(ds, "log_mass")[gal]
    assert -3.5 < log_sfr.min() and log_sfr.max() < 2.5  # MPA-JHU-like: ~ -3 .. 2 dex
    assert 8.5 <= log_m.min() and log_m.max() <= 12.3  # the proposal range of the mass function


def test_kennicutt_holds_for_the_halpha_flux_target(spectra_survey):
    ds = spectra_survey
    gal = ds.class_codes("class") == 1
    d_cm = _t(ds, "distance")[gal] * PC_CM  # luminosity distance of the galaxies, pc
    sfr = 7.9e-42 * 4 * np.pi * d_cm**2 * _t(ds, "halpha_flux")[gal]
    np.testing.assert_allclose(sfr, _t(ds, "sfr")[gal], rtol=1e-6)


def _fit_halpha(wave: np.ndarray, flux: np.ndarray, z: float, guess: float) -> float:
    """Integrated Halpha flux from a fit of a linear continuum plus [NII]6548, Halpha, [NII]6584 Gaussians
    (centres at (1 + z) lambda_rest, one velocity width, free fluxes) within 60 A (rest) of Halpha."""
    window = np.abs(wave / (1 + z) - 6563.0) < 60.0
    x, y = wave[window], flux[window]
    centres = np.array([EMISSION_LINES[k] for k in ("NII_6548", "H_alpha", "NII_6584")]) * (1 + z)

    def model(x, a, b, s, f1, f2, f3):
        out = a + b * (x - centres[1])
        for c, f in zip(centres, (f1, f2, f3), strict=True):
            sig = s * c / centres[1]
            out = out + f / (np.sqrt(2 * np.pi) * sig) * np.exp(-0.5 * ((x - c) / sig) ** 2)
        return out

    p0 = [np.median(y), 0.0, 3.0 * (1 + z), guess / 3, guess, guess / 3]
    return curve_fit(model, x, y, p0=p0, maxfev=5000)[0][4]


def test_halpha_in_the_spectrum_equals_the_target(spectra_survey):
    """The line the SDSS-like spectrum carries (LSF-convolved, resampled, S/N 1e5) integrates to
    halpha_flux. Tolerance: 1 % per galaxy with rest EW > 1 A, 0.5 % on the median of all; what is left is
    the linear continuum over 120 A under the black-body curvature (it matters for the weakest lines) and
    the cubic resampling, not the noise (measured: max 0.17 % at EW > 1 A, 1.9 % over all)."""
    ds = spectra_survey
    gal = np.flatnonzero(ds.class_codes("class") == 1)
    spec = ds.spectra["sdss"]
    assert spec.unit == "1e-17 erg / (s cm2 Angstrom)"
    wave, flux = spec.wavelength, spec.flux.read()[gal].astype(np.float64) * 1e-17
    z, ha = _t(ds, "redshift")[gal], _t(ds, "halpha_flux")[gal]
    inside = np.flatnonzero(6640 * (1 + z) < wave[-1])
    assert len(inside) > 40
    ratio, ew = [], []
    for j in inside:
        ratio.append(_fit_halpha(wave, flux[j], z[j], ha[j]) / ha[j])
        cont = np.median(flux[j, np.abs(wave / (1 + z[j]) - 6500.0) < 20.0])
        ew.append(ha[j] / cont / (1 + z[j]))  # rest equivalent width, A
    ratio, ew = np.array(ratio), np.array(ew)
    assert abs(np.median(ratio) - 1) < 0.005
    strong = ew > 1.0
    assert strong.sum() > 20 and np.max(np.abs(ratio[strong] - 1)) < 0.01


def test_d4000_hand_value_and_the_survey_column(spectra_survey):
    # f_lambda ~ lambda^-2 is flat in f_nu: D4000 = 1; a step x2 in f_nu at 3975 A rest: D4000 = 2, at any z
    lam = model_grid()
    z = np.array([0.0, 0.3, 0.7])
    rest = lam[None, :] / (1 + z[:, None])
    flat = np.broadcast_to(lam**-2.0, (3, len(lam)))
    np.testing.assert_allclose(d4000_narrow(flat, z), 1.0, rtol=1e-9)
    np.testing.assert_allclose(d4000_narrow(flat * np.where(rest > 3975, 2.0, 1.0), z), 2.0, rtol=1e-9)
    # f_nu linear in rest lambda (f_lambda ~ lambda^-1): the window means are the values at 4050 and 3900 A
    np.testing.assert_allclose(d4000_narrow(np.broadcast_to(lam**-1.0, (3, len(lam))), z), 4050 / 3900, rtol=1e-6)
    # a window beyond the grid: NaN
    assert np.isnan(d4000_narrow(flat[:1], np.array([2.0])))[0]
    # the survey's column is D4000 of the galaxies' noiseless model spectra
    from astromodal.data.simulate.galaxies import galaxy_spectra, sample_galaxies

    p = sample_galaxies(np.random.default_rng(0), 30)
    d = d4000_narrow(galaxy_spectra(p), p["redshift"])
    assert np.all((d > 1.0) & (d < 3.0))
    assert np.isfinite(_t(spectra_survey, "d4000")[spectra_survey.class_codes("class") == 1]).all()


def test_d4000_falls_with_specific_sfr(spectra_survey):
    """Old populations have the strong break (Kauffmann et al. 2003: D4000 ~ 1.8-2 on the red sequence, ~1.2-1.4
    for star-forming galaxies). Measured here: median 2.23 at sSFR < 1e-11 / yr, 1.21 above 1e-10 / yr."""
    ds = spectra_survey
    gal = ds.class_codes("class") == 1
    d4000 = _t(ds, "d4000")[gal]
    ssfr = _t(ds, "log_sfr")[gal] - _t(ds, "log_mass")[gal]
    assert spearmanr(ssfr, d4000).statistic < -0.5
    quenched, forming = ssfr < -11.0, ssfr > -10.0
    assert quenched.sum() > 30 and forming.sum() >= 5
    assert np.median(d4000[quenched]) > 1.5 and np.median(d4000[forming]) < 1.4


def test_cutout_colours_follow_the_sed(image_survey):
    """The summed cutout of an isolated bright galaxy has the catalogue's colours: one Sersic shape in every
    band, so the light lost beyond the cutout is the same fraction in each band (to the PSF's small band
    dependence). Measured: median |d(g - r)| 0.02 mag, Spearman 0.99."""
    ds = image_survey
    nb = ds.columns["n_neighbours"].values.read()
    cat = np.stack([ds.columns[b].values.read() for b in "ugriz"], axis=1)
    sel = (ds.class_codes("class") == 1) & (nb == 0) & (cat[:, 2] < 17.77)
    assert sel.sum() > 50
    total = ds.images["sdss"].pixels.read()[sel].sum(axis=(2, 3)).astype(np.float64)  # nanomaggies
    mag = np.full(total.shape, np.nan)
    # g, r, i only: the summed u cutout of an old red galaxy can be sky noise around zero (u - g ~ 2)
    mag[:, 1:4] = 22.5 - 2.5 * np.log10(total[:, 1:4])
    gr_img, gr_cat = mag[:, 1] - mag[:, 2], cat[sel, 1] - cat[sel, 2]
    assert np.median(np.abs(gr_img - gr_cat)) < 0.05
    ri_img, ri_cat = mag[:, 2] - mag[:, 3], cat[sel, 2] - cat[sel, 3]
    assert np.median(np.abs(ri_img - ri_cat)) < 0.05
    assert spearmanr(gr_img, gr_cat).statistic > 0.95


def test_neighbour_fraction_sets_the_share_of_cutouts_with_neighbours(image_survey):
    nb = image_survey.columns["n_neighbours"].values.read()
    n, f = len(nb), 0.3
    assert abs(np.mean(nb > 0) - f) < 3 * np.sqrt(f * (1 - f) / n)  # binomial, 3 sigma
    assert set(np.unique(nb)) <= {0, 1, 2}
    none = simulate_survey(n=80, seed=1, instruments=(), image_size=16, neighbour_fraction=0.0)
    assert np.all(none.columns["n_neighbours"].values.read() == 0)


def test_stars_and_quasars_have_no_sfr_and_the_loss_leaves_them_out(spectra_survey):
    """NaN regression targets are the project's "missing" (left out of the loss: tests/test_heads.py and
    tests/test_estimator_heads.py check the masking itself); here: the rows kept are the galaxies exactly."""
    cls = spectra_survey.class_codes("class")
    for name in ("log_sfr", "sfr"):
        y = _t(spectra_survey, name)
        assert np.isnan(y[cls == 0]).all() and np.isnan(y[cls == 2]).all()
        np.testing.assert_array_equal(valid_rows(y, "regression"), cls == 1)


def test_shifted_rest_frame_tables_equal_the_direct_evaluation():
    """The galaxy continuum at model_grid / (1 + z) read from shifted rest-frame tables (one weight per object)
    agrees with the direct evaluation to 1e-4 at every pixel away from the curves' kinks, which the two sample
    at different points (the Balmer jump at 3646 A, the old SED table's blue end at 1100 A, Calzetti's 1200 A
    start and 6300 A branch junction: there to 1 %) and from the old template's jagged far UV (below 1450 A),
    and beyond the tables' redshift range the direct path is used."""
    from astromodal.data.simulate import galaxies as g

    rng = np.random.default_rng(2)
    z = np.concatenate([[0.0, 1e-9, g.REST_TABLE_Z_MAX], rng.uniform(0.0, 3.0, 40)])
    young, brk, av = rng.uniform(0, 1, z.size), rng.uniform(0.85, 1.2, z.size), rng.uniform(0, 2, z.size)
    fast_old = g.old_population_on_grid(z, brk)
    fast = g.continuum_on_grid(z, young, brk, av)
    real_shift = g._RestShift.of
    try:
        g._RestShift.of = classmethod(lambda cls, z: None)  # the direct evaluation
        slow_old = g.old_population_on_grid(z, brk)
        slow = g.continuum_on_grid(z, young, brk, av)
    finally:
        g._RestShift.of = real_shift
    lam_rest = model_grid()[None, :] / (1.0 + z[:, None])
    away = np.all([np.abs(lam_rest - kink) > 15.0 for kink in (3646.0, 1100.0, 1200.0, 6300.0)], axis=0)
    away &= lam_rest > 1450.0  # the elliptical template's far UV: jagged nodes 10 A apart (there 1.3e-4)
    for a, b in ((fast_old, slow_old), (fast, slow)):
        rel = np.abs(a / b - 1.0)
        assert np.all(np.isfinite(a)) and rel[away].max() < 1e-4 and rel.max() < 0.01
    assert g._RestShift.of(np.array([g.REST_TABLE_Z_MAX * 1.01])) is None
    assert g._RestShift.of(np.array([-0.001])) is None
    high = np.array([12.0])  # outside the tables: direct evaluation, finite
    assert np.all(np.isfinite(g.continuum_on_grid(high, np.array([0.5]), np.array([1.5]))))
