"""Catalogue quality columns of a Gaia x SDSS cross-match: RUWE, total proper motion, r-band S/N, saturation.

These are the columns the MESCR selection (parallax_over_error > 2, pmra_error < 0.2, pmdec_error < 0.2,
ruwe < 1.4, no saturated SDSS sources) and its Figure 4b (uncertainty against r-band S/N) need:

* ``ruwe``: Gaia's renormalised unit weight error. A well-behaved single source has RUWE near 1.0; unresolved
  binaries and other sources poorly fit by a single-star model have larger values, and RUWE > 1.4 is the
  usual sign of a problematic astrometric solution (Lindegren et al. 2021, A&A 649, A2; Belokurov et al.
  2020, MNRAS 496, 1922, who trace the RUWE excess to unresolved binaries). Modelled as a mixture: a
  log-normal core (median 1.0, sigma 0.1 in ln) for a fraction 1 - f_b of sources and a log-normal tail
  (median 1.8, sigma 0.35 in ln) for a "binary" fraction f_b = 0.08, so that about 6 % of sources lie
  above 1.4. Simplification: RUWE is drawn independently of everything else (the parallaxes and proper
  motions of the simulated "binaries" are not degraded), and the same for stars, galaxies and quasars.
* ``pm`` = sqrt(pmra^2 + pmdec^2) (mas/yr) and ``pm_error`` its first-order propagated error
  sqrt((pmra sigma_pmra)^2 + (pmdec sigma_pmdec)^2) / pm (no pmra-pmdec correlation; where pm = 0 the
  propagation is undefined and sqrt((sigma_pmra^2 + sigma_pmdec^2) / 2) is used).
* ``snr_r``: expected S/N of the r-band PSF flux (the optimal, PSF-weighted flux estimate) of a point source
  in the cutouts' white sky noise: with a Gaussian PSF of sigma s pixels and per-pixel sky sigma sigma_pix,
  var(F_psf) = sigma_pix^2 / sum_i P_i^2 = sigma_pix^2 4 pi s^2, so

      snr_r = F_r / (sigma_pix sqrt(4 pi) s) = 5 * 10^(-0.4 (r - r_5)) / seeing

  with F_r = 10^(-0.4 (r - 22.5)) nanomaggies of the TRUE r magnitude, r_5 = 22.3 the 5-sigma depth
  (:data:`~astromodal.data.simulate.photometry.DEPTH_5SIGMA`; :func:`~astromodal.data.simulate.imaging.
  sky_sigma_per_pixel` sets sigma_pix from it at the nominal PSF) and ``seeing`` the cutout's seeing factor
  (FWHM over the nominal 1.3 arcsec; 1 when no images are simulated). Sky-limited: the images have no
  source shot noise, and the 0.01 mag calibration floor of the catalogue errors is not included.
* ``saturated``: SDSS saturates point sources brighter than about u 12.0, g 14.1, r 14.1, i 13.8, z 12.3 mag
  (Stoughton et al. 2002, AJ 123, 485, at typical seeing). The peak pixel of a Gaussian PSF scales as
  F / s^2, so with seeing factor w a star saturates when m_band < limit_band - 5 log10(w); ``saturated`` is
  True when any band does (SDSS sets the SATURATED bit of ``flags`` for a saturated pixel in any band).
  The simulated pixels themselves are not clipped.
"""

from __future__ import annotations

import numpy as np

from astromodal.data.simulate.photometry import BANDS, DEPTH_5SIGMA, flux_sigma_nmgy, nanomaggies

#: RUWE model: fraction of sources in the binary tail, and (median, sigma of ln) of the core and of the tail
RUWE_BINARY_FRACTION = 0.08
RUWE_CORE = (1.0, 0.1)
RUWE_TAIL = (1.8, 0.35)
#: approximate SDSS point-source saturation magnitudes (Stoughton et al. 2002) at the nominal seeing
SATURATION_MAG = {"u": 12.0, "g": 14.1, "r": 14.1, "i": 13.8, "z": 12.3}


def sample_ruwe(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaia-like RUWE values (n,): the log-normal core and binary tail of the module docstring."""
    binary = rng.random(n) < RUWE_BINARY_FRACTION
    z = rng.standard_normal(n)
    median = np.where(binary, RUWE_TAIL[0], RUWE_CORE[0])
    sigma = np.where(binary, RUWE_TAIL[1], RUWE_CORE[1])
    return median * np.exp(sigma * z)


def total_proper_motion(pmra: np.ndarray, pmdec: np.ndarray, pmra_error: np.ndarray, pmdec_error: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``pm`` = sqrt(pmra^2 + pmdec^2) and its propagated error (see the module docstring), mas/yr."""
    pm = np.hypot(pmra, pmdec)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.hypot(pmra * pmra_error, pmdec * pmdec_error) / pm
    zero = np.sqrt(0.5 * (pmra_error**2 + pmdec_error**2))
    return pm, np.where(pm > 0, err, zero)


def psf_snr(mag: np.ndarray, band: str = "r", seeing: np.ndarray | float = 1.0) -> np.ndarray:
    """Expected S/N of the PSF flux of a point source of true magnitude ``mag`` in the simulated cutouts:
    F / (sigma_pix sqrt(4 pi) s) = 5 * 10^(-0.4 (mag - depth_5sigma)) / seeing (module docstring)."""
    return nanomaggies(mag) / (flux_sigma_nmgy(band) * np.asarray(seeing, dtype=np.float64))


def saturated_flag(mags: np.ndarray, seeing: np.ndarray | float = 1.0) -> np.ndarray:
    """True where any band of ``mags`` (N, 5; u g r i z true magnitudes) is brighter than its saturation limit
    ``SATURATION_MAG[band] - 5 log10(seeing)``."""
    limits = np.array([SATURATION_MAG[b] for b in BANDS])[None, :]
    shift = 5.0 * np.log10(np.asarray(seeing, dtype=np.float64))
    shift = shift[:, None] if np.ndim(shift) else shift
    return np.any(np.asarray(mags)[:, : len(BANDS)] < limits - shift, axis=1)


def quality_columns(rng: np.random.Generator, true_mags: np.ndarray, astro: dict[str, np.ndarray],
                    seeing: np.ndarray | float = 1.0) -> dict[str, np.ndarray]:
    """ruwe, pm, pm_error, snr_r and saturated for every object.

    ``true_mags`` (N, >= 5) true u g r i z magnitudes; ``astro`` the catalogue's pmra, pmdec, pmra_error,
    pmdec_error; ``seeing`` the cutouts' seeing factors (1 without images). Only ``ruwe`` draws random numbers,
    from ``rng`` (a stream of its own, so the other simulated arrays do not change).
    """
    n = len(true_mags)
    pm, pm_error = total_proper_motion(astro["pmra"], astro["pmdec"], astro["pmra_error"], astro["pmdec_error"])
    return {
        "ruwe": sample_ruwe(rng, n),
        "pm": pm,
        "pm_error": pm_error,
        "snr_r": psf_snr(true_mags[:, BANDS.index("r")], "r", seeing),
        "saturated": saturated_flag(true_mags, seeing),
    }


__all__ = ["sample_ruwe", "total_proper_motion", "psf_snr", "saturated_flag", "quality_columns",
           "SATURATION_MAG", "DEPTH_5SIGMA"]
