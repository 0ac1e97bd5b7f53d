"""Kennicutt (1998) SFR from SDSS SPZLINE Halpha fluxes: hand values, statuses, the real spectra."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM, Planck18
from astropy.io import fits
from scipy.integrate import quad

from astromodal.analysis.sfr import balmer_attenuation, kennicutt_sfr, kennicutt_table, line_luminosity
from astromodal.errors import DataFormatError

C_KMS = 299792.458
MPC_CM = 3.0856775814913673e24


def test_luminosity_distance_by_hand():
    # Einstein-de Sitter (Om = 1, no Lambda): d_L = 2 (c / H0) (1 + z) (1 - 1 / sqrt(1 + z)) exactly;
    # z = 0.1, H0 = 70: 2 x 4282.7494 x 1.1 x 0.0465374 = 438.478 Mpc
    eds = FlatLambdaCDM(H0=70, Om0=1.0, Tcmb0=0)
    hand = 2 * C_KMS / 70 * 1.1 * (1 - 1 / math.sqrt(1.1))
    assert hand == pytest.approx(438.478, abs=1e-3)
    assert eds.luminosity_distance(0.1).to_value(u.Mpc) == pytest.approx(hand, rel=1e-9)
    # Planck18 against its own Friedmann integral without radiation (which moves d_L(0.1) by < 1e-4): 475.8 Mpc
    om = Planck18.Om0
    integral = quad(lambda z: 1 / math.sqrt(om * (1 + z) ** 3 + 1 - om), 0, 0.1)[0]
    assert Planck18.luminosity_distance(0.1).to_value(u.Mpc) == pytest.approx(
        1.1 * C_KMS / Planck18.H0.value * integral, rel=2e-4)


def test_sfr_by_hand():
    # F = 100 x 1e-17 = 1e-15 erg/s/cm2 at z = 0.1 in EdS (H0 = 70): d_L = 438.478 Mpc = 1.35300e27 cm,
    # L = 4 pi d_L^2 F = 2.30041e40 erg/s, SFR = 7.9e-42 L = 0.181733 Msun/yr
    eds = FlatLambdaCDM(H0=70, Om0=1.0, Tcmb0=0)
    d_cm = 2 * C_KMS / 70 * 1.1 * (1 - 1 / math.sqrt(1.1)) * MPC_CM
    lum_hand = 4 * math.pi * d_cm**2 * 1e-15
    assert lum_hand == pytest.approx(2.30041e40, rel=1e-5)
    lum = line_luminosity(100 * 1e-17 * u.erg / u.s / u.cm**2, 0.1, eds)
    assert lum.unit == u.erg / u.s and lum.value == pytest.approx(lum_hand, rel=1e-9)
    sfr = kennicutt_sfr(lum)
    assert sfr.unit == u.Msun / u.yr and sfr.value == pytest.approx(7.9e-42 * lum_hand, rel=1e-12)
    assert sfr.value == pytest.approx(0.181733, rel=1e-5)


def test_balmer_attenuation_by_hand():
    # Calzetti k'(6564.61 A) = 2.659 (-1.857 + 1.040 / 0.656461) + 4.05 = 3.32478;
    # k'(4862.68 A) = 2.659 (-2.156 + 1.509 / x - 0.198 / x^2 + 0.011 / x^3) + 4.05 = 4.59655 (x = 0.486268)
    x = 0.486268
    k_ha = 2.659 * (-1.857 + 1.040 / 0.656461) + 4.05
    k_hb = 2.659 * (-2.156 + 1.509 / x - 0.198 / x**2 + 0.011 / x**3) + 4.05
    assert k_ha == pytest.approx(3.32478, abs=1e-4) and k_hb == pytest.approx(4.59655, abs=1e-4)
    hand = k_ha * 2.5 / (k_hb - k_ha) * math.log10(4.0 / 2.86)  # decrement 4: A(Halpha) = 0.9523 mag
    assert balmer_attenuation(400.0, 100.0, 6564.61, 4862.68) == pytest.approx(hand, rel=1e-5)
    assert hand == pytest.approx(0.9523, abs=1e-3)
    assert balmer_attenuation(280.0, 100.0) == 0.0  # below case B: no attenuation
    assert math.isnan(balmer_attenuation(280.0, -1.0))


def _spec(path, cls, z, ha, ha_err, hb=(50.0, 5.0), wave=(3800.0, 9200.0), plate=1000, fiber=1):
    """A minimal SDSS spec-*.fits: COADD, SPECOBJ (CLASS, Z, ...), SPZLINE with H_beta and H_alpha."""
    loglam = np.linspace(np.log10(wave[0]), np.log10(wave[1]), 200)
    coadd = fits.BinTableHDU.from_columns([fits.Column("flux", "E", array=np.ones(200)),
                                           fits.Column("loglam", "E", array=loglam),
                                           fits.Column("ivar", "E", array=np.ones(200))], name="COADD")
    info = fits.BinTableHDU.from_columns([
        fits.Column("PLATE", "J", array=[plate]), fits.Column("MJD", "J", array=[52000]),
        fits.Column("FIBERID", "J", array=[fiber]), fits.Column("PLUG_RA", "D", array=[10.0]),
        fits.Column("PLUG_DEC", "D", array=[1.0]), fits.Column("CLASS", "6A", array=[cls]),
        fits.Column("Z", "E", array=[z])], name="SPECOBJ")
    lines = fits.BinTableHDU.from_columns([
        fits.Column("LINENAME", "13A", array=["H_beta", "H_alpha"]),
        fits.Column("LINEWAVE", "D", array=[4862.68, 6564.61]),
        fits.Column("LINEAREA", "E", array=[hb[0], ha]), fits.Column("LINEAREA_ERR", "E", array=[hb[1], ha_err])],
        name="SPZLINE")
    fits.HDUList([fits.PrimaryHDU(), coadd, info, lines]).writeto(path)
    return path


def test_statuses_and_classes(tmp_path):
    eds = FlatLambdaCDM(H0=70, Om0=1.0, Tcmb0=0)
    _spec(tmp_path / "spec-1000-52000-0001.fits", "GALAXY", 0.1, 100.0, 2.0, fiber=1)       # detected, S/N 50
    _spec(tmp_path / "spec-1000-52000-0002.fits", "GALAXY", 0.1, 4.0, 2.0, fiber=2)         # S/N 2 < 3
    _spec(tmp_path / "spec-1000-52000-0003.fits", "GALAXY", 0.5, 0.0, -2.0, fiber=3)        # 9847 A > 9200 A
    _spec(tmp_path / "spec-1000-52000-0004.fits", "GALAXY", 0.1, 0.0, -1.0, fiber=4)        # not fitted
    _spec(tmp_path / "spec-1000-52000-0005.fits", "QSO", 2.5, 0.0, -1.0, fiber=5)
    res = kennicutt_table(tmp_path, cosmology=eds)
    t = res.table.set_index("id")
    assert list(t["status"]) == ["detected", "low_snr", "outside_spectrum", "not_measured"]
    assert [e["class"] for e in res.excluded] == ["QSO"]
    det = t.loc["1000-52000-0001"]
    assert det["halpha_snr"] == pytest.approx(50.0) and det["sfr"] == pytest.approx(0.181733, rel=1e-5)
    assert det["log_sfr"] == pytest.approx(math.log10(0.181733), abs=1e-5)
    # decrement 100 / 50 = 2 < 2.86: no attenuation, sfr_dust = sfr
    assert det["a_halpha"] == 0.0 and det["sfr_dust"] == pytest.approx(det["sfr"])
    low = t.loc["1000-52000-0002"]
    assert np.isnan(low["sfr"]) and low["sfr_3sigma_limit"] == pytest.approx(0.181733 * 6 / 100, rel=1e-5)
    assert t.loc["1000-52000-0003"]["halpha_obs_wave"] == pytest.approx(6564.61 * 1.5)
    assert np.isnan(t.loc["1000-52000-0003"]["sfr"]) and np.isnan(t.loc["1000-52000-0004"]["sfr"])
    assert res.meta["n_files"] == 5 and "lower limit" in res.meta["aperture"]


def test_bad_files_are_one_line(tmp_path):
    (tmp_path / "only").mkdir()
    _spec(tmp_path / "only" / "other.fits", "GALAXY", 0.1, 1.0, 1.0)
    with pytest.raises(DataFormatError, match="only: no spec-"):
        kennicutt_table(tmp_path / "only")
    path = tmp_path / "spec-1000-52000-0009.fits"
    _spec(path, "GALAXY", 0.1, 1.0, 1.0, fiber=9)
    with fits.open(path) as hdul:
        fits.HDUList([h.copy() for h in hdul[:3]]).writeto(tmp_path / "spec-1000-52000-0010.fits")
    with pytest.raises(DataFormatError, match=r"spec-1000-52000-0010.fits: no SPZLINE HDU"):
        kennicutt_table([tmp_path / "spec-1000-52000-0010.fits"])


@pytest.mark.realdata
def test_real_sdss_spectra(shared_data):
    res = kennicutt_table(shared_data / "sdss-spectra-images")
    t = res.table
    assert len(t) == 14 and set(t["class"]) == {"GALAXY"}          # 14 galaxy files (one is a byte copy)
    assert [e["class"] for e in res.excluded] == ["QSO"] and res.excluded[0]["z"] == pytest.approx(2.5623, abs=1e-3)
    assert t["z"].min() == pytest.approx(0.0286, abs=2e-4) and t["z"].max() == pytest.approx(0.6065, abs=1e-3)
    det = t[t["status"] == "detected"]
    assert len(det) == 13
    assert np.isfinite(det["sfr"]).all() and (det["sfr"] > 0).all()
    assert (det["sfr"] < 10).all() and (det["halpha_snr"] >= 3).all()    # fibre SFRs of nearby galaxies
    high = t[t["z"] > 0.4]
    assert list(high["status"]) == ["outside_spectrum"] and high["sfr"].isna().all()
    # the eight epochs of the bright 0412 galaxy agree to 0.07 dex
    bright = det[det["id"].str.startswith("0412")]
    assert len(bright) == 9 and bright["log_sfr"].max() - bright["log_sfr"].min() < 0.07
