"""Observing model spectra with an instrument: line-spread convolution, resampling and noise.

The model grid is log-linear, so a constant resolving power R is a Gaussian of fixed width in pixels
(sigma = 1 / (2.3548 R) in ln lambda): the convolution is one FFT per object (edge-padded), shared by all
instruments, times each instrument's Gaussian transfer function. The smoothed spectrum (band-limited by the
line-spread function, and sampled at least 1.8 samples per LSF sigma) is resampled onto the instrument's
wavelength grid by cubic convolution. :func:`add_noise`: Gaussian white noise, with one sigma per object set so
that the median signal-to-noise ratio per pixel equals the ``snr`` setting; ``ivar`` = 1 / sigma^2.
:func:`observe`: what each instrument delivers, per pixel: for ``lamost`` the telluric bands, the residual of
the relative flux calibration, sky residuals, photon + read noise and the DR1-like masks of
:mod:`astromodal.data.simulate.lamost_instrument`; the white noise of :func:`add_noise` for the others.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from astromodal.data.instruments import Instrument
from astromodal.data.simulate.lamost_instrument import Observed, observe_lamost
from astromodal.data.simulate.physics import GRID_DLN, GRID_START


def keys_cubic_weights(t: np.ndarray) -> np.ndarray:
    """Keys (a = -0.5) cubic-convolution weights (M, 4) for taps i-1, i, i+1, i+2 at fractional offsets t."""
    a = -0.5
    dist = np.stack([1.0 + t, t, 1.0 - t, 2.0 - t], axis=1)
    near = ((a + 2.0) * dist - (a + 3.0)) * dist**2 + 1.0
    far = ((a * dist - 5.0 * a) * dist + 8.0 * a) * dist - 4.0 * a
    return np.where(dist <= 1.0, near, far)


@lru_cache(maxsize=32)
def _taps(name: str, pad: int, n_fft: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices (M, 4) and cubic weights (M, 4) of an instrument's grid on the (decimated) smooth spectrum."""
    from astromodal.data.instruments import get_instrument

    wave = get_instrument(name).wavelength
    q = (pad + np.log(wave / GRID_START) / GRID_DLN) * (n_out / n_fft)
    i = np.floor(q).astype(np.int64)
    return i[:, None] + np.arange(-1, 3)[None, :], keys_cubic_weights(q - i)


def _pad(instruments: tuple[Instrument, ...]) -> int:
    widest = max(i.sigma_ln for i in instruments) / GRID_DLN
    return int(np.ceil(6.0 * widest)) + 4


def _n_out(sigma_pix: float, n_fft: int) -> int:
    """Length of the decimated inverse FFT: keep frequencies where the LSF transfer exceeds ~1e-7."""
    k_cut = 0.903 / sigma_pix  # cycles per model pixel
    if k_cut >= 0.5:
        return n_fft
    n_out = scipy.fft.next_fast_len(int(np.ceil(2.0 * k_cut * n_fft)) + 8, real=True)
    return min(n_fft, n_out + n_out % 2)


def observe_noise_free(model_flux: np.ndarray, instruments: tuple[Instrument, ...]) -> dict[str, np.ndarray]:
    """Convolve a batch of model spectra (N, L) to each instrument's resolution and resample it.

    One forward FFT per object for all instruments; a low-resolution instrument's inverse FFT keeps only
    the frequencies its line-spread function passes (a decimated, exactly band-limited smooth spectrum),
    which is then resampled onto the instrument grid by cubic convolution.
    Returns name -> (N, L_instrument) float64 in the instrument's flux unit.
    """
    if not instruments:
        return {}
    pad = _pad(instruments)
    padded = np.pad(model_flux, ((0, 0), (pad, pad)), mode="edge")
    n_fft = scipy.fft.next_fast_len(padded.shape[1], real=True)
    spec = scipy.fft.rfft(padded, n=n_fft, axis=1)
    out = {}
    for inst in instruments:
        s_pix = inst.sigma_ln / GRID_DLN
        n_out = _n_out(s_pix, n_fft)
        n_keep = n_out // 2 + 1
        freq = np.arange(n_keep) / n_fft
        transfer = np.exp(-2.0 * np.pi**2 * s_pix**2 * freq**2) * (n_out / n_fft)
        smooth = scipy.fft.irfft(spec[:, :n_keep] * transfer, n=n_out, axis=1)
        idx, w = _taps(inst.name, pad, n_fft, n_out)
        w = w * inst.flux_scale
        res = smooth[:, idx[:, 0]] * w[:, 0]
        for k in range(1, 4):
            res += smooth[:, idx[:, k]] * w[:, k]
        out[inst.name] = res
    return out


def add_noise(rng: np.random.Generator, flux: np.ndarray, snr: float) -> tuple[np.ndarray, np.ndarray]:
    """Noisy flux (float32) and the inverse variance per object (N,): sigma = median |flux| / snr, white noise."""
    sigma = np.median(np.abs(flux[:, ::4]), axis=1) / snr
    sigma = np.where(sigma > 0, sigma, 1.0)
    noisy = rng.standard_normal(flux.shape, dtype=np.float32)
    noisy *= sigma.astype(np.float32)[:, None]
    noisy += flux
    return noisy, 1.0 / sigma**2


#: instruments whose delivered spectra follow a per-pixel instrument model (the others: :func:`add_noise`)
INSTRUMENT_MODELS = {"lamost": observe_lamost}


def observe(rng: np.random.Generator, flux: np.ndarray, snr: float, instrument: Instrument) -> Observed:
    """Delivered spectra of ``instrument`` from its noise-free ``flux`` (N, L): flux float32, ivar and mask (N, L).

    ``lamost``: :func:`~astromodal.data.simulate.lamost_instrument.observe_lamost` (tellurics, calibration
    residual, sky residuals, photon + read noise at median S/N ``snr``, masked pixels with ivar 0 filled by
    interpolation as the reader fills real ones). Any other instrument: :func:`add_noise` (the same random
    draws, so its arrays are unchanged), its per-object ivar repeated along the spectrum, no pixel masked.
    """
    model = INSTRUMENT_MODELS.get(instrument.name)
    if model is not None:
        return model(rng, flux, instrument.wavelength, snr)
    noisy, ivar = add_noise(rng, flux, snr)
    dtype = np.float32 if instrument.flux_scale >= 1 else np.float64
    full = np.broadcast_to(ivar.astype(dtype)[:, None], flux.shape)
    return Observed(noisy, full, np.zeros(flux.shape, dtype=bool))
