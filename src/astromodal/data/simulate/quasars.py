"""Quasars: a power-law continuum with broad emission lines, the Lyman-alpha forest and host narrow lines.

Model and simplifications:

* redshift uniform in 0.1-3.0; absolute magnitude at rest 2500 A, M_2500, uniform over a 3.5 mag range that
  brightens with z (a crude flux limit); observed f_lambda = L_lambda(lambda / (1 + z)) / (4 pi d_L^2 (1 + z));
* continuum f_nu ~ nu^alpha with alpha ~ N(-0.5, 0.2) (so L_lambda ~ lambda^-(2 + alpha)); no Fe II
  pseudo-continuum, no host starlight;
* broad lines Ly alpha 1216, N V 1240, Si IV 1400, C IV 1549, C III] 1909, Mg II 2798, H gamma, H beta, H alpha
  (and narrow [O III] 5007) as Gaussians at (1 + z) lambda_rest, with rest equivalent widths after the
  SDSS composite (Vanden Berk et al. 2001) scattered by 0.15 dex and FWHM 2000-6000 km/s; lines outside the
  window simply do not show;
* blueward of Ly alpha the flux is multiplied by exp(-tau_eff), tau_eff = 0.0018 (1 + z_abs)^3.92
  (Lyman-alpha forest), and by 0.1 below the Lyman limit (912 A rest);
* the host galaxy adds narrow nebular lines from its SFR (Kennicutt, as for galaxies); ``sfr`` is the host's;
* images: point sources.
"""

from __future__ import annotations

import numpy as np

from astromodal.data.simulate.galaxies import add_emission_lines
from astromodal.data.simulate.physics import (
    AB_ZERO_FNU,
    C_ANGSTROM,
    C_KMS,
    PC_CM,
    add_line_fluxes,
    luminosity_distance_pc,
    model_grid,
)

#: (rest wavelength A, rest equivalent width A, broad?) of the quasar lines.
BROAD_LINES = {
    "Ly_alpha": (1215.7, 90.0, True), "NV_1240": (1240.1, 20.0, True), "SiIV_1400": (1400.0, 8.0, True),
    "CIV_1549": (1549.1, 30.0, True), "CIII_1909": (1908.7, 22.0, True), "MgII_2798": (2798.8, 32.0, True),
    "H_gamma": (4340.5, 13.0, True), "H_beta": (4861.3, 46.0, True), "OIII_5007": (5006.8, 12.0, False),
    "H_alpha": (6562.8, 195.0, True),
}
REF_LAMBDA = 2500.0  # A, rest wavelength of M_2500


def sample_quasars(rng: np.random.Generator, n: int, z_range: tuple[float, float] = (0.1, 3.0)
                   ) -> dict[str, np.ndarray]:
    """Draw ``n`` quasars: redshift, M_2500, slope alpha, line FWHM and strengths, host SFR."""
    z = rng.uniform(z_range[0], z_range[1], n)
    return {
        "redshift": z,
        "abs_mag_2500": rng.uniform(-25.0, -21.5, n) - 1.2 * np.minimum(z, 2.5),
        "alpha": rng.normal(-0.5, 0.2, n),
        "fwhm_kms": rng.uniform(2000.0, 6000.0, n),
        "ew_scatter": 10 ** rng.normal(0.0, 0.15, (n, len(BROAD_LINES))),
        "sfr": 10 ** rng.normal(0.8, 0.5, n),
        "sigma_v": rng.uniform(80.0, 200.0, n),
        "n2_ha": rng.uniform(0.4, 1.0, n),
        "o3_hb": rng.uniform(1.0, 5.0, n),
    }


def continuum_lambda(lam_rest: np.ndarray, abs_mag: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Rest-frame L_lambda (erg/s/A) of the power law f_nu ~ nu^alpha normalised to M_2500; broadcasts."""
    l_nu = 4.0 * np.pi * (10.0 * PC_CM) ** 2 * AB_ZERO_FNU * 10 ** (-0.4 * abs_mag)
    l_lam_ref = l_nu * C_ANGSTROM / REF_LAMBDA**2
    return l_lam_ref * (lam_rest / REF_LAMBDA) ** (-(2.0 + alpha))


def lyman_transmission(lam_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Mean transmission of the Lyman-alpha forest (and 0.1 below the Lyman limit) at observed lambda."""
    z_abs = lam_obs / 1215.67 - 1.0
    forest = np.where(z_abs < z, np.exp(-0.0018 * np.clip(1.0 + z_abs, 1.0, None) ** 3.92), 1.0)
    return forest * np.where(lam_obs < 911.8 * (1.0 + z), 0.1, 1.0)


def quasar_spectra(p: dict[str, np.ndarray], with_lines: bool = True) -> np.ndarray:
    """Observed flux density (N, L) in erg / (s cm2 Angstrom) on the model grid."""
    grid = model_grid()
    z = p["redshift"]
    zz = z[:, None]
    d_cm = luminosity_distance_pc(z) * PC_CM
    dilution = 1.0 / (4.0 * np.pi * d_cm**2 * (1.0 + z))
    out = np.zeros((len(z), len(grid) + 1))
    out[:, :-1] = continuum_lambda(grid[None, :] / (1.0 + zz), p["abs_mag_2500"][:, None],
                                   p["alpha"][:, None]) * dilution[:, None]
    if with_lines:
        for k, (lam0, ew, broad) in enumerate(BROAD_LINES.values()):
            centre = lam0 * (1.0 + z)
            cont_obs = continuum_lambda(lam0, p["abs_mag_2500"], p["alpha"]) * dilution
            flux = ew * p["ew_scatter"][:, k] * (1.0 + z) * cont_obs
            fwhm = p["fwhm_kms"] if broad else np.full_like(z, 500.0)
            sigma = centre * fwhm / C_KMS / 2.3548
            visible = (centre > grid[0]) & (centre < grid[-1])
            add_line_fluxes(out, np.where(visible, centre, grid[0]), np.where(visible, sigma, 1.0),
                            np.where(visible, flux, 0.0))
        add_emission_lines(out, p)
    flux = out[:, :-1]
    flux *= lyman_transmission(grid[None, :], zz)
    return flux
