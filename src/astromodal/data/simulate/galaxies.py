"""Galaxies: redshift, stellar mass, star-formation rate, a two-population continuum and emission lines.

Model and simplifications (every relation cited; nothing is tuned on real survey files):

* target selection (SDSS-like spectroscopic galaxies of SDSS-I to -IV): each galaxy belongs to the main
  sample (r < 17.77, Strauss et al. 2002), LOWZ or CMASS (the BOSS colour-magnitude cuts of Reid et al.
  2016), or the eBOSS LRG (Prakash et al. 2016) or ELG (Raichoor et al. 2017) samples (see :func:`selected`),
  in the shares of the published sample sizes (:data:`TARGET_SAMPLES`). Candidates are drawn with z from
  the comoving volume dV/dz (Planck18) and log M from the Baldry et al. (2012) double-Schechter stellar
  mass function, and kept when their model continuum magnitudes (through the SDSS, and for the ELGs the
  DECam, response curves) pass the cuts, so redshift and magnitude distributions follow from the selection
  (main sample z ~ 0.1, LOWZ ~ 0.3, CMASS to z ~ 0.8, eBOSS to z ~ 1.1); the cuts use the continuum
  without lines (lines and absorption shift r by < 0.1 mag for most, up to ~0.4 mag for the strongest
  emitters) and the intrinsic (extinction-corrected) magnitudes, as the SDSS target selections do;
* a quenched fraction rising with mass (logistic, 50 % at 10^10.5 Msun, after Baldry et al. 2006);
  star-forming galaxies follow the Speagle et al. (2014) main sequence
  log SFR = (0.84 - 0.026 t) log M - (6.51 - 0.11 t) (t: cosmic age in Gyr) with 0.3 dex scatter,
  quenched ones lie 1.5 +- 0.4 dex below;
* continuum = old population + young population (a 15000 K black body, a weak 1.15 break and Balmer
  absorption, :func:`young_population_sed`), mixed by specific SFR (:func:`young_fraction`), so the composite
  D4000 falls with sSFR. The old population is the
  empirical elliptical-galaxy SED of Coleman, Wu & Weedman (1980) as extended by Bolzonella et al. (2000) and
  shipped by galsim (:data:`OLD_TEMPLATE`, :func:`old_population_sed`), at every redshift (no colour
  evolution); each galaxy's break is the template's times ``break_old`` ~ N(1, 0.05) (the 3750-4000 A
  window of :func:`break_window`, Hamilton's 1985 blue window, divided by it), and Ca II H&K
  absorption lines are added; the young light is attenuated by the
  Calzetti et al. (2000) curve with A_V = 0.44 A_V(gas), A_V(gas) = A_Halpha k'(V) / k'(Halpha) and
  A_Halpha from mass after Garn & Best (2010) (0.28 mag scatter); its amplitude is set by an absolute
  magnitude M_r from a mass-to-light ratio that falls with z so M_r brightens by Q = 1.62 mag per unit z
  (Blanton et al. 2003) (monochromatic at rest 6166 A); observed f_lambda = L_lambda(lambda / (1 + z)) /
  (4 pi d_L^2 (1 + z));
* emission lines: L(Halpha) from the SFR by Kennicutt (1998), SFR = 7.9e-42 L(Halpha) [erg/s], not attenuated
  (so the line fluxes give back the SFR exactly);
  Hbeta = Halpha / 2.86 (case B), [OII]3727 = 0.56 Halpha (Kennicutt's [OII] calibration), [NII]6584/Halpha
  and [OIII]5007/Hbeta from the mass, [NII]6548 = [NII]6584 / 3, [OIII]4959 = [OIII]5007 / 3, [SII] 6717+6731;
  fluxes F = L / (4 pi d_L^2); Gaussian profiles with velocity dispersion 50-150 km/s;
* images: Sersic profiles (n 0.7-1.5 for star-forming discs, 2.5-5 for quenched spheroids), effective
  radius 1.5-8 kpc seen at the angular-diameter distance, axis ratio and position angle;
* D4000 (:func:`d4000_narrow`): the narrow 4000 A break of Balogh et al. (1999), the ratio of the mean f_nu in
  4000-4100 A to that in 3850-3950 A (rest frame), measured on each galaxy's noiseless model spectrum
  (continuum, stellar absorption and nebular lines at the model grid's resolution, no instrument), so it
  includes the Ca II H&K and H delta absorption the model puts into those windows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from astromodal.data.simulate.photometry import ab_from_fnu, coarse_band_grid
from astromodal.data.simulate.physics import (
    AB_ZERO_FNU,
    C_ANGSTROM,
    C_KMS,
    CALZETTI_RV,
    GRID_DLN,
    GRID_START,
    PC_CM,
    add_gaussians,
    add_line_fluxes,
    angular_diameter_distance_pc,
    calzetti_k,
    cosmic_age_gyr,
    differential_comoving_volume,
    logistic,
    luminosity_distance_pc,
    model_grid,
    planck_lambda,
)

KENNICUTT_HALPHA = 7.9e-42  # Msun/yr per erg/s of Halpha
#: rest-frame windows (A) of the narrow 4000 A break (Balogh et al. 1999): blue, red
D4000_BLUE, D4000_RED = (3850.0, 3950.0), (4000.0, 4100.0)
HALPHA_HBETA = 2.86
R_EFF_LAMBDA = 6166.0  # A: reference wavelength of the absolute magnitude M_r
M_SUN_R = 4.65  # AB absolute magnitude of the Sun in r
STELLAR_TO_GAS = 0.44  # E_s(B-V) of the stellar continuum / E(B-V) of the gas (Calzetti et al. 2000)

EMISSION_LINES = {
    "OII_3727": 3727.4, "H_beta": 4861.3, "OIII_4959": 4958.9, "OIII_5007": 5006.8, "NII_6548": 6548.1,
    "H_alpha": 6562.8, "NII_6584": 6583.5, "SII_6717": 6716.4, "SII_6731": 6730.8,
}


#: Baldry et al. (2012, GAMA) double-Schechter stellar mass function: log M*, alpha_1, phi_1, alpha_2, phi_2
SMF = (10.66, -0.35, 3.96e-3, -1.47, 0.79e-3)
#: luminosity evolution: M/L falls so that M_r brightens by Q mag per unit redshift (Blanton et al. 2003)
EVOLUTION_Q = 1.62
#: SDSS target samples: (share of the spectroscopic galaxies, proposal redshift range, lowest log mass).
#: Shares after the published sample sizes: ~0.70M main-sample galaxies (Strauss et al. 2002; Abazajian et al.
#: 2009, DR7), ~0.36M LOWZ and ~0.86M CMASS galaxies (BOSS DR12, Reid et al. 2016), and the eBOSS DR16
#: large-scale-structure catalogues' 0.175M LRGs (0.6 < z < 1.0) and 0.174M ELGs (0.6 < z < 1.1) (Ross et al.
#: 2020, MNRAS 498, 2354; Raichoor et al. 2021, MNRAS 500, 3254): 0.70 : 0.36 : 0.86 : 0.175 : 0.174.
#: The new eBOSS samples are appended (main, lowz, cmass keep their target_sample codes 0, 1, 2); their proposal
#: ranges end at z = 1.2, past the published LRG (0.6-1.0) and ELG (0.6-1.1) ranges (so the rest-frame
#: 4000 A break stays inside the SDSS/BOSS spectrum, which ends at 9200-10400 A).
TARGET_SAMPLES = {"main": (0.308, (0.005, 0.4), 8.5), "lowz": (0.159, (0.05, 0.6), 10.5),
                  "cmass": (0.380, (0.3, 0.95), 10.7), "eboss_lrg": (0.077, (0.4, 1.2), 10.8),
                  "eboss_elg": (0.076, (0.5, 1.2), 9.3)}
R_LIMIT_MAIN = 17.77
#: bands of the selection magnitudes (``model_mags`` columns): SDSS g r i z, and the DECam g r z of the
#: DECaLS imaging the eBOSS ELGs were selected from (speclite's ``decam2014-*`` curves)
_SELECTION_BANDS = ("g", "r", "i", "z", "decam_g", "decam_r", "decam_z")
#: highest redshift of the selection tables
_Z_TABLE_MAX = 1.4
_MAX_ROUNDS = 400


def sample_galaxies(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw ``n`` SDSS-like spectroscopic galaxies: each is assigned a target sample (main, LOWZ, CMASS in the
    shares of :data:`TARGET_SAMPLES`), and candidates from the mass function in the comoving volume are drawn
    until that many pass the sample's cuts (:func:`selected`) on their model g r i magnitudes."""
    names = tuple(TARGET_SAMPLES)
    shares = np.array([TARGET_SAMPLES[k][0] for k in names])
    sample = rng.choice(len(names), size=n, p=shares / shares.sum())
    parts, order = [], []
    for k, name in enumerate(names):
        want = int(np.sum(sample == k))
        got, have = [], 0
        for _ in range(_MAX_ROUNDS):
            if have >= want:
                break
            m = max(64, 4 * (want - have))
            cand = _population(rng, *_propose(rng, m, name))
            keep = selected(name, cand["model_mags"])
            got.append({key: v[keep] for key, v in cand.items()})
            have += int(keep.sum())
        else:
            raise RuntimeError(f"galaxy target sample {name!r}: too few candidates pass the cuts")
        part = {key: np.concatenate([g[key] for g in got])[:want] for key in got[0]} if got else None
        if part is not None:
            part["target_sample"] = np.full(want, k, dtype=np.int64)
            parts.append(part)
            order.append(np.flatnonzero(sample == k))
    if not parts:
        return _population(rng, np.zeros(0), np.zeros(0)) | {"target_sample": np.zeros(0, dtype=np.int64)}
    out = {key: np.empty((n, *parts[0][key].shape[1:]), dtype=parts[0][key].dtype) for key in parts[0]}
    for part, rows in zip(parts, order, strict=True):
        for key, v in part.items():
            out[key][rows] = v
    return out


def _inverse_cdf(rng: np.random.Generator, x: np.ndarray, density: np.ndarray, m: int) -> np.ndarray:
    """``m`` draws from a tabulated density on the grid ``x`` (trapezoid CDF, linear interpolation)."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(x))])
    return np.interp(rng.random(m) * cdf[-1], cdf, x)


def stellar_mass_function(logm: np.ndarray) -> np.ndarray:
    """Baldry et al. (2012) phi(log M) per dex per Mpc^3: ln 10 e^(-M/M*) (M/M*) [phi1 (M/M*)^a1 + phi2 (M/M*)^a2]."""
    log_mstar, a1, p1, a2, p2 = SMF
    mu = 10 ** (np.asarray(logm, dtype=np.float64) - log_mstar)
    return np.log(10.0) * np.exp(-mu) * mu * (p1 * mu**a1 + p2 * mu**a2)


def _propose(rng: np.random.Generator, m: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (z, log M): z from dV/dz in the sample's proposal range, log M from the mass function."""
    _, (z_lo, z_hi), logm_lo = TARGET_SAMPLES[name]
    zg = np.linspace(z_lo, z_hi, 200)
    mg = np.linspace(logm_lo, 12.3, 200)
    return (_inverse_cdf(rng, zg, differential_comoving_volume(zg), m),
            _inverse_cdf(rng, mg, stellar_mass_function(mg), m))


def _population(rng: np.random.Generator, z: np.ndarray, logm: np.ndarray) -> dict[str, np.ndarray]:
    """Star formation, stellar populations, dust, lines and shape of galaxies at (z, log M)."""
    n = len(z)
    quenched = rng.random(n) < quenched_fraction(logm)
    log_sfr = main_sequence_log_sfr(logm, z) + rng.normal(0.0, 0.3, n)
    log_sfr -= np.where(quenched, 1.5 + rng.normal(0.0, 0.4, n), 0.0)
    log_ssfr = log_sfr - logm
    young = young_fraction(log_ssfr)
    a_halpha = np.clip(garn_best_a_halpha(logm) + rng.normal(0.0, 0.28, n), 0.0, None)
    log_ml = 0.5 * (1.0 - young) - 0.1 - 0.4 * EVOLUTION_Q * z + rng.normal(0.0, 0.05, n)
    r_e_kpc = np.exp(rng.uniform(np.log(1.5), np.log(8.0), n)) * (1.0 + 0.3 * (logm - 10.3))
    p = {
        "redshift": z,
        "log_mass": logm,
        "sfr": 10**log_sfr,
        "young_fraction": young,
        "abs_mag_r": M_SUN_R - 2.5 * (logm - log_ml),
        "break_old": np.clip(rng.normal(1.0, BREAK_OLD_SCATTER, n), *BREAK_OLD_RANGE),
        "av_young": STELLAR_TO_GAS * CALZETTI_RV / calzetti_k(6562.8) * a_halpha,
        "sigma_v": rng.uniform(50.0, 150.0, n),
        "n2_ha": np.clip(0.35 + 0.15 * (logm - 10.0) + rng.normal(0, 0.05, n), 0.05, 1.0),
        "o3_hb": np.clip(10 ** (0.3 - 0.6 * (logm - 9.5) + rng.normal(0, 0.15, n)), 0.1, 5.0),
        "sersic_n": np.where(quenched, rng.uniform(2.5, 5.0, n), rng.uniform(0.7, 1.5, n)),
        "r_e_arcsec": np.clip(np.maximum(r_e_kpc, 0.5) * 1e3 / angular_diameter_distance_pc(np.maximum(z, 1e-4))
                              * 206264.806, 0.3, 8.0),
        "axis_ratio": rng.uniform(0.3, 1.0, n),
        "position_angle": rng.uniform(0.0, 180.0, n),
        "quenched": quenched,
    }
    p["model_mags"] = continuum_magnitudes(p)
    return p


def quenched_fraction(logm: np.ndarray) -> np.ndarray:
    """Fraction of quenched (red-sequence) galaxies at log M: a logistic rising through 50 % at 10^10.5 Msun
    (0.35 dex wide), after the red fractions of Baldry et al. (2006), from 0.1 at 10^9.7 to 0.9 at 10^11.3."""
    return logistic((np.asarray(logm, dtype=np.float64) - 10.5) / 0.35)


def main_sequence_log_sfr(logm: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Star-formation main sequence of Speagle et al. (2014): log SFR = (0.84 - 0.026 t) log M - (6.51 - 0.11 t),
    t the age of the universe in Gyr at z (SFR in Msun/yr)."""
    t = cosmic_age_gyr(z)
    return (0.84 - 0.026 * t) * np.asarray(logm) - (6.51 - 0.11 * t)


def young_fraction(log_ssfr: np.ndarray) -> np.ndarray:
    """Share of the r light from the young population at specific SFR 10^``log_ssfr`` / yr: the stars formed in
    the last :data:`YOUNG_AGE_YR` are sSFR x 1e8 yr of the mass and shine :data:`YOUNG_LIGHT_CONTRAST` times
    more per unit mass in r, so young / old light x = sSFR 1e8 yr 60 and the share is x / (1 + x)
    (sSFR 1e-12: 0.006, 1e-11: 0.057, 1e-10: 0.375, 1e-9: 0.857), held within :data:`YOUNG_FLOOR` .. 0.9.

    Until session 29 it was linear in log sSFR (0.5 at 1e-10, 0.15 at 1e-11), which gave the quenched
    galaxies seen at z 0.5-0.8 (1.5 dex below a main sequence that rises with z) 10-20 % of their r light
    from 15,000 K stars and 0.3-0.4 mag too blue g - r."""
    x = 10.0 ** np.asarray(log_ssfr, dtype=np.float64) * YOUNG_AGE_YR * YOUNG_LIGHT_CONTRAST
    return np.clip(x / (1.0 + x), YOUNG_FLOOR, 0.9)


#: the young population is the light of the stars formed in the last 100 Myr: the r-band mass-to-light ratio
#: of a constant star formation over 100 Myr is ~0.05 Msun / Lsun against ~3 for a 10 Gyr population (Bruzual
#: & Charlot 2003), a contrast of ~60 (30, the contrast of a single 100 Myr burst, left star-forming galaxies
#: of 10^10.6 Msun only 0.14 mag bluer in g - r than quenched ones; the blue cloud and red sequence of Baldry
#: et al. 2006 are ~0.25 apart there)
YOUNG_AGE_YR, YOUNG_LIGHT_CONTRAST = 1.0e8, 60.0
#: lowest share of the r light from young stars (a quenched galaxy's residual star formation): the share at
#: sSFR 5e-13 / yr (a floor of 2 % made the UV of red-sequence galaxies, dominated by the young light,
#: far too bright)
YOUNG_FLOOR = 0.003


# ------------------------------------------------------------------ the old stellar population
#: the old population's spectrum: the elliptical-galaxy SED of Coleman, Wu & Weedman (1980, ApJS 43, 393),
#: extended below 1400 A and beyond 10000 A by Bolzonella, Miralles & Pello (2000, A&A 363, 476) with Bruzual &
#: Charlot models, as galsim ships it (``share/SEDs/CWW_E_ext.sed``): rest u - g / g - r / r - i / i - z
#: 1.74 / 0.80 / 0.36 / 0.31 through the SDSS curves, narrow D4000 2.11, the same at every redshift (no colour
#: evolution; the luminosity evolves with Q, :data:`EVOLUTION_Q`). Until session 29 it was an isochrone summed
#: from the stars' own continua (Kroupa main sequence, fuel-consumption giant branches, black bodies times the
#: dwarf-calibrated opacities of :func:`.stars.continuum_tau`), which came out too red (u - g / g - r 2.19 /
#: 0.92 at 11.6 Gyr against ~1.8 / ~0.77 for published solar-metallicity 10-12 Gyr population models, the
#: 3000-3750 A light 0.6-1.7 mag short) and redder still seen at z 0.45 (g - r 2.3 for a population formed at
#: z = 3, 1.76 for the template); the template anchored today with the isochrone's change with age kept made
#: the population seen at z 0.55-0.7 0.6-0.8 mag bluer in g - r than the template (no eBOSS LRG candidate
#: passed the cuts), so the template holds at every redshift
OLD_TEMPLATE = "CWW_E_ext.sed"
#: rest window (A) of the template's own Halpha + [NII] emission (its galaxies' weak LINER lines, smeared by the
#: 40 A sampling into a 2 % bump at 6520-6660 A): the file's nodes inside it are left out, so the curve passes
#: smoothly from 6460 to 6700 A; the simulator adds each galaxy's lines itself (:func:`add_emission_lines`)
OLD_TEMPLATE_LINE_WINDOW = (6460.0, 6700.0)
#: the template's resolution as a Gaussian sigma (A): its optical nodes are 40 A apart (Coleman et al. 1980
#: scanner spectra, FWHM ~40 A)
OLD_TEMPLATE_SIGMA = 17.0
#: Ca II K and H of the old stars (rest A, equivalent width A): each galaxy's spectrum gets them sharp
#: (:func:`_add_stellar_absorption`); the template holds them at its own resolution, so the old population's
#: table has those smoothed copies (Gaussians of :data:`OLD_TEMPLATE_SIGMA`, the same equivalent widths) added
#: back, and the lines are not counted twice
OLD_HK_LINES = ((3933.7, 5.0), (3968.5, 4.5))
#: rest-frame wavelength range (A) of the tabulated old-population SED (the model grid seen from z = 0 to 1.7)
_SED_RANGE = (1100.0, 11100.0)


@lru_cache(maxsize=1)
def _elliptical_curve() -> Any:
    import os

    import galsim
    from scipy.interpolate import PchipInterpolator

    table = galsim.LookupTable.from_file(os.path.join(galsim.meta_data.share_dir, "SEDs", OLD_TEMPLATE))
    x, f = np.asarray(table.x, dtype=np.float64), np.asarray(table.f, dtype=np.float64)
    lo, hi = OLD_TEMPLATE_LINE_WINDOW
    keep = (x <= lo) | (x >= hi)
    return PchipInterpolator(x[keep], f[keep])


def elliptical_template(lam_rest: np.ndarray) -> np.ndarray:
    """f_lambda (the file's arbitrary units) of the elliptical template :data:`OLD_TEMPLATE` at rest wavelengths
    ``lam_rest`` (A, 91-22050), read through galsim (``LookupTable.from_file`` of its share folder). Between the
    file's nodes (every 20-40 A in the optical, its resolution) a monotone cubic (PCHIP): no overshoot, and no
    kink at every node, which a linear interpolation would put into the spectra. The nodes inside
    :data:`OLD_TEMPLATE_LINE_WINDOW` are left out (the template's own emission)."""
    return _elliptical_curve()(np.asarray(lam_rest, dtype=np.float64))


@lru_cache(maxsize=1)
def _old_sed_table() -> tuple[np.ndarray, np.ndarray]:
    """ln(lambda_rest) grid (step :data:`.physics.GRID_DLN`) and the old population's L_lambda on it, normalised
    to 1 at :data:`R_EFF_LAMBDA` (:func:`elliptical_template` with the smoothed H&K of :data:`OLD_HK_LINES`
    taken out)."""
    ln_lam = np.arange(np.log(_SED_RANGE[0]), np.log(_SED_RANGE[1]), GRID_DLN)
    lam = np.exp(ln_lam)
    sed = elliptical_template(lam)
    level = elliptical_template(np.array([3920.0]))[0]  # the continuum level the sharp lines are scaled to
    for lam0, ew in OLD_HK_LINES:
        sig = OLD_TEMPLATE_SIGMA
        sed += level * ew / (np.sqrt(2.0 * np.pi) * sig) * np.exp(-0.5 * ((lam - lam0) / sig) ** 2)
    sed /= np.interp(np.log(R_EFF_LAMBDA), ln_lam, sed)
    return ln_lam, sed


def old_population_sed(lam_rest: np.ndarray) -> np.ndarray:
    """L_lambda of the old population at rest wavelengths ``lam_rest`` (A), normalised to 1 at 6166 A, without
    a galaxy's own break (:func:`break_window`): :data:`OLD_TEMPLATE`, linear in ln lambda between the nodes
    of :func:`_old_sed_table` (held at its ends outside 1100-11100 A)."""
    ln_lam, sed = _old_sed_table()
    return np.interp(np.log(np.asarray(lam_rest, dtype=np.float64)), ln_lam, sed)


def old_population_d4000() -> float:
    """Narrow D4000 of the old population's continuum (:func:`old_population_sed`, no lines added)."""
    ln_lam, sed = _old_sed_table()
    return float(d4000_narrow(sed[None, :], np.zeros(1), np.exp(ln_lam))[0])


# ------------------------------------------------------------------ the young stellar population
#: effective temperature (K) of the young population's light: a black body with a weak step of
#: :data:`YOUNG_BREAK` blueward of 4000 A. Tried in session 29 and not kept: the main sequence of a constant
#: star formation over 100 Myr summed from the simulator's dwarfs (Kroupa IMF, 2500-40000 K, lifetimes 10 Gyr
#: M^-2.5): with no supergiants its light is that of O/B dwarfs, g - r -0.57 and u - g -0.25 (this black body:
#: -0.25 / 0.03), and it made the galaxies' u - g distribution worse (per-class KS 0.117 -> 0.162)
YOUNG_TEFF, YOUNG_BREAK = 15000.0, 1.15


def young_population_sed(lam_rest: np.ndarray) -> np.ndarray:
    """L_lambda of the young population at rest wavelengths ``lam_rest`` (A), normalised to 1 at 6166 A, before
    dust: the :data:`YOUNG_TEFF` black body divided by :data:`YOUNG_BREAK` blueward of 4000 A (a smooth step 40 A
    wide)."""
    lam = np.asarray(lam_rest, dtype=np.float64)
    step = logistic((lam - 4000.0) / 20.0)
    black_body = planck_lambda(lam, YOUNG_TEFF) / planck_lambda(R_EFF_LAMBDA, YOUNG_TEFF)
    return black_body * (step + (1.0 - step) / YOUNG_BREAK)


#: each galaxy's break relative to the template's: 3750-4000 A rest (edges 10 A wide), from the blue edge of
#: Hamilton's (1985, ApJ 297, 371) D4000 blue window (3750-3950 A) to the break, where the blend of Ca II H&K,
#: the CN 3883 band and the metal lines that makes the 4000 A break of old stars lies (Hamilton 1985; Poggianti
#: & Barbaro 1997, A&A 325, 1025), is divided by ``break_old`` (1: the template's own break), so
#: the old light's narrow D4000 scales by ~``break_old``
BREAK_WINDOW = (3750.0, 4000.0)
#: galaxy-to-galaxy spread of ``break_old``: N(1, 0.05) held within 0.85-1.2, i.e. D4000 +-0.1 around ~2 (the
#: spread of the narrow D4000 among quiescent SDSS galaxies, ages and metallicities; Kauffmann et al. 2003,
#: MNRAS 341, 33)
BREAK_OLD_SCATTER, BREAK_OLD_RANGE = 0.05, (0.85, 1.2)


def break_window(lam_rest: np.ndarray) -> np.ndarray:
    """1 inside :data:`BREAK_WINDOW` (rest A), 0 outside, logistic edges of 10 A; broadcasts."""
    lam = np.asarray(lam_rest, dtype=np.float64)
    return logistic((lam - BREAK_WINDOW[0]) / 10.0) * logistic((BREAK_WINDOW[1] - lam) / 10.0)


def garn_best_a_halpha(logm: np.ndarray) -> np.ndarray:
    """Halpha attenuation (mag) of star-forming galaxies from mass (Garn & Best 2010):
    A_Halpha = 0.91 + 0.77 X + 0.11 X^2 - 0.09 X^3, X = log(M / 10^10 Msun)."""
    x = np.asarray(logm, dtype=np.float64) - 10.0
    return 0.91 + 0.77 * x + 0.11 * x**2 - 0.09 * x**3


def continuum_magnitudes(p: dict[str, np.ndarray]) -> np.ndarray:
    """Model AB magnitudes (N, 7) of the continuum (no lines) on the coarse selection grid, in the bands of
    :data:`_SELECTION_BANDS` (SDSS g r i z, DECam g r z; the first three columns are SDSS g r i).

    Band-mean f_nu is linear in the mix: (1 - y) [A(z) + B(z) / break] + y Y(z, A_V), with A, B (old light
    outside and inside :func:`break_window`) and Y (attenuated young light) tabulated once (:func:`_selection_tables`)
    and interpolated linearly, so that candidates cost no spectra.
    """
    zt, avt, a, b, y = _selection_tables()
    z = np.asarray(p["redshift"], dtype=np.float64)
    fz = np.clip((z - zt[0]) / (zt[1] - zt[0]), 0.0, len(zt) - 1.000001)
    iz, tz = fz.astype(np.int64), (fz - np.floor(fz))[:, None]
    fa = np.clip(p["av_young"] / (avt[1] - avt[0]), 0.0, len(avt) - 1.000001)
    ia, ta = fa.astype(np.int64), (fa - np.floor(fa))[:, None]

    def lin(t):
        return t[iz] * (1.0 - tz) + t[iz + 1] * tz

    yz = ((y[iz, ia] * (1.0 - ta) + y[iz, ia + 1] * ta) * (1.0 - tz)
          + (y[iz + 1, ia] * (1.0 - ta) + y[iz + 1, ia + 1] * ta) * tz)
    young = p["young_fraction"][:, None]
    return ab_from_fnu(((1.0 - young) * (lin(a) + lin(b) / p["break_old"][:, None])
                        + young * yz)
                       * _flux_scale(p)[:, None])


@lru_cache(maxsize=1)
def _selection_tables() -> tuple[np.ndarray, ...]:
    """z grid (0-1.4, dz 0.002), A_V grid (0-4, 0.1) and band-mean f_nu tables A, B (Z, B), Y (Z, A_V, B) of the
    B = len(_SELECTION_BANDS) selection bands."""
    lam, w = coarse_band_grid(_SELECTION_BANDS)
    zt, avt = np.linspace(0.0, _Z_TABLE_MAX, int(round(_Z_TABLE_MAX / 0.002)) + 1), np.linspace(0.0, 4.0, 41)
    rest = lam[None, :] / (1.0 + zt[:, None])
    box = break_window(rest)
    to_fnu = (lam**2 / C_ANGSTROM)[None, :]
    old = old_population_sed(rest) * to_fnu
    yng = young_population_sed(rest) * to_fnu
    att = 10 ** (-0.4 * avt[None, :, None] * calzetti_k(rest)[:, None, :] / CALZETTI_RV)
    return zt, avt, (old * (1.0 - box)) @ w, (old * box) @ w, (yng[:, None, :] * att) @ w


def selected(name: str, mags: np.ndarray) -> np.ndarray:
    """Whether galaxies with model magnitudes ``mags`` (N, 7: SDSS g r i z, DECam g r z as in
    :data:`_SELECTION_BANDS`; the SDSS-I/BOSS samples read g r i only) pass the cuts of target sample ``name``.

    main: r < 17.77 (Strauss et al. 2002). LOWZ (Reid et al. 2016): c_par = 0.7 (g - r) + 1.2 (r - i - 0.18),
    c_perp = (r - i) - (g - r) / 4 - 0.18, |c_perp| < 0.2, 16 < r < 19.6, r < 13.5 + c_par / 0.3.
    CMASS (Reid et al. 2016): d_perp = (r - i) - (g - r) / 8 > 0.55, 17.5 < i < 19.9, r - i < 2,
    i < 19.86 + 1.6 (d_perp - 0.8).
    eBOSS LRG (Prakash et al. 2016, ApJS 224, 34, the SDSS part of their cuts): 19.9 < i < 21.8, z < 19.95,
    r - i > 0.98, i - z > 0.625 (their r - W1 > 2 (r - i) star/galaxy cut needs WISE, which the model lacks;
    it removes stars, not galaxies).
    eBOSS ELG (Raichoor et al. 2017, MNRAS 471, 3955, the SGC box in DECaLS g r z): 21.825 < g < 22.825,
    -0.068 (r - z) + 0.457 < g - r < 0.112 (r - z) + 0.773, 0.218 (g - r) + 0.571 < r - z < -0.555 (g - r) + 1.901.
    """
    g, r, i = mags[:, 0], mags[:, 1], mags[:, 2]
    if name == "main":
        return r < R_LIMIT_MAIN
    if name == "lowz":
        c_par = 0.7 * (g - r) + 1.2 * (r - i - 0.18)
        c_perp = (r - i) - (g - r) / 4.0 - 0.18
        return (np.abs(c_perp) < 0.2) & (r > 16.0) & (r < 19.6) & (r < 13.5 + c_par / 0.3)
    if name == "cmass":
        d_perp = (r - i) - (g - r) / 8.0
        return (d_perp > 0.55) & (i > 17.5) & (i < 19.9) & (r - i < 2.0) & (i < 19.86 + 1.6 * (d_perp - 0.8))
    if name == "eboss_lrg":
        zz = mags[:, 3]
        return (i > 19.9) & (i < 21.8) & (zz < 19.95) & (r - i > 0.98) & (i - zz > 0.625)
    if name == "eboss_elg":
        dg, dr, dz = mags[:, 4], mags[:, 5], mags[:, 6]
        gr, rz = dg - dr, dr - dz
        return ((dg > 21.825) & (dg < 22.825) & (gr > -0.068 * rz + 0.457) & (gr < 0.112 * rz + 0.773)
                & (rz > 0.218 * gr + 0.571) & (rz < -0.555 * gr + 1.901))
    raise ValueError(f"unknown galaxy target sample {name!r}")


def continuum_on_grid(z: np.ndarray, young: np.ndarray, break_old: np.ndarray, av_young: np.ndarray | None = None
                      ) -> np.ndarray:
    """Unnormalised continuum (same units as B_lambda) of the old + young mix of galaxies at lambda_rest =
    model_grid / (1 + z), (N, L): the old population (:func:`old_population_on_grid`, its break window divided
    by ``break_old``) and the young light (:func:`young_population_sed`, attenuated by 10^(-0.4 A_V k'(lambda) /
    R'_V), Calzetti et al. 2000, A_V = ``av_young``) mixed by ``young``; from the shifted rest-frame tables of
    :func:`_rest_tables` (the direct evaluation beyond their redshift range)."""
    z = np.asarray(z, dtype=np.float64)
    old = old_population_on_grid(z, break_old, normalise=False)
    shift = _RestShift.of(z)
    if shift is not None:
        yng = shift.take(_rest_tables()["young"])
        if av_young is not None:
            yng *= np.exp((-0.4 * np.log(10.0) / CALZETTI_RV * av_young)[:, None] * shift.take(_rest_tables()["k"]))
    else:
        lam_rest = model_grid()[None, :] / (1.0 + z[:, None])
        yng = young_population_sed(lam_rest)
        if av_young is not None:  # k' from a fine table (exact but within 3e-4 um of the 0.63 um branch junction)
            lam_t, k_t = _calzetti_table()
            yng *= np.exp((-0.4 * np.log(10.0) / CALZETTI_RV * av_young)[:, None] * np.interp(lam_rest, lam_t, k_t))
    return (1.0 - young[:, None]) * old + young[:, None] * yng


def old_population_shape(lam_rest: np.ndarray, break_old: np.ndarray | float) -> np.ndarray:
    """The old population with its break (:func:`break_window`) divided by ``break_old``, normalised to 1 at
    5100 A (the host-galaxy template of :mod:`.quasars`); broadcasts."""
    box = break_window(lam_rest)
    return old_population_sed(lam_rest) * (1.0 - box + box / np.asarray(break_old)) / old_population_sed(5100.0)


def old_population_on_grid(z: np.ndarray, break_old: np.ndarray, normalise: bool = True) -> np.ndarray:
    """The old population with its break at model_grid / (1 + z), (N, L), for (N,) ``z`` and ``break_old``:
    normalised to 1 at 5100 A (:func:`old_population_shape`), or at 6166 A with ``normalise=False``."""
    z = np.asarray(z, dtype=np.float64)
    shift = _RestShift.of(z)
    if shift is not None:
        sed = shift.take(_rest_tables()["old"])
        box = shift.take(_rest_tables()["box"])
    else:
        lam_rest = model_grid()[None, :] / (1.0 + z[:, None])
        sed = old_population_sed(lam_rest)
        box = break_window(lam_rest)
    shape = sed * (1.0 - box + box / np.asarray(break_old, dtype=np.float64)[:, None])
    return shape / old_population_sed(5100.0) if normalise else shape


#: highest redshift that the rest-frame tables of :func:`_rest_tables` reach (beyond it: the direct evaluation)
REST_TABLE_Z_MAX = 10.0


@lru_cache(maxsize=1)
def _rest_tables() -> dict[str, Any]:
    """The rest-frame curves of the galaxy continuum tabulated at GRID_START exp(k GRID_DLN), k from -K to L - 1
    (L the model grid's length, K pixels blueward so that model_grid / (1 + z) stays inside for z <=
    :data:`REST_TABLE_Z_MAX`): the old population, the break window, the
    young light (:func:`young_population_sed`) and Calzetti's k'.

    The model grid is log-linear, so its wavelengths divided by 1 + z are the same grid moved by ln(1 + z) /
    GRID_DLN pixels: every curve at model_grid / (1 + z) is then the linear interpolation between two neighbouring
    table entries, with one weight per object (:class:`_RestShift`), instead of a logarithm, a search and a
    transcendental function per pixel. At the table's own nodes the values are those of the direct evaluation;
    in between, linear interpolation of curves sampled every 1.5e-4 in ln lambda: relative differences from the
    direct evaluation below 1e-4 (median 2e-15) except at the pixels next to the curves' kinks, which the two
    sample at different points (the Balmer jump at 3646 A, the SED table's 1100 A end, Calzetti's 1200 A start
    and 6300 A junction: up to 0.4 %; the elliptical template's far UV below 1450 A, jagged nodes 10 A apart:
    1.3e-4; the magnitudes move by < 1e-6 mag). Tested against the direct path."""
    n = len(model_grid())
    extra = int(np.ceil(np.log1p(REST_TABLE_Z_MAX) / GRID_DLN)) + 2
    lam = GRID_START * np.exp(GRID_DLN * np.arange(-extra, n))
    lam_t, k_t = _calzetti_table()
    return {
        "extra": extra,
        "old": old_population_sed(lam),
        "box": break_window(lam),
        "young": young_population_sed(lam),
        "k": np.interp(lam, lam_t, k_t),
    }


class _RestShift:
    """model_grid / (1 + z) of N objects as positions in the tables of :func:`_rest_tables`: table entry
    ``start + j`` and the next one, weights ``w`` and ``1 - w``, for model pixel j."""

    def __init__(self, z: np.ndarray):
        u = np.log1p(z) / GRID_DLN  # the shift in pixels
        s = np.floor(u)
        self.w = (u - s)[:, None]
        self.start = _rest_tables()["extra"] - s.astype(np.int64) - 1
        self.length = len(model_grid())

    @classmethod
    def of(cls, z: np.ndarray) -> _RestShift | None:
        """The shift of redshifts ``z`` (N,), or None where some lie outside 0 .. REST_TABLE_Z_MAX."""
        if z.ndim != 1 or not z.size or not (np.all(z >= 0.0) and np.all(z <= REST_TABLE_Z_MAX)):
            return None
        return cls(z)

    def _windows(self, table: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(table, self.length + 1, axis=-1)

    def _interpolate(self, rows: np.ndarray) -> np.ndarray:
        out = rows[:, :-1] * self.w
        out += rows[:, 1:] * (1.0 - self.w)
        return out

    def take(self, table: np.ndarray) -> np.ndarray:
        """A 1-D table at model_grid / (1 + z): (N, L)."""
        return self._interpolate(self._windows(table)[self.start])


@lru_cache(maxsize=1)
def _calzetti_table() -> tuple[np.ndarray, np.ndarray]:
    lam = np.geomspace(1000.0, 12000.0, 40001)
    return lam, calzetti_k(lam)


def _flux_scale(p: dict[str, np.ndarray]) -> np.ndarray:
    """L_lambda(6166 A) / (4 pi d_L^2 (1 + z)): the observed amplitude of the unit-normalised continuum."""
    z = p["redshift"]
    d_cm = luminosity_distance_pc(z) * PC_CM
    return lambda_luminosity_at_ref(p["abs_mag_r"]) / (4.0 * np.pi * d_cm**2 * (1.0 + z))


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
    shape = continuum_on_grid(z, p["young_fraction"], p["break_old"], p.get("av_young"))
    out = np.zeros((len(z), len(grid) + 1))
    out[:, :-1] = shape * _flux_scale(p)[:, None]
    _add_stellar_absorption(out, p)
    if with_lines:
        add_emission_lines(out, p)
    return out[:, :-1]


def _add_stellar_absorption(out: np.ndarray, p: dict[str, np.ndarray]) -> None:
    """Ca II H&K of the old stars (:data:`OLD_HK_LINES`; the old population's table has their smoothed copies
    taken out, :func:`_old_sed_table`) and Balmer absorption of the young ones (equivalent widths of a few A)."""
    shift = 1.0 + p["redshift"]
    grid = model_grid()
    cont_idx = np.clip(np.searchsorted(grid, 3920.0 * shift), 0, len(grid) - 1)
    level = out[np.arange(len(shift)), cont_idx]
    old = 1.0 - p["young_fraction"]
    for lam0, ew in OLD_HK_LINES:
        sigma = 6.0 * shift
        add_gaussians(out, lam0 * shift, sigma, -level * old * ew * shift / (np.sqrt(2 * np.pi) * sigma))
    for lam0 in (4101.7, 4340.5, 4861.3):
        sigma = 8.0 * shift
        amp = -level * p["young_fraction"] * 4.0 * shift / (np.sqrt(2 * np.pi) * sigma)
        add_gaussians(out, lam0 * shift, sigma, amp)


def d4000_narrow(flux: np.ndarray, redshift: np.ndarray, wavelength: np.ndarray | None = None) -> np.ndarray:
    """Narrow 4000 A break D_n(4000) (Balogh et al. 1999) of observed-frame spectra (N, L) on ``wavelength``
    (default the model grid): <f_nu>(4000-4100 A) / <f_nu>(3850-3950 A) in the rest frame; vectorised.

    The mean is over wavelength, <f_nu> = int f_nu d lambda / delta lambda (Balogh et al.'s definition). In
    the observed frame f_nu is proportional to f_lambda lambda^2 and the rest windows map to (1 + z) times
    them; the two windows have the same width, so every per-object factor cancels and
    D4000 = int_red f_lambda lambda^2 d lambda / int_blue f_lambda lambda^2 d lambda (observed lambda). The
    integrals are differences of the cumulative trapezoid integral, interpolated linearly at the window
    edges. NaN where a window falls outside ``wavelength``.
    """
    lam = model_grid() if wavelength is None else np.asarray(wavelength, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    z = np.asarray(redshift, dtype=np.float64).reshape(-1)
    y = flux * lam[None, :] ** 2
    cum = np.zeros_like(y)
    np.cumsum(0.5 * (y[:, 1:] + y[:, :-1]) * np.diff(lam)[None, :], axis=1, out=cum[:, 1:])
    rows = np.arange(len(z))

    def integral_to(edge_rest: float) -> np.ndarray:
        x = edge_rest * (1.0 + z)
        i = np.clip(np.searchsorted(lam, x) - 1, 0, len(lam) - 2)
        t = (x - lam[i]) / (lam[i + 1] - lam[i])
        h = lam[i + 1] - lam[i]
        part = h * (y[rows, i] * t * (1.0 - 0.5 * t) + y[rows, i + 1] * 0.5 * t**2)
        out = cum[rows, i] + part  # the trapezoid integral to x of the linear interpolant of y
        return np.where((x >= lam[0]) & (x <= lam[-1]), out, np.nan)

    red = integral_to(D4000_RED[1]) - integral_to(D4000_RED[0])
    blue = integral_to(D4000_BLUE[1]) - integral_to(D4000_BLUE[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return red / blue
