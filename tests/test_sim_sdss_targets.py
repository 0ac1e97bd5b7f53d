"""Physics of the SDSS-photometry realism additions (issue 14, session 22): the old stellar population (the
elliptical template galsim ships, since session 29), Lyman-limit systems and host-galaxy light of quasars, and SEGUE's
colour-targeted stellar categories. Hand-computed values where the physics has one."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.simulate import galaxies as gal
from astromodal.data.simulate import quasars as qso
from astromodal.data.simulate import survey as sv
from astromodal.data.simulate.physics import model_grid
from astromodal.data.simulate.stars import selection_magnitudes


# ---------------------------------------------------------------- the old stellar population
def _template_file() -> np.ndarray:
    import galsim

    return np.loadtxt(f"{galsim.meta_data.share_dir}/SEDs/{gal.OLD_TEMPLATE}")


def test_old_population_is_the_elliptical_template_read_through_galsim():
    """The old population's L_lambda is the file's f_lambda column (galsim's photon density converted back),
    normalised at 6166 A; its narrow D4000 is the template's, by hand from the file."""
    d = _template_file()
    nodes = d[np.searchsorted(d[:, 0], [3000.0, 4100.0, 5000.0, 6166.0, 8000.0]), :]  # at the file's own nodes
    got = gal.old_population_sed(nodes[:, 0])
    np.testing.assert_allclose(got / got[3], nodes[:, 1] / nodes[3, 1], rtol=1e-5)  # the table: 1.5e-4 in ln
    assert gal.old_population_sed(6166.0) == pytest.approx(1.0, rel=1e-9)
    # the template's own Halpha + [NII] bump is left out: close to the straight line across its window,
    # below the file's values
    lo, hi = gal.OLD_TEMPLATE_LINE_WINDOW
    norm = np.interp(6166.0, d[:, 0], d[:, 1])
    ends = np.interp([lo, hi], d[:, 0], d[:, 1]) / norm
    for lam_line in (6563.0, 6600.0):
        assert gal.old_population_sed(lam_line) == pytest.approx(np.interp(lam_line, [lo, hi], ends), rel=5e-3)
        assert gal.old_population_sed(lam_line) < np.interp(lam_line, d[:, 0], d[:, 1]) / norm - 0.01
    # D4000 by hand: mean f_nu = f_lambda lambda^2 over 4000-4100 A against 3850-3950 A, on the file's curve
    from scipy.interpolate import PchipInterpolator

    grid = np.linspace(3850.0, 4100.0, 25001)
    curve = PchipInterpolator(d[:, 0], d[:, 1])  # the monotone cubic between the file's nodes
    flam = curve(grid)
    for lam0, ew in gal.OLD_HK_LINES:  # the template's smoothed H&K taken out (each galaxy gets them sharp)
        sig = gal.OLD_TEMPLATE_SIGMA
        flam += curve(3920.0) * ew / (np.sqrt(2 * np.pi) * sig) * np.exp(-0.5 * ((grid - lam0) / sig) ** 2)
    fnu = flam * grid**2
    hand = fnu[grid >= 4000.0].mean() / fnu[grid <= 3950.0].mean()
    assert gal.old_population_d4000() == pytest.approx(hand, rel=2e-3)
    assert 1.9 < gal.old_population_d4000() < 2.2


def test_old_population_has_red_sequence_colours_and_a_uv_deficit():
    from astromodal.data.simulate.photometry import ab_magnitudes

    m = ab_magnitudes(gal.old_population_sed(model_grid())[None, :], bands=("u", "g", "r", "i", "z"))[0]
    # rest-frame colours of local red-sequence galaxies and 10-12 Gyr solar population models: u - g ~1.7-1.9,
    # g - r ~0.75-0.82 (e.g. Blanton et al. 2003; Bruzual & Charlot 2003)
    assert 1.6 < m[0] - m[1] < 1.9 and 0.74 < m[1] - m[2] < 0.84 and 0.3 < m[2] - m[3] < 0.45
    fnu = gal.old_population_sed(np.array([2300.0, 6166.0])) * np.array([2300.0, 6166.0]) ** 2
    # quiescent galaxies have NUV - r > 5.4 (Salim et al. 2007, ApJS 173, 267); the pure old light is redder
    assert -2.5 * np.log10(fnu[0] / fnu[1]) > 5.4


def test_young_share_follows_the_mass_formed_in_100_myr():
    """x = sSFR x 1e8 yr x 60 (the r-band M/L contrast), share x / (1 + x), within the floor and 0.9: by hand."""
    share = gal.young_fraction(np.array([-10.0, -11.0, -12.0, -13.0, -8.0]))
    assert share[:3] == pytest.approx([0.6 / 1.6, 0.06 / 1.06, 0.006 / 1.006], rel=1e-12)
    assert share[3] == gal.YOUNG_FLOOR and share[4] == 0.9
    assert np.all(np.diff(gal.young_fraction(np.linspace(-13.0, -8.0, 50))) >= 0.0)


def test_old_galaxy_d4000_above_the_quenched_threshold():
    """A purely old galaxy's narrow D4000 (with its break depression and H&K lines) exceeds 1.6, the value
    above which SDSS galaxies are old and quiescent (Kauffmann et al. 2003, MNRAS 341, 33)."""
    z = np.array([0.05, 0.3, 0.6])
    p = {"redshift": z, "young_fraction": np.zeros(3), "break_old": np.ones(3), "av_young": np.zeros(3),
         "abs_mag_r": np.full(3, -22.0), "sfr": np.full(3, 1e-6), "n2_ha": np.full(3, 0.5),
         "o3_hb": np.full(3, 1.0), "sigma_v": np.full(3, 100.0)}
    d = gal.d4000_narrow(gal.galaxy_spectra(p), z)
    assert np.all(d > 1.6) and np.all(d < 2.4)


# ---------------------------------------------------------------- quasars
def test_lls_removes_flux_below_its_lyman_edge_only():
    z_abs, tau = 2.0, 3.0
    edge = 911.75 * (1.0 + z_abs)
    lam = np.array([0.9 * edge, 0.999 * edge, 1.001 * edge, 5000.0])
    t = qso.lls_transmission(lam, np.array([[z_abs, np.nan]]), np.array([[tau, 0.0]]))[0]
    assert t[0] == pytest.approx(np.exp(-tau * 0.9**3))  # sigma ~ nu^-3
    assert t[1] == pytest.approx(np.exp(-tau * 0.999**3))
    assert t[2] == 1.0 and t[3] == 1.0


def test_lls_incidence_and_counts():
    assert qso.lls_incidence(3.7) == pytest.approx(1.9)
    assert qso.lls_incidence(1.0) == pytest.approx(1.9 * (2.0 / 4.7) ** 1.83)  # 0.398
    rng = np.random.default_rng(3)
    zq = np.full(40000, 3.0)
    z_abs, tau = qso.sample_lyman_limit_systems(rng, zq)
    mean = np.isfinite(z_abs).sum(axis=1).mean()
    expect = 1.9 / 4.7**1.83 / 2.83 * (4.0**2.83 - 1.0)  # int_0^3 l(z) dz = 1.96
    assert mean == pytest.approx(expect, rel=0.03)
    present = np.isfinite(z_abs)
    assert np.all((z_abs[present] > 0) & (z_abs[present] < 3.0))
    assert np.all((tau[present] >= 2.0) & (tau[present] <= 10**20.3 * 6.30e-18))
    # more absorbers at high z: l(z) rises, so the median z_abs lies above the midpoint
    assert np.median(z_abs[present]) > 1.5


def test_host_fraction_of_shen_2011():
    # at L_total = 1e44 erg/s (x = 0) the host is 0.8052 of the AGN; give the AGN's L and solve
    assert qso.host_fraction(np.array([1e44 / 1.8052]))[0] == pytest.approx(0.8052, rel=2e-3)
    assert qso.host_fraction(np.array([1e46]))[0] == 0.0  # x > 1.053: no host
    f = qso.host_fraction(np.geomspace(1e43, 1e45, 20))
    assert np.all(np.diff(f) < 0)  # fainter AGN, larger host share


def test_host_light_adds_shen_fraction_at_5100_and_reddens(monkeypatch):
    from astromodal.data.simulate.photometry import ab_magnitudes

    p = {"redshift": np.array([0.3]), "abs_mag_2500": np.array([-21.5]), "alpha": np.array([-0.44]),
         "ebv_smc": np.zeros(1), "fwhm_kms": np.array([4000.0]), "ew_scatter": np.ones((1, len(qso.BROAD_LINES))),
         "sfr": np.ones(1), "sigma_v": np.array([100.0]), "n2_ha": np.array([0.5]), "o3_hb": np.array([2.0])}
    with_host = qso.quasar_spectra(p, with_lines=False)
    ratio = qso.host_fraction(5100.0 * qso.continuum_lambda(5100.0, p["abs_mag_2500"], p["alpha"]))[0]
    assert ratio > 0.3
    monkeypatch.setattr(qso, "HOST_POLY", (0.0, 0.0, 0.0, 0.0))
    bare = qso.quasar_spectra(p, with_lines=False)
    k = np.searchsorted(model_grid(), 5100.0 * 1.3)
    assert with_host[0, k] / bare[0, k] == pytest.approx(1.0 + ratio, rel=2e-3)
    m_host, m_bare = ab_magnitudes(with_host)[0], ab_magnitudes(bare)[0]
    assert (m_host[1] - m_host[2]) > (m_bare[1] - m_bare[2]) + 0.05  # g - r redder
    assert np.all(m_host < m_bare)


# ---------------------------------------------------------------- SEGUE colour targeting
def test_segue_components_follow_the_colour_categories():
    rng = np.random.default_rng(11)
    stars = sv._survey_stars(rng, 4000, 0.15, "sdss")
    gr = (selection_magnitudes(stars["teff"], stars["radius"], "g", stars["logg"])
          - selection_magnitudes(stars["teff"], stars["radius"], "r", stars["logg"]))
    segue = np.isin(stars["component"], sv.COLOUR_TARGETED["sdss"])
    assert 0.3 < segue.mean() < 0.5  # the bright and faint SEGUE plates' 0.2 + 0.2 share
    g_dwarf = (gr > 0.48) & (gr < 0.55)
    fib = {name: n for name, n, _, _ in sv.SEGUE_CATEGORIES}
    share = fib["g_dwarf"] / sum(fib.values())
    # the G-dwarf category alone fills 375 of the 1135 fibres; the low-metallicity, F/G and K-giant ranges
    # overlap it a little
    assert g_dwarf[segue].mean() > share - 0.04
    assert g_dwarf[segue].mean() > g_dwarf[~segue].mean() + 0.1
    bhb = (gr > -0.5) & (gr < 0.2)
    assert bhb[segue].mean() > fib["bhb"] / sum(fib.values()) - 0.04


def test_the_other_selections_are_not_colour_targeted():
    rng = np.random.default_rng(2)
    stars = sv._survey_stars(rng, 200, 0.15, "sdss")
    assert "component" in stars
    assert "lamost" not in sv.COLOUR_TARGETED
