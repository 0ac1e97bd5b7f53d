"""Hot subdwarf stars, single and with a cool main-sequence companion: the population of the real Gaia XP file.

The real ``gaia-dr3-xp-binary`` file is the sample of Viscasillas Vazquez et al. (2024, A&A 691, A223): the
2,815 of the 3,084 hot subdwarfs classified single or binary by Solano et al. (2022, MNRAS 514, 4239; VOSA
SED fits of a comprehensive hot subdwarf catalogue: 2,469 single, 615 binary) that have Gaia DR3 BP/RP
spectra. This module simulates that kind of star, from published properties only (nothing fitted to the file):

* **Primaries** (:func:`sample_hot_subdwarfs`): the classes of the 500 pc sample of Dawson et al. (2024, A&A
  686, A25): 58 % sdB, 21 % sdOB, 21 % sdO and He-sdO/B, with Teff uniform in 20-33 kK (sdB), 33-40 kK (sdOB)
  and 40-55 kK (sdO), log g uniform in 5.0-6.2 (sdB/sdOB) and 5.2-6.0 (sdO) (Heber 2016, PASP 128, 082001:
  Teff > 20 kK, 4.5 <= log g <= 6.5), mass 0.47 Msun (the canonical EHB mass; Dawson et al. 2026 find the
  mass distribution peaking at 0.48 Msun), so R = sqrt(G M / g).
* **Companions**: :data:`BINARY_FRACTION` = 615 / 3,084 of them (Solano et al. 2022) have an F-K main-sequence
  companion (the composite sdB systems, Vos et al. 2018, MNRAS 473, 693; Heber 2016), Teff log-uniform in
  4,300-6,800 K, with the simulator's main-sequence radius and mass for that Teff, at the same distance and
  behind the same dust.
* **Places**: the old Galaxy of the simulator (Juric et al. 2008 thin + thick disc + halo; hot subdwarfs belong
  to all old populations, Dawson et al. 2024), isotropic sightlines, each star at a distance drawn from
  n(d) d^2 where its apparent G (AB, with reddening R_G E(B-V)) lies inside the XP limits 3 < G < 17.65 (De
  Angeli et al. 2023), with the simulator's exponential dust layer and patchiness for E(B-V).

:func:`hot_subdwarf_spectra` gives the model-grid spectra (erg/s/cm2/A, sum of both stars for binaries) of
:func:`~astromodal.data.simulate.stars.star_spectra`, so the XP instrument model of :mod:`.gaia_xp` can
observe them.
"""

from __future__ import annotations

import numpy as np

from astromodal.errors import ConfigError

#: share of binaries (composite SED: cool companion) among the classified hot subdwarfs (Solano et al. 2022)
BINARY_FRACTION = 615 / 3084
#: hot subdwarf classes of the 500 pc sample (Dawson et al. 2024): share, Teff range (K), log g range
CLASSES = (("sdB", 0.58, (20000.0, 33000.0), (5.0, 6.2)),
           ("sdOB", 0.21, (33000.0, 40000.0), (5.0, 6.2)),
           ("sdO", 0.21, (40000.0, 55000.0), (5.2, 6.0)))
#: the canonical hot subdwarf mass (Msun; Heber 2016)
SD_MASS = 0.47
#: Teff range (K) of the F-K main-sequence companions (Vos et al. 2018)
COMPANION_TEFF = (4300.0, 6800.0)
#: the Gaia XP magnitude limits (G; De Angeli et al. 2023: XP spectra published for G < 17.65)
G_LIMITS = (3.0, 17.65)
_G_CGS = 6.674e-8
_MSUN_G = 1.989e33
_RSUN_CM = 6.957e10
_D_GRID = np.geomspace(20.0, 3.0e4, 600)


def sample_hot_subdwarfs(rng: np.random.Generator, n: int, binary_fraction: float = BINARY_FRACTION
                         ) -> dict[str, np.ndarray]:
    """``n`` hot subdwarfs (single or with a companion) of the Gaia XP selection: Teff, logg, radius (Rsun),
    binary (0/1), companion teff/radius/logg (NaN when single), l, b (deg), distance (pc), ebv, g_abs (the
    system's absolute AB G) and g (apparent AB G)."""
    from astromodal.data.simulate import astrometry as ast
    from astromodal.data.simulate.photometry import ab_magnitudes, extinction_coefficient
    from astromodal.data.simulate.stars import LOGG_SUN, dwarf_mass, dwarf_radius

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"hot subdwarfs: n must be a positive whole number, got {n!r}")
    if not 0.0 <= float(binary_fraction) <= 1.0:
        raise ConfigError(f"hot subdwarfs: binary_fraction must lie in [0, 1], got {binary_fraction!r}")
    share = np.array([c[1] for c in CLASSES])
    cls = rng.choice(len(CLASSES), size=n, p=share / share.sum())
    teff, logg = np.empty(n), np.empty(n)
    for k, (_, _, (t0, t1), (g0, g1)) in enumerate(CLASSES):
        rows = cls == k
        teff[rows] = rng.uniform(t0, t1, rows.sum())
        logg[rows] = rng.uniform(g0, g1, rows.sum())
    radius = np.sqrt(_G_CGS * SD_MASS * _MSUN_G / 10.0**logg) / _RSUN_CM
    binary = rng.random(n) < float(binary_fraction)
    c_teff = np.full(n, np.nan)
    c_teff[binary] = np.exp(rng.uniform(*np.log(COMPANION_TEFF), binary.sum()))
    c_radius = np.where(binary, dwarf_radius(np.nan_to_num(c_teff, nan=5000.0)), np.nan)
    c_logg = np.where(binary, LOGG_SUN + np.log10(dwarf_mass(np.nan_to_num(c_teff, nan=5000.0)))
                      - 2.0 * np.log10(np.where(binary, c_radius, 1.0)), np.nan)
    out = {"teff": teff, "logg": logg, "radius": radius, "binary": binary.astype(np.int64), "companion_teff": c_teff,
           "companion_radius": c_radius, "companion_logg": c_logg}
    g_abs = ab_magnitudes(hot_subdwarf_spectra(out | {"distance": np.full(n, 10.0), "ebv": np.zeros(n)}),
                          ("G",))[:, 0]
    # positions: isotropic sightlines, distance from n(d) d^2 inside the G limits (the old Galaxy's density)
    l_deg, b_deg = ast.survey_sightlines(rng, n, 0.0)
    patch = 10.0 ** rng.normal(0.0, ast.DUST_PATCHINESS_DEX, n)
    d = _D_GRID[None, :]
    R, Z = ast.galactocentric(l_deg[:, None], b_deg[:, None], d)
    ebv_grid = ast.reddening_ebv(l_deg[:, None], b_deg[:, None], d, patch[:, None])
    g_app = g_abs[:, None] + 5.0 * np.log10(d / 10.0) + extinction_coefficient("G") * ebv_grid
    inside = (g_app > G_LIMITS[0]) & (g_app < G_LIMITS[1])
    weight = np.where(inside, ast.population_densities(R, Z).sum(axis=-1) * d**3, 0.0)  # per unit ln d
    if not np.all(weight.sum(axis=1) > 0):
        raise ConfigError("hot subdwarfs: a star has no distance inside the Gaia XP limits")
    cdf = np.cumsum(weight, axis=1)
    cdf /= cdf[:, -1:]
    j = np.minimum((cdf < rng.random(n)[:, None]).sum(axis=1), len(_D_GRID) - 1)
    dist = _D_GRID[j] * np.exp(rng.uniform(-0.5, 0.5, n) * np.log(_D_GRID[1] / _D_GRID[0]))
    ebv = ast.reddening_ebv(l_deg, b_deg, dist, patch)
    out.update(l=l_deg, b=b_deg, distance=dist, ebv=ebv, g_abs=g_abs,
               g=g_abs + 5.0 * np.log10(dist / 10.0) + extinction_coefficient("G") * ebv)
    return out


def hot_subdwarf_spectra(p: dict[str, np.ndarray]) -> np.ndarray:
    """Model-grid spectra (N, L) in erg/s/cm2/A of the systems ``p`` (as :func:`sample_hot_subdwarfs` gives):
    the hot subdwarf plus, for binaries, its companion, both at ``distance`` behind ``ebv`` (solar [Fe/H],
    at rest)."""
    from astromodal.data.simulate.stars import star_spectra

    n = len(p["teff"])
    zero = np.zeros(n)
    flux = star_spectra(p["teff"], p["radius"], p["distance"], zero, logg=p["logg"], feh=zero, ebv=p["ebv"])
    b = np.flatnonzero(np.asarray(p["binary"]).astype(bool))
    if len(b):
        flux[b] += star_spectra(p["companion_teff"][b], p["companion_radius"][b], p["distance"][b], zero[b],
                                logg=p["companion_logg"][b], feh=zero[b], ebv=p["ebv"][b])
    return flux
