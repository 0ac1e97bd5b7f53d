"""What the LAMOST telescope, atmosphere and DR1 pipeline do to a spectrum after the line-spread function.

The LAMOST low-resolution spectrographs (Cui et al. 2012, RAA 12, 1197; Zhao et al. 2012, RAA 12, 723) cover
about 3700-9000 Angstrom in two arms split by a dichroic near 5900 Angstrom (blue 3700-5900, red 5700-9000),
R ~ 1800, fibres of 3.3 arcsec diameter. The DR1 pipeline (Luo et al. 2015, RAA 15, 1095) subtracts the sky
from 20 sky fibres per spectrograph, flux-calibrates each spectrograph *relatively* with a spectral response
curve (SRC) from F-type stars of the same plate, joins the arms and marks bad pixels in ``andmask`` (bits
BADCCD, BADPROFILE, NOSKY, BRIGHTSKY, BADCENTER, NODATA). This module turns a noise-free spectrum at the
instrument's resolution (``observe_noise_free``) into what a DR1 file holds:

``delivered = f * T_atm(lambda) * S(lambda) + sky residual + noise`` with

* ``T_atm``: what is left of the telluric absorption after the flux calibration. The DR1 spectral response
  curve of each spectrograph comes from F stars observed in the same exposures, through the same atmosphere
  at nearly the same airmass (Luo et al. 2015), so dividing by it removes the bands to first order; a
  fraction :data:`TELLURIC_RESIDUAL` of their optical depth (with a random sign: standards at lower or higher
  airmass and water column than the target; an assumption, no published figure) is left. ``1`` would be no
  correction at all, as in the LSS-GAC calibration of Xiang et al. (2015, MNRAS 448, 90), whose g - i offset
  comes from the uncorrected A band. The bands: O2 A (7594-7621, fading to ~7700)
  and B (6867-6884, to ~6950) bands and the H2O bands near 7160-7340, 8130-8350 and 8950-9800 Angstrom
  (band limits after Stevenson 1994, MNRAS 267, 904; band-averaged optical depths at R ~ 2000, airmass 1 and
  a few mm of precipitable water rounded from low-resolution model transmissions of a mid-latitude site, e.g.
  ESO SkyCalc, Noll et al. 2012, A&A 543, A92; Jones et al. 2013). O2 optical depth grows as airmass^0.6
  (saturated lines, square-root curve of growth), H2O as airmass x PWV / 5 mm;
* ``S``: the residual of the relative flux calibration, a smooth positive multiplicative function per
  spectrum: exp of Legendre terms of order 1-3 over the grid (rms ~ 10 %: the relative-calibration accuracy
  over 4000-9000 Angstrom of Xiang et al. 2015 and Du et al. 2016, ApJS 227, 27), a blue-end term growing
  below 4000 Angstrom where the blue-arm throughput (and so the SRC) falls steeply (an assumption: the papers
  quote their 10 % over 4000-9000 only), and a red/blue arm scale ratio (~4 % fibre-throughput uncertainty,
  Bai et al. 2017, RAA 17, 91) joined smoothly over the 5700-5900 Angstrom overlap;
* sky: a continuum of V ~ 21 mag/arcsec^2 (a dark Xinglong sky, Yao et al. 2012, RAA 12, 772; scaled up by
  a random moon/twilight factor of 1-4) plus the strongest night-sky lines ([O I] 5577/6300/6364, Na D,
  the Hg I lines of light pollution and the OH Meinel bands; wavelengths from Osterbrock et al. 1996, PASP
  108, 277), in the fibre's 8.55 arcsec^2. The pipeline subtracts it with residuals of ~3 % of the line and
  continuum flux (Bai et al. 2017 for DR3+; DR1 predates their PCA step, so 5 % for the lines here) and a
  wavelength error of ~0.1 Angstrom (their wavelength instability), which leaves P-Cygni-like residuals;
* noise: photon noise of object and sky counts plus CCD read noise (3.5 e-, 7 pixels across the fibre
  trace, 3 exposures: Cui et al. 2012 quote 4k x 4k CCDs with a few e- read noise), counts = k f T_sys with
  T_sys the system throughput shape (:func:`system_throughput`) and a fibre-throughput factor (fibre
  positioning, 0.6-1) on the object only; k (photons per flux unit) is set per spectrum so that the median
  signal-to-noise ratio over the good pixels equals the requested ``snr``; ``ivar`` = 1 / variance in
  delivered-flux units;
* masks (andmask-like): NODATA beyond each fibre's coverage (the nominal 3700-9000 Angstrom, with the ends
  jittered by +-25 Angstrom between fibres); BADPROFILE at the blue end while the object is not detected at
  2 sigma (sky + read noise) in a pixel (no profile to fit: faint cool stars lose their first ~100-300
  Angstrom; an assumption about the extraction, in the spirit of the bit's name); BRIGHTSKY where a sky line is brighter
  than the object plus 10 sigma (the SDSS ``idlspec2d`` rule the LAMOST bit names follow). Masked pixels get ivar 0 and their flux is filled by
  linear interpolation from the good neighbours, exactly as :func:`astromodal.transforms.spectra.fill_masked`
  does when the reader reads a real DR1 file (:mod:`astromodal.data.readers.lamost`).

Every random number comes from the ``rng`` given, in a fixed order, so a seed gives the same arrays.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from astromodal.data.simulate.physics import C_ANGSTROM, H_CGS
from astromodal.data.simulate.stars import air_to_vacuum

#: LAMOST resolving power (the ``lamost`` instrument's), for the sky lines' and telluric edges' width
RESOLUTION = 1800.0
#: fibre diameter (arcsec) and so its area on the sky (arcsec^2): Cui et al. (2012)
FIBRE_DIAMETER_ARCSEC = 3.3
FIBRE_AREA_ARCSEC2 = np.pi * (FIBRE_DIAMETER_ARCSEC / 2.0) ** 2
#: dark-sky continuum surface brightness (AB mag / arcsec^2) near V at Xinglong (Yao et al. 2012)
SKY_CONTINUUM_MAG = 21.0
#: range of the random factor on the sky brightness (moon, twilight: LAMOST observes in grey/bright time too)
SKY_BRIGHTNESS_FACTOR = (1.0, 4.0)
#: CCD read noise (e-), pixels summed across the fibre trace, exposures co-added
READ_NOISE_E, TRACE_PIXELS, EXPOSURES = 3.5, 7, 3
#: fraction of the object light entering its fibre (positioning and seeing losses), uniform in this range
FIBRE_THROUGHPUT = (0.6, 1.0)
#: rms of the calibration-residual Legendre coefficients of order 1, 2, 3 (total rms ~ 10 %)
RESPONSE_SIGMAS = (0.14, 0.10, 0.06)
#: rms of the residual at 3700 A of the blue-end term (grows linearly below BLUE_END_START)
BLUE_END_SIGMA, BLUE_END_START = 0.2, 4000.0
#: rms of the ln ratio of the red-arm to the blue-arm calibration, and the arms' overlap (A)
ARM_RATIO_SIGMA, ARM_JOIN = 0.04, (5700.0, 5900.0)
#: sky-subtraction residuals: fraction of the line and continuum sky flux, and the wavelength error (A)
SKY_LINE_RESIDUAL, SKY_CONTINUUM_RESIDUAL, SKY_SHIFT_SIGMA = 0.05, 0.03, 0.1
#: each fibre's coverage: nominal ends (A) and the jitter (uniform +-, A) of each end between fibres
COVERAGE, COVERAGE_JITTER = (3700.0, 9000.0), 25.0
#: the blue end searched for BADPROFILE pixels (object counts below the trace's read noise), A
BADPROFILE_SEARCH = 4300.0
#: detection threshold (sigma of sky + read noise per pixel) below which a blue-end pixel is BADPROFILE
BADPROFILE_SIGMA = 2.0
#: airmass range (LAMOST is a quasi-meridian Schmidt at latitude 40.4 N observing dec -10..+90: X ~ 1-1.4)
AIRMASS = (1.0, 1.4)
#: precipitable water vapour (mm), log-uniform range for the Xinglong observing season
PWV_MM = (2.0, 12.0)

#: rms fraction of the telluric optical depth left after the calibration by the plate's standard stars
TELLURIC_RESIDUAL = 0.15
#: telluric bands: (start, end in air, A; band-averaged optical depth at airmass 1 [and PWV 5 mm for H2O];
#: molecule); :data:`TELLURIC_BANDS` holds them in vacuum, the wavelengths of DR1 files (Luo et al. 2015)
TELLURIC_BANDS_AIR = (
    (6867.0, 6884.0, 0.45, "O2"),   # B band head (R branch)
    (6884.0, 6950.0, 0.12, "O2"),   # B band P branch
    (7594.0, 7621.0, 1.10, "O2"),   # A band head and R branch (depth ~ 0.65 at R ~ 2000)
    (7621.0, 7700.0, 0.25, "O2"),   # A band P branch
    (6470.0, 6600.0, 0.03, "H2O"),
    (7160.0, 7340.0, 0.10, "H2O"),
    (8130.0, 8350.0, 0.10, "H2O"),
    (8950.0, 9800.0, 0.20, "H2O"),
)
TELLURIC_BANDS = tuple((float(air_to_vacuum(lo)), float(air_to_vacuum(hi)), tau, mol)
                       for lo, hi, tau, mol in TELLURIC_BANDS_AIR)
#: night-sky emission lines: (wavelength in air, A; intensity in Rayleigh) - [O I], Na D, Hg I (light
#: pollution near Beijing) and the strongest OH Meinel lines of each band (Osterbrock et al. 1996); in vacuum
#: (the DR1 files' wavelengths) in :data:`SKY_LINES`
SKY_LINES_AIR = (
    (4358.3, 30.0), (5460.7, 40.0), (5577.3, 250.0), (5769.6, 15.0), (5790.7, 15.0), (5889.95, 60.0),
    (5895.9, 50.0), (6300.3, 120.0), (6363.8, 40.0),
    (6257.9, 15.0), (6287.4, 20.0), (6306.9, 15.0), (6329.9, 20.0), (6498.7, 25.0), (6533.0, 30.0),
    (6553.6, 25.0), (6863.9, 45.0), (6923.2, 40.0), (6948.9, 40.0), (7276.4, 50.0), (7284.4, 45.0),
    (7316.3, 60.0), (7340.9, 70.0), (7369.2, 50.0), (7524.1, 50.0), (7571.8, 55.0), (7750.6, 90.0),
    (7794.1, 100.0), (7821.5, 110.0), (7853.3, 90.0), (7913.7, 120.0), (7964.6, 130.0), (7993.3, 140.0),
    (8344.6, 180.0), (8399.2, 200.0), (8430.2, 160.0), (8465.2, 180.0), (8493.4, 150.0), (8827.1, 220.0),
    (8885.8, 230.0), (8919.6, 200.0), (8943.4, 210.0), (8958.1, 200.0), (9001.4, 150.0), (9037.0, 150.0),
)
SKY_LINES = tuple((float(air_to_vacuum(lam)), rayleigh) for lam, rayleigh in SKY_LINES_AIR)


class Observed(NamedTuple):
    """Delivered spectra: flux (N, L) float32, inverse variance (N, L) and mask (N, L), True = bad pixel."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray


def _sigma_lsf(wave: np.ndarray) -> np.ndarray:
    return wave / (2.0 * np.sqrt(2.0 * np.log(2.0)) * RESOLUTION)


def _smooth_step(x: np.ndarray, width: np.ndarray) -> np.ndarray:
    """The error-function step of a box edge seen through a Gaussian LSF of sigma ``width``."""
    from scipy.special import ndtr

    return ndtr(x / width)


def _telluric_tau_at(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sig = _sigma_lsf(wave)
    tau = {"O2": np.zeros_like(wave), "H2O": np.zeros_like(wave)}
    for lo, hi, t0, mol in TELLURIC_BANDS:
        tau[mol] += t0 * (_smooth_step(wave - lo, sig) - _smooth_step(wave - hi, sig))
    return tau["O2"], tau["H2O"]


def telluric_transmission(wave: np.ndarray, airmass: np.ndarray, pwv_mm: np.ndarray) -> np.ndarray:
    """Atmospheric transmission (N, L) at ``wave`` (A) for (N,) ``airmass`` and precipitable water ``pwv_mm``.

    T = exp(-(tau_O2 X^0.6 + tau_H2O X PWV / 5 mm)), tau the band-averaged depths of :data:`TELLURIC_BANDS`
    with box edges smoothed by the R = 1800 line-spread function.
    """
    wave = np.asarray(wave, dtype=np.float64)
    o2, h2o = _telluric_tau_at(wave)
    x = np.asarray(airmass, dtype=np.float64)[:, None]
    w = np.asarray(pwv_mm, dtype=np.float64)[:, None] / 5.0
    return np.exp(-(o2[None, :] * x**0.6 + h2o[None, :] * x * w))


def system_throughput(wave: np.ndarray) -> np.ndarray:
    """Peak-normalised throughput shape of atmosphere + telescope + fibre + spectrograph + CCD (L,).

    Two arms meeting at the dichroic (5800 A, 50 A wide transition): the blue arm peaking near 4900 A and
    falling steeply to the UV (atmospheric extinction, fibre and CCD losses below 4000 A), the red arm
    peaking near 7000 A and falling with the CCD quantum efficiency towards 9000 A. A schematic shape after
    the LAMOST throughput budget (Cui et al. 2012): only its relative form matters here (it sets how the
    photon noise varies along the spectrum; the flux is calibrated).
    """
    wave = np.asarray(wave, dtype=np.float64)
    to_red = 1.0 / (1.0 + np.exp(-(wave - 5800.0) / 50.0))
    blue = np.exp(-0.5 * ((wave - 4900.0) / 700.0) ** 2)
    red = 0.9 * np.exp(-0.5 * ((wave - 7000.0) / 1400.0) ** 2)
    return blue * (1.0 - to_red) + red * to_red


def sky_spectrum(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dark-sky continuum and line spectrum (each (L,)) in one fibre, erg / (s cm2 A), at R = 1800.

    Continuum: AB :data:`SKY_CONTINUUM_MAG` per arcsec^2 (flat in f_nu) times the fibre area; lines: each
    of :data:`SKY_LINES` (I in Rayleigh: 1 R = 1e6 / (4 pi) photons / (s cm2 sr)) as a Gaussian of the LSF.
    """
    wave = np.asarray(wave, dtype=np.float64)
    f_nu = 10.0 ** (-0.4 * (SKY_CONTINUUM_MAG + 48.6)) * FIBRE_AREA_ARCSEC2
    cont = f_nu * C_ANGSTROM / wave**2
    arcsec2_sr = (np.pi / 180.0 / 3600.0) ** 2
    lines = np.zeros_like(wave)
    for lam, rayleigh in SKY_LINES:
        photons = rayleigh * 1e6 / (4.0 * np.pi) * arcsec2_sr * FIBRE_AREA_ARCSEC2  # photons / (s cm2)
        energy = photons * H_CGS * C_ANGSTROM / lam  # erg / (s cm2)
        s = float(_sigma_lsf(np.asarray(lam)))
        near = np.abs(wave - lam) < 6.0 * s
        lines[near] += energy / (np.sqrt(2.0 * np.pi) * s) * np.exp(-0.5 * ((wave[near] - lam) / s) ** 2)
    return cont, lines


def calibration_residual(rng: np.random.Generator, wave: np.ndarray, n: int) -> np.ndarray:
    """Smooth multiplicative residual S (N, L) of the relative flux calibration (see the module docstring)."""
    from numpy.polynomial import legendre

    wave = np.asarray(wave, dtype=np.float64)
    x = 2.0 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1.0
    basis = np.stack([legendre.legval(x, np.eye(4)[k]) for k in (1, 2, 3)])  # (3, L)
    coef = rng.standard_normal((n, 3)) * np.asarray(RESPONSE_SIGMAS)[None, :]
    ln_s = coef @ basis
    x = (BLUE_END_START - wave) / (BLUE_END_START - 3700.0)
    blue = 0.5 * (x + np.sqrt(x * x + 0.01))  # max(x, 0), rounded over ~30 A (no kink)
    ln_s += rng.standard_normal(n)[:, None] * BLUE_END_SIGMA * blue[None, :]
    lo, hi = ARM_JOIN
    to_red = 1.0 / (1.0 + np.exp(-(wave - 0.5 * (lo + hi)) / (0.2 * (hi - lo))))
    ln_s += rng.standard_normal(n)[:, None] * ARM_RATIO_SIGMA * to_red[None, :]
    return np.exp(ln_s)


def _solve_photons(obj: np.ndarray, sky: np.ndarray, read_var: float, snr: float) -> np.ndarray:
    """Photons per flux unit k (N,) so that the median over pixels of k s / sqrt(k (s + b) + r) is ``snr``.

    ``obj`` and ``sky`` are the object's and the sky's counts per unit k (N, M) on the pixels that set the
    median. S/N grows as k^e with e = 1 - (k (s + b) / 2) / (k (s + b) + r) between 1/2 (photon-limited) and
    1 (read-noise-limited), taken at the median pixel: Newton steps in log k, k <- k (snr / S/N)^(1 / e).
    """
    obj = np.abs(obj)
    tot = obj + np.abs(sky)
    k = snr**2 * np.median(tot, axis=1) / np.maximum(np.median(obj, axis=1) ** 2, 1e-30)
    for _ in range(6):
        kt = k[:, None] * tot
        sn = k[:, None] * obj / np.sqrt(kt + read_var)
        j = np.argpartition(sn, sn.shape[1] // 2, axis=1)[:, sn.shape[1] // 2]
        rows = np.arange(len(k))
        med = sn[rows, j]
        photon = kt[rows, j]
        e = 1.0 - 0.5 * photon / (photon + read_var)
        k = k * (snr / np.maximum(med, 1e-30)) ** (1.0 / e)
    return k


@lru_cache(maxsize=4)
def _grid_terms(wave_key: tuple[float, float, int]) -> dict[str, np.ndarray]:
    """Everything that depends on the wavelength grid only (cached per grid)."""
    wave = np.exp(np.linspace(np.log(wave_key[0]), np.log(wave_key[1]), wave_key[2]))
    o2, h2o = _telluric_tau_at(wave)
    tell = np.flatnonzero((o2 + h2o) > 1e-5)
    cont, lines = sky_spectrum(wave)
    cont, lines = cont * 1e17, lines * 1e17  # erg / (s cm2 A) -> 1e-17 erg / (s cm2 A)
    skyline = lines > 0.25 * cont
    # BRIGHTSKY candidates dilated by 2 pixels: windows whose edges are never masked by it
    near = np.convolve(skyline.astype(float), np.ones(5), mode="same") > 0
    inside = (wave > COVERAGE[0] + COVERAGE_JITTER) & (wave < COVERAGE[1] - COVERAGE_JITTER)
    median_pix = np.flatnonzero(inside & ~near)[::8]
    return {"wave": wave, "o2": o2[tell], "h2o": h2o[tell], "tell": tell, "cont": cont, "lines": lines,
            "dlines": np.gradient(lines, wave), "thru": system_throughput(wave), "skyline": np.flatnonzero(skyline),
            "near": np.flatnonzero(near), "median_pix": median_pix}


def observe_lamost(rng: np.random.Generator, flux: np.ndarray, wave: np.ndarray, snr: float) -> Observed:
    """Delivered LAMOST DR1-like spectra from noise-free ``flux`` (N, L) on ``wave`` (A), in its flux unit.

    ``wave`` must be log-linear (the ``lamost`` instrument's grid). ``flux`` is in 1e-17 erg / (s cm2 A)
    (the instrument's unit), so that the sky, whose level is physical, weighs correctly against faint and
    bright stars. See the module docstring for each step.
    """
    flux = np.asarray(flux, dtype=np.float64)
    wave = np.asarray(wave, dtype=np.float64)
    n, length = flux.shape
    g = _grid_terms((float(wave[0]), float(wave[-1]), int(length)))
    # random draws, in a fixed order
    airmass = rng.uniform(*AIRMASS, n)
    pwv = np.exp(rng.uniform(np.log(PWV_MM[0]), np.log(PWV_MM[1]), n))
    left = rng.standard_normal(n) * TELLURIC_RESIDUAL  # telluric depth left after the calibration
    response = calibration_residual(rng, wave, n)
    fibre = rng.uniform(*FIBRE_THROUGHPUT, n)
    sky_factor = rng.uniform(*SKY_BRIGHTNESS_FACTOR, n)
    eps = rng.standard_normal((n, 3)) * np.array([SKY_LINE_RESIDUAL, SKY_CONTINUUM_RESIDUAL, SKY_SHIFT_SIGMA])
    ends = np.asarray(COVERAGE)[None, :] + rng.uniform(-COVERAGE_JITTER, COVERAGE_JITTER, (n, 2))
    z = rng.standard_normal((n, length), dtype=np.float32)

    obj = flux.copy()  # above the atmosphere -> through it, calibrated (telluric residual on its columns only)
    t = g["tell"]
    obj[:, t] *= np.exp(-left[:, None] * (g["o2"][None, :] * airmass[:, None] ** 0.6
                                          + g["h2o"][None, :] * (airmass * pwv / 5.0)[:, None]))
    cont, lines, thru = g["cont"], g["lines"], g["thru"]
    sky = np.stack([sky_factor, np.ones(n)], axis=1) @ np.stack([cont, lines])  # (N, L)
    read_var = READ_NOISE_E**2 * TRACE_PIXELS * EXPOSURES
    mp = g["median_pix"]
    k = _solve_photons(obj[:, mp] * (fibre[:, None] * thru[mp]), sky[:, mp] * thru[mp], read_var, snr)
    # counts: object k fibre T s, sky k T b; variance in counts -> delivered flux (divided by k T fibre, the
    # spectral response the pipeline divides by, and multiplied by the calibration residual)
    # (float32 from here: the noise needs no more precision, and it halves the memory traffic)
    f32 = np.float32
    var = np.abs(obj).astype(f32)
    var *= fibre.astype(f32)[:, None]
    var += sky.astype(f32)
    var *= (k[:, None] * thru[None, :]).astype(f32)
    var += f32(read_var)
    sigma = np.sqrt(var)
    sigma *= response.astype(f32)
    sigma /= ((k * fibre)[:, None] * thru[None, :]).astype(f32)
    # sky-subtraction residual (per fibre, so divided by its throughput like the object light)
    resid = (eps * np.stack([np.ones(n), sky_factor, np.ones(n)], axis=1) / fibre[:, None]) @ np.stack(
        [lines, cont, g["dlines"]])
    noisy = (obj + resid).astype(f32)
    noisy *= response.astype(f32)
    z *= sigma
    noisy += z
    ivar = np.square(sigma)
    np.divide(f32(1.0), ivar, out=ivar)
    # masks: NODATA outside each fibre's coverage; BRIGHTSKY on sky lines above the object + 10 sigma (counts)
    cols = np.arange(length)[None, :]
    i0 = np.searchsorted(wave, ends[:, 0])
    i1 = np.searchsorted(wave, ends[:, 1]) - 1
    # BADPROFILE at the blue end: while the object is not detected at BADPROFILE_SIGMA in a pixel (against the
    # sky and read noise) the extraction has no profile to fit; the spectrum starts at the first detection
    blue = slice(0, int(np.searchsorted(wave, BADPROFILE_SEARCH)))
    noise = np.sqrt(k[:, None] * sky[:, blue] * thru[None, blue] + read_var)
    above = (k[:, None] * fibre[:, None] * np.abs(obj[:, blue]) * thru[None, blue]) >= BADPROFILE_SIGMA * noise
    first = np.where(above.any(axis=1), np.argmax(above, axis=1), blue.stop)
    i0 = np.maximum(i0, first)
    # the masks live in three column ranges only: the blue end, the red end and the sky-line windows
    c0 = min(length, int(i0.max()) + 1)
    c1 = max(0, int(i1.min()))
    mask = np.zeros((n, length), dtype=bool)
    mask[:, :c0] = cols[:, :c0] < i0[:, None]
    mask[:, c1:] = cols[:, c1:] > i1[:, None]
    sl = g["skyline"]
    sky_c = k[:, None] * sky[:, sl] * thru[sl]
    obj_c = k[:, None] * fibre[:, None] * np.abs(obj[:, sl]) * thru[sl]
    mask[:, sl] |= sky_c > obj_c + 10.0 * np.sqrt(sky_c + obj_c + read_var)
    for part in (slice(0, c0), slice(c1, length)):
        ivar[:, part][mask[:, part]] = 0.0
    ivar[:, sl] = np.where(mask[:, sl], 0.0, ivar[:, sl])
    # fill masked pixels as the reader does (fill_masked: linear in pixel index between the nearest good pixels,
    # the value of the first / last good pixel beyond them): the ends first, then the sky-line windows, whose
    # edges are never masked (dilated by 2 pixels), so filling them alone is exact
    from astromodal.transforms.spectra import fill_masked

    rows = np.arange(n)
    good = ~mask
    g0 = np.argmax(good, axis=1)
    g1 = length - 1 - np.argmax(good[:, ::-1], axis=1)
    b0, b1 = int(g0.max()) + 1, int(g1.min())
    head, tail = noisy[:, :b0], noisy[:, b1:]
    noisy[:, :b0] = np.where(cols[:, :b0] < g0[:, None], noisy[rows, g0][:, None], head)
    noisy[:, b1:] = np.where(cols[:, b1:] > g1[:, None], noisy[rows, g1][:, None], tail)
    nr = g["near"]
    inner = mask[:, nr] & (cols[:, nr] > g0[:, None]) & (cols[:, nr] < g1[:, None])
    if inner.any():
        noisy[:, nr] = fill_masked(noisy[:, nr], inner)
    return Observed(noisy.astype(np.float32, copy=False), ivar, mask)
