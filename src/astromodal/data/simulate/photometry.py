"""Broad-band photometry: u g r i z AB magnitudes (and a Gaia-like G) integrated from model spectra.

Bandpasses are analytic approximations of the SDSS response curves: smooth top-hats (the product of two
logistic edges of 60 A softness) with half-power edges u 3200-3950, g 4000-5450, r 5550-6900,
i 6950-8300, z 8300-9800 Angstrom (effective wavelengths near 3550, 4700, 6200, 7600, 9000 A);
Gaia-like G is one broad top-hat 3350-10000 A (given in AB, only used for astrometric errors).

AB magnitude: m = -2.5 log10( int f_nu T dln(lambda) / int T dln(lambda) ) - 48.60 with f_nu = f_lambda
lambda^2 / c (photon-counting weighting is neglected). Catalogue magnitudes carry sky-limited noise:
sigma_f = f_5sigma / 5 with the 5-sigma point-source depths of :data:`DEPTH_5SIGMA`, plus a 0.01 mag floor.
Fluxes in nanomaggies: f = 10^(-0.4 (m - 22.5)).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from astromodal.data.simulate.physics import C_ANGSTROM, GRID_DLN, fitzpatrick99, logistic, model_grid

BANDS = ("u", "g", "r", "i", "z")
BAND_EDGES = {"u": (3200.0, 3950.0), "g": (4000.0, 5450.0), "r": (5550.0, 6900.0), "i": (6950.0, 8300.0),
              "z": (8300.0, 9800.0), "G": (3350.0, 10000.0)}
EDGE_SOFTNESS = 60.0
#: 5-sigma point-source depths (AB mag) of an SDSS-like single epoch.
DEPTH_5SIGMA = {"u": 22.0, "g": 22.6, "r": 22.3, "i": 21.7, "z": 20.6}
MAG_FLOOR = 0.01


def bandpass(band: str, wavelength: np.ndarray) -> np.ndarray:
    """Dimensionless response (0..1) of ``band`` at ``wavelength`` (Angstrom)."""
    lo, hi = BAND_EDGES[band]
    return logistic((wavelength - lo) / (EDGE_SOFTNESS / 4.0)) * logistic((hi - wavelength) / (EDGE_SOFTNESS / 4.0))


@lru_cache(maxsize=4)
def _weights(bands: tuple[str, ...]) -> np.ndarray:
    """(L, B) weights so that flux_nu @ W is the response-weighted mean f_nu of each band."""
    grid = model_grid()
    resp = np.stack([bandpass(b, grid) for b in bands], axis=1) * GRID_DLN
    return resp / resp.sum(axis=0, keepdims=True)


def ab_from_fnu(mean_fnu: np.ndarray) -> np.ndarray:
    """AB magnitude of a band-mean f_nu in erg / (s cm2 Hz): -2.5 log10 f_nu - 48.60 (floored at 1e-60)."""
    return -2.5 * np.log10(np.maximum(mean_fnu, 1e-60)) - 48.60


def ab_magnitudes(f_lambda: np.ndarray, bands: tuple[str, ...] = BANDS) -> np.ndarray:
    """AB magnitudes (N, B) of model spectra f_lambda (N, L) in erg / (s cm2 Angstrom) on the model grid."""
    grid = model_grid()
    f_nu = f_lambda * (grid**2 / C_ANGSTROM)[None, :]
    return ab_from_fnu(f_nu @ _weights(tuple(bands)))


#: every COARSE_STEP-th model-grid pixel (about 14 A at 6000 A) for the cheap target-selection magnitudes
COARSE_STEP = 16


@lru_cache(maxsize=4)
def coarse_band_grid(bands: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Wavelengths (Lc,) of every COARSE_STEP-th model-grid pixel inside ``bands`` and their (Lc, B) weights.

    Used to select targets from model continua before whole spectra are built: the same response-weighted
    mean f_nu as :func:`ab_magnitudes`, on a sub-sampled grid (differences below 0.01 mag for smooth spectra).
    """
    grid = model_grid()[::COARSE_STEP]
    resp = np.stack([bandpass(b, grid) for b in bands], axis=1)
    keep = resp.max(axis=1) > 1e-4
    return grid[keep], resp[keep] / resp[keep].sum(axis=0, keepdims=True)


def coarse_ab_magnitudes(f_lambda: np.ndarray, bands: tuple[str, ...]) -> np.ndarray:
    """AB magnitudes (N, B) of f_lambda (N, Lc) given on :func:`coarse_band_grid` of ``bands``."""
    grid, weights = coarse_band_grid(tuple(bands))
    return ab_from_fnu((f_lambda * (grid**2 / C_ANGSTROM)[None, :]) @ weights)


@lru_cache(maxsize=8)
def extinction_coefficient(band: str) -> float:
    """R_band = A_band / E(B - V) of the Fitzpatrick (1999) R_V = 3.1 law for ``band``: the response-weighted
    mean of A(lambda) / E(B - V) over the band (exact in the small-reddening limit for a flat f_nu source)."""
    grid, w = coarse_band_grid((band,))
    return float(fitzpatrick99(grid) @ w[:, 0])


def nanomaggies(mag: np.ndarray) -> np.ndarray:
    """Flux in nanomaggies of an AB magnitude: 10^(-0.4 (m - 22.5))."""
    return 10 ** (-0.4 * (np.asarray(mag) - 22.5))


def flux_sigma_nmgy(band: str) -> float:
    """Sky-limited 1-sigma flux error (nanomaggies) of a point source in ``band``."""
    return float(nanomaggies(DEPTH_5SIGMA[band]) / 5.0)


def observe_magnitudes(rng: np.random.Generator, true_mag: np.ndarray, bands: tuple[str, ...] = BANDS
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Noisy catalogue magnitudes and their errors (N, B) from true magnitudes.

    The flux gets Gaussian noise of sigma_f (sky) and the 0.01 mag floor; fluxes pushed below sigma_f / 10
    by the noise are clipped there (the faintest objects are upper-limit-like).
    """
    sig_f = np.array([flux_sigma_nmgy(b) for b in bands])[None, :]
    f = nanomaggies(true_mag)
    err = np.sqrt((1.0857362 * sig_f / f) ** 2 + MAG_FLOOR**2)
    sig_total = f * err / 1.0857362
    f_obs = np.maximum(f + rng.standard_normal(f.shape) * sig_total, sig_f / 10.0)
    return 22.5 - 2.5 * np.log10(f_obs), err
