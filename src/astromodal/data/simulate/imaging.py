"""Five-band (u g r i z) image cutouts in nanomaggies: point sources, Sersic galaxies, neighbours, sky noise.

Model and simplifications:

* every cutout is S x S pixels (0.396 arcsec) centred on its object to within half a pixel;
* stars and quasars are point sources; galaxies are Sersic profiles I(r) = I_e exp(-b_n ((r / r_e)^(1/n) - 1))
  with the elliptical radius r^2 = x'^2 + (y' / q)^2 (position angle from the +x axis), sampled at pixel
  centres and scaled so that the cutout holds the fraction of the total light that falls within an elliptical
  radius S / 2 (incomplete gamma function); the same shape in every band (no colour gradients);
* the total flux in each band is 10^(-0.4 (m - 22.5)) nanomaggies of the object's true magnitude;
* the point-spread function is a circular Gaussian with FWHM u 1.5, g 1.4, r 1.3, i 1.25, z 1.25 arcsec
  times a per-object seeing factor 0.85-1.2; convolution and sub-pixel placement are done in Fourier space
  (one FFT per component, transfer functions multiplied per band), so a point source holds exactly its flux;
* a settable fraction of cutouts contains one or two neighbours: other objects of the batch (their own shape
  and colours), 0-4 mag fainter or up to 1 mag brighter, min(8, 0.2 S) to 0.42 S pixels off-centre;
* background-subtracted images with white Gaussian sky noise whose per-pixel sigma gives the 5-sigma
  point-source depths of :mod:`.photometry` (no source shot noise, no cosmic rays or saturation).
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.special import gammainc

from astromodal.data.simulate.photometry import BANDS, flux_sigma_nmgy

PIXEL_SCALE = 0.396  # arcsec / pixel
PSF_FWHM = {"u": 1.5, "g": 1.4, "r": 1.3, "i": 1.25, "z": 1.25}  # arcsec
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def sersic_b(n: np.ndarray) -> np.ndarray:
    """b_n such that r_e encloses half the light (Ciotti & Bertin 1999 expansion)."""
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


def sersic_enclosed_fraction(n: np.ndarray, radius_over_re: np.ndarray) -> np.ndarray:
    """Fraction of a Sersic profile's light within ``radius_over_re`` effective radii."""
    return gammainc(2.0 * n, sersic_b(n) * np.asarray(radius_over_re) ** (1.0 / np.asarray(n)))


def render_sersic(size: int, x0: np.ndarray, y0: np.ndarray, n: np.ndarray, r_e_pix: np.ndarray,
                  q: np.ndarray, pa_deg: np.ndarray) -> np.ndarray:
    """Unit-flux Sersic images (M, size, size) float32 centred at pixel coordinates (x0, y0).

    Each image sums to the analytic fraction of light inside an elliptical radius size / 2.
    """
    coords = np.arange(size, dtype=np.float32)
    dx = coords[None, None, :] - x0.astype(np.float32)[:, None, None]
    dy = coords[None, :, None] - y0.astype(np.float32)[:, None, None]
    pa = np.radians(pa_deg).astype(np.float32)[:, None, None]
    xp = dx * np.cos(pa) + dy * np.sin(pa)
    yp = -dx * np.sin(pa) + dy * np.cos(pa)
    r = np.sqrt(xp**2 + (yp / q.astype(np.float32)[:, None, None]) ** 2) / r_e_pix.astype(np.float32)[:, None, None]
    b = sersic_b(n).astype(np.float32)[:, None, None]
    img = np.exp(-b * (r ** (1.0 / n.astype(np.float32)[:, None, None]) - 1.0))
    frac = sersic_enclosed_fraction(n, 0.5 * size / r_e_pix).astype(np.float32)
    return img * (frac / img.sum(axis=(1, 2)))[:, None, None]


def _point_ft(size: int, x0: np.ndarray, y0: np.ndarray) -> np.ndarray:
    """Fourier transform (M, size, size // 2 + 1) of unit point sources at pixel coordinates (x0, y0).

    A shift is a phase ramp exp(-2 pi i (ky y0 + kx x0)), separable in the two axes.
    """
    ky = np.fft.fftfreq(size)[None, :]
    kx = np.fft.rfftfreq(size)[None, :]
    phase_y = np.exp(-2j * np.pi * ky * y0[:, None]).astype(np.complex64)
    phase_x = np.exp(-2j * np.pi * kx * x0[:, None]).astype(np.complex64)
    return phase_y[:, :, None] * phase_x[:, None, :]


def gaussian_transfer(size: int, sigma_pix: np.ndarray) -> np.ndarray:
    """Gaussian optical transfer function (..., size, size // 2 + 1) for PSF sigmas (...) in pixels.

    exp(-2 pi^2 sigma^2 (ky^2 + kx^2)), built as the outer product of its two separable factors.
    """
    s2 = (2.0 * np.pi**2 * np.asarray(sigma_pix, dtype=np.float64) ** 2)[..., None]
    ty = np.exp(-s2 * np.fft.fftfreq(size) ** 2).astype(np.float32)
    tx = np.exp(-s2 * np.fft.rfftfreq(size) ** 2).astype(np.float32)
    return ty[..., :, None] * tx[..., None, :]


def sky_sigma_per_pixel(band: str, pixel_scale: float = PIXEL_SCALE) -> float:
    """Per-pixel sky noise (nanomaggies) giving the band's 5-sigma point-source depth for a Gaussian PSF."""
    sigma_psf = PSF_FWHM[band] * FWHM_TO_SIGMA / pixel_scale
    return flux_sigma_nmgy(band) / np.sqrt(4.0 * np.pi * sigma_psf**2)


def _neighbours(rng: np.random.Generator, n: int, size: int, fraction: float) -> dict[str, np.ndarray]:
    """Host row, partner row, position and flux scale of neighbour components (1 or 2 per chosen cutout)."""
    has = rng.random(n) < fraction if n > 1 else np.zeros(n, dtype=bool)
    count = np.where(has, 1 + (rng.random(n) < 0.3), 0)
    host = np.repeat(np.arange(n), count)
    partner = (host + rng.integers(1, max(n, 2), len(host))) % max(n, 1)
    radius = rng.uniform(min(8.0, 0.2 * size), 0.42 * size, len(host))
    angle = rng.uniform(0.0, 2.0 * np.pi, len(host))
    return {"host": host, "partner": partner, "x": size / 2 + radius * np.cos(angle),
            "y": size / 2 + radius * np.sin(angle), "scale": 10 ** (-0.4 * rng.uniform(-1.0, 4.0, len(host))),
            "count": count}


def render_cutouts(rng: np.random.Generator, flux_nmgy: np.ndarray, extended: np.ndarray, sersic: dict[str, np.ndarray],
                   size: int = 64, neighbour_fraction: float = 0.1, pixel_scale: float = PIXEL_SCALE,
                   out: np.ndarray | None = None, seeing_out: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Noisy cutouts (N, 5, size, size) float32 in nanomaggies, and the number of neighbours per cutout.

    The cutouts are written into ``out`` when given (a float32 array of that shape); each cutout's seeing
    factor (its PSF FWHM over :data:`PSF_FWHM`, the same in every band) into ``seeing_out`` (N,) when given.
    ``flux_nmgy`` (N, 5) true band fluxes; ``extended`` (N,) True for Sersic galaxies with ``sersic`` arrays
    n, r_e (arcsec), axis_ratio, position_angle (deg) (any values where not extended).
    """
    n_obj = len(flux_nmgy)
    jitter = rng.uniform(-0.5, 0.5, (n_obj, 2))
    nb = _neighbours(rng, n_obj, size, neighbour_fraction)
    src = np.concatenate([np.arange(n_obj), nb["partner"]])
    x0 = np.concatenate([size / 2 + jitter[:, 0], nb["x"]])
    y0 = np.concatenate([size / 2 + jitter[:, 1], nb["y"]])
    scale = np.concatenate([np.ones(n_obj), nb["scale"]])
    ft = _point_ft(size, x0, y0)
    ext = np.flatnonzero(extended[src])
    if ext.size:
        s = src[ext]
        img = render_sersic(size, x0[ext], y0[ext], sersic["sersic_n"][s], sersic["r_e_arcsec"][s] / pixel_scale,
                            sersic["axis_ratio"][s], sersic["position_angle"][s])
        ft[ext] = scipy.fft.rfft2(img, axes=(1, 2))
    band_flux = (flux_nmgy[src] * scale[:, None]).astype(np.float32)
    seeing = rng.uniform(0.85, 1.2, n_obj)
    if seeing_out is not None:
        seeing_out[...] = seeing
    psf_sigma = np.array([PSF_FWHM[b] for b in BANDS])[None, :] * seeing[:, None] * FWHM_TO_SIGMA / pixel_scale
    otf = gaussian_transfer(size, psf_sigma)  # (N, 5, S, S/2+1), the host's seeing for all its components
    total = ft[:n_obj, None] * (otf * band_flux[:n_obj, :, None, None])
    if len(nb["host"]):
        np.add.at(total, nb["host"], ft[n_obj:, None] * (otf[nb["host"]] * band_flux[n_obj:, :, None, None]))
    if out is None:
        out = np.empty((n_obj, len(BANDS), size, size), dtype=np.float32)
    rng.standard_normal(out=out, dtype=np.float32)
    out *= np.array([sky_sigma_per_pixel(b, pixel_scale) for b in BANDS], dtype=np.float32)[None, :, None, None]
    out += scipy.fft.irfft2(total, s=(size, size), axes=(2, 3))
    return out, nb["count"]
