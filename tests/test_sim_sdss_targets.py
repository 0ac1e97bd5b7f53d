"""Physics of the SDSS-photometry realism additions (issue 14, session 22): the old stellar population built
from the simulator's own stellar continua, Lyman-limit systems and host-galaxy light of quasars, and SEGUE's
colour-targeted stellar categories. Hand-computed values where the physics has one."""

from __future__ import annotations

import numpy as np
import pytest

from astromodal.data.simulate import galaxies as gal
from astromodal.data.simulate import quasars as qso
from astromodal.data.simulate import survey as sv
from astromodal.data.simulate.physics import cosmic_age_gyr, model_grid
from astromodal.data.simulate.stars import selection_magnitudes


# ---------------------------------------------------------------- the old stellar population
def test_isochrone_follows_the_lifetime_law_and_the_core_mass_luminosity_relation():
    assert gal.turnoff_mass(10.0) == pytest.approx(1.0)  # t_MS = 10 Gyr M^-2.5
    assert gal.turnoff_mass(2.0) == pytest.approx(0.2 ** -0.4)  # 1.904 Msun
    pts = gal.old_population_points(10.0)
    rgb = pts["phase"] == 2
    # RGB tip: L = 2.3e5 (0.47)^6 = 2479 Lsun; the last bin's centre lies just below it
    assert 2000.0 < pts["luminosity"][rgb].max() < 2.3e5 * 0.47**6
    # fuel-consumption theorem by hand for one RGB bin: N = b 9.75e10 X (M_c / 6) d ln L / L
    k = np.flatnonzero(rgb)[10]
    lum = pts["luminosity"][k]
    ln_edges = np.linspace(np.log(3.0), np.log(2.3e5 * 0.47**6), 61)
    rate = gal.kroupa_imf(1.0) * 1.0 / (2.5 * 10.0e9)
    expect = rate * 9.75e10 * 0.70 * (lum / 2.3e5) ** (1 / 6) / 6.0 * np.diff(ln_edges)[0] / lum
    assert pts["number"][k] == pytest.approx(expect, rel=1e-9)
    # Kroupa: continuous at 0.5 Msun, slope -2.3 above
    assert gal.kroupa_imf(0.5) == pytest.approx(1.0)
    assert gal.kroupa_imf(2.0) / gal.kroupa_imf(1.0) == pytest.approx(2.0**-2.3)
    assert gal.kroupa_imf(0.05) == 0.0
    # giants carry most of the bolometric light of an old population (Renzini & Buzzoni 1986: ~half)
    light = pts["number"] * pts["luminosity"]
    assert 0.4 < light[pts["phase"] >= 2].sum() / light.sum() < 0.8


def test_old_population_has_a_real_break_and_uv_deficit_that_grow_with_age():
    d4 = gal.old_population_d4000(np.array([2.0, 5.0, 10.0, 13.0]))
    assert np.all(np.diff(d4) > 0)  # the continuum's own break deepens as the turnoff cools
    assert d4[2] > 1.25
    lam = np.array([2300.0, 6166.0])
    fnu = gal.old_population_sed(lam, 10.0) * lam**2
    nuv_r = -2.5 * np.log10(fnu[0] / fnu[1])
    # quiescent galaxies have NUV - r > 5.4 (Salim et al. 2007, ApJS 173, 267); the pure old light is redder
    assert nuv_r > 5.4
    young = gal.old_population_sed(lam, 2.0) * lam**2
    assert -2.5 * np.log10(young[0] / young[1]) < nuv_r
    # normalised to 1 at 6166 A at every age
    assert gal.old_population_sed(6166.0, 7.3) == pytest.approx(1.0, rel=1e-6)


def test_old_galaxy_d4000_above_the_quenched_threshold():
    """A purely old galaxy's narrow D4000 (with its break depression and H&K lines) exceeds 1.6, the value
    above which SDSS galaxies are old and quiescent (Kauffmann et al. 2003, MNRAS 341, 33)."""
    z = np.array([0.05, 0.3, 0.6])
    p = {"redshift": z, "young_fraction": np.zeros(3), "break_old": np.full(3, 2.0), "av_young": np.zeros(3),
         "abs_mag_r": np.full(3, -22.0), "sfr": np.full(3, 1e-6), "n2_ha": np.full(3, 0.5),
         "o3_hb": np.full(3, 1.0), "sigma_v": np.full(3, 100.0)}
    d = gal.d4000_narrow(gal.galaxy_spectra(p), z)
    assert np.all(d > 1.6) and np.all(d < 2.4)


def test_old_age_follows_cosmic_time():
    assert gal.old_age_gyr(0.0) == pytest.approx(float(cosmic_age_gyr(np.array(0.0)))
                                                  - float(cosmic_age_gyr(np.array(3.0))))
    assert 11.0 < gal.old_age_gyr(0.0) < 12.0  # 13.8 - 2.2 Gyr (Planck18)
    assert gal.old_age_gyr(10.0) == 2.0  # held at the table's youngest age


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
