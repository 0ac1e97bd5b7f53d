"""Gaia BP/RP (XP) instrument model: line-spread function, photon noise and conversion to XP coefficients.

What Gaia's spectrophotometers do to a source's spectrum, from the calibration files GaiaXPy ships (read
offline; nothing is fitted to real spectra):

* **Line spread** (:func:`xp_resolving_power`, :func:`xp_smooth`). BP and RP are prisms: the dispersion
  dlambda/du (nm per along-scan pixel) comes from GaiaXPy's tabulated DR3 dispersion function
  (``TabulatedDispersionFunction-DR3-v375wiv142r_20200610.csv``: 3 nm/pixel at 330 nm to 27 nm/pixel at 680 nm
  in BP, 6-16 nm/pixel in RP, as Carrasco et al. 2021, A&A 652, A86 and Jordi et al. 2010 describe). The
  line-spread FWHM in pixels is the diffraction core of the 1.45 m along-scan pupil (FWHM 1.03 lambda / D)
  added in quadrature to the 1-pixel (58.9 mas, 10 um) along-scan pixel: FWHM_pix = sqrt((1.03 lambda / D /
  58.9 mas)^2 + 1) (Gaia Collaboration, Prusti et al. 2016, A&A 595, A1: pupil 1.45 x 0.50 m, pixel 10 x 30
  um). So R = lambda / (FWHM_pix dlambda/du) falls from ~80 at 330 nm to ~13 at 680 nm in BP and from ~50 at
  640 nm to ~23 at 1050 nm in RP; the two arms are merged with GaiaXPy's merge weights (BP alone below 620 nm,
  RP alone above 640 nm, linear in between), as its calibrated sampled spectra are. The model spectrum
  (log-linear grid) is convolved with a Gaussian of that wavelength-dependent width (a blend of constant-R
  convolutions, :data:`R_NODES`) and averaged onto the 343-sample XP_SAMPLED grid (336-1020 nm, 2 nm).
* **Photon noise** (:func:`xp_pixel_sigma`, :func:`xp_add_noise`). Electrons per along-scan pixel in one
  transit: n = N_ph(lambda) A R_inst(lambda) (dlambda/du) t with N_ph = f_lambda lambda / (h c) the photon
  flux, A = 0.7278 m2 (GaiaXPy's ``TELESCOPE_PUPIL_AREA``), R_inst the BP/RP response curves shipped with
  GaiaXPy (``bpC03_v375wi_response.csv``, ``rpC03_v142r_response.csv``), t = 4.42 s (one CCD crossing;
  Gaia Collaboration 2016) and :data:`XP_TRANSITS` transits averaged in a DR3 mean spectrum; variance n plus
  the read noise :data:`READ_NOISE_E` squared per transit. The noise is drawn independently per pixel of each
  arm and carried onto the sampled grid by linear interpolation in pseudo-wavelength (so neighbouring
  samples within one pixel are correlated, as the sampled spectra's are), then merged. It therefore scales
  with the source's brightness: relative errors ~0.4 % per pixel at G ~ 15, ~1.5 % at G ~ 17.5.
* **Coefficients** (:func:`xp_coefficients`): least squares onto GaiaXPy's own design matrices and merge
  weights (truncated SVD, :data:`XP_RCOND`). GaiaXPy (2.1) has no sampled-spectrum -> coefficient conversion.

:func:`observe_gaia_xp` is the instrument model in the form the simulator's per-instrument models take
(``spectroscopy.INSTRUMENT_MODELS``), applied to model-grid spectra.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from astromodal.errors import BadValueError, ConfigError

#: along-scan telescope pupil (m) and pixel (mas): Gaia Collaboration, Prusti et al. 2016, A&A 595, A1
PUPIL_AL_M = 1.45
PIXEL_AL_MAS = 58.9
#: exposure of one BP/RP CCD crossing (s): Gaia Collaboration 2016 (4.42 s per CCD in TDI mode)
TRANSIT_S = 4.42
#: transits in a Gaia DR3 mean XP spectrum (34 months): the median over sources is about 40 (De Angeli et
#: al. 2023, A&A 674, A2, their distribution of the number of epochs per source peaks near it)
XP_TRANSITS = 40
#: read noise per along-scan sample and transit (e-): a few electrons (Gaia Collaboration 2016, CCD detection
#: noise)
READ_NOISE_E = 4.5
#: relative singular-value cut of the spectrum -> coefficient least squares: the bases' singular values fall
#: slowly to ~1e-2 of the largest, then steeply (to 1e-15); the cut keeps the well-conditioned part (condition
#: number <= 1e3), so noise and structure outside the bases are not amplified
XP_RCOND = 1e-3
#: resolving powers of the constant-R convolutions blended into the wavelength-dependent line spread
R_NODES = (6.0, 9.0, 13.0, 19.0, 28.0, 40.0, 58.0, 85.0, 120.0)
_H_C = 6.62607015e-34 * 2.99792458e8  # J m


def _gaiaxpy_config() -> Path:
    try:
        import gaiaxpy
    except ImportError as exc:  # a declared dependency: say which one
        raise ConfigError("the Gaia XP instrument model needs the 'gaiaxpy' package (pip install gaiaxpy)") from exc
    return Path(gaiaxpy.__file__).parent / "config"


@lru_cache(maxsize=1)
def _dispersion() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per arm: (wavelength nm, pseudo-wavelength u in pixels), increasing wavelength, from GaiaXPy's table."""
    import pandas as pd

    t = pd.read_csv(_gaiaxpy_config() / "TabulatedDispersionFunction-DR3-v375wiv142r_20200610.csv")
    out = {}
    for arm in ("bp", "rp"):
        s = t[["wl_nm", f"{arm}_pwl"]].dropna()
        out[arm] = (s["wl_nm"].to_numpy(np.float64), s[f"{arm}_pwl"].to_numpy(np.float64))
    return out


@lru_cache(maxsize=1)
def _response() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per arm: (wavelength nm, response e-/photon) from GaiaXPy's response files."""
    cfg = _gaiaxpy_config()
    out = {}
    for arm, name in (("bp", "bpC03_v375wi_response.csv"), ("rp", "rpC03_v142r_response.csv")):
        lines = (cfg / name).read_text().splitlines()
        out[arm] = (np.array(lines[0].split(","), dtype=np.float64), np.array(lines[1].split(","), dtype=np.float64))
    return out


def _pupil_area() -> float:
    from gaiaxpy.core.satellite import TELESCOPE_PUPIL_AREA

    return float(TELESCOPE_PUPIL_AREA)


def xp_nm_per_pixel(wavelength_nm: np.ndarray, arm: str) -> np.ndarray:
    """Dispersion |dlambda/du| (nm per along-scan pixel) of ``arm`` (bp or rp) at ``wavelength_nm``."""
    if arm not in ("bp", "rp"):
        raise ConfigError(f"XP arm must be 'bp' or 'rp', got {arm!r}")
    wl, u = _dispersion()[arm]
    return np.interp(wavelength_nm, wl, np.abs(np.gradient(wl, u)))


def xp_lsf_fwhm_pixels(wavelength_nm: np.ndarray) -> np.ndarray:
    """Line-spread FWHM in along-scan pixels: diffraction (1.03 lambda / D) and the pixel, in quadrature."""
    diffraction = 1.03 * np.asarray(wavelength_nm, dtype=np.float64) * 1e-9 / PUPIL_AL_M * 206264.806e3 / PIXEL_AL_MAS
    return np.sqrt(diffraction**2 + 1.0)


def xp_arm_resolving_power(wavelength_nm: np.ndarray, arm: str) -> np.ndarray:
    """R = lambda / FWHM of one arm."""
    lam = np.asarray(wavelength_nm, dtype=np.float64)
    return lam / (xp_lsf_fwhm_pixels(lam) * xp_nm_per_pixel(lam, arm))


@lru_cache(maxsize=4)
def _merge(sampling: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    from astromodal.data.readers.gaia_xp import xp_design_matrices

    m = xp_design_matrices(sampling)
    return m["merge_bp"], m["merge_rp"]


def _sampling() -> np.ndarray:
    from astromodal.data.readers.gaia_xp import XP_SAMPLING_NM

    return XP_SAMPLING_NM


def xp_resolving_power(wavelength_nm: np.ndarray | None = None) -> np.ndarray:
    """Resolving power of the merged XP spectrum on ``wavelength_nm`` (default the 343-sample grid): the
    arms' line-spread sigmas blended with GaiaXPy's merge weights (BP below 620 nm, RP above 640 nm)."""
    lam = _sampling() if wavelength_nm is None else np.asarray(wavelength_nm, dtype=np.float64)
    w_bp = np.clip((640.0 - lam) / 20.0, 0.0, 1.0)  # GaiaXPy's merge: linear between 620 and 640 nm
    inv = w_bp / xp_arm_resolving_power(lam, "bp") + (1.0 - w_bp) / xp_arm_resolving_power(lam, "rp")
    return 1.0 / inv


def xp_smooth(model_flux: np.ndarray, model_wavelength_a: np.ndarray | None = None,
              flux_scale: float = 1e-2) -> np.ndarray:
    """Model spectra (N, L) in erg/s/cm2/A on the simulator's log-linear model grid -> noise-free XP sampled
    spectra (N, 343) in W m^-2 nm^-1 (``flux_scale`` 1e-2) at XP's wavelength-dependent resolution.

    The spectrum is convolved with Gaussians of constant R (:data:`R_NODES`, one forward FFT), and each
    output sample takes the convolution at its own R(lambda), interpolated linearly in ln R between the two
    nearest nodes; the result is averaged over each 2-nm sample (trapezoid on the fine grid).
    """
    import scipy.fft

    from astromodal.data.simulate.physics import GRID_DLN, model_grid

    flux = np.atleast_2d(np.asarray(model_flux, dtype=np.float64))
    grid = model_grid() if model_wavelength_a is None else np.asarray(model_wavelength_a, dtype=np.float64)
    if flux.shape[1] != len(grid):
        raise BadValueError(f"XP smoothing: spectra have {flux.shape[1]} pixels, the model grid {len(grid)}")
    dln = float(np.log(grid[1] / grid[0])) if model_wavelength_a is not None else GRID_DLN
    lam_nm = _sampling()
    if grid[0] > lam_nm[0] * 10.0 - 50.0 or grid[-1] < lam_nm[-1] * 10.0 + 50.0:
        raise BadValueError(f"XP smoothing: the model grid {grid[0]:.0f}-{grid[-1]:.0f} A does not cover "
                            "3310-10250 A")
    nodes = np.asarray(R_NODES)
    pad = int(np.ceil(6.0 / (2.3548 * nodes.min()) / dln)) + 4
    padded = np.pad(flux, ((0, 0), (pad, pad)), mode="edge")
    n_fft = scipy.fft.next_fast_len(padded.shape[1], real=True)
    spec = scipy.fft.rfft(padded, n=n_fft, axis=1)
    freq = np.arange(spec.shape[1]) / n_fft
    # the output samples and their R; fine-grid points inside each 2-nm sample (box average)
    r_out = xp_resolving_power(lam_nm)
    ln_r = np.log(np.clip(r_out, nodes.min(), nodes.max()))
    k = np.clip(np.searchsorted(np.log(nodes), ln_r) - 1, 0, len(nodes) - 2)
    t = (ln_r - np.log(nodes[k])) / (np.log(nodes[k + 1]) - np.log(nodes[k]))
    edges_a = np.r_[lam_nm - 1.0, lam_nm[-1] + 1.0] * 10.0
    q = np.log(edges_a / grid[0]) / dln + pad  # fractional padded-grid positions of the sample edges
    cum_x = np.arange(n_fft, dtype=np.float64)
    out = np.zeros((len(flux), len(lam_nm)))
    for j, r in enumerate(nodes):
        use_lo, use_hi = (k == j), (k + 1 == j)
        if not (use_lo.any() or use_hi.any()):
            continue
        s_pix = 1.0 / (2.3548 * r) / dln
        smooth = scipy.fft.irfft(spec * np.exp(-2.0 * np.pi**2 * s_pix**2 * freq**2), n=n_fft, axis=1)
        cum = np.cumsum(smooth, axis=1)  # box average over each sample: difference of the running sum
        c_edge = np.stack([np.interp(q, cum_x + 0.5, row) for row in cum])
        mean = (c_edge[:, 1:] - c_edge[:, :-1]) / np.diff(q)[None, :]
        weight = np.where(use_lo, 1.0 - t, 0.0) + np.where(use_hi, t, 0.0)
        out += mean * weight[None, :]
    return out * flux_scale


def xp_pixel_sigma(flux_w_m2_nm: np.ndarray, transits: int = XP_TRANSITS,
                   read_noise: float = READ_NOISE_E) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per arm: (wavelength nm (P,), flux (N, P), sigma (N, P)) at the arm's along-scan pixel centres inside
    the sampled range, sigma the photon + read noise of a mean spectrum of ``transits`` transits."""
    flux = np.atleast_2d(np.asarray(flux_w_m2_nm, dtype=np.float64))
    lam_s = _sampling()
    area = _pupil_area()
    out = {}
    for arm in ("bp", "rp"):
        wl, u = _dispersion()[arm]
        u_pix = np.arange(np.ceil(u.min()), np.floor(u.max()) + 1.0)
        order = np.argsort(u)
        lam_pix = np.interp(u_pix, u[order], wl[order])
        keep = (lam_pix >= lam_s[0]) & (lam_pix <= lam_s[-1])
        lam_pix = np.sort(lam_pix[keep])
        f_pix = np.stack([np.interp(lam_pix, lam_s, row) for row in flux])
        w_r, resp = _response()[arm]
        r_pix = np.interp(lam_pix, w_r, resp)
        # photons s^-1 m^-2 nm^-1 = f [W m^-2 nm^-1] lambda / (h c); electrons per pixel per transit
        n_ph = np.clip(f_pix, 0.0, None) * (lam_pix * 1e-9)[None, :] / _H_C
        electrons = n_ph * area * r_pix[None, :] * xp_nm_per_pixel(lam_pix, arm)[None, :] * TRANSIT_S
        var_e = (electrons + read_noise**2) / transits  # per-transit variance of the mean, in e-^2
        with np.errstate(divide="ignore", invalid="ignore"):
            per_e = np.where(electrons > 0, np.clip(f_pix, 0.0, None) / electrons, 0.0)
        sigma = np.sqrt(var_e) * per_e
        # where the response vanishes (no electrons) the flux is unconstrained: the noise of 1 e- per pixel
        floor = np.sqrt((1.0 + read_noise**2) / transits) * np.abs(f_pix) / np.maximum(electrons, 1.0)
        out[arm] = (lam_pix, f_pix, np.where(electrons > 0, sigma, floor))
    return out


def _interp_matrix(x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """(len(x_to), len(x_from)) weights of linear interpolation from increasing ``x_from`` onto ``x_to``."""
    W = np.zeros((len(x_to), len(x_from)))
    i = np.clip(np.searchsorted(x_from, x_to) - 1, 0, len(x_from) - 2)
    t = np.clip((x_to - x_from[i]) / (x_from[i + 1] - x_from[i]), 0.0, 1.0)
    W[np.arange(len(x_to)), i] = 1.0 - t
    W[np.arange(len(x_to)), i + 1] = t
    return W


def xp_add_noise(rng: np.random.Generator, flux_w_m2_nm: np.ndarray, transits: int = XP_TRANSITS,
                 read_noise: float = READ_NOISE_E) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sampled spectra and their per-sample sigma (both (N, 343), W m^-2 nm^-1): independent noise per
    along-scan pixel of each arm (:func:`xp_pixel_sigma`), interpolated linearly onto the sampled grid and
    merged with GaiaXPy's weights; sigma is that of the interpolated, merged noise (so a sample between two
    pixels has a smaller sigma than either, and its neighbours are correlated)."""
    flux = np.atleast_2d(np.asarray(flux_w_m2_nm, dtype=np.float64))
    lam_s = _sampling()
    w_bp = np.clip((640.0 - lam_s) / 20.0, 0.0, 1.0)
    noise = np.zeros_like(flux)
    var = np.zeros_like(flux)
    pixels = xp_pixel_sigma(flux, transits, read_noise)
    for arm, w in (("bp", w_bp), ("rp", 1.0 - w_bp)):
        lam_pix, _, sigma = pixels[arm]
        W = _interp_matrix(lam_pix, lam_s) * w[:, None]
        noise += (rng.standard_normal(sigma.shape) * sigma) @ W.T
        var += sigma**2 @ (W**2).T
    return flux + noise, np.sqrt(var)


@lru_cache(maxsize=1)
@lru_cache(maxsize=1)
def xp_operator() -> np.ndarray:
    """(110, 343): coefficients (55 BP then 55 RP) -> merged sampled flux [W m^-2 nm^-1], GaiaXPy's model: the
    reader's own sampling (:func:`~astromodal.data.readers.gaia_xp.xp_continuous_to_sampled`) of unit
    coefficient vectors, so the merge is written once. Cached: do not modify the array."""
    from astromodal.data.readers.gaia_xp import xp_continuous_to_sampled

    eye, zero = np.eye(55), np.zeros((55, 55))
    return np.vstack([xp_continuous_to_sampled(eye, zero)[0], xp_continuous_to_sampled(zero, eye)[0]])


@lru_cache(maxsize=4)
def _pinv(rcond: float) -> tuple[np.ndarray, float]:
    A = xp_operator()
    scale = float(np.max(np.abs(A)))
    return np.linalg.pinv(A / scale, rcond=rcond), scale


def xp_fit(flux: np.ndarray, rcond: float = XP_RCOND) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (N, 110), relative residual ||f - c A|| / ||f|| (N,)) of sampled spectra (N, 343) on
    336..1020 nm: least squares onto GaiaXPy's bases and merge weights, singular values below ``rcond`` x the
    largest dropped (truncated SVD). Any flux unit: the coefficients scale with it. Non-finite input is a
    BadValueError naming the first bad row.

    GaiaXPy (2.1) itself offers no such inversion. The bases are nearly degenerate on the sampled grid
    (condition number ~1e15), so a round trip coefficients -> spectrum -> coefficients is not exact."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    if flux.shape[1] != 343:
        raise BadValueError(f"XP fit: spectra have {flux.shape[1]} samples, expected 343 (336-1020 nm)")
    bad = ~np.isfinite(flux).all(axis=1)
    if bad.any():
        raise BadValueError(f"XP fit: the spectrum in row {int(np.flatnonzero(bad)[0])} has non-finite values")
    pinv, scale = _pinv(float(rcond))
    A = xp_operator() / scale
    f = flux / scale
    coef = f @ pinv
    norm = np.linalg.norm(f, axis=1)
    resid = np.linalg.norm(f - coef @ A, axis=1) / np.where(norm > 0, norm, 1.0)
    return coef, resid


def xp_coefficients(flux: np.ndarray, rcond: float = XP_RCOND) -> np.ndarray:
    """XP coefficients (N, 110: 55 BP then 55 RP) of sampled spectra (N, 343) (see :func:`xp_fit`)."""
    return xp_fit(flux, rcond)[0]


def observe_gaia_xp(rng: np.random.Generator, model_flux: np.ndarray, transits: int = XP_TRANSITS,
                    read_noise: float = READ_NOISE_E) -> dict[str, np.ndarray]:
    """Model-grid spectra (N, L) in erg/s/cm2/A -> what Gaia delivers: ``flux`` (noisy sampled spectra,
    W m^-2 nm^-1), ``flux_error``, ``flux_true`` (noise-free, at XP resolution) and ``coefficients``
    (N, 110) of the noisy spectra on GaiaXPy's bases."""
    smooth = xp_smooth(model_flux)
    noisy, sigma = xp_add_noise(rng, smooth, transits, read_noise)
    return {"flux": noisy, "flux_error": sigma, "flux_true": smooth, "coefficients": xp_coefficients(noisy)}
