"""One object per instrument: its wavelength grid, resolving power, bands and pixel scale.

Models stay survey-agnostic; every survey detail lives here (after spender's ``Instrument``):

* ``lamost``: LAMOST-like low-resolution spectrograph, 3601 pixels log-linear on 3700-9100 Angstrom
  (the 3601-pixel length of LAMOST DR1 spectra used by AstroSpectra-MNIST), R ~ 1800,
  flux in 1e-17 erg / (s cm2 Angstrom);
* ``sdss``: SDSS/BOSS-like spectrograph, log-linear with the SDSS step of 1e-4 dex on 3800-9200 Angstrom
  (3841 pixels), R ~ 2000, flux in 1e-17 erg / (s cm2 Angstrom); its imaging camera gives the u g r i z
  bands at 0.396 arcsec/pixel;
* ``gaia_xp``: Gaia XP-like sampled spectra, 343 samples on 336-1020 nm (3360-10200 Angstrom, 20 Angstrom
  steps), very low resolution (here one Gaussian line-spread function with R = 50 everywhere: the real
  BP/RP resolving power varies between about 30 and 100), flux in W / (m2 nm) as in Gaia DR3 XP_SAMPLED.
  1 erg / (s cm2 Angstrom) = 1e-2 W / (m2 nm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from astromodal.errors import ConfigError

CGS_UNIT = "1e-17 erg / (s cm2 Angstrom)"
XP_UNIT = "W / (m2 nm)"


@dataclass(frozen=True)
class Instrument:
    """A spectrograph (and/or camera): wavelength grid in Angstrom, resolving power R = lambda / FWHM.

    ``flux_scale`` converts a flux density in erg / (s cm2 Angstrom) into the instrument's ``flux_unit``.
    """

    name: str
    wavelength: np.ndarray = field(repr=False)
    resolution: float
    flux_unit: str = CGS_UNIT
    flux_scale: float = 1e17
    bands: tuple[str, ...] = ()
    pixel_scale: float | None = None
    description: str = ""

    @property
    def n_pixels(self) -> int:
        return int(len(self.wavelength))

    @property
    def sigma_ln(self) -> float:
        """Gaussian line-spread sigma in ln(lambda): FWHM / lambda = 1 / R, sigma = FWHM / 2.3548."""
        return 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)) * self.resolution)


def log_linear_grid(start: float, stop: float, n: int) -> np.ndarray:
    """``n`` wavelengths (Angstrom) equally spaced in log(lambda) from ``start`` to ``stop`` inclusive."""
    return np.exp(np.linspace(np.log(start), np.log(stop), n))


def _sdss_grid() -> np.ndarray:
    n = int(round(np.log10(9200.0 / 3800.0) / 1e-4)) + 1
    return 10 ** (np.log10(3800.0) + 1e-4 * np.arange(n))


LAMOST = Instrument(
    "lamost", log_linear_grid(3700.0, 9100.0, 3601), 1800.0,
    description="LAMOST-like low-resolution spectra, 3700-9100 A log-linear, R~1800",
)
SDSS = Instrument(
    "sdss", _sdss_grid(), 2000.0, bands=("u", "g", "r", "i", "z"), pixel_scale=0.396,
    description="SDSS-like spectra (1e-4 dex steps, 3800-9200 A, R~2000) and ugriz imaging at 0.396 arcsec/px",
)
GAIA_XP = Instrument(
    "gaia_xp", np.linspace(3360.0, 10200.0, 343), 50.0, flux_unit=XP_UNIT, flux_scale=1e-2,
    bands=("G", "BP", "RP"),
    description="Gaia XP-like sampled spectra, 343 samples on 336-1020 nm, R~50, W/m2/nm",
)

INSTRUMENTS: dict[str, Instrument] = {i.name: i for i in (LAMOST, SDSS, GAIA_XP)}


def get_instrument(name: str) -> Instrument:
    """The instrument called ``name``; an unknown name lists the known ones."""
    try:
        return INSTRUMENTS[str(name).lower()]
    except KeyError:
        raise ConfigError(f"unknown instrument {name!r}; known instruments: {sorted(INSTRUMENTS)}") from None
