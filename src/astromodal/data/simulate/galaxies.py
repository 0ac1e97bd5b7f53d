"""Galaxies: redshift, stellar mass, star-formation rate, a two-population continuum and emission lines.

Model and simplifications:

* redshift z in 0.02-0.3 with p(z) ~ z^2 (uniform in volume at low z); luminosity distance d_L from
  astropy's Planck18 cosmology;
* log stellar mass ~ N(10.3, 0.5) in 9-11.5; a mass-dependent quenched fraction; star-forming galaxies
  follow a main sequence log SFR = 0.76 (log M - 10) + N(0, 0.3) [Msun/yr], quenched ones lie 1.5 dex below;
* continuum = old population (a 4500 K black body with a 4000 A break of strength 1.8-2.4 and Ca II
  H&K absorption) + young population (a 15000 K black body, a weak 1.15 break and Balmer absorption), mixed
  by specific SFR; its amplitude is set by an absolute magnitude M_r from a mass-to-light ratio
  (monochromatic at rest 6166 A); observed f_lambda = L_lambda(lambda / (1 + z)) / (4 pi d_L^2 (1 + z));
* emission lines: L(Halpha) from the SFR by Kennicutt (1998), SFR = 7.9e-42 L(Halpha) [erg/s], no dust;
  Hbeta = Halpha / 2.86 (case B), [OII]3727 = 0.56 Halpha (Kennicutt's [OII] calibration), [NII]6584/Halpha
  and [OIII]5007/Hbeta from the mass, [NII]6548 = [NII]6584 / 3, [OIII]4959 = [OIII]5007 / 3, [SII] 6717+6731;
  fluxes F = L / (4 pi d_L^2); Gaussian profiles with velocity dispersion 50-150 km/s;
* images: Sersic profiles (n 0.7-1.5 for star-forming discs, 2.5-5 for quenched spheroids), effective
  radius 1.5-8 kpc seen at the angular-diameter distance, axis ratio and position angle.
"""

from __future__ import annotations

import numpy as np

from astromodal.data.simulate.physics import (
    AB_ZERO_FNU,
    C_ANGSTROM,
    C_KMS,
    PC_CM,
    add_gaussians,
    add_line_fluxes,
    angular_diameter_distance_pc,
    logistic,
    luminosity_distance_pc,
    model_grid,
    planck_lambda,
    planck_on_grid,
)

KENNICUTT_HALPHA = 7.9e-42  # Msun/yr per erg/s of Halpha
HALPHA_HBETA = 2.86
R_EFF_LAMBDA = 6166.0  # A: reference wavelength of the absolute magnitude M_r
M_SUN_R = 4.65  # AB absolute magnitude of the Sun in r

EMISSION_LINES = {
    "OII_3727": 3727.4, "H_beta": 4861.3, "OIII_4959": 4958.9, "OIII_5007": 5006.8, "NII_6548": 6548.1,
    "H_alpha": 6562.8, "NII_6584": 6583.5, "SII_6717": 6716.4, "SII_6731": 6730.8,
}


def sample_galaxies(rng: np.random.Generator, n: int, z_range: tuple[float, float] = (0.02, 0.3)
                    ) -> dict[str, np.ndarray]:
    """Draw ``n`` galaxies: redshift, log stellar mass, SFR (Msun/yr), population mix, lines and Sersic shape."""
    a3, b3 = z_range[0] ** 3, z_range[1] ** 3
    z = np.cbrt(rng.uniform(a3, b3, n))
    logm = np.clip(rng.normal(10.3, 0.5, n), 9.0, 11.5)
    quenched = rng.random(n) < 0.7 * logistic((logm - 10.5) / 0.3)
    log_sfr = 0.76 * (logm - 10.0) + rng.normal(0.0, 0.3, n) - np.where(quenched, 1.5 + rng.normal(0, 0.3, n), 0.0)
    log_ssfr = log_sfr - logm
    young = np.clip(0.5 + 0.35 * (log_ssfr + 10.0), 0.02, 0.9)
    log_ml = 0.5 * (1.0 - young) - 0.1 + rng.normal(0.0, 0.05, n)
    r_e_kpc = np.exp(rng.uniform(np.log(1.5), np.log(8.0), n)) * (1.0 + 0.3 * (logm - 10.3))
    return {
        "redshift": z,
        "log_mass": logm,
        "sfr": 10**log_sfr,
        "young_fraction": young,
        "abs_mag_r": M_SUN_R - 2.5 * (logm - log_ml),
        "break_old": rng.uniform(1.8, 2.4, n),
        "sigma_v": rng.uniform(50.0, 150.0, n),
        "n2_ha": np.clip(0.35 + 0.15 * (logm - 10.0) + rng.normal(0, 0.05, n), 0.05, 1.0),
        "o3_hb": np.clip(10 ** (0.3 - 0.6 * (logm - 9.5) + rng.normal(0, 0.15, n)), 0.1, 5.0),
        "sersic_n": np.where(quenched, rng.uniform(2.5, 5.0, n), rng.uniform(0.7, 1.5, n)),
        "r_e_arcsec": np.clip(np.maximum(r_e_kpc, 0.5) * 1e3 / angular_diameter_distance_pc(z) * 206264.806, 0.3, 8.0),
        "axis_ratio": rng.uniform(0.3, 1.0, n),
        "position_angle": rng.uniform(0.0, 180.0, n),
    }


def continuum_shape(lam_rest: np.ndarray, young: np.ndarray, break_old: np.ndarray) -> np.ndarray:
    """Unnormalised rest-frame continuum (same units as B_lambda) of the old+young mix; broadcasts.

    Each population's black body is divided by its break strength blueward of 4000 A (a smooth step
    of 40 A width), so the flux ratio across 4000 A exceeds 1 in every galaxy.
    """
    step = logistic((lam_rest - 4000.0) / 20.0)
    old = planck_lambda(lam_rest, 4500.0) / planck_lambda(R_EFF_LAMBDA, 4500.0)
    yng = planck_lambda(lam_rest, 15000.0) / planck_lambda(R_EFF_LAMBDA, 15000.0)
    old = old * (step + (1.0 - step) / break_old)
    yng = yng * (step + (1.0 - step) / 1.15)
    return (1.0 - young) * old + young * yng


def continuum_on_grid(z: np.ndarray, young: np.ndarray, break_old: np.ndarray) -> np.ndarray:
    """:func:`continuum_shape` at lambda_rest = model_grid / (1 + z), (N, L), using the fast black-body path."""
    lam_rest = model_grid()[None, :] / (1.0 + z[:, None])
    step = logistic((lam_rest - 4000.0) / 20.0)
    old = planck_on_grid(1.0 + z, np.full_like(z, 4500.0)) / planck_lambda(R_EFF_LAMBDA, 4500.0)
    yng = planck_on_grid(1.0 + z, np.full_like(z, 15000.0)) / planck_lambda(R_EFF_LAMBDA, 15000.0)
    old *= step + (1.0 - step) / break_old[:, None]
    yng *= step + (1.0 - step) / 1.15
    return (1.0 - young[:, None]) * old + young[:, None] * yng


def lambda_luminosity_at_ref(abs_mag: np.ndarray) -> np.ndarray:
    """L_lambda (erg/s/A) at the reference wavelength of an AB absolute magnitude (monochromatic)."""
    fnu_10pc = AB_ZERO_FNU * 10 ** (-0.4 * np.asarray(abs_mag))
    l_nu = 4.0 * np.pi * (10.0 * PC_CM) ** 2 * fnu_10pc
    return l_nu * C_ANGSTROM / R_EFF_LAMBDA**2


def halpha_luminosity(sfr: np.ndarray) -> np.ndarray:
    """Halpha luminosity in erg/s from the SFR in Msun/yr (Kennicutt 1998)."""
    return np.asarray(sfr, dtype=np.float64) / KENNICUTT_HALPHA


def emission_line_fluxes(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integrated line fluxes (erg/s/cm2) at the observer from SFR, line ratios and d_L."""
    d_cm = luminosity_distance_pc(p["redshift"]) * PC_CM
    ha = halpha_luminosity(p["sfr"]) / (4.0 * np.pi * d_cm**2)
    hb = ha / HALPHA_HBETA
    n2 = ha * p["n2_ha"]
    o3 = hb * p["o3_hb"]
    return {
        "H_alpha": ha, "H_beta": hb, "OII_3727": 0.56 * ha, "NII_6584": n2, "NII_6548": n2 / 3.0,
        "OIII_5007": o3, "OIII_4959": o3 / 3.0, "SII_6717": 0.12 * ha, "SII_6731": 0.09 * ha,
    }


def add_emission_lines(out: np.ndarray, p: dict[str, np.ndarray]) -> None:
    """Add the nebular lines to ``out`` (N, L + 1), observed at lambda_rest (1 + z), width sigma_v."""
    shift = 1.0 + p["redshift"]
    for name, flux in emission_line_fluxes(p).items():
        centre = EMISSION_LINES[name] * shift
        add_line_fluxes(out, centre, centre * p["sigma_v"] / C_KMS, flux)


def galaxy_spectra(p: dict[str, np.ndarray], with_lines: bool = True) -> np.ndarray:
    """Observed flux density (N, L) in erg / (s cm2 Angstrom) on the model grid."""
    grid = model_grid()
    z = p["redshift"]
    shape = continuum_on_grid(z, p["young_fraction"], p["break_old"])
    d_cm = luminosity_distance_pc(z) * PC_CM
    scale = lambda_luminosity_at_ref(p["abs_mag_r"]) / (4.0 * np.pi * d_cm**2 * (1.0 + z))
    out = np.zeros((len(z), len(grid) + 1))
    out[:, :-1] = shape * scale[:, None]
    _add_stellar_absorption(out, p)
    if with_lines:
        add_emission_lines(out, p)
    return out[:, :-1]


def _add_stellar_absorption(out: np.ndarray, p: dict[str, np.ndarray]) -> None:
    """Ca II H&K of the old stars and Balmer absorption of the young ones (equivalent widths of a few A)."""
    shift = 1.0 + p["redshift"]
    grid = model_grid()
    cont_idx = np.clip(np.searchsorted(grid, 3920.0 * shift), 0, len(grid) - 1)
    level = out[np.arange(len(shift)), cont_idx]
    old = 1.0 - p["young_fraction"]
    for lam0, ew in ((3933.7, 5.0), (3968.5, 4.5)):
        sigma = 6.0 * shift
        add_gaussians(out, lam0 * shift, sigma, -level * old * ew * shift / (np.sqrt(2 * np.pi) * sigma))
    for lam0 in (4101.7, 4340.5, 4861.3):
        sigma = 8.0 * shift
        amp = -level * p["young_fraction"] * 4.0 * shift / (np.sqrt(2 * np.pi) * sigma)
        add_gaussians(out, lam0 * shift, sigma, amp)
