"""Stars: spectral types O..M, effective temperature, radius, luminosity and absorption-line spectra.

Model and simplifications:

* the spectral type is drawn from a training-friendly mix (not an initial mass function, see
  :data:`TYPE_FRACTIONS`); within the type's range (:data:`TEFF_RANGES`) Teff follows what a
  magnitude-limited survey sees (:func:`sample_teff`): p(ln Teff) proportional to L(Teff)^beta with the
  main-sequence luminosity L, beta = :data:`MAGNITUDE_LIMITED_BETA` (``luminosity_weighting=0``: uniform in
  ln Teff, the simulator before issue 14);
* luminosity class V (main sequence, radius from a Teff-radius relation with 8 % scatter) for most
  stars; a fraction of G/K/M stars are giants (class III, radius 5-50 Rsun, log-uniform; their Teff is drawn
  on the dwarfs' type ranges, although the giant temperature scale is a few hundred K cooler);
* L = 4 pi R^2 sigma_SB Teff^4 exactly; O and B stars are flagged ``massive``;
* the spectrum at the observer is pi B_lambda(Teff) (R/d)^2 (a black body seen at distance d, no
  extinction, no limb darkening) times exp(-tau) of absorption features whose strength follows the
  spectral type: Balmer lines peaking near A0 (~9750 K) and fading on both sides, He II (O) and He I
  (B), Ca II H&K, the G band, Mg b, Na D and the Ca II triplet growing towards G/K, TiO bands
  (sharp blue heads, fading to the red) in late K and M stars and their depressed blue pseudo-continuum
  (3890-4800 A, :data:`M_BLUE_BAND`, :data:`M_BLUE_TAU`);
* the whole spectrum is Doppler shifted by the radial velocity: lambda_obs = lambda_rest (1 + v/c).
"""

from __future__ import annotations

from functools import lru_cache, partial
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

#: the refractive index of standard dry air (15 C, 101 325 Pa, 450 ppm CO2) in the form of Morton (2000, ApJS
#: 130, 403, eq. 8, from the Ciddor 1996 dispersion formula), inverted for air wavelengths by N. Piskunov (VALD3;
#: the formula the SDSS and LAMOST pipelines' air <-> vacuum conversions follow): n - 1 = a0 + a1 / (b1 - s^2) +
#: a2 / (b2 - s^2) with s = 10^4 / lambda_air (lambda in A, s in um^-1)
AIR_INDEX_COEFFS = (8.336624212083e-5, 2.408926869968e-2, 130.1065924522, 1.599740894897e-4, 38.92568793293)


def air_to_vacuum(wavelength_air: np.ndarray | float) -> np.ndarray:
    """Vacuum wavelength (A) of air wavelengths ``wavelength_air`` (A): lambda_vac = n(lambda_air) lambda_air.

    With :data:`AIR_INDEX_COEFFS` (Morton 2000 / Ciddor 1996): H alpha 6562.80 A (air) -> 6564.61 A (vacuum).
    The simulator's model grid is in vacuum, the convention of the SDSS and LAMOST DR1 spectra (Luo et al.
    2015, RAA 15, 1095); line lists (NIST, Moore et al. 1966) and band limits (Lick, Worthey et al. 1994;
    Stevenson 1994; Osterbrock et al. 1996) are tabulated in air, so each is converted once where it is
    defined. Valid above 2000 A (below it tables are in vacuum already).
    """
    lam = np.asarray(wavelength_air, dtype=np.float64)
    a0, a1, b1, a2, b2 = AIR_INDEX_COEFFS
    s2 = (1e4 / lam) ** 2
    return lam * (1.0 + a0 + a1 / (b1 - s2) + a2 / (b2 - s2))


def _vac(lam: float) -> float:
    return float(air_to_vacuum(lam))


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


#: exponent beta of p(ln Teff | type) ~ L^beta in a magnitude-limited sample: a star of luminosity L is seen
#: out to d_max ~ L^(1/2); beyond the disc scale height (a few hundred pc: every type but late M dwarfs at the
#: LAMOST/SDSS limits) the volume grows as d_max^2 ~ L; the Salpeter (1955) mass function dN/dln M ~ M^-1.35
#: with L ~ M^4 on the main sequence gives dN/dln L ~ L^(-1.35/4). Together N per ln L ~ L^(1 - 0.3375).
#: Stars whose main-sequence lifetime 10 Gyr (M / Msun)^-2.5 is shorter than the age of the disc (10 Gyr)
#: are present only for that fraction of it (the present-day mass function, Miller & Scalo 1979), which
#: flattens the weighting of F and A stars (M > 1 Msun) to about L^0.04.
MAGNITUDE_LIMITED_BETA = 1.0 - 1.35 / 4.0
#: main-sequence lifetime of the Sun and the age of the disc (Gyr), and the lifetime's mass exponent
MS_LIFETIME_SUN_GYR, DISC_AGE_GYR, MS_LIFETIME_EXPONENT = 10.0, 10.0, -2.5


def sample_teff(rng: np.random.Generator, stype: np.ndarray, luminosity_weighting: float = MAGNITUDE_LIMITED_BETA
                ) -> np.ndarray:
    """Teff (K) of stars of type codes ``stype``: p(ln Teff) ~ L_dwarf(Teff)^luminosity_weighting times the
    fraction min(1, t_MS / t_disc) of the disc's age a dwarf of that Teff lives, within the type's
    :data:`TEFF_RANGES` (inverse-CDF sampling on a 512-point grid in ln Teff; 0 = uniform in ln Teff)."""
    stype = np.asarray(stype, dtype=np.int64)
    return _teff_from_uniform(rng.random(len(stype)), stype, luminosity_weighting)


def _teff_from_uniform(u: np.ndarray, stype: np.ndarray, luminosity_weighting: float) -> np.ndarray:
    """:func:`sample_teff` from given uniform deviates ``u`` (the inverse CDF of each type's distribution)."""
    teff = np.empty(len(stype))
    for code, name in enumerate(SPECTRAL_TYPES):
        rows = np.flatnonzero(stype == code)
        if rows.size == 0:
            continue
        lo, hi = np.log(TEFF_RANGES[name][0]), np.log(TEFF_RANGES[name][1])
        if luminosity_weighting == 0.0:
            teff[rows] = np.exp(lo + u[rows] * (hi - lo))
            continue
        grid = np.linspace(lo, hi, 512)
        t = np.exp(grid)
        lifetime = MS_LIFETIME_SUN_GYR * dwarf_mass(t) ** MS_LIFETIME_EXPONENT
        w = (stefan_boltzmann_luminosity(dwarf_radius(t), t) ** luminosity_weighting
             * np.minimum(1.0, lifetime / DISC_AGE_GYR))
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(grid))])
        teff[rows] = np.exp(np.interp(u[rows] * cdf[-1], cdf, grid))
    return teff


def sample_stars(rng: np.random.Generator, n: int, giant_fraction: float = 0.15,
                 luminosity_weighting: float = MAGNITUDE_LIMITED_BETA) -> dict[str, np.ndarray]:
    """Draw ``n`` stars: type code (index into SPECTRAL_TYPES), teff, luminosity class, radius, luminosity,
    mass (Msun) and log g = log g_sun + log(M / Msun) - 2 log(R / Rsun).

    ``luminosity_weighting``: the exponent of :func:`sample_teff` (the magnitude-limited default; 0 for a
    volume-limited sample's uniform-in-ln-Teff draw)."""
    stype = rng.choice(len(SPECTRAL_TYPES), size=n, p=np.asarray(TYPE_FRACTIONS) / np.sum(TYPE_FRACTIONS))
    u = rng.random(n)  # one deviate per star, as many as the uniform draw before issue 14 (streams unchanged)
    teff = _teff_from_uniform(u, stype, luminosity_weighting)
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
#: ("line blanketing") of a solar star at 3500 A. The jump's size is set on an A0 dwarf (u-g ~ 1.0; Covey et al.
#: 2007 locus). The blanketing's size, its metallicity scaling (:func:`blanketing_metal_factor`), its growth
#: towards cool stars (:data:`BLANKETING_TEFF_EXPONENT`, :data:`BLANKETING_COOL_CAP`) and the jump's fading in
#: cool stars (:data:`BALMER_JUMP_COOL`) are set together by least squares, then rounded, on: the
#: photometric-metallicity relation of Ivezic et al. (2008, ApJ 684, 287, eq. 4: [Fe/H] as a cubic in the SDSS
#: u - g and g - r of F/G dwarfs, calibrated on SEGUE spectroscopic metallicities) at 5600, 5900, 6200 and 6500 K
#: for [Fe/H] 0, -0.5, -1, -1.5 and -2; the Sun's u - g, 1.43 (Holmberg et al. 2006; double weight); and the
#: Johnson U - B of A5 V, F0 V, K0 V, K3 V, K5 V and K7 V (Pecaut & Mamajek 2013, Table 5; half weight). The
#: relation's [Fe/H] of a simulated dwarf is now -0.03 .. -0.18 at solar, -1.03 .. -1.13 at -1 and -1.5 .. -1.8
#: at -2; the session-22 calibration (BLANKETING_TAU 0.45 scaled as 10^(0.5 [Fe/H]), the jump fading as the
#: Balmer lines, exponent 4 and cap 3) gave -0.2 .. -0.5, -0.7 .. -0.9 and -0.8 .. -1.1: simulated u - g spanned
#: 0.2 mag from [Fe/H] 0 to -2 where the relation asks 0.5, so the stars' u - g distribution was far narrower
#: than a survey's (the worst per-class KS of the realism report). The Sun's u - g is 1.48 in the SDSS system;
#: the U - B of K0 V is 0.11 too red, of A5 V 0.08 too blue; the Johnson U - B of G0 V / G2 V (P&M 0.057 /
#: 0.133) comes out 0.06 / 0.13 too red, a tension between that table and the SDSS-system figures on these
#: filter curves that no setting of these constants removes.
BALMER_JUMP_TAU = 2.0
BLANKETING_TAU = 0.82
#: the blanketing's metallicity scaling, log10(1 + 10^(c + [Fe/H])) / log10(1 + 10^c) with c =
#: BLANKETING_FEH_KNEE: the optical depth of a blend of saturated lines grows as the logarithm of the abundance
#: (the flat part of the curve of growth), so its effect is close to linear in [Fe/H] down to about -c and
#: then fades as the abundance itself (weak lines). The pure power 10^(0.5 [Fe/H]) used before saturated too
#: early: stars at [Fe/H] -1 and -2 differed by only 0.05 mag in u - g.
BLANKETING_FEH_KNEE = 1.17
#: growth of the blanketing towards cool stars, S(Teff) = min((5772 K / Teff)^BLANKETING_TEFF_EXPONENT,
#: BLANKETING_COOL_CAP) (1 for the Sun); the cap keeps the optical depth of the session-22 calibration in
#: late-K and M dwarfs (0.82 x 1.7 ~ 0.45 x 3)
BLANKETING_TEFF_EXPONENT, BLANKETING_COOL_CAP = 1.35, 1.7
#: the Balmer jump's strength in cool stars: :func:`balmer_strength` times logistic((Teff - T) / w) with (T, w) =
#: BALMER_JUMP_COOL: in F-K photospheres the H- opacity, which has no edge at 3646 A, dominates on both sides of
#: it and dilutes the discontinuity (Gray 2005, ch. 8), faster than the Balmer lines fade; 0.19 of the lines'
#: strength at 6200 K, 0.02 in the Sun, 0.99 at A5 V
BALMER_JUMP_COOL = (6450.0, 170.0)


def blanketing_metal_factor(feh: np.ndarray) -> np.ndarray:
    """The metal-line blanketing relative to solar at [Fe/H] ``feh`` (1 at 0; see :data:`BLANKETING_FEH_KNEE`)."""
    c = BLANKETING_FEH_KNEE
    return np.log10(1.0 + 10.0 ** (c + np.asarray(feh, dtype=np.float64))) / np.log10(1.0 + 10.0**c)


#: the red-side continuum opacity that makes real stellar continua bluer than the black body at Teff between
#: 4000 and 9000 A (hydrogen bound-free absorption from n = 3 growing as lambda^3 up to the Paschen edge in A
#: stars, H- bound-free absorption growing up to ~8500 A in F-K stars: the red light leaves from higher,
#: cooler layers): tau = c(Teff) ln(lambda / 4861 A) between 4000 and 7500 A (constant outside), c in log Teff between
#: RED_OPACITY_ANCHORS (constant outside). The anchors are set so that the continuum + lines give the SDSS
#: (AB) g - r of the Sun, 0.44 (Holmberg et al. 2006), and of Vega (A0 V, 9600 K), -0.24 (its AB - Vega
#: offsets, Blanton & Roweis 2007), on this simulator's filter curves; and the Johnson-Cousins V - Ic = 1.272
#: of a K5 V dwarf (4440 K; Pecaut & Mamajek 2013, Table 5) on speclite's Bessell V and I curves with the
#: AB - Vega offsets of Blanton & Roweis (2007), V 0.02, I 0.45: c = 0 there (a K dwarf's optical continuum
#: follows the black body: the H- opacity is nearly flat over 5000-8000 A, Gray 2005 Fig. 8.5). With it
#: V - Ic is 1.05 at K3 V (P&M 1.03) and 0.87 at K0 V (0.853); without it (c = 0.34 below 5772 K) K dwarfs
#: were 0.1 mag too blue in V - Ic (1.16 at K5 V).
RED_OPACITY_ANCHORS = ((4440.0, 0.0), (5772.0, 0.34), (9600.0, 0.85))
#: the opacity stops growing at 7500 A (constant redward): near the Paschen edge (8204 A) and the H- bound-free
#: maximum (~8500 A) the opacity turns over, which keeps i - z of the Sun (0.03) and of Vega (-0.17)
RED_OPACITY_STOP = 7500.0
#: the term is written relative to H beta (4861 A), where it is zero: negative (the continuum brighter than the
#: black body) blueward, positive redward; only its slope matters for colours and spectral shapes, and the
#: lines keep their tabulated depths over the continuum at H beta
RED_OPACITY_PIVOT = 4861.3


def balmer_jump_strength(teff: np.ndarray) -> np.ndarray:
    """Relative strength of the Balmer jump: :func:`balmer_strength` faded below :data:`BALMER_JUMP_COOL`."""
    t0, width = BALMER_JUMP_COOL
    return balmer_strength(teff) * logistic((np.asarray(teff, dtype=np.float64) - t0) / width)


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
    """The CH G band: appears near F2, strong through G and K, fading in M stars."""
    return _metal_strength(t, 6400.0, 350.0) * logistic((t - 3600.0) / 300.0)


def _metal(t_half: float, width: float) -> Any:
    """The strength function of a low-ionisation metal line with half-strength at ``t_half`` K."""
    return partial(_metal_strength, t_half=t_half, width=width)


# Na D: half strength at 5200 K, so that the Sun's D2 has ~0.75 A equivalent width at full metallicity
# (Moore et al. 1966 solar table); the Ca II triplet stays strong into the F stars (Jones et al. 1984:
# EW(8542) ~ 3 A from F5 to K)
_mg_b, _na_d, _cat = _metal(6300.0, 500.0), _metal(5200.0, 450.0), _metal(7500.0, 800.0)
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
# spectral classification (Gray & Corbally 2009). Wavelengths: air, from the NIST atomic spectra database,
# converted to vacuum (:func:`air_to_vacuum`) when the table is built.
_FOREST_FE1 = (3820.4, 3859.9, 4045.8, 4063.6, 4071.7, 4132.1, 4143.9, 4202.0, 4250.8, 4260.5, 4271.8, 4325.8,
               4383.5, 4404.8, 4415.1, 4528.6, 4890.8, 4920.5, 4957.6, 5012.1, 5110.4, 5227.2, 5232.9, 5269.5,
               5328.0, 5371.5, 5397.1, 5405.8, 5429.7, 5446.9, 5455.6, 5497.5, 5615.6, 6065.5, 6136.6, 6191.6,
               6230.7, 6252.6, 6393.6, 6400.0, 6430.8, 6495.0, 6678.0, 8327.1, 8387.8, 8468.4, 8688.6, 8824.2)
_FOREST_CA1 = (4226.7, 4454.8, 5588.8, 6102.7, 6122.2, 6162.2, 6439.1)
_FOREST_COOL = (4254.3, 4274.8, 4289.7, 5206.0, 5208.4, 4981.7, 4991.1, 4999.5, 5210.4, 4030.8, 4033.1, 4034.5)
_FOREST_ION = (4077.7, 4215.5, 4554.0, 4923.9, 5018.4, 5169.0, 5316.6)
#: Paschen lines n = 19 .. 9 (air, A): the series crowds into the Ca II triplet region in A stars
_PASCHEN = (8413.3, 8438.0, 8467.3, 8502.5, 8545.4, 8598.4, 8665.0, 8750.5, 8862.8, 9014.9, 9229.0)
#: the Balmer lines n = 13 .. 20 (Rydberg formula, series limit 3646.0 A in air): blended in dwarfs they
#: depress the flux between the Balmer jump and ~3800 A (the Inglis-Teller confluence)
_BALMER_SERIES_TAIL = tuple(3646.0 * m * m / (m * m - 4.0) for m in range(13, 21))
_HIGH_BALMER = (("H_epsilon", 3970.1), ("H8", 3889.1), ("H9", 3835.4), ("H10", 3797.9), ("H11", 3770.6),
                ("H12", 3750.2))


def _line_table() -> list[tuple[str, float, float, float, object, float, float]]:
    lines = [
        ("H_alpha", 6562.8, 6.0, 0.45, balmer_strength, 0.0, 0.0),
        ("H_beta", 4861.3, 9.0, 0.50, balmer_strength, 0.0, 0.0),
        ("H_gamma", 4340.5, 9.0, 0.50, balmer_strength, 0.0, 0.0),
        ("H_delta", 4101.7, 9.0, 0.50, balmer_strength, 0.0, 0.0),
        *((name, lam, 7.0 - k * 0.6, 0.45 - k * 0.03, balmer_strength, 0.0, 0.0)
          for k, (name, lam) in enumerate(_HIGH_BALMER)),
        *((f"H{m}", lam, 3.0, 0.25, balmer_strength, 0.0, 0.0)
          for m, lam in zip(range(13, 21), _BALMER_SERIES_TAIL, strict=True)),
        ("HeII_4686", 4685.7, 4.0, 0.25, _he2, 0.0, 0.0),
        ("HeII_5411", 5411.5, 4.0, 0.15, _he2, 0.0, 0.0),
        ("HeI_4471", 4471.5, 3.0, 0.30, _he1, 0.0, 0.0),
        ("HeI_4026", 4026.2, 3.0, 0.25, _he1, 0.0, 0.0),
        ("CaII_K", 3933.7, 3.5, 0.85, _caii_k, 0.5, 0.0),
        ("CaII_H", 3968.5, 3.5, 0.80, _caii_h, 0.5, 0.0),
        ("Mg_b", 5175.0, 4.0, 0.35, _mg_b, 0.6, 0.3),
        ("NaD_2", 5889.95, 2.5, 0.55, _na_d, 0.6, 0.3),
        ("NaD_1", 5895.92, 2.5, 0.50, _na_d, 0.6, 0.3),
        ("CaT_8498", 8498.0, 2.5, 0.35, _cat, 0.4, -0.25),
        ("CaT_8542", 8542.1, 3.0, 0.50, _cat, 0.4, -0.25),
        ("CaT_8662", 8662.1, 3.0, 0.45, _cat, 0.4, -0.25),
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
    # the tabulated air wavelengths -> vacuum (the model grid's, :func:`air_to_vacuum`)
    return [(name, _vac(lam), *rest) for name, lam, *rest in lines]


LINES = _line_table()
#: strong lines with damping wings (besides every hydrogen line): a Gaussian core plus a WING_WIDTH times wider
#: Gaussian that carries WING_FRACTION of the central optical depth (the central depth stays that of
#: :func:`line_depths`), a cheap stand-in for the Lorentzian wings of Stark (hydrogen) and van der Waals
#: (Ca II, Na I, Mg I) broadening that make these lines' equivalent widths several times their core's
WINGED_LINES = frozenset({"CaII_K", "CaII_H", "NaD_1", "NaD_2", "Mg_b", "CaT_8498", "CaT_8542", "CaT_8662"})
WING_FRACTION, WING_WIDTH = 0.3, 3.0
#: TiO band heads (A) with the e-folding length (A) of each band's redward fade.
TIO_BANDS_AIR = ((4761.0, 70.0), (4955.0, 80.0), (5167.0, 90.0), (5448.0, 110.0), (5847.0, 90.0), (6159.0, 140.0),
                 (6651.0, 100.0), (7054.0, 150.0), (7589.0, 120.0), (8432.0, 100.0))
#: the bands with heads in the visible (bluer than 7000 A: the alpha, beta and gamma' systems over the g, V and
#: r passbands) carry a weight times the optical depth at the head of :func:`tio_depth` (the TiO5 band at 7126
#: A) and fade a factor more slowly than tabulated, so that neighbouring bands overlap into the depressed
#: pseudo-continuum of M dwarfs: TIO_VISIBLE holds (heads bluer than, weight, fade factor) for the heads below
#: 5500 A and those of 5500-7000 A. Set by least squares together with :data:`M_BLUE_TAU` and its band (then
#: rounded) on the Johnson-Cousins V - Ic, B - V and U - B and the SDSS r - i and i - z of K7 V .. M5 V
#: (Pecaut & Mamajek 2013, Table 5, version 2022.04.16; V, I on speclite's Bessell curves, AB -> Vega: U 0.79,
#: B -0.09, V 0.02, I 0.45) and on the g - r (1.36, 1.51, 1.53) and the 3850-7200 A shapes (200 A bins relative
#: to 6400-7200 A) of the SDSS M0, M2 and M4 dwarf templates of Bochanski et al. (2007, AJ 133, 531; as
#: distributed with Schmidt's FlareSpecPhot). With the tabulated bands alone V - Ic was 0.17 too blue at M0 V
#: and 0.63 at M4 V; with one weight (1.5) and fade (2) for every visible band (session 27) V - Ic matched but
#: the 4800-5600 A region of an M4 V was 0.1-0.35 mag too faint and 5600-6200 A 0.1-0.3 too bright (g - r
#: 1.70 against the template's 1.53). Now V - Ic is within 0.1 of the table from K7 V to M4 V (M5 V 0.17 too
#: blue), r - i within 0.06 (M5 V 1.55 against 1.85), i - z within 0.07, g - r 1.32 / 1.40 / 1.59 at M0 / M2 /
#: M4 V (tests/test_sim_stars_vacuum_colours.py).
TIO_VISIBLE = ((5500.0, 0.6, 5.4), (7000.0, 0.85, 2.8))


def _tio_bands(bands_air) -> tuple[tuple[float, float, float], ...]:
    """(vacuum head, fade, weight) of each TiO band of ``bands_air``, the visible ones per :data:`TIO_VISIBLE`."""
    out = []
    for head, fade in bands_air:
        weight, factor = 1.0, 1.0
        for below, w, f in TIO_VISIBLE:
            if head < below:
                weight, factor = w, f
                break
        out.append((_vac(head), fade * factor, weight))
    return tuple(out)


#: the same in vacuum (the model grid's wavelengths): (head, fade, weight of the head's optical depth)
TIO_BANDS = _tio_bands(TIO_BANDS_AIR)
#: CaH band heads (A) and fades: strongest in M dwarfs and subdwarfs (gravity-sensitive, Reid et al. 1995)
CAH_BANDS_AIR = ((6382.0, 40.0), (6750.0, 120.0))
#: the same in vacuum, as (head, fade, weight) like :data:`TIO_BANDS` (the head carries :func:`cah_depth`)
CAH_BANDS = tuple((_vac(head), fade, 1.0) for head, fade in CAH_BANDS_AIR)


#: the blue pseudo-continuum of late-K and M stars: between ~3900 A and the head of the TiO alpha-system band
#: at 4761 A their flux lies far below what the bands and lines above leave (the overlapping TiO alpha and
#: gamma' sequences, CaOH, MgH and the damping wings of the Ca I 4227 resonance line). Modelled as a
#: flat-bottomed optical depth tau = M_BLUE_TAU ((M_BLUE_TEFF - Teff) / 1000 K)^2 10^(0.5 [Fe/H]) (Teff <
#: M_BLUE_TEFF; the metallicity scaling of :func:`tio_depth`) between the vacuum wavelengths M_BLUE_BAND, its
#: blue edge logistic over M_BLUE_EDGE A, its red edge over 10 A; set with :data:`TIO_VISIBLE` (see there;
#: onset Teff fixed at 4700 K). Without it the B - V of M dwarfs fell from 1.19 at M0 V to 0.81 at M4 V (P&M:
#: 1.42 .. 1.65) and their g - r stayed ~1.2 (templates 1.36 .. 1.53); with it B - V is 1.32 .. 1.55 from K7 V
#: to M4 V (P&M 1.34 .. 1.65, at most 0.11 off; M5 V 1.60 against 1.83, see :data:`M_BLUE_SATURATION_TEFF`),
#: U - B within 0.07.
M_BLUE_TAU, M_BLUE_TEFF = 0.50, 4700.0
M_BLUE_BAND, M_BLUE_EDGE = (3890.0, 4800.0), 135.0
#: below this Teff (M4 V) the depression's depth stays at its value there, as the TiO bands saturate (tio_depth
#: 0.71 of its 0.75 at 3200 K): grown further as ((4700 K - Teff) / 1000 K)^2 it made the SDSS g - r of M5 V and
#: M6 V 1.75 and 2.05 against 1.62 for the M6 template of Bochanski et al. (2007); saturated 1.67 and 1.87 (the
#: black body times bands of this model stays too red there), B - V 1.59 / 1.73 against P&M 1.83 / 2.01
M_BLUE_SATURATION_TEFF = 3200.0


def m_blue_tau(teff: np.ndarray, feh: np.ndarray | None = None) -> np.ndarray:
    """Optical depth at the bottom of the late-K / M blue depression (:data:`M_BLUE_TAU`): 0 above M_BLUE_TEFF,
    constant below :data:`M_BLUE_SATURATION_TEFF`."""
    teff, _, feh = _params(teff, None, feh)
    x = np.clip((M_BLUE_TEFF - teff) / 1000.0, 0.0, (M_BLUE_TEFF - M_BLUE_SATURATION_TEFF) / 1000.0)
    return M_BLUE_TAU * x**2 * 10.0 ** (0.5 * feh)


def _add_blue_depression(tau: np.ndarray, teff: np.ndarray, feh: np.ndarray, shift: np.ndarray) -> None:
    """Add the :func:`m_blue_tau` band (M_BLUE_BAND, edges M_BLUE_EDGE and 10 A) to ``tau``, in place."""
    depth = m_blue_tau(teff, feh)
    rows = np.flatnonzero(depth > 1e-4)
    _add_flat_band(tau, rows, depth[rows], M_BLUE_BAND, shift, (M_BLUE_EDGE, 10.0))


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
    and ``feh`` ([Fe/H], default 0): tau = -ln(1 - depth * strength(teff)) * 10^(a [Fe/H] + g (log g - 4.438));
    and ``"G_band"``, the depth of the flat-bottomed CH band (:func:`g_band_depth`)."""
    teff, logg, feh = _params(teff, logg, feh)
    out = {}
    for name, _, _, depth, strength, a, g in LINES:
        tau = -np.log1p(-np.clip(depth * strength(teff), 0.0, 0.95)) * _line_scale(feh, logg, a, g)
        out[name] = np.minimum(-np.expm1(-tau), 0.95)
    out["G_band"] = g_band_depth(teff, feh)
    return out


def tio_depth(teff: np.ndarray, feh: np.ndarray | None = None) -> np.ndarray:
    """Depth at the TiO band heads: 0.75 logistic((3650 K - Teff) / 150 K), weaker when metal-poor.

    That is ~0.15 at M0 (3850 K), 0.37 at M1 (3660 K), 0.5 at M2, 0.6 at M3 and 0.7 at M4 (3200 K), the
    1 - TiO5 band strengths of Reid et al. (1995, AJ 110, 1838) on the Teff scale of Pecaut & Mamajek (2013).
    """
    teff, _, feh = _params(teff, None, feh)
    d = 0.75 * logistic((3650.0 - teff) / 150.0)
    return -np.expm1(np.log1p(-d) * 10.0 ** (0.5 * feh))


def cah_depth(teff: np.ndarray, logg: np.ndarray | None = None) -> np.ndarray:
    """Depth at the CaH band heads: M dwarfs (0.4 at full strength), weaker in giants."""
    teff, logg, _ = _params(teff, logg, None)
    return 0.4 * logistic((3650.0 - teff) / 150.0) * logistic((logg - 3.5) / 0.3)


def continuum_tau(wavelength: np.ndarray, teff: np.ndarray, logg: np.ndarray | None = None,
                  feh: np.ndarray | None = None) -> np.ndarray:
    """Optical depth (N, L) of the Balmer jump and of the blue/UV line blanketing at rest ``wavelength`` (A).

    Balmer jump: tau = BALMER_JUMP_TAU s(Teff) 10^(-0.1 (log g - 4)) (lambda / 3646)^3 blueward of 3646 A
    (hydrogen bound-free from n = 2, a smooth 10 A edge; s = :func:`balmer_jump_strength`); blanketing: tau =
    BLANKETING_TAU S(Teff) m([Fe/H]) ((4500 - lambda) / 1000 A)^1.5 blueward of 4500 A (m =
    :func:`blanketing_metal_factor`), S
    rising from hot to cool stars (logistic at 6800 K times min((5772 / Teff)^BLANKETING_TEFF_EXPONENT,
    BLANKETING_COOL_CAP)); the red-side opacity c(Teff) ln(lambda / 4861 A)
    between 4000 A and RED_OPACITY_STOP, constant beyond (:data:`RED_OPACITY_ANCHORS`).
    """
    teff, logg, feh = _params(teff, logg, feh)
    lam = np.asarray(wavelength, dtype=np.float64)
    lam = lam[None, :] if lam.ndim == 1 else lam
    n = len(teff)
    jump, blanket, red = _continuum_coefficients(teff, logg, feh)
    # the red-side term everywhere (constant outside 4000-7500 A), then the blue terms on the columns where
    # they are not negligible (the edge's logistic is < 1e-12 of the jump 70 A redward of 3646 A)
    tau = red[:, None] * np.log(np.clip(lam, 4000.0, RED_OPACITY_STOP) / RED_OPACITY_PIVOT)
    if tau.shape[0] != n:
        tau = np.broadcast_to(tau, (n, tau.shape[1])).copy()
    cols = np.flatnonzero(lam.min(axis=0) < BALMER_JUMP_COLUMNS)
    if cols.size:
        tau[:, cols] += _jump_term(np.broadcast_to(lam[:, cols], (n, cols.size)).copy(), jump)
    cols = np.flatnonzero(lam.min(axis=0) < 4500.0)
    if cols.size:
        tau[:, cols] += _blanket_term(np.broadcast_to(lam[:, cols], (n, cols.size)).copy(), blanket)
    return tau


def _jump_term(rest: np.ndarray, jump: np.ndarray) -> np.ndarray:
    """The Balmer jump's optical depth at rest wavelengths ``rest`` (N, k; overwritten) for (N,) ``jump``:
    jump logistic((3646 - lambda) / 2.5) (lambda / 3646)^3, written as jump (lambda / 3646)^3 / (1 + exp((lambda -
    3646) / 2.5)) (no tanh, no pow; the exponential overflows to inf far redward, where the term's limit is 0)."""
    with np.errstate(over="ignore"):
        edge = np.exp((rest - 3646.0) / 2.5)
    edge += 1.0
    rest /= 3646.0
    cube = rest * rest
    cube *= rest
    cube /= edge
    cube *= jump[:, None]
    return cube


def _blanket_term(rest: np.ndarray, blanket: np.ndarray) -> np.ndarray:
    """The blanketing's optical depth at rest wavelengths ``rest`` (N, k; overwritten, returned) for (N,)
    ``blanket``: blanket max((4500 - lambda) / 1000 A, 0)^1.5, with x^1.5 = x sqrt(x)."""
    np.subtract(4500.0, rest, out=rest)
    rest /= 1000.0
    np.maximum(rest, 0.0, out=rest)
    rest *= np.sqrt(rest)
    rest *= blanket[:, None]
    return rest


#: rest wavelength (A) redward of which the Balmer jump's term is dropped (its edge is < 1e-12 of the jump there)
BALMER_JUMP_COLUMNS = 3716.0


def _continuum_coefficients(teff: np.ndarray, logg: np.ndarray, feh: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Balmer jump's, the blanketing's and the red-side opacity's coefficients of :func:`continuum_tau`."""
    jump = BALMER_JUMP_TAU * balmer_jump_strength(teff) * 10.0 ** (-0.1 * (logg - 4.0))
    blanket = (BLANKETING_TAU * logistic((6800.0 - teff) / 500.0)
               * np.minimum((5772.0 / teff) ** BLANKETING_TEFF_EXPONENT, BLANKETING_COOL_CAP)
               * blanketing_metal_factor(feh))
    anchor_t, anchor_c = np.array(RED_OPACITY_ANCHORS, dtype=np.float64).T
    red = np.interp(np.log(teff), np.log(anchor_t), anchor_c)
    return jump, blanket, red


def _add_continuum_tau_on_grid(tau: np.ndarray, shift: np.ndarray, teff: np.ndarray, logg: np.ndarray,
                               feh: np.ndarray) -> None:
    """Add :func:`continuum_tau` at the rest wavelengths model_grid / ``shift`` (N,) to ``tau`` (N, L), in place.

    The same terms with the model grid's structure used: ln(lambda_rest) = ln(grid) - ln(shift) (no logarithm
    per pixel: the clip of the red-side term commutes with it), and the blue terms on the grid's first columns
    only (those bluer than 3716 A or 4500 A in the rest frame of the most redshifted star).
    """
    grid = model_grid()
    jump, blanket, red = _continuum_coefficients(teff, logg, feh)
    ln_rest = _ln_model_grid()[None, :] - np.log(shift)[:, None]
    np.clip(ln_rest, np.log(4000.0), np.log(RED_OPACITY_STOP), out=ln_rest)
    ln_rest -= np.log(RED_OPACITY_PIVOT)
    ln_rest *= red[:, None]
    tau += ln_rest
    del ln_rest
    top = float(np.max(shift))
    k = int(np.searchsorted(grid, BALMER_JUMP_COLUMNS * top))
    if k:
        tau[:, :k] += _jump_term(grid[None, :k] / shift[:, None], jump)
    k = int(np.searchsorted(grid, 4500.0 * top))
    if k:
        tau[:, :k] += _blanket_term(grid[None, :k] / shift[:, None], blanket)


@lru_cache(maxsize=1)
def _ln_model_grid() -> np.ndarray:
    return np.log(model_grid())


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
        rows = np.flatnonzero(d > 1e-4)  # only the stars that show the line (He in O/B, Balmer not in M...)
        if rows.size == 0:
            continue
        tau0 = -np.log1p(-d[rows])
        c, w = lam0 * shift[rows], width[rows] * shift[rows]
        if strength is balmer_strength or name in WINGED_LINES:
            # damping wings: a WING_WIDTH times wider Gaussian carries WING_FRACTION of the central depth
            _add_gaussian_rows(tau, rows, c, w, (1.0 - WING_FRACTION) * tau0, 5.0)
            _add_gaussian_rows(tau, rows, c, WING_WIDTH * w, WING_FRACTION * tau0, 3.5)
        else:
            _add_gaussian_rows(tau, rows, c, w, tau0, 5.0)
    _add_box(tau, g_band_depth(teff, feh), G_BAND, shift)
    _add_box(tau, mgh_depth(teff, logg, feh), MGH_BAND, shift)
    _add_bands(tau, tio_depth(teff, feh), TIO_BANDS, shift)
    _add_bands(tau, cah_depth(teff, logg), CAH_BANDS, shift)
    _add_blue_depression(tau, teff, feh, shift)
    out = tau[:, :-1]
    _add_continuum_tau_on_grid(out, shift, teff, logg, feh)
    return out


#: the CH G band: a flat-bottomed band from 4282 A to its head at 4316 A (the Lick G4300 passband, Worthey et
#: al. 1994), depth G_BAND_DEPTH at full strength: 0.22 x 34 A ~ 7.5 A, so that the G4300 equivalent width is
#: ~3 A at F5, ~5.5 A in the Sun and ~7 A in early K dwarfs (Worthey et al. 1994 fitting functions)
G_BAND_AIR, G_BAND_DEPTH = (4282.0, 4316.0), 0.22
#: the band's limits in vacuum (the model grid's wavelengths)
G_BAND = (_vac(G_BAND_AIR[0]), _vac(G_BAND_AIR[1]))


def g_band_depth(teff: np.ndarray, feh: np.ndarray | None = None) -> np.ndarray:
    """Depth of the G band: G_BAND_DEPTH times its Teff strength, optical depth scaled by 10^(0.3 [Fe/H]).

    The exponent 0.3: G4300 changes by ~1.5 A per dex of [Fe/H] near solar Teff (Worthey et al. 1994), a
    quarter of its ~6 A, the partly saturated CH band.
    """
    teff, _, feh = _params(teff, None, feh)
    d = np.clip(G_BAND_DEPTH * _g_band(teff), 0.0, 0.95)
    return -np.expm1(np.log1p(-d) * 10.0 ** (0.3 * feh))


#: the MgH A-X band: from its head at 5211 A blueward to ~4900 A (under Mg b), the gravity-sensitive band of K
#: and early-M dwarfs that giants lack (the luminosity criterion of Gray & Corbally 2009; Mould 1976, A&A 48,
#: 443): depth MGH_DEPTH at full strength, rising below ~5000 K, in dwarfs (log g > 4) only
MGH_BAND_AIR, MGH_DEPTH = (4900.0, 5211.0), 0.15
MGH_BAND = (_vac(MGH_BAND_AIR[0]), _vac(MGH_BAND_AIR[1]))


def mgh_depth(teff: np.ndarray, logg: np.ndarray | None = None, feh: np.ndarray | None = None) -> np.ndarray:
    """Depth of the MgH band: MGH_DEPTH logistic((4900 K - Teff) / 300 K) logistic((log g - 4) / 0.15), its
    optical depth scaled by 10^(0.5 [Fe/H])."""
    teff, logg, feh = _params(teff, logg, feh)
    d = MGH_DEPTH * logistic((4900.0 - teff) / 300.0) * logistic((logg - 4.0) / 0.15)
    return -np.expm1(np.log1p(-d) * 10.0 ** (0.5 * feh))


def _add_gaussian_rows(out: np.ndarray, rows: np.ndarray, centre: np.ndarray, sigma: np.ndarray,
                       amplitude: np.ndarray, nsigma: float) -> None:
    """:func:`~astromodal.data.simulate.physics.add_gaussians` for the rows ``rows`` of ``out`` only (N, L + 1)."""
    add_gaussians(out, centre, sigma, amplitude, nsigma, rows=rows)


def _add_box(tau: np.ndarray, depth: np.ndarray, band: tuple[float, float], shift: np.ndarray) -> None:
    """Add a flat-bottomed band (edges 2 A wide, logistic) of central ``depth`` to the rows where it shows."""
    rows = np.flatnonzero(depth > 1e-4)
    _add_flat_band(tau, rows, -np.log1p(-depth[rows]), band, shift)


def _add_flat_band(tau: np.ndarray, rows: np.ndarray, tau0: np.ndarray, band: tuple[float, float],
                   shift: np.ndarray, edges: tuple[float, float] = (1.0, 1.0)) -> None:
    """Add tau0 (one per row of ``rows``) times logistic((lambda - lo) / w_lo) logistic((hi - lambda) / w_hi) at
    the rest wavelengths model_grid / shift of those rows of ``tau`` (N, L + 1), in place; ``band`` = (lo, hi),
    ``edges`` = (w_lo, w_hi) in A. Only the columns where the band exceeds ~1e-5 of its depth are touched, and
    the red edge's logistic is evaluated only within 37 widths of it (1 to float precision further blueward)."""
    if rows.size == 0:
        return
    (lo, hi), (w_lo, w_hi) = band, edges
    grid = model_grid()
    i0 = max(0, int(np.log(min(lo * 0.99, (lo - 12.0 * w_lo) * 0.99) / GRID_START) / GRID_DLN))
    i1 = int(np.log(max(hi, hi + 15.0 * w_hi) * 1.01 / GRID_START) / GRID_DLN) + 1
    lam = grid[i0:i1][None, :] / shift[rows][:, None]
    box = logistic((lam - lo) / w_lo)
    k = max(0, int(np.searchsorted(grid[i0:i1], (hi - 37.0 * w_hi) * float(np.min(shift[rows])))))
    box[:, k:] *= logistic((hi - lam[:, k:]) / w_hi)
    box *= tau0[:, None]
    tau[rows, i0:i1] += box


def _add_bands(tau: np.ndarray, depth: np.ndarray, bands, shift: np.ndarray) -> None:
    """Add molecular bands (a sharp head then an exponential fade to the red) for the rows where they show:
    ``bands`` holds (head, fade, weight) triples, the weight multiplying the head's optical depth."""
    rows = np.flatnonzero(depth > 1e-4)
    if rows.size == 0:
        return
    grid = model_grid()
    tau0 = -np.log1p(-depth[rows])[:, None]
    for head, fade, weight in bands:
        i0 = int(np.log(head * 0.995 / GRID_START) / GRID_DLN)
        i1 = min(len(grid), int(np.log((head + 6.0 * fade) * 1.005 / GRID_START) / GRID_DLN))
        lam = grid[i0:i1][None, :]
        h = head * shift[rows][:, None]
        band = np.where(lam >= h, np.exp(-(lam - h) / fade), 0.0)
        tau[rows, i0:i1] += (tau0 * weight) * band


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
        tau = absorption_tau(teff, rv_kms, logg, feh)
        if ebv is not None:  # the extinction in the same exponential: 10^(-0.4 E k) = exp(-0.4 ln(10) E k)
            tau += (0.4 * np.log(10.0) * np.asarray(ebv, dtype=np.float64))[:, None] * f99_on_grid()[None, :]
        np.negative(tau, out=tau)
        flux *= np.exp(tau, out=tau)
        if ebv is not None:  # (a product: its order with the extinction does not matter)
            _interstellar_nad(flux, np.asarray(ebv, dtype=np.float64))
    elif ebv is not None:
        flux *= 10.0 ** (-0.4 * np.asarray(ebv, dtype=np.float64)[:, None] * f99_on_grid()[None, :])
    return flux


#: interstellar Na D: log10 E(B-V) = 1.17 EW(D1 + D2) [A] - 1.85 (Poznanski, Prochaska & Bloom 2012, MNRAS 426,
#: 1465), D2 : D1 = 0.55 : 0.45 of the total (partly saturated), each a Gaussian of ISM_NAD_SIGMA A (the
#: velocity spread of the clouds on the sightline, unresolved at R ~ 2000) at rest (vacuum) wavelength
ISM_NAD = ((_vac(5889.95), 0.55), (_vac(5895.92), 0.45))
ISM_NAD_SIGMA, ISM_NAD_MAX_EW = 1.0, 1.5


def interstellar_nad_ew(ebv: np.ndarray) -> np.ndarray:
    """EW(D1 + D2) in A of interstellar Na D for colour excess ``ebv`` (Poznanski et al. 2012), 0..1.5 A."""
    ebv = np.asarray(ebv, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ew = (np.log10(np.maximum(ebv, 1e-12)) + 1.85) / 1.17
    return np.clip(ew, 0.0, ISM_NAD_MAX_EW)


def _interstellar_nad(flux: np.ndarray, ebv: np.ndarray) -> None:
    """Multiply the interstellar Na D absorption into ``flux`` (N, L) on the model grid, in place."""
    grid = model_grid()
    lo = int(np.log(5880.0 / GRID_START) / GRID_DLN)
    hi = int(np.log(5906.0 / GRID_START) / GRID_DLN) + 1
    lam = grid[lo:hi][None, :]
    ew = interstellar_nad_ew(ebv)[:, None]
    for lam0, share in ISM_NAD:  # Gaussian absorption profiles: the equivalent width is exactly share * ew
        depth = np.minimum(share * ew / (np.sqrt(2.0 * np.pi) * ISM_NAD_SIGMA), 0.95)
        flux[:, lo:hi] *= 1.0 - depth * np.exp(-0.5 * ((lam - lam0) / ISM_NAD_SIGMA) ** 2)


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
