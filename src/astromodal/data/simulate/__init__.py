"""The built-in, physically grounded survey simulator (the default data of astromodal).

``simulate_survey(n, seed, ...)`` returns a :class:`~astromodal.data.dataset.Dataset` of stars, galaxies and
quasars with LAMOST-, SDSS- and Gaia XP-like spectra, u g r i z image cutouts, catalogue photometry and
Gaia-like astrometry, and the physical truth as targets. The physical model, in short:

* stars (:mod:`.stars`): spectral types O..M from Teff; black-body continua pi B_lambda(Teff) (R/d)^2 shaped
  by continuum opacity and near-UV blanketing terms calibrated on published colours, with absorption lines at
  vacuum wavelengths whose depth follows the type (Balmer peaking at A0, Ca II H&K / G band / Na D growing to
  G/K, TiO bands in M), Doppler shifted; L = 4 pi R^2 sigma Teff^4 exactly; O/B are "massive";
* galaxies (:mod:`.galaxies`): an old stellar population (the Coleman, Wu & Weedman 1980 elliptical template
  that galsim ships) + a young continuum whose share of the light follows the specific SFR, D4000 tied to
  sSFR, nebular lines from the SFR through Kennicutt (SFR = 7.9e-42 L(Halpha)), fluxes L / (4 pi d_L^2) with
  Planck18 distances, Sersic images;
* quasars (:mod:`.quasars`): f_nu ~ nu^alpha continuum, broad lines at (1 + z) lambda_rest, Lyman series
  forests, Lyman-limit systems, SMC dust, host-galaxy light at low luminosity, point-source images;
* instruments (:mod:`astromodal.data.instruments`): Gaussian line-spread function at constant R, resampling,
  white noise at the requested median S/N, ivar;
* photometry (:mod:`.photometry`): AB magnitudes through the SDSS 2010 ugriz response curves (``speclite``), sky-limited
  errors;
* astrometry (:mod:`.astrometry`): disc star positions, OB associations, parallax 1000/d with Gaia-like
  errors, proper motion v_t / (4.74047 d_kpc);
* images (:mod:`.imaging`): Gaussian PSF, Fourier-space rendering, neighbours, sky noise, nanomaggies;
* quality columns (:mod:`.quality`): Gaia-like RUWE with a binary tail, total proper motion and its error, the
  expected r-band PSF-flux S/N of the cutouts (``snr_r``) and an SDSS-like ``saturated`` flag.

Stars are a magnitude-limited sample (``stellar_selection``: SDSS (SEGUE bright/faint plates, colour targeted
by SEGUE's categories, legacy and BOSS stars, with the type mix that the local luminosity function and the survey volume give), LAMOST-like or Gaia XP
limits) of a Juric et al. (2008) Galaxy with thin/thick disc and halo [Fe/H], Galactic kinematics and Fitzpatrick
(1999) reddening (``dust_extinction``'s F99); galaxies and quasars carry Milky Way foreground extinction in their
magnitudes and images.
Simplifications (no binaries, no source shot noise, ...) are listed in each module's docstring.
"""

from astromodal.data.simulate.survey import (
    CLASS_NAMES,
    LUMINOSITY_CLASS_NAMES,
    MASSIVE_NAMES,
    SPECTRAL_TYPE_NAMES,
    simulate_survey,
)

__all__ = ["simulate_survey", "CLASS_NAMES", "SPECTRAL_TYPE_NAMES", "MASSIVE_NAMES", "LUMINOSITY_CLASS_NAMES"]
