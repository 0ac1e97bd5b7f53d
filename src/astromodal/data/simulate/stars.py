"""Stars: spectral types O..M, effective temperature, radius, luminosity and absorption-line spectra.

Model and simplifications:

* the spectral type is drawn from a training-friendly mix (not an initial mass function, see
  :data:`TYPE_FRACTIONS`), Teff uniformly in log within the type's range (:data:`TEFF_RANGES`);
* luminosity class V (main sequence, radius from a Teff-radius relation with 8 % scatter) for most
  stars; a fraction of G/K/M stars are giants (class III, radius 5-50 Rsun, log-uniform);
* L = 4 pi R^2 sigma_SB Teff^4 exactly; O and B stars are flagged ``massive``;
* the spectrum at the observer is pi B_lambda(Teff) (R/d)^2 (a black body seen at distance d, no
  extinction, no limb darkening) times exp(-tau) of absorption features whose strength follows the
  spectral type: Balmer lines peaking near A0 (~9750 K) and fading on both sides, He II (O) and He I
  (B), Ca II H&K, the G band, Mg b, Na D and the Ca II triplet growing towards G/K, and TiO bands
  (sharp blue heads, fading to the red) in late K and M stars;
* the whole spectrum is Doppler shifted by the radial velocity: lambda_obs = lambda_rest (1 + v/c).
"""

from __future__ import annotations

import numpy as np

from astromodal.data.simulate.physics import (
    C_KMS,
    GRID_DLN,
    GRID_START,
    PC_CM,
    R_SUN_CM,
    add_gaussians,
    logistic,
    model_grid,
    planck_on_grid,
    stefan_boltzmann_luminosity,
)

SPECTRAL_TYPES = ("O", "B", "A", "F", "G", "K", "M")
TEFF_RANGES = {
    "O": (30000.0, 45000.0), "B": (10000.0, 30000.0), "A": (7300.0, 10000.0), "F": (6000.0, 7300.0),
    "G": (5300.0, 6000.0), "K": (3900.0, 5300.0), "M": (2400.0, 3900.0),
}
#: Fractions of each spectral type among simulated stars: every class well populated for learning.
TYPE_FRACTIONS = (0.06, 0.16, 0.13, 0.17, 0.17, 0.16, 0.15)
LUMINOSITY_CLASSES = ("V", "III")

# Main-sequence (class V) radius against Teff (K -> Rsun), interpolated in log-log.
_DWARF_TEFF = np.array([2400, 2800, 3200, 3500, 3800, 4200, 4800, 5300, 5800, 6300, 6800, 7400, 8200, 9500,
                        11000, 15000, 20000, 25000, 30000, 35000, 40000, 45000], dtype=float)
_DWARF_R = np.array([0.11, 0.13, 0.25, 0.42, 0.55, 0.68, 0.78, 0.88, 1.0, 1.18, 1.35, 1.6, 1.8, 2.2, 2.5, 3.3,
                     4.3, 5.5, 6.6, 8.0, 9.5, 11.5])


def sample_stars(rng: np.random.Generator, n: int, giant_fraction: float = 0.15) -> dict[str, np.ndarray]:
    """Draw ``n`` stars: type code (index into SPECTRAL_TYPES), teff, luminosity class, radius, luminosity."""
    stype = rng.choice(len(SPECTRAL_TYPES), size=n, p=np.asarray(TYPE_FRACTIONS) / np.sum(TYPE_FRACTIONS))
    lo = np.array([TEFF_RANGES[t][0] for t in SPECTRAL_TYPES])[stype]
    hi = np.array([TEFF_RANGES[t][1] for t in SPECTRAL_TYPES])[stype]
    teff = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    can_be_giant = stype >= SPECTRAL_TYPES.index("G")
    giant = can_be_giant & (rng.random(n) < giant_fraction)
    radius = dwarf_radius(teff) * np.exp(rng.normal(0.0, 0.08, n))
    radius = np.where(giant, np.exp(rng.uniform(np.log(5.0), np.log(50.0), n)), radius)
    return {
        "spectral_type": stype,
        "teff": teff,
        "luminosity_class": giant.astype(np.int64),
        "radius": radius,
        "luminosity": stefan_boltzmann_luminosity(radius, teff),
        "massive": (stype <= SPECTRAL_TYPES.index("B")).astype(np.int64),
    }


def dwarf_radius(teff: np.ndarray) -> np.ndarray:
    """Main-sequence radius (Rsun) at ``teff`` (K), interpolated in log-log in a Teff-radius table."""
    return np.exp(np.interp(np.log(teff), np.log(_DWARF_TEFF), np.log(_DWARF_R)))


# ---------------------------------------------------------------- line strengths against Teff
def balmer_strength(teff: np.ndarray) -> np.ndarray:
    """Relative Balmer-line strength: 1 at 9750 K (A0), Gaussian in log10 Teff (width 0.13 dex)."""
    return np.exp(-0.5 * (np.log10(np.asarray(teff) / 9750.0) / 0.13) ** 2)


def _metal_strength(teff: np.ndarray, t_half: float, width: float) -> np.ndarray:
    """Strength of a low-ionisation metal line: rises below ``t_half`` K, vanishes in hot stars."""
    return logistic((t_half - teff) / width) * logistic((12000.0 - teff) / 1500.0)


# (name, rest wavelength in A, sigma in A at full strength, central depth at full strength, strength(teff))
def _line_table() -> list[tuple[str, float, float, float, object]]:
    return [
        ("H_alpha", 6562.8, 6.0, 0.65, balmer_strength),
        ("H_beta", 4861.3, 9.0, 0.70, balmer_strength),
        ("H_gamma", 4340.5, 9.0, 0.70, balmer_strength),
        ("H_delta", 4101.7, 9.0, 0.68, balmer_strength),
        ("HeII_4686", 4685.7, 4.0, 0.25, lambda t: logistic((t - 30000.0) / 2500.0)),
        ("HeII_5411", 5411.5, 4.0, 0.15, lambda t: logistic((t - 30000.0) / 2500.0)),
        ("HeI_4471", 4471.5, 3.0, 0.30, lambda t: np.exp(-0.5 * (np.log10(t / 20000.0) / 0.1) ** 2)),
        ("HeI_4026", 4026.2, 3.0, 0.25, lambda t: np.exp(-0.5 * (np.log10(t / 20000.0) / 0.1) ** 2)),
        ("CaII_K", 3933.7, 3.5, 0.85, lambda t: 0.15 + 0.85 * _metal_strength(t, 7000.0, 500.0)),
        ("CaII_H", 3968.5, 3.5, 0.80, lambda t: 0.10 + 0.90 * _metal_strength(t, 6800.0, 500.0)),
        ("G_band", 4300.0, 8.0, 0.35, lambda t: _metal_strength(t, 6200.0, 400.0) * logistic((t - 3300.0) / 300.0)),
        ("Mg_b", 5175.0, 4.0, 0.35, lambda t: _metal_strength(t, 6300.0, 500.0)),
        ("NaD_2", 5889.95, 2.5, 0.55, lambda t: _metal_strength(t, 5000.0, 400.0)),
        ("NaD_1", 5895.92, 2.5, 0.50, lambda t: _metal_strength(t, 5000.0, 400.0)),
        ("CaT_8498", 8498.0, 2.5, 0.30, lambda t: _metal_strength(t, 7000.0, 800.0)),
        ("CaT_8542", 8542.1, 3.0, 0.40, lambda t: _metal_strength(t, 7000.0, 800.0)),
        ("CaT_8662", 8662.1, 3.0, 0.35, lambda t: _metal_strength(t, 7000.0, 800.0)),
    ]


LINES = _line_table()
#: TiO band heads (A) with the e-folding length (A) of each band's redward fade.
TIO_BANDS = ((4955.0, 80.0), (5167.0, 90.0), (5448.0, 110.0), (6159.0, 140.0), (7054.0, 150.0), (7589.0, 120.0),
             (8432.0, 100.0))


def line_depths(teff: np.ndarray) -> dict[str, np.ndarray]:
    """Central depth (0..1) of each absorption line for stars of ``teff`` (K)."""
    teff = np.asarray(teff, dtype=np.float64)
    return {name: np.clip(depth * strength(teff), 0.0, 0.95) for name, _, _, depth, strength in LINES}


def tio_depth(teff: np.ndarray) -> np.ndarray:
    """Depth at the TiO band heads: zero above ~4200 K, about 0.7 in mid/late M dwarfs."""
    return 0.7 * logistic((3900.0 - np.asarray(teff, dtype=np.float64)) / 200.0)


def absorption_tau(teff: np.ndarray, rv_kms: np.ndarray) -> np.ndarray:
    """Optical depth tau (N, L) of the absorption features on the model grid (spectrum = continuum exp(-tau))."""
    grid = model_grid()
    teff = np.asarray(teff, dtype=np.float64)
    n = len(teff)
    shift = 1.0 + np.asarray(rv_kms, dtype=np.float64) / C_KMS
    tau = np.zeros((n, len(grid) + 1))
    depths = line_depths(teff)
    for name, lam0, sigma, _, strength in LINES:
        d = depths[name]
        width = sigma * (0.5 + 0.5 * np.clip(strength(teff), 0.0, 1.0))
        add_gaussians(tau, lam0 * shift, width * shift, -np.log1p(-d))
    _add_tio(tau, teff, shift)
    return tau[:, :-1]


def _add_tio(tau: np.ndarray, teff: np.ndarray, shift: np.ndarray) -> None:
    """Add the TiO bands (a sharp head then an exponential fade to the red) for the cool stars only."""
    depth = tio_depth(teff)
    rows = np.flatnonzero(depth > 1e-4)
    if rows.size == 0:
        return
    grid = model_grid()
    tau0 = -np.log1p(-depth[rows])[:, None]
    for head, fade in TIO_BANDS:
        i0 = int(np.log(head * 0.995 / GRID_START) / GRID_DLN)
        i1 = min(len(grid), int(np.log((head + 6.0 * fade) * 1.005 / GRID_START) / GRID_DLN))
        lam = grid[i0:i1][None, :]
        h = head * shift[rows][:, None]
        band = np.where(lam >= h, np.exp(-(lam - h) / fade), 0.0)
        tau[rows, i0:i1] += tau0 * band


def star_spectra(teff: np.ndarray, radius_rsun: np.ndarray, distance_pc: np.ndarray, rv_kms: np.ndarray,
                 with_lines: bool = True) -> np.ndarray:
    """Observed flux density (N, L) in erg / (s cm2 Angstrom) on the model grid.

    f_lambda = pi B_lambda(Teff, lambda / (1 + v/c)) (R / d)^2 exp(-tau).
    """
    shift = 1.0 + np.asarray(rv_kms, dtype=np.float64) / C_KMS
    dilution = (np.asarray(radius_rsun) * R_SUN_CM / (np.asarray(distance_pc) * PC_CM)) ** 2
    flux = planck_on_grid(shift, teff)
    flux *= (np.pi * dilution)[:, None]
    if with_lines:
        flux *= np.exp(-absorption_tau(teff, rv_kms))
    return flux
