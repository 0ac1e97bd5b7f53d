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

from functools import partial
from typing import Any

import numpy as np

from astromodal.data.simulate.photometry import coarse_ab_magnitudes, coarse_band_grid
from astromodal.data.simulate.physics import (
    C_KMS,
    GRID_DLN,
    GRID_START,
    PC_CM,
    R_SUN_CM,
    add_gaussians,
    f99_on_grid,
    logistic,
    model_grid,
    planck_lambda,
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
_DWARF_M = np.array([0.08, 0.10, 0.18, 0.36, 0.50, 0.65, 0.78, 0.88, 1.0, 1.17, 1.35, 1.6, 1.9, 2.4, 2.9, 4.0,
                     6.0, 9.0, 13.0, 18.0, 25.0, 35.0])


def sample_stars(rng: np.random.Generator, n: int, giant_fraction: float = 0.15) -> dict[str, np.ndarray]:
    """Draw ``n`` stars: type code (index into SPECTRAL_TYPES), teff, luminosity class, radius, luminosity,
    mass (Msun) and log g = log g_sun + log(M / Msun) - 2 log(R / Rsun)."""
    stype = rng.choice(len(SPECTRAL_TYPES), size=n, p=np.asarray(TYPE_FRACTIONS) / np.sum(TYPE_FRACTIONS))
    lo = np.array([TEFF_RANGES[t][0] for t in SPECTRAL_TYPES])[stype]
    hi = np.array([TEFF_RANGES[t][1] for t in SPECTRAL_TYPES])[stype]
    teff = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    can_be_giant = stype >= SPECTRAL_TYPES.index("G")
    giant = can_be_giant & (rng.random(n) < giant_fraction)
    radius = dwarf_radius(teff) * np.exp(rng.normal(0.0, 0.08, n))
    radius = np.where(giant, np.exp(rng.uniform(np.log(5.0), np.log(50.0), n)), radius)
    mass = np.where(giant, np.exp(rng.uniform(np.log(0.8), np.log(2.5), n)), dwarf_mass(teff))
    return {
        "spectral_type": stype,
        "teff": teff,
        "luminosity_class": giant.astype(np.int64),
        "radius": radius,
        "luminosity": stefan_boltzmann_luminosity(radius, teff),
        "massive": (stype <= SPECTRAL_TYPES.index("B")).astype(np.int64),
        "mass": mass,
        "logg": LOGG_SUN + np.log10(mass) - 2.0 * np.log10(radius),
    }


#: [Fe/H] (mean, sigma) of each population (young disc, thin disc, thick disc, halo): thin disc after the
#: Geneva-Copenhagen survey (Nordstroem et al. 2004), thick disc after Bensby et al. (2014), halo Ivezic et al. (2008)
FEH_POPULATIONS = ((0.0, 0.15), (-0.14, 0.19), (-0.6, 0.3), (-1.46, 0.3))


def sample_metallicity(rng: np.random.Generator, population: np.ndarray) -> np.ndarray:
    """[Fe/H] of stars of the given population codes (Gaussian per population, clipped to -3..0.6)."""
    mean, sigma = np.array(FEH_POPULATIONS).T
    population = np.asarray(population, dtype=np.int64)
    return np.clip(mean[population] + sigma[population] * rng.standard_normal(len(population)), -3.0, 0.6)


def dwarf_mass(teff: np.ndarray) -> np.ndarray:
    """Main-sequence mass (Msun) at ``teff`` (K), interpolated in log-log (after Pecaut & Mamajek 2013)."""
    return np.exp(np.interp(np.log(teff), np.log(_DWARF_TEFF), np.log(_DWARF_M)))


def dwarf_radius(teff: np.ndarray) -> np.ndarray:
    """Main-sequence radius (Rsun) at ``teff`` (K), interpolated in log-log in a Teff-radius table."""
    return np.exp(np.interp(np.log(teff), np.log(_DWARF_TEFF), np.log(_DWARF_R)))


# ---------------------------------------------------------------- line strengths against Teff, log g, [Fe/H]
#: log g of the Sun (cgs), the reference gravity of the line-strength scalings
LOGG_SUN = 4.438
#: continuum opacities (absorbed into the line part of the spectrum, ``with_lines``): optical depth just
#: blueward of the Balmer jump (3646 A) at full Balmer strength, and of the blend of metal lines in the blue/UV
#: ("line blanketing") of a solar star at 3500 A. Their sizes are set so that the SDSS colours of the Sun
#: (u-g 1.43, g-r 0.44; Holmberg et al. 2006) and of an A0 dwarf (u-g ~ 1.0; Covey et al. 2007 locus) come
#: out near the published ones; the blanketing scales as 10^(0.5 [Fe/H]), about the 0.2-0.3 mag of u-g per
#: dex of the photometric-metallicity relation of Ivezic et al. (2008).
BALMER_JUMP_TAU = 2.0
BLANKETING_TAU = 0.45
BLANKETING_FEH = 0.5


def balmer_strength(teff: np.ndarray) -> np.ndarray:
    """Relative Balmer-line strength: 1 at 9750 K (A0), Gaussian in log10 Teff (width 0.13 dex)."""
    return np.exp(-0.5 * (np.log10(np.asarray(teff) / 9750.0) / 0.13) ** 2)


def _metal_strength(teff: np.ndarray, t_half: float, width: float) -> np.ndarray:
    """Strength of a low-ionisation metal line: rises below ``t_half`` K, vanishes in hot stars."""
    return logistic((t_half - teff) / width) * logistic((12000.0 - teff) / 1500.0)


def _ion_strength(teff: np.ndarray, t_peak: float = 7000.0) -> np.ndarray:
    """Strength of a line of an ionised metal (Fe II, Sr II, Ba II): peaks near ``t_peak`` (F stars)."""
    return np.exp(-0.5 * (np.log10(np.asarray(teff) / t_peak) / 0.13) ** 2)


def _he2(t):
    return logistic((t - 30000.0) / 2500.0)


def _he1(t):
    return np.exp(-0.5 * (np.log10(t / 20000.0) / 0.1) ** 2)


def _caii_k(t):
    return 0.15 + 0.85 * _metal_strength(t, 7000.0, 500.0)


def _caii_h(t):
    return 0.10 + 0.90 * _metal_strength(t, 6800.0, 500.0)


def _g_band(t):
    return _metal_strength(t, 6200.0, 400.0) * logistic((t - 3300.0) / 300.0)


def _metal(t_half: float, width: float) -> Any:
    """The strength function of a low-ionisation metal line with half-strength at ``t_half`` K."""
    return partial(_metal_strength, t_half=t_half, width=width)


_mg_b, _na_d, _cat = _metal(6300.0, 500.0), _metal(5000.0, 400.0), _metal(7000.0, 800.0)
_fe1, _ca1, _cool, _na1_ir = _metal(7000.0, 600.0), _metal(6000.0, 500.0), _metal(5600.0, 500.0), _metal(4300.0, 300.0)


def _paschen(t):
    return 0.45 * balmer_strength(t)


def _ion(t):
    return _ion_strength(t)


# (name, rest wavelength in A, sigma in A at full strength, central depth at full strength, strength(teff),
#  [Fe/H] exponent a, log g exponent g): the optical depth scales as 10^(a [Fe/H] + g (log g - LOGG_SUN)).
# Metal lines grow with metallicity (a = 1, weak-line curve of growth; 0.5 for the strong saturated ones);
# pressure-sensitive neutral lines (Na I, Mg I, Ca I 4227, the Na I 8190 doublet) are stronger in dwarfs
# (g > 0), lines of ionised species and the Ca II triplet in giants (g < 0), as in the luminosity criteria of
# spectral classification (Gray & Corbally 2009). Wavelengths: air, from the NIST atomic spectra database.
_FOREST_FE1 = (3820.4, 3859.9, 4045.8, 4063.6, 4071.7, 4132.1, 4143.9, 4202.0, 4250.8, 4260.5, 4271.8, 4325.8,
               4383.5, 4404.8, 4415.1, 4528.6, 4890.8, 4920.5, 4957.6, 5012.1, 5110.4, 5227.2, 5232.9, 5269.5,
               5328.0, 5371.5, 5397.1, 5405.8, 5429.7, 5446.9, 5455.6, 5497.5, 5615.6, 6065.5, 6136.6, 6191.6,
               6230.7, 6252.6, 6393.6, 6400.0, 6430.8, 6495.0, 6678.0, 8327.1, 8387.8, 8468.4, 8688.6, 8824.2)
_FOREST_CA1 = (4226.7, 4454.8, 5588.8, 6102.7, 6122.2, 6162.2, 6439.1)
_FOREST_COOL = (4254.3, 4274.8, 4289.7, 5206.0, 5208.4, 4981.7, 4991.1, 4999.5, 5210.4, 4030.8, 4033.1, 4034.5)
_FOREST_ION = (4077.7, 4215.5, 4554.0, 4923.9, 5018.4, 5169.0, 5316.6)
_PASCHEN = (8502.5, 8598.4, 8750.5, 8862.8, 9014.9, 9229.0)
_HIGH_BALMER = (("H_epsilon", 3970.1), ("H8", 3889.1), ("H9", 3835.4), ("H10", 3797.9), ("H11", 3770.6),
                ("H12", 3750.2))


def _line_table() -> list[tuple[str, float, float, float, object, float, float]]:
    lines = [
        ("H_alpha", 6562.8, 6.0, 0.65, balmer_strength, 0.0, 0.0),
        ("H_beta", 4861.3, 9.0, 0.70, balmer_strength, 0.0, 0.0),
        ("H_gamma", 4340.5, 9.0, 0.70, balmer_strength, 0.0, 0.0),
        ("H_delta", 4101.7, 9.0, 0.68, balmer_strength, 0.0, 0.0),
        *((name, lam, 7.0 - k * 0.6, 0.6 - k * 0.05, balmer_strength, 0.0, 0.0)
          for k, (name, lam) in enumerate(_HIGH_BALMER)),
        ("HeII_4686", 4685.7, 4.0, 0.25, _he2, 0.0, 0.0),
        ("HeII_5411", 5411.5, 4.0, 0.15, _he2, 0.0, 0.0),
        ("HeI_4471", 4471.5, 3.0, 0.30, _he1, 0.0, 0.0),
        ("HeI_4026", 4026.2, 3.0, 0.25, _he1, 0.0, 0.0),
        ("CaII_K", 3933.7, 3.5, 0.85, _caii_k, 0.5, 0.0),
        ("CaII_H", 3968.5, 3.5, 0.80, _caii_h, 0.5, 0.0),
        ("G_band", 4300.0, 8.0, 0.35, _g_band, 0.7, 0.0),
        ("Mg_b", 5175.0, 4.0, 0.35, _mg_b, 0.6, 0.3),
        ("NaD_2", 5889.95, 2.5, 0.55, _na_d, 0.6, 0.3),
        ("NaD_1", 5895.92, 2.5, 0.50, _na_d, 0.6, 0.3),
        ("CaT_8498", 8498.0, 2.5, 0.30, _cat, 0.4, -0.25),
        ("CaT_8542", 8542.1, 3.0, 0.40, _cat, 0.4, -0.25),
        ("CaT_8662", 8662.1, 3.0, 0.35, _cat, 0.4, -0.25),
        ("NaI_8183", 8183.3, 2.0, 0.35, _na1_ir, 0.5, 0.6),
        ("NaI_8195", 8194.8, 2.0, 0.40, _na1_ir, 0.5, 0.6),
        ("KI_7665", 7664.9, 2.0, 0.35, _na1_ir, 0.5, 0.4),
        ("KI_7699", 7699.0, 2.0, 0.30, _na1_ir, 0.5, 0.4),
    ]
    lines += [(f"Pa_{lam:.0f}", lam, 4.0, 0.35, _paschen, 0.0, 0.0) for lam in _PASCHEN]
    lines += [(f"FeI_{lam:.0f}", lam, 1.0, 0.30, _fe1, 1.0, 0.0) for lam in _FOREST_FE1]
    lines += [(f"CaI_{lam:.0f}", lam, 1.5 if lam < 4300 else 1.0, 0.60 if lam < 4300 else 0.30, _ca1, 1.0,
               0.3 if lam < 4300 else 0.0) for lam in _FOREST_CA1]
    lines += [(f"Cool_{lam:.0f}", lam, 1.0, 0.25, _cool, 1.0, 0.0) for lam in _FOREST_COOL]
    lines += [(f"Ion_{lam:.0f}", lam, 1.0, 0.30, _ion, 1.0, -0.3) for lam in _FOREST_ION]
    return lines


LINES = _line_table()
#: TiO band heads (A) with the e-folding length (A) of each band's redward fade.
TIO_BANDS = ((4761.0, 70.0), (4955.0, 80.0), (5167.0, 90.0), (5448.0, 110.0), (5847.0, 90.0), (6159.0, 140.0),
             (6651.0, 100.0), (7054.0, 150.0), (7589.0, 120.0), (8432.0, 100.0))
#: CaH band heads (A) and fades: strongest in M dwarfs and subdwarfs (gravity-sensitive, Reid et al. 1995)
CAH_BANDS = ((6382.0, 40.0), (6750.0, 120.0))


def _line_scale(feh: np.ndarray, logg: np.ndarray, a: float, g: float) -> np.ndarray:
    return 10.0 ** (a * feh + g * (logg - LOGG_SUN))


def _params(teff: np.ndarray, logg: np.ndarray | None, feh: np.ndarray | None) -> tuple[np.ndarray, ...]:
    teff = np.asarray(teff, dtype=np.float64)
    logg = np.full_like(teff, LOGG_SUN) if logg is None else np.broadcast_to(np.asarray(logg, dtype=np.float64),
                                                                              teff.shape)
    feh = np.zeros_like(teff) if feh is None else np.broadcast_to(np.asarray(feh, dtype=np.float64), teff.shape)
    return teff, logg, feh


def line_depths(teff: np.ndarray, logg: np.ndarray | None = None, feh: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
    """Central depth (0..0.95) of each absorption line for stars of ``teff`` (K), ``logg`` (cgs, default solar)
    and ``feh`` ([Fe/H], default 0): tau = -ln(1 - depth * strength(teff)) * 10^(a [Fe/H] + g (log g - 4.438))."""
    teff, logg, feh = _params(teff, logg, feh)
    out = {}
    for name, _, _, depth, strength, a, g in LINES:
        tau = -np.log1p(-np.clip(depth * strength(teff), 0.0, 0.95)) * _line_scale(feh, logg, a, g)
        out[name] = np.minimum(-np.expm1(-tau), 0.95)
    return out


def tio_depth(teff: np.ndarray, feh: np.ndarray | None = None) -> np.ndarray:
    """Depth at the TiO band heads: zero above ~4200 K, about 0.7 in mid/late M dwarfs (weaker when metal-poor)."""
    teff, _, feh = _params(teff, None, feh)
    d = 0.7 * logistic((3900.0 - teff) / 200.0)
    return -np.expm1(np.log1p(-d) * 10.0 ** (0.5 * feh))


def cah_depth(teff: np.ndarray, logg: np.ndarray | None = None) -> np.ndarray:
    """Depth at the CaH band heads: M dwarfs (0.4 at full strength), weaker in giants."""
    teff, logg, _ = _params(teff, logg, None)
    return 0.4 * logistic((3800.0 - teff) / 200.0) * logistic((logg - 3.5) / 0.3)


def continuum_tau(wavelength: np.ndarray, teff: np.ndarray, logg: np.ndarray | None = None,
                  feh: np.ndarray | None = None) -> np.ndarray:
    """Optical depth (N, L) of the Balmer jump and of the blue/UV line blanketing at rest ``wavelength`` (A).

    Balmer jump: tau = BALMER_JUMP_TAU s(Teff) 10^(-0.1 (log g - 4)) (lambda / 3646)^3 blueward of 3646 A
    (hydrogen bound-free from n = 2, a smooth 10 A edge); blanketing: tau = BLANKETING_TAU S(Teff)
    10^(0.5 [Fe/H]) ((4500 - lambda) / 1000 A)^1.5 blueward of 4500 A, S rising from hot to cool stars
    (logistic at 6800 K times min((5772 / Teff)^2, 2)).
    """
    teff, logg, feh = _params(teff, logg, feh)
    lam = np.asarray(wavelength, dtype=np.float64)
    lam = lam[None, :] if lam.ndim == 1 else lam
    jump = BALMER_JUMP_TAU * balmer_strength(teff) * 10.0 ** (-0.1 * (logg - 4.0))
    tau = jump[:, None] * (logistic((3646.0 - lam) / 2.5) * (lam / 3646.0) ** 3)
    blanket = (BLANKETING_TAU * logistic((6800.0 - teff) / 500.0) * np.minimum((5772.0 / teff) ** 2, 2.0)
               * 10.0 ** (BLANKETING_FEH * feh))
    tau += blanket[:, None] * np.clip((4500.0 - lam) / 1000.0, 0.0, None) ** 1.5
    return tau


def absorption_tau(teff: np.ndarray, rv_kms: np.ndarray, logg: np.ndarray | None = None,
                   feh: np.ndarray | None = None) -> np.ndarray:
    """Optical depth tau (N, L) of the absorption features on the model grid (spectrum = continuum exp(-tau))."""
    grid = model_grid()
    teff, logg, feh = _params(teff, logg, feh)
    n = len(teff)
    shift = 1.0 + np.asarray(rv_kms, dtype=np.float64) / C_KMS
    tau = np.zeros((n, len(grid) + 1))
    depths = line_depths(teff, logg, feh)
    # Stark broadening: hydrogen lines of hot stars widen with surface gravity
    balmer_width = np.clip(10.0 ** (0.2 * (logg - 4.0)), 0.4, 1.3)
    for name, lam0, sigma, _, strength, _, _ in LINES:
        d = depths[name]
        width = sigma * (0.5 + 0.5 * np.clip(strength(teff), 0.0, 1.0))
        if strength is balmer_strength:
            width = width * balmer_width
        add_gaussians(tau, lam0 * shift, width * shift, -np.log1p(-d))
    _add_bands(tau, tio_depth(teff, feh), TIO_BANDS, shift)
    _add_bands(tau, cah_depth(teff, logg), CAH_BANDS, shift)
    tau[:, :-1] += continuum_tau(grid[None, :] / shift[:, None], teff, logg, feh)
    return tau[:, :-1]


def _add_bands(tau: np.ndarray, depth: np.ndarray, bands, shift: np.ndarray) -> None:
    """Add molecular bands (a sharp head then an exponential fade to the red) for the rows where they show."""
    rows = np.flatnonzero(depth > 1e-4)
    if rows.size == 0:
        return
    grid = model_grid()
    tau0 = -np.log1p(-depth[rows])[:, None]
    for head, fade in bands:
        i0 = int(np.log(head * 0.995 / GRID_START) / GRID_DLN)
        i1 = min(len(grid), int(np.log((head + 6.0 * fade) * 1.005 / GRID_START) / GRID_DLN))
        lam = grid[i0:i1][None, :]
        h = head * shift[rows][:, None]
        band = np.where(lam >= h, np.exp(-(lam - h) / fade), 0.0)
        tau[rows, i0:i1] += tau0 * band


def star_spectra(teff: np.ndarray, radius_rsun: np.ndarray, distance_pc: np.ndarray, rv_kms: np.ndarray,
                 with_lines: bool = True, logg: np.ndarray | None = None, feh: np.ndarray | None = None,
                 ebv: np.ndarray | None = None) -> np.ndarray:
    """Observed flux density (N, L) in erg / (s cm2 Angstrom) on the model grid.

    f_lambda = pi B_lambda(Teff, lambda / (1 + v/c)) (R / d)^2 exp(-tau) 10^(-0.4 E(B-V) k(lambda)), with the
    absorption (lines, bands, Balmer jump, blanketing) of ``with_lines`` and the Fitzpatrick (1999) R_V = 3.1
    interstellar extinction k = A(lambda) / E(B-V) of ``ebv`` (none when not given).
    """
    shift = 1.0 + np.asarray(rv_kms, dtype=np.float64) / C_KMS
    dilution = (np.asarray(radius_rsun) * R_SUN_CM / (np.asarray(distance_pc) * PC_CM)) ** 2
    flux = planck_on_grid(shift, teff)
    flux *= (np.pi * dilution)[:, None]
    if with_lines:
        flux *= np.exp(-absorption_tau(teff, rv_kms, logg, feh))
    if ebv is not None:
        flux *= 10.0 ** (-0.4 * np.asarray(ebv, dtype=np.float64)[:, None] * f99_on_grid()[None, :])
    return flux


def selection_magnitudes(teff: np.ndarray, radius_rsun: np.ndarray, band: str, logg: np.ndarray | None = None,
                         feh: np.ndarray | None = None) -> np.ndarray:
    """Absolute AB magnitude (at 10 pc, no extinction) in ``band`` of the continuum (black body, Balmer jump and
    blanketing; no lines) on the coarse selection grid: what target selection sees before spectra are built."""
    lam, _ = coarse_band_grid((band,))
    teff, logg, feh = _params(teff, logg, feh)
    dilution = (np.asarray(radius_rsun) * R_SUN_CM / (10.0 * PC_CM)) ** 2
    f = np.pi * dilution[:, None] * planck_lambda(lam[None, :], teff[:, None])
    f *= np.exp(-continuum_tau(lam, teff, logg, feh))
    return coarse_ab_magnitudes(f, (band,))[:, 0]
