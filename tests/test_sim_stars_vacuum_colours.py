"""Session-22 stellar physics: vacuum wavelengths (Morton 2000 / Ciddor 1996) and K-dwarf colours (Pecaut &
Mamajek 2013)."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import speclite.filters

from astromodal.data.simulate import lamost_instrument as li
from astromodal.data.simulate import stars
from astromodal.data.simulate.physics import model_grid


def test_air_to_vacuum_matches_a_hand_computed_value():
    # H alpha, 6562.80 A in air: s = 1e4 / 6562.80 = 1.523740 um^-1, s^2 = 2.321784;
    # n - 1 = 8.336624e-5 + 2.408927e-2 / 127.784808 + 1.599741e-4 / 36.603904 = 2.762500e-4
    # -> 6562.80 x 1.00027625 = 6564.613 A (NIST: 6564.61 A in vacuum)
    assert float(stars.air_to_vacuum(6562.80)) == pytest.approx(6564.613, abs=0.002)
    # the shift grows to the blue in A (1.07 A at Ca II K 3933.66 -> NIST vacuum 3934.78)
    assert float(stars.air_to_vacuum(3933.66)) == pytest.approx(3934.77, abs=0.02)
    lam = np.array([4000.0, 6000.0, 9000.0])
    assert np.all(np.diff(stars.air_to_vacuum(lam) - lam) > 0)  # the shift lambda (n - 1) grows with lambda


def test_line_list_bands_and_sky_are_in_vacuum():
    lines = {name: lam for name, lam, *_ in stars.LINES}
    assert lines["H_alpha"] == pytest.approx(6564.61, abs=0.01)
    assert lines["CaT_8542"] == pytest.approx(8544.44, abs=0.02)
    assert stars.G_BAND[0] == pytest.approx(float(stars.air_to_vacuum(stars.G_BAND_AIR[0])))
    sky = dict((round(air), vac) for (air, _), (vac, _) in zip(li.SKY_LINES_AIR, li.SKY_LINES, strict=True))
    assert sky[5577] == pytest.approx(5578.85, abs=0.02)  # [O I] 5577.3 air (NIST 5577.34 -> 5578.89)
    # the H alpha absorption minimum of a slow A star sits at the vacuum wavelength on the model grid
    grid = model_grid()
    f = stars.star_spectra(np.array([9500.0]), np.ones(1), np.full(1, 10.0), np.zeros(1), feh=np.zeros(1))[0]
    win = np.abs(grid - 6563.7) < 8
    assert grid[win][np.argmin(f[win])] == pytest.approx(6564.61, abs=0.6)


def test_k_dwarf_colours_follow_pecaut_and_mamajek():
    # V - Ic of G2 V, K0 V, K3 V, K5 V (Pecaut & Mamajek 2013 Table 5): 0.713, 0.853, 1.030, 1.272; AB -> Vega
    # offsets of Blanton & Roweis (2007): V 0.02, I 0.45
    teff = np.array([5770.0, 5290.0, 4870.0, 4440.0])
    f = stars.star_spectra(teff, stars.dwarf_radius(teff), np.full(4, 10.0), np.zeros(4), logg=np.full(4, 4.5),
                           feh=np.zeros(4))
    bands = speclite.filters.load_filters("bessell-V", "bessell-I")
    m = bands.get_ab_magnitudes(f * u.erg / u.s / u.cm**2 / u.AA, model_grid() * u.AA)
    v_i = (np.asarray(m["bessell-V"]) - 0.02) - (np.asarray(m["bessell-I"]) - 0.45)
    assert v_i == pytest.approx([0.713, 0.853, 1.030, 1.272], abs=0.05)


def test_m_dwarf_colours_follow_pecaut_and_mamajek():
    """M0 V .. M5 V through the TiO bands: V - Ic (the calibration of TIO_VISIBLE_WEIGHT / FADE) and the SDSS
    r - i and i - z that the calibration does not use (Pecaut & Mamajek 2013, Table 5, version 2022.04.16).
    With the tabulated bands alone V - Ic was 1.60 .. 2.34 and r - i 0.56 .. 0.94."""
    from astromodal.data.simulate.photometry import ab_magnitudes

    teff = np.array([3850.0, 3660.0, 3560.0, 3430.0, 3210.0, 3060.0])
    radius = stars.dwarf_radius(teff)
    logg = stars.LOGG_SUN + np.log10(stars.dwarf_mass(teff)) - 2.0 * np.log10(radius)
    f = stars.star_spectra(teff, radius, np.full(6, 10.0), np.zeros(6), logg=logg, feh=np.zeros(6))
    bands = speclite.filters.load_filters("bessell-V", "bessell-I")
    m = bands.get_ab_magnitudes(f * u.erg / u.s / u.cm**2 / u.AA, model_grid() * u.AA)
    v_i = (np.asarray(m["bessell-V"]) - 0.02) - (np.asarray(m["bessell-I"]) - 0.45)
    assert v_i == pytest.approx([1.766, 2.005, 2.173, 2.420, 2.831, 3.278], abs=0.2)
    assert np.all(np.diff(v_i) > 0)  # redder at every later subtype
    sdss = ab_magnitudes(f, ("r", "i", "z"))
    r_i, i_z = sdss[:, 0] - sdss[:, 1], sdss[:, 1] - sdss[:, 2]
    assert r_i[:5] == pytest.approx([0.68, 0.815, 0.96, 1.21, 1.50], abs=0.1)
    assert i_z[:5] == pytest.approx([0.33, 0.41, 0.53, 0.61, 0.71], abs=0.06)
    assert r_i[5] > 1.4 and i_z[5] > 0.7  # M5 V: still redder than M4 V, short of the table (1.85, 0.91)
