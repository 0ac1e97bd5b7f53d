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
  pseudo-continuum;
* intrinsic dust: the whole rest-frame spectrum is reddened by the SMC bar curve (Gordon et al. 2003,
  ``dust_extinction``'s ``G03_SMCBar``, the law that fits reddened SDSS quasars, Richards et al. 2003;
  Hopkins et al. 2004) with E(B - V) drawn from an exponential of mean :data:`QSO_EBV_MEAN` = 0.025 mag:
  most quasars have E(B - V) < 0.04 and ~2 % exceed 0.1 (Hopkins et al. 2004, AJ 128, 1112); the target
  selection sees the reddened continuum (Milky Way foreground extinction is added to the catalogue
  magnitudes by :mod:`.survey`);
* broad lines Ly alpha 1216, N V 1240, Si IV 1400, C IV 1549, C III] 1909, Mg II 2798, H gamma, H beta, H alpha
  (and narrow [O III] 5007) as Gaussians at (1 + z) lambda_rest, with rest equivalent widths after the
  SDSS composite (Vanden Berk et al. 2001) scattered by 0.22 dex and log-normal FWHM (4000 km/s, 0.15 dex,
  roughly the spread of the Shen et al. 2011 DR7 catalogue); lines outside the
  window simply do not show;
* blueward of Ly alpha the flux is multiplied by exp(-tau_eff), tau_eff = 0.0018 (1 + z_abs)^3.92
  (Lyman-alpha forest, Faucher-Giguere et al. 2008), and by 0.1 below the Lyman limit (912 A rest);
  blueward of Ly beta, gamma, delta their forests add tau_j = (A_j / A_alpha) tau_eff(1 + z_j) with
  1 + z_j = lambda / lambda_j and Madau (1995, ApJ 441, 18, eq. 12) coefficient ratios A_j / A_alpha =
  1.7 / 3.6, 1.2 / 3.6, 0.93 / 3.6 (:func:`lyman_series_transmission`);
* Lyman-limit systems (:func:`sample_lyman_limit_systems`): optically thick absorbers (tau_912 >= 2) along
  the sightline, their number Poisson with the incidence l(z) = dN/dz = 1.9 ((1 + z) / 4.7)^1.83 (the
  Prochaska, O'Meara & Worseck 2010, ApJ 718, 392, normalisation C_LLS = 1.9 at z = 3.7 and the Ribaudo,
  Lehner & Howk 2011, ApJ 736, 42, slope gamma = 1.83 that fits 0.2 < z < 4.9), each absorbing
  exp(-tau_912 (lambda / 911.75 (1 + z_abs))^3) blueward of its Lyman edge (the hydrogen photoionisation
  cross-section falls as nu^-3), tau_912 = N_HI sigma_912 drawn from f(N_HI) ~ N_HI^-1 between tau = 2 and the
  damped-Lyman-alpha threshold N_HI = 10^20.3 (tau ~ 1.3e3; beta ~ -1 where Prochaska et al. 2010 place the
  slope at 10^18 cm^-2); the mean 0.1 below the quasar's own Lyman limit (the forest's Lyman-continuum
  opacity) stays;
* host-galaxy starlight: L_5100(host) / L_5100(AGN) = 0.8052 - 1.5502 x + 0.9121 x^2 - 0.1577 x^3,
  x = log10(lambda L_lambda(5100 A) / erg s^-1) - 44 of the total, zero for x > 1.053 (Shen et al. 2011,
  ApJS 194, 45, eq. 1, after the host fractions of SDSS quasar spectra of Vanden Berk et al. 2006, AJ 131,
  84), with the spectrum of :mod:`.galaxies`' old population (its template's own break, no young light), not
  reddened by the nuclear dust; it matters for the low-luminosity, low-redshift quasars and is part of the selection
  continuum;
* the host galaxy adds narrow nebular lines from its SFR (Kennicutt, as for galaxies); the parameter ``sfr`` is
  the host's and drives those lines only: the survey's SFR targets (``sfr``, ``log_sfr``) are NaN for quasars,
  whose light is the AGN's (SFR does not apply; a NaN target is left out of the loss);
* images: point sources.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from astromodal.data.simulate.galaxies import add_emission_lines, old_population_on_grid, old_population_shape
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
#: mean E(B - V) (mag) of the exponential distribution of intrinsic SMC-like reddening (Hopkins et al. 2004)
QSO_EBV_MEAN = 0.025
#: Lyman-limit-system incidence l(z) = C ((1 + z) / (1 + z_*))^gamma (Prochaska et al. 2010: C = 1.9, z_* = 3.7;
#: Ribaudo et al. 2011: gamma = 1.83), the tau_912 range of the absorbers (2 to the DLA threshold
#: N_HI = 10^20.3 cm^-2 times sigma_912 = 6.30e-18 cm^2) and the Lyman edge (A)
LLS_C, LLS_ZSTAR, LLS_GAMMA, LLS_TAU_RANGE, LYMAN_EDGE = 1.9, 3.7, 1.83, (2.0, 10**20.3 * 6.30e-18), 911.75
#: most LLSs per sightline kept (the expected number to z = 5 is 6.6; the Poisson tail beyond 24 is < 1e-6)
LLS_MAX = 24
#: host-galaxy fraction at 5100 A (Shen et al. 2011 eq. 1): polynomial coefficients in x and its upper end;
#: the host is old light with the template's own break (``break_old`` 1, :func:`.galaxies.old_population_shape`)
HOST_POLY, HOST_X_MAX, HOST_BREAK = (0.8052, -1.5502, 0.9121, -0.1577), 1.053, 1.0
#: Lyman series lines beyond Ly alpha (rest A) and their Madau (1995) forest coefficient ratios A_j / A_alpha
LYMAN_SERIES = ((1025.72, 1.7 / 3.6), (972.54, 1.2 / 3.6), (949.74, 0.93 / 3.6))


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
    ebv = rng.exponential(QSO_EBV_MEAN, n)
    for k, name in enumerate(names):
        rows = np.flatnonzero(sample == k)
        todo = rows
        for _ in range(400):
            if len(todo) == 0:
                break
            zc, mc = _propose(rng, len(todo), name)
            ok = selected_quasars(name, zc, continuum_magnitudes(zc, mc, alpha[todo], ebv[todo]))
            z[todo[ok]], mag[todo[ok]] = zc[ok], mc[ok]
            todo = todo[~ok]
        else:
            raise RuntimeError(f"quasar target sample {name!r}: too few candidates pass the limit")
    lls_z, lls_tau = sample_lyman_limit_systems(rng, z)
    return {
        "redshift": z,
        "abs_mag_2500": mag,
        "lls_z": lls_z,
        "lls_tau": lls_tau,
        "alpha": alpha,
        "ebv_smc": ebv,
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


def continuum_magnitudes(z: np.ndarray, abs_mag: np.ndarray, alpha: np.ndarray, ebv: np.ndarray | None = None
                         ) -> np.ndarray:
    """Model r i AB magnitudes (N, 2) of the power law times the Lyman forests (no lines), reddened by the
    intrinsic SMC dust of E(B - V) ``ebv`` (none when not given), on the coarse grid."""
    lam, _ = coarse_band_grid(_QSO_BANDS)
    zz = z[:, None]
    d_cm = luminosity_distance_pc(z) * PC_CM
    lam_rest = lam[None, :] / (1.0 + zz)
    f = continuum_lambda(lam_rest, abs_mag[:, None], alpha[:, None])
    f *= (1.0 / (4.0 * np.pi * d_cm**2 * (1.0 + z)))[:, None] * lyman_transmission(lam[None, :], zz)
    f *= lyman_series_transmission(lam[None, :], zz)
    if ebv is not None:
        f *= smc_transmission(lam_rest, ebv)
    host = host_amplitude(abs_mag, alpha)
    if np.any(host > 0.0):  # the host's starlight, behind the same forests, not behind the nuclear dust
        f += (host / (4.0 * np.pi * d_cm**2 * (1.0 + z)))[:, None] * old_population_shape(lam_rest, HOST_BREAK) \
            * lyman_transmission(lam[None, :], zz) * lyman_series_transmission(lam[None, :], zz)
    return coarse_ab_magnitudes(f, _QSO_BANDS)


@lru_cache(maxsize=1)
def _smc_table() -> tuple[np.ndarray, np.ndarray]:
    """ln(lambda / A) grid (1000 A - 3.3 micron) and A(lambda) / E(B - V) of the Gordon et al. (2003) SMC bar."""
    from astropy import units as u
    from dust_extinction.averages import G03_SMCBar

    law = G03_SMCBar()
    lam = np.geomspace(1000.0, 33000.0, 4001)
    return np.log(lam), np.asarray(law(lam * u.AA), dtype=np.float64) * law.Rv


def smc_k(lam_rest: np.ndarray) -> np.ndarray:
    """A(lambda) / E(B - V) of the SMC bar (Gordon et al. 2003; R_V = 2.74) at rest ``lambda`` (A), from a fine
    table (linear in ln lambda); held at its 1000 A value blueward of the law's range (that light is mostly
    absorbed by the Lyman forests and the Lyman limit anyway)."""
    ln_t, k_t = _smc_table()
    return np.interp(np.log(np.asarray(lam_rest, dtype=np.float64)), ln_t, k_t)


def smc_transmission(lam_rest: np.ndarray, ebv: np.ndarray) -> np.ndarray:
    """10^(-0.4 E(B - V) k_SMC(lambda_rest)) for (N,) ``ebv`` and (N, L) or (L,) rest wavelengths."""
    ebv = np.asarray(ebv, dtype=np.float64)[:, None]
    return np.exp(-0.4 * np.log(10.0) * ebv * smc_k(lam_rest))


def lyman_series_transmission(lam_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Transmission of the Ly beta, gamma and delta forests at observed lambda for quasars at ``z``: blueward of
    each line (lambda < lambda_j (1 + z)), tau_j = (A_j / A_alpha) 0.0018 (lambda / lambda_j)^3.92, the
    Faucher-Giguere et al. (2008) Ly alpha optical depth at that line's absorber redshift scaled by the Madau
    (1995) coefficient ratios of :data:`LYMAN_SERIES`."""
    lam_obs = np.asarray(lam_obs, dtype=np.float64)
    tau = np.zeros(np.broadcast_shapes(lam_obs.shape, np.shape(z)))
    for lam_j, ratio in LYMAN_SERIES:
        one_plus = lam_obs / lam_j
        tau += np.where(one_plus < 1.0 + z, ratio * 0.0018 * np.clip(one_plus, 1.0, None) ** 3.92, 0.0)
    return np.exp(-tau)


def lls_incidence(z: np.ndarray) -> np.ndarray:
    """Lyman-limit systems (tau_912 >= 2) per unit redshift: 1.9 ((1 + z) / 4.7)^1.83 (:data:`LLS_C` ...)."""
    return LLS_C * ((1.0 + np.asarray(z, dtype=np.float64)) / (1.0 + LLS_ZSTAR)) ** LLS_GAMMA


def sample_lyman_limit_systems(rng: np.random.Generator, z_qso: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Redshifts and tau_912 (N, :data:`LLS_MAX`) of the Lyman-limit systems in front of quasars at ``z_qso``
    (NaN / 0 where there are fewer): their number Poisson with mean int_0^z l(z') dz', their z from l(z) by
    the inverse of its integral, tau log-uniform in :data:`LLS_TAU_RANGE` (f(N_HI) ~ N_HI^-1)."""
    z_qso = np.asarray(z_qso, dtype=np.float64)
    n, g1 = len(z_qso), LLS_GAMMA + 1.0
    scale = LLS_C * (1.0 + LLS_ZSTAR) ** -LLS_GAMMA / g1  # int_0^z l = scale ((1 + z)^(g + 1) - 1)
    total = (1.0 + z_qso) ** g1 - 1.0
    count = np.minimum(rng.poisson(scale * total), LLS_MAX)
    u = rng.random((n, LLS_MAX))
    z_abs = (1.0 + u * total[:, None]) ** (1.0 / g1) - 1.0
    lo, hi = np.log(LLS_TAU_RANGE[0]), np.log(LLS_TAU_RANGE[1])
    tau = np.exp(lo + (hi - lo) * rng.random((n, LLS_MAX)))
    present = np.arange(LLS_MAX)[None, :] < count[:, None]
    return np.where(present, z_abs, np.nan), np.where(present, tau, 0.0)


def lls_transmission(lam_obs: np.ndarray, lls_z: np.ndarray, lls_tau: np.ndarray) -> np.ndarray:
    """exp(-sum_k tau_k (lambda / lambda_k)^3 [lambda < lambda_k]), lambda_k = 911.75 (1 + z_k), at observed
    ``lam_obs`` (L,) for absorbers (N, K) (NaN redshift: none); (N, L)."""
    lam = np.asarray(lam_obs, dtype=np.float64)
    tau = np.zeros((len(lls_z), len(lam)))
    edge = LYMAN_EDGE * (1.0 + np.nan_to_num(np.asarray(lls_z, dtype=np.float64), nan=-1.0))
    for k in range(lls_z.shape[1]):
        rows = np.flatnonzero(lls_tau[:, k] > 0.0)
        if rows.size == 0:
            continue
        x = lam[None, :] / edge[rows, k][:, None]
        tau[rows] += np.where(x < 1.0, lls_tau[rows, k][:, None] * x**3, 0.0)
    return np.exp(-tau)


def host_fraction(l5100_agn: np.ndarray) -> np.ndarray:
    """L_5100(host) / L_5100(AGN) of Shen et al. (2011, eq. 1) for the AGN's lambda L_lambda(5100 A) (erg/s):
    the polynomial in x = log10(L_total) - 44, solved for the total L = L_AGN (1 + ratio) by fixed-point
    iteration (10 steps: a contraction, |d ratio / d ratio'| < 0.4 where the ratio matters), 0 for x > 1.053, at least 0."""
    l_agn = np.asarray(l5100_agn, dtype=np.float64)
    ratio = np.zeros_like(l_agn)
    c0, c1, c2, c3 = HOST_POLY
    for _ in range(10):
        x = np.log10(l_agn * (1.0 + ratio)) - 44.0
        ratio = np.where(x < HOST_X_MAX, np.clip(c0 + c1 * x + c2 * x**2 + c3 * x**3, 0.0, None), 0.0)
    return ratio


def host_amplitude(abs_mag: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Rest L_lambda(5100 A) (erg/s/A) of the host galaxy of quasars of M_2500 ``abs_mag`` and slope ``alpha``."""
    l_lam = continuum_lambda(5100.0, np.asarray(abs_mag), np.asarray(alpha))
    return host_fraction(5100.0 * l_lam) * l_lam


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
    # the forests act blueward of Ly alpha only: the pixels up to 1215.67 (1 + z_max) A
    j = int(np.searchsorted(grid, 1215.67 * (1.0 + float(z.max())))) if len(z) else 0
    flux[:, :j] *= lyman_transmission(grid[None, :j], zz) * lyman_series_transmission(grid[None, :j], zz)
    if "ebv_smc" in p:
        flux *= smc_transmission(grid[None, :] / (1.0 + zz), p["ebv_smc"])
    host = host_amplitude(p["abs_mag_2500"], p["alpha"]) * dilution
    rows = np.flatnonzero(host > 0.0)
    if rows.size:  # host starlight (not behind the nuclear dust), then the IGM on everything
        hz = z[rows]
        h = host[rows, None] * old_population_on_grid(hz, np.full(len(rows), HOST_BREAK))
        h[:, :j] *= lyman_transmission(grid[None, :j], hz[:, None]) * lyman_series_transmission(grid[None, :j],
                                                                                                 hz[:, None])
        flux[rows] += h
    if "lls_z" in p:
        k = int(np.searchsorted(grid, LYMAN_EDGE * (1.0 + float(np.nanmax(p["lls_z"], initial=-1.0)))))
        if k > 0:
            flux[:, :k] *= lls_transmission(grid[:k], p["lls_z"], p["lls_tau"])
    return flux
