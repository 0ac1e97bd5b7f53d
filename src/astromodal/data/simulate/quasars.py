"""Quasars: a power-law continuum with broad emission lines, the Lyman-alpha forest and host narrow lines.

Model and simplifications:

* selection: each quasar belongs to the SDSS-I/II sample (i < 19.1 below z = 3, i < 20.2 above; Richards et
  al. 2002) or to BOSS/eBOSS (r < 22; Myers et al. 2015) in the shares of :data:`QSO_SAMPLES`; (z, M_2500) in
  0.1 < z < 5 are drawn from dV/dz (Planck18) times the Croom et al. (2009) double power-law luminosity function
  with pure luminosity evolution to z = 2.2 and the Fan et al. (2001) density decline 10^(-0.47 z) above, and
  kept when the model continuum (power law times the forest, no lines) passes the magnitude limit; no colour
  selection; M_2500 = M_g(z=2) - 0.25 (Richards et al. 2006; Ross et al. 2013);
  observed f_lambda = L_lambda(lambda / (1 + z)) / (4 pi d_L^2 (1 + z));
* continuum f_nu ~ nu^alpha with alpha ~ N(-0.44, 0.3) (Vanden Berk et al. 2001 composite slope, the
  object-to-object spread of Richards et al. 2003) (so L_lambda ~ lambda^-(2 + alpha)); no Fe II
  pseudo-continuum, no host starlight;
* broad lines Ly alpha 1216, N V 1240, Si IV 1400, C IV 1549, C III] 1909, Mg II 2798, H gamma, H beta, H alpha
  (and narrow [O III] 5007) as Gaussians at (1 + z) lambda_rest, with rest equivalent widths after the
  SDSS composite (Vanden Berk et al. 2001) scattered by 0.22 dex and log-normal FWHM (4000 km/s, 0.15 dex,
  roughly the spread of the Shen et al. 2011 DR7 catalogue); lines outside the
  window simply do not show;
* blueward of Ly alpha the flux is multiplied by exp(-tau_eff), tau_eff = 0.0018 (1 + z_abs)^3.92
  (Lyman-alpha forest, Faucher-Giguere et al. 2008), and by 0.1 below the Lyman limit (912 A rest);
* the host galaxy adds narrow nebular lines from its SFR (Kennicutt, as for galaxies); the parameter ``sfr`` is
  the host's and drives those lines only: the survey's SFR targets (``sfr``, ``log_sfr``) are NaN for quasars,
  whose light is the AGN's (SFR does not apply; a NaN target is left out of the loss);
* images: point sources.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from astromodal.data.simulate.galaxies import add_emission_lines
from astromodal.data.simulate.photometry import coarse_ab_magnitudes, coarse_band_grid
from astromodal.data.simulate.physics import (
    AB_ZERO_FNU,
    C_ANGSTROM,
    C_KMS,
    PC_CM,
    add_line_fluxes,
    differential_comoving_volume,
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


#: Croom et al. (2009, 2SLAQ+SDSS) double power-law luminosity function with pure luminosity evolution:
#: bright slope, faint slope, M*_g(z=0) and M*_g(z) = M*_g(0) - 2.5 (k1 z + k2 z^2) (M_g K-corrected to z = 2)
QLF_ALPHA, QLF_BETA, QLF_MSTAR0, QLF_K1, QLF_K2 = -3.33, -1.42, -22.17, 1.46, -0.328
#: above the peak (z_p = 2.2) M* is held and the space density falls as 10^(-0.47 z) (Fan et al. 2001)
QLF_ZPEAK, QLF_DECLINE = 2.2, 0.47
#: M_2500 = M_i(z=2) (i at z = 2 samples rest 2500 A; Richards et al. 2006) = M_g(z=2) - 0.25 (Ross et al. 2013)
MG_TO_M2500 = -0.25
#: quasar samples: (share, band, limit below z = 3, limit from z = 3): SDSS-I/II i < 19.1 / 20.2
#: (Richards et al. 2002; ~0.1M DR7 quasars) and BOSS/eBOSS r < 22 (Myers et al. 2015; ~0.65M of DR16Q)
QSO_SAMPLES = {"legacy": (0.14, "i", 19.1, 20.2), "boss": (0.86, "r", 22.0, 22.0)}
Z_RANGE = (0.1, 5.0)
_QSO_BANDS = ("r", "i")


def sample_quasars(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` quasars of an SDSS-like spectroscopic sample: a target sample per quasar (shares of
    :data:`QSO_SAMPLES`), (z, M_2500) from the luminosity function in the comoving volume, kept when the
    continuum (with the forest, no lines) passes the sample's magnitude limit; slopes and line strengths."""
    names = tuple(QSO_SAMPLES)
    shares = np.array([QSO_SAMPLES[k][0] for k in names])
    sample = rng.choice(len(names), size=n, p=shares / shares.sum())
    z, mag = np.zeros(n), np.zeros(n)
    alpha = rng.normal(-0.44, 0.3, n)
    for k, name in enumerate(names):
        rows = np.flatnonzero(sample == k)
        todo = rows
        for _ in range(400):
            if len(todo) == 0:
                break
            zc, mc = _propose(rng, len(todo), name)
            ok = selected_quasars(name, zc, continuum_magnitudes(zc, mc, alpha[todo]))
            z[todo[ok]], mag[todo[ok]] = zc[ok], mc[ok]
            todo = todo[~ok]
        else:
            raise RuntimeError(f"quasar target sample {name!r}: too few candidates pass the limit")
    return {
        "redshift": z,
        "abs_mag_2500": mag,
        "alpha": alpha,
        "target_sample": sample.astype(np.int64),
        "fwhm_kms": 10 ** rng.normal(np.log10(4000.0), 0.15, n),
        "ew_scatter": 10 ** rng.normal(0.0, 0.22, (n, len(BROAD_LINES))),
        "sfr": 10 ** rng.normal(0.8, 0.5, n),
        "sigma_v": rng.uniform(80.0, 200.0, n),
        "n2_ha": rng.uniform(0.4, 1.0, n),
        "o3_hb": rng.uniform(1.0, 5.0, n),
    }


def luminosity_function(mag_g: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Relative space density per mag of quasars of M_g(z=2) at z (Croom et al. 2009 PLE; Fan et al. 2001 decline):
    phi = D(z) / (10^(0.4 (alpha + 1)(M - M*)) + 10^(0.4 (beta + 1)(M - M*)))."""
    zz = np.minimum(z, QLF_ZPEAK)
    mstar = QLF_MSTAR0 - 2.5 * (QLF_K1 * zz + QLF_K2 * zz**2)
    dm = mag_g - mstar
    density = 10 ** (-QLF_DECLINE * np.maximum(z - QLF_ZPEAK, 0.0))
    return density / (10 ** (0.4 * (QLF_ALPHA + 1.0) * dm) + 10 ** (0.4 * (QLF_BETA + 1.0) * dm))


@lru_cache(maxsize=4)
def _proposal_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z and M_g(z=2) grids and the (Z, M) density dV/dz phi(M, z), cut 1.5 mag fainter than the sample's
    limit would allow for a flat-spectrum (f_nu constant) source at 2500 A (the exact cut comes after)."""
    _, _, lim_lo, lim_hi = QSO_SAMPLES[name]
    zg = np.linspace(Z_RANGE[0], Z_RANGE[1], 246)
    mg = np.linspace(-31.0, -18.0, 261)
    limit = np.where(zg < 3.0, lim_lo, lim_hi)
    m_faint = limit - 5.0 * np.log10(luminosity_distance_pc(zg) / 10.0) + 2.5 * np.log10(1.0 + zg) + 1.5
    dens = differential_comoving_volume(zg)[:, None] * luminosity_function(mg[None, :], zg[:, None])
    dens = np.where(mg[None, :] + MG_TO_M2500 < m_faint[:, None], dens, 0.0)
    return zg, mg, dens


def _propose(rng: np.random.Generator, m: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``m`` candidate (z, M_2500) drawn from the gridded density (a cell, then uniform within it)."""
    zg, mg, dens = _proposal_table(name)
    cdf = np.cumsum(dens.ravel())
    cell = np.minimum(np.searchsorted(cdf, rng.random(m) * cdf[-1], side="right"), cdf.size - 1)
    iz, im = np.divmod(cell, len(mg))
    z = np.clip(zg[iz] + (rng.random(m) - 0.5) * (zg[1] - zg[0]), *Z_RANGE)
    return z, mg[im] + (rng.random(m) - 0.5) * (mg[1] - mg[0]) + MG_TO_M2500


def continuum_magnitudes(z: np.ndarray, abs_mag: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Model r i AB magnitudes (N, 2) of the power law times the Lyman-alpha forest (no lines), coarse grid."""
    lam, _ = coarse_band_grid(_QSO_BANDS)
    zz = z[:, None]
    d_cm = luminosity_distance_pc(z) * PC_CM
    f = continuum_lambda(lam[None, :] / (1.0 + zz), abs_mag[:, None], alpha[:, None])
    f *= (1.0 / (4.0 * np.pi * d_cm**2 * (1.0 + z)))[:, None] * lyman_transmission(lam[None, :], zz)
    return coarse_ab_magnitudes(f, _QSO_BANDS)


def selected_quasars(name: str, z: np.ndarray, ri: np.ndarray) -> np.ndarray:
    """Whether quasars at ``z`` with model (r, i) pass sample ``name``'s limit (:data:`QSO_SAMPLES`)."""
    _, band, lim_lo, lim_hi = QSO_SAMPLES[name]
    return ri[:, _QSO_BANDS.index(band)] < np.where(z < 3.0, lim_lo, lim_hi)


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
