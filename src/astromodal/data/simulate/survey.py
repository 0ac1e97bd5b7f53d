"""``simulate_survey``: a whole multimodal survey (spectra, images, photometry, astrometry, truth) as a Dataset.

Random numbers: one :class:`numpy.random.SeedSequence` per seed, spawned into independent streams per
component (classes, stars, galaxies, quasars, positions, photometric noise, astrometric noise, each
instrument's noise, images, the quality columns of :mod:`.quality`), so the same seed gives identical arrays,
and switching images off leaves every other array unchanged except ``snr_r`` and ``saturated``, which use
each cutout's seeing (the nominal seeing without images). A stream added later is appended to the list, so
the arrays of the earlier streams stay the same for a seed. Objects are processed in batches (``batch_size``) with no per-object Python loop; the
batches run on ``SIM_THREADS`` threads ($ASTROMODAL_SIM_THREADS, default min(2, cores)), each with its own
seeded stream, so the arrays depend on the seed and the batch size only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np

from astromodal.data.dataset import Column, Dataset, Images, Spectra, Target
from astromodal.data.instruments import Instrument, get_instrument
from astromodal.data.simulate import astrometry as ast
from astromodal.data.simulate.galaxies import (
    d4000_narrow,
    emission_line_fluxes,
    galaxy_spectra,
    sample_galaxies,
)
from astromodal.data.simulate.imaging import PIXEL_SCALE, render_cutouts
from astromodal.data.simulate.photometry import (
    BANDS,
    ab_magnitudes,
    catalogue_magnitudes,
    extinction_coefficient,
    nanomaggies,
    observe_magnitudes,
)
from astromodal.data.simulate.physics import C_KMS, SIM_THREADS, luminosity_distance_pc
from astromodal.data.simulate.quality import quality_columns
from astromodal.data.simulate.quasars import quasar_spectra, sample_quasars
from astromodal.data.simulate.spectroscopy import INSTRUMENT_MODELS, observe, observe_noise_free
from astromodal.data.simulate.stars import (
    LOGG_SUN,
    SPECTRAL_TYPES,
    TEFF_RANGES,
    TYPE_FRACTIONS,
    dwarf_mass,
    dwarf_radius,
    sample_metallicity,
    sample_stars,
    selection_magnitudes,
    star_spectra,
)
from astromodal.errors import ConfigError

CLASS_NAMES = ("star", "galaxy", "qso")
#: Spectral types of stars; galaxies and quasars get "none" (select F/G/K with keep_classes or a label mask).
SPECTRAL_TYPE_NAMES = (*SPECTRAL_TYPES, "none")
MASSIVE_NAMES = ("low_mass", "massive")
LUMINOSITY_CLASS_NAMES = ("V", "III", "none")
#: Galactic population of each star (galaxies and quasars: "none")
POPULATION_NAMES = ("young_disc", *ast.POPULATIONS, "none")
DEFAULT_INSTRUMENTS = ("lamost", "sdss", "gaia_xp")
#: the random streams, one per component; a new stream is appended (never inserted), so the earlier streams'
#: numbers stay the same for a seed
_STREAMS = ("classes", "stars", "galaxies", "quasars", "positions", "photometry", "astrometry", "images", "spectra",
            "quality", "foreground")


def simulate_survey(
    n: int = 1000,
    seed: int = 0,
    class_mix: Sequence[float] = (0.6, 0.25, 0.15),
    snr: float = 30.0,
    instruments: Sequence[str] | str = DEFAULT_INSTRUMENTS,
    image_size: int = 64,
    neighbour_fraction: float = 0.1,
    with_images: bool = True,
    associations: bool = True,
    association_fraction: float = 0.5,
    giant_fraction: float = 0.15,
    stellar_selection: str = "auto",
    batch_size: int = 256,
    progress: Callable[[str, int, int], None] | None = None,
    **unknown: Any,
) -> Dataset:
    """Simulate ``n`` objects (stars, galaxies, quasars in ``class_mix`` proportions) observed by a survey.

    Spectra from each of ``instruments`` (``lamost``, ``sdss``, ``gaia_xp``) with median S/N ``snr`` per pixel;
    u g r i z cutouts of ``image_size`` pixels (unless ``with_images`` is False), ``neighbour_fraction`` of them
    with neighbours; catalogue photometry and Gaia-like astrometry; with ``associations`` a fraction
    ``association_fraction`` of the O/B stars is born in OB associations (``meta["associations"]``).
    ``stellar_selection`` (``sdss``, ``lamost``, ``gaia`` or ``volume``, see :data:`STELLAR_SELECTIONS`; default
    ``auto``: the selection of the first instrument, sdss for imaging alone) sets the stars' magnitude limits
    and footprint: field stars are placed along sightlines of the Juric et al. (2008) Galaxy
    at the distances the survey's limits allow, with reddening, [Fe/H] by population and Galactic kinematics.
    Targets: class, spectral_type, massive, luminosity_class, teff, radius, log_radius (log10 Rsun), luminosity,
    redshift, sfr (Msun/yr), log_sfr (log10 Msun/yr, the scale of the MPA-JHU AVG column), log_mass (log10
    Msun), d4000 (narrow 4000 A break of the noiseless model), halpha_flux (erg/s/cm2, the Halpha line flux
    the spectra carry), distance, logg, feh, ebv (stars' reddening), population
    (NaN where a quantity does not apply, e.g. teff of a galaxy; the SFR targets, log_mass, d4000 and
    halpha_flux are the galaxies' only: NaN for stars and quasars). The same seed gives identical arrays.
    Catalogue columns: u g r i z with errors (the SDSS system: u 0.04 mag fainter and z 0.02 mag brighter
    than AB), phot_g_mean_mag (Gaia G, Vega: 0.114 mag brighter than AB), parallax, pmra, pmdec with errors,
    parallax_over_error, l, b, association_id, n_neighbours (with images) and the quality columns of
    :mod:`.quality`: ruwe, pm, pm_error, snr_r (expected r-band PSF-flux S/N in the cutouts' sky noise and
    seeing) and saturated (bool, SDSS-like saturation at r ~ 14).

    ``progress``, when given, is called as ``progress(stage, done, total)`` (stage ``"spectra"`` or
    ``"images"``, counts of objects) as batches finish, possibly from worker threads; it does not change
    the numbers.
    """
    if unknown:
        raise ConfigError(f"unknown simulate option(s) {sorted(unknown)}; known options: {sorted(_known_options())}")
    insts, mix = _validate(n, seed, class_mix, snr, instruments, image_size, neighbour_fraction,
                           association_fraction, giant_fraction, batch_size)
    if stellar_selection == "auto":
        stellar_selection = INSTRUMENT_SELECTIONS.get(insts[0].name, "sdss") if insts else "sdss"
    if stellar_selection not in STELLAR_SELECTIONS:
        raise ConfigError(f"simulate option 'stellar_selection' must be auto or one of "
                          f"{sorted(STELLAR_SELECTIONS)}, got {stellar_selection!r}")
    streams = dict(zip(_STREAMS, np.random.SeedSequence(int(seed)).spawn(len(_STREAMS)), strict=True))
    rng = {k: np.random.default_rng(v) for k, v in streams.items()}
    labels = rng["classes"].permutation(np.repeat(np.arange(3), class_counts(n, mix)))
    rows = [np.flatnonzero(labels == k) for k in range(3)]
    truth, params, groups = _sample_objects(rng, rows, n, associations, association_fraction, giant_fraction,
                                            stellar_selection)
    true_mags, spectra, truth["d4000"] = _observe_spectra(rows, params, insts, streams["spectra"], snr,
                                                          int(batch_size), n, _Ticker(progress, "spectra", n))
    _foreground_extinction(rng["foreground"], true_mags, truth, np.concatenate([rows[1], rows[2]]))
    # from here on the noise-free magnitudes are in the catalogues' systems (SDSS u, z off AB; Gaia G Vega)
    true_mags = catalogue_magnitudes(true_mags, (*BANDS, "G"))
    columns = _catalogue(rng, truth, true_mags)
    images = {}
    seeing = np.ones(n)
    if with_images:
        pixels, n_nb, seeing = _images(streams["images"], labels, params, rows, true_mags, image_size,
                                       neighbour_fraction, int(batch_size), _Ticker(progress, "images", n))
        images["sdss"] = Images(pixels, BANDS, PIXEL_SCALE, "nanomaggies")
        columns["n_neighbours"] = Column(n_nb, "")
    astro = {k: columns[k].values.read() for k in ("pmra", "pmdec", "pmra_error", "pmdec_error")}
    quality = quality_columns(rng["quality"], true_mags, astro, seeing)
    units = {"ruwe": "", "pm": "mas/yr", "pm_error": "mas/yr", "snr_r": "", "saturated": ""}
    columns.update({k: Column(v, units[k]) for k, v in quality.items()})
    meta = {
        "source": "astromodal.simulate", "seed": int(seed), "n": int(n), "class_mix": [float(m) for m in mix],
        "snr": float(snr), "instruments": [i.name for i in insts], "image_size": int(image_size) if with_images else 0,
        "neighbour_fraction": float(neighbour_fraction), "associations": groups,
        "flux_units": {i.name: i.flux_unit for i in insts}, "stellar_selection": stellar_selection,
    }
    return Dataset(np.arange(n, dtype=np.int64), truth["ra"], truth["dec"], spectra, images, columns,
                   _targets(labels, truth), meta)


def _known_options() -> tuple[str, ...]:
    import inspect

    return tuple(p for p in inspect.signature(simulate_survey).parameters if p not in ("unknown", "progress"))


def _validate(n, seed, class_mix, snr, instruments, image_size, neighbour_fraction, association_fraction,
              giant_fraction, batch_size) -> tuple[tuple[Instrument, ...], np.ndarray]:
    """Check every option, raising ConfigError naming it; returns the instruments and the normalised mix."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ConfigError(f"simulate option 'n' must be a positive whole number of objects, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"simulate option 'seed' must be a non-negative integer, got {seed!r}")
    mix = np.asarray(class_mix, dtype=np.float64).ravel()
    if mix.shape != (3,) or not np.all(np.isfinite(mix)) or np.any(mix < 0) or mix.sum() <= 0:
        raise ConfigError(f"simulate option 'class_mix' must be three non-negative fractions (star, galaxy, qso) "
                          f"with a positive sum, got {class_mix!r}")
    if not np.isfinite(snr) or snr <= 0:
        raise ConfigError(f"simulate option 'snr' must be a positive signal-to-noise ratio, got {snr!r}")
    names = [s.strip() for s in instruments.split(",") if s.strip()] if isinstance(instruments, str) else instruments
    insts = tuple(get_instrument(name) for name in names)
    if len({i.name for i in insts}) != len(insts):
        raise ConfigError(f"simulate option 'instruments' lists an instrument twice: {list(names)}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8 or image_size % 2:
        raise ConfigError(f"simulate option 'image_size' must be an even number of pixels >= 8, got {image_size!r}")
    for name, value in (("neighbour_fraction", neighbour_fraction), ("association_fraction", association_fraction),
                        ("giant_fraction", giant_fraction)):
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"simulate option {name!r} must be a fraction in [0, 1], got {value!r}")
    if int(batch_size) < 1:
        raise ConfigError(f"simulate option 'batch_size' must be positive, got {batch_size!r}")
    return insts, mix / mix.sum()


def class_counts(n: int, mix: np.ndarray) -> np.ndarray:
    """Exact counts per class: floor(n * mix), the remainder to the largest fractional parts."""
    raw = n * np.asarray(mix, dtype=np.float64)
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


# ---------------------------------------------------------------- physical parameters and truth
def _sample_objects(rng, rows, n, associations, association_fraction, giant_fraction, stellar_selection="sdss"):
    """Physical parameters of every class and the per-object truth table (positions, velocities, targets)."""
    star_rows, gal_rows, qso_rows = rows
    nan = np.full(n, np.nan)
    truth = {k: nan.copy() for k in ("teff", "radius", "luminosity", "sfr", "redshift", "distance", "l", "b",
                                     "v_l", "v_b", "logg", "feh", "ebv", "log_mass", "halpha_flux")}
    truth["population"] = np.full(n, len(POPULATION_NAMES) - 1, dtype=np.int64)
    truth["spectral_type"] = np.full(n, len(SPECTRAL_TYPES), dtype=np.int64)
    truth["luminosity_class"] = np.full(n, 2, dtype=np.int64)
    truth["massive"] = np.zeros(n, dtype=np.int64)
    truth["association_id"] = np.full(n, -1, dtype=np.int64)
    if stellar_selection in LUMINOSITY_FUNCTION_SELECTIONS:
        stars = _survey_stars(rng["stars"], len(star_rows), giant_fraction, stellar_selection)
    else:
        stars = sample_stars(rng["stars"], len(star_rows), giant_fraction)
    _place_stars(rng["positions"], stars, associations, association_fraction, stellar_selection)
    groups = stars.pop("groups")
    for key in ("teff", "radius", "luminosity", "spectral_type", "luminosity_class", "massive", "l", "b",
                "v_l", "v_b", "association_id", "logg", "feh", "ebv", "population"):
        truth[key][star_rows] = stars[key]
    truth["distance"][star_rows] = stars["distance"]
    truth["redshift"][star_rows] = stars["rv"] / C_KMS
    gals = sample_galaxies(rng["galaxies"], len(gal_rows))
    qsos = sample_quasars(rng["quasars"], len(qso_rows))
    for r, p in ((gal_rows, gals), (qso_rows, qsos)):
        truth["redshift"][r] = p["redshift"]
        truth["distance"][r] = luminosity_distance_pc(p["redshift"])
        truth["l"][r], truth["b"][r] = ast.extragalactic_positions(rng["positions"], len(r))
        truth["v_l"][r] = truth["v_b"][r] = 0.0
    # galaxies only: a quasar's host SFR (its narrow lines) is not a target (its light is the AGN's), NaN
    truth["sfr"][gal_rows] = gals["sfr"]
    truth["log_mass"][gal_rows] = gals["log_mass"]
    truth["halpha_flux"][gal_rows] = emission_line_fluxes(gals)["H_alpha"]
    is_star = np.zeros(n, dtype=bool)
    is_star[star_rows] = True
    d_star = np.where(is_star, truth["distance"], 1.0)
    pm_l, pm_b = ast.proper_motion_galactic(truth["v_l"], truth["v_b"], d_star)
    truth["ra"], truth["dec"], truth["pmra"], truth["pmdec"] = ast.galactic_to_icrs(truth["l"], truth["b"], pm_l, pm_b)
    truth["is_star"] = is_star
    return truth, (stars, gals, qsos), groups


def _place_stars(rng, stars, associations, association_fraction, selection: str = "sdss") -> None:
    """Positions, populations, [Fe/H], reddening and velocities of the stars (field stars of the survey's
    magnitude-limited sample, see :data:`STELLAR_SELECTIONS`, and OB-association members), in place."""
    stype = stars["spectral_type"]
    m = len(stype)
    young = stars["massive"] == 1
    patch = 10.0 ** rng.normal(0.0, ast.DUST_PATCHINESS_DEX, m)  # dust patchiness of each sightline
    if selection == "volume":
        d_max = np.array([ast.MAX_DISTANCE_PC[t] for t in SPECTRAL_TYPES])[stype]
        d_max = np.where(stars["luminosity_class"] == 1, ast.GIANT_MAX_DISTANCE_PC, d_max)
        height = np.where(young, 60.0, np.where(stype == SPECTRAL_TYPES.index("A"), 150.0, 300.0))
        stars["l"], stars["b"], stars["distance"] = ast.disc_positions(rng, d_max, height)
        population = np.where(young, 0, 1)
    else:
        stars["l"], stars["b"], stars["distance"], population = _magnitude_limited(rng, stars, selection, patch)
    stars["population"] = population.astype(np.int64)
    stars["feh"] = sample_metallicity(rng, stars["population"])
    stars["rv"], stars["v_l"], stars["v_b"] = ast.heliocentric_velocities(rng, stars["l"], stars["b"],
                                                                         stars["distance"], stars["population"])
    stars["association_id"] = np.full(m, -1, dtype=np.int64)
    stars["groups"] = []
    if associations:
        candidates = np.flatnonzero(young)
        group_of, groups = ast.place_associations(rng, candidates, association_fraction)
        if groups:
            members = candidates[group_of >= 0]
            phase = ast.member_phase_space(rng, group_of, groups)
            stars["l"][members], stars["b"][members], stars["distance"][members] = (phase["l"], phase["b"],
                                                                                    phase["distance"])
            for key in ("v_l", "v_b", "rv"):
                stars[key][members] = phase[key]
            stars["association_id"][members] = group_of[group_of >= 0]
        stars["groups"] = groups
    stars["ebv"] = ast.reddening_ebv(stars["l"], stars["b"], stars["distance"], patch)


#: stellar target selections: (components, lowest |b| in deg of the footprint); each component is
#: (share of the stars, band, bright limit, faint limit), a star's component drawn by the shares.
#: sdss: the stellar spectra of SDSS-I to -IV (DR17). SEGUE observed each pointing with a bright plate
#: (r < 17.8, from its saturation limit r ~ 14) and a faint plate (17.8 < r < 20.1) of equal fibre counts
#: (Yanny et al. 2009, AJ 137, 4377: ~0.24M stars; SEGUE-2, Rockosi et al. 2022: ~0.12M more): two
#: components of 0.18M each; the SDSS-I/II legacy stars (~0.22M of DR7's 0.46M stellar spectra that are not
#: SEGUE's; Abazajian et al. 2009): quasar-candidate contaminants and standards, taken to the legacy quasar
#: limit i < 19.1 (Richards et al. 2002; r as the proxy of i); BOSS/eBOSS stars (~0.3M, mostly quasar-candidate
#: contaminants and spectrophotometric standards): to the BOSS quasar limit r < 21.85 (Ross et al. 2012,
#: ApJS 199, 3) from r = 17 (the shares are rounded from those sample sizes, 0.2 : 0.2 : 0.25 : 0.35), over
#: the high-latitude SDSS footprint; the two SEGUE components are colour targeted (:data:`SEGUE_CATEGORIES`,
#: :func:`_colour_targeted`). lamost: the LAMOST survey's 9 < r < 17.8 (Zhao et al. 2012; Luo et al.
#: 2015), |b| > 10 deg; volume: no magnitude limit, field stars in a volume-limited disc around the Sun (the
#: simulator before issue 14); gaia: the stars with Gaia DR3 XP spectra, G < 17.65 over the whole sky (De
#: Angeli et al. 2023), with r as the proxy of G (G - r is within a few tenths of a magnitude for most stars).
#: ``simulate_survey``'s default "auto" takes the selection of its first instrument (lamost, sdss, gaia_xp ->
#: gaia) and sdss for imaging alone.
STELLAR_SELECTIONS = {
    "sdss": (((0.2, "r", 14.0, 17.8), (0.2, "r", 17.8, 20.1), (0.25, "r", 14.0, 19.1), (0.35, "r", 17.0, 21.85)),
             20.0),
    "lamost": (((1.0, "r", 9.0, 17.8),), 10.0),
    "gaia": (((1.0, "r", 3.0, 17.65),), 0.0),
    "volume": None,
}
#: the stellar selection of each instrument (the default "auto" of simulate_survey)
INSTRUMENT_SELECTIONS = {"lamost": "lamost", "sdss": "sdss", "gaia_xp": "gaia"}
_D_GRID = np.geomspace(10.0, 2.0e5, 500)


#: candidate sightlines per star: its direction is drawn among them with probability proportional to the
#: number of such stars the sightline holds inside the survey's limits (so the sky density follows the Galaxy)
SIGHTLINE_CANDIDATES = 16


def _component_limits(rng, stars, selection):
    """Per star: absolute magnitude in its component's band, that band's R = A / E(B - V), bright and faint
    limits; the component of each star drawn by the shares of :data:`STELLAR_SELECTIONS` (or the one the
    colour targeting gave it, ``stars["component"]``)."""
    components, _ = STELLAR_SELECTIONS[selection]
    m = len(stars["teff"])
    if "component" in stars:  # assigned with the colour targeting (:func:`_colour_targeted`)
        comp_of = np.asarray(stars["component"], dtype=np.int64)
    else:
        share = np.array([c[0] for c in components])
        comp_of = (rng.choice(len(components), size=m, p=share / share.sum()) if len(components) > 1
                   else np.zeros(m, int))
    abs_mag, r_band, m_lo, m_hi = np.empty(m), np.empty(m), np.empty(m), np.empty(m)
    for c, (_, band, lo, hi) in enumerate(components):
        rows = comp_of == c
        abs_mag[rows] = selection_magnitudes(stars["teff"][rows], stars["radius"][rows], band, stars["logg"][rows])
        r_band[rows], m_lo[rows], m_hi[rows] = extinction_coefficient(band), lo, hi
    return abs_mag, r_band, m_lo, m_hi


def _sightline_weights(l_deg, b_deg, young, abs_mag, r_band, m_lo, m_hi, patch, d_grid=_D_GRID, window=None):
    """For (c, k) sightlines of c stars: n(d) d^3 on the distance grid (the number of such stars per unit
    ln d, relative to the local density) where the star's apparent magnitude lies inside its limits, zero
    elsewhere (c, k, D); the apparent magnitudes (c, k, D) and the Galactocentric R, Z (c, k, D) of the grid
    points (the population densities of a chosen sightline follow from them, :func:`.astrometry.population_densities`).

    ``window`` = (j0, W) (from :func:`_distance_windows`): the same on grid distances ``j0 + 0 .. W - 1`` of
    each star only (c, k, W; indices past the grid's end have weight 0), the others being known to be zero."""
    ll, bb = l_deg[:, :, None], b_deg[:, :, None]
    mu = 5.0 * np.log10(d_grid / 10.0)
    if window is None:
        d, mu_d, valid = d_grid[None, None, :], mu, None
    else:
        j0, width = window
        idx = j0[:, None] + np.arange(width)[None, :]
        valid = idx < len(d_grid)
        idx = np.minimum(idx, len(d_grid) - 1)
        d, mu_d = d_grid[idx][:, None, :], mu[idx][:, None, :]
    R, Z = ast.galactocentric(ll, bb, d)
    total = ast.total_density(R, Z)
    if young.any():  # the young (O/B) disc's density for massive stars (few: computed for them alone)
        total[young] = ast.young_disc_density(R[young], Z[young])
    mag = abs_mag[:, None, None] + mu_d + r_band[:, None, None] * ast.reddening_ebv(ll, bb, d, patch[:, None, None])
    inside = (mag > m_lo[:, None, None]) & (mag < m_hi[:, None, None])
    if valid is not None:
        inside &= valid[:, None, :]
    total *= d**3
    total[~inside] = 0.0
    return total, mag, R, Z


def _distance_windows(b_deg, abs_mag, r_band, m_lo, m_hi, patch, d_grid=_D_GRID):
    """First index j0 (c,) and number (c,) of the grid distances at which each of c stars can lie inside its
    magnitude limits on any of its sightlines (latitudes ``b_deg``, (c, k)); at the other distances its
    weights in :func:`_sightline_weights` are zero on every sightline, so they need not be computed.

    Bounds of the apparent magnitude M + 5 log10(d / 10 pc) + R_band E(d): from below without dust; from above
    with the reddening of the lowest-latitude sightline, E(d) <= E_pole / h min(d, h / |sin b|) patch (the
    dust layer's path, :func:`.astrometry.reddening_ebv`, is at most both), with a margin. Both bounds rise with
    d, so the distances that pass are one run of the grid."""
    mu = 5.0 * np.log10(d_grid / 10.0)
    h = ast.DUST_HEIGHT_PC
    s_min = np.min(np.abs(np.sin(np.radians(b_deg))), axis=1)
    path = np.minimum(d_grid[None, :], h / np.maximum(s_min, 1e-12)[:, None])
    bright = abs_mag[:, None] + mu[None, :]
    faint = bright + r_band[:, None] * (ast.EBV_POLE / h * path * patch[:, None]) * (1.0 + 1e-6) + 1e-6
    possible = (faint > m_lo[:, None]) & (bright - 1e-6 < m_hi[:, None])
    return np.argmax(possible, axis=1), possible.sum(axis=1)


#: Fractions of main-sequence stars per spectral type in the solar neighbourhood (LeDrew 2001, JRASC 95, 32:
#: O 0.00003 %, B 0.13 %, A 0.6 %, F 3 %, G 7.6 %, K 12.1 %, M 76.45 %), the local luminosity function that
#: the sdss stellar selection's type mix follows from
LOCAL_TYPE_FRACTIONS = (3e-7, 1.3e-3, 6e-3, 3e-2, 7.6e-2, 1.21e-1, 7.645e-1)
#: stellar selections whose spectral-type mix follows from the local luminosity function and the survey
#: volume (:func:`_survey_stars`); the others keep the training-friendly mix of
#: :data:`~astromodal.data.simulate.stars.TYPE_FRACTIONS`
LUMINOSITY_FUNCTION_SELECTIONS = ("sdss",)
#: the type mix's quadrature: dwarfs at this many Teff per type (even in log Teff across the type's range,
#: as :func:`~astromodal.data.simulate.stars.sample_stars` draws them) seen along this many fixed-seed
#: sightlines, on every 4th distance of the placement grid (a property of the model: the same for every
#: simulation seed)
_VOLUME_TEFFS, _VOLUME_SIGHTLINES, _VOLUME_SEED = 48, 64, 2001


@lru_cache(maxsize=8)
def survey_type_shares(selection: str) -> np.ndarray:
    """Share of each spectral type (O..M) among the stars of magnitude-limited ``selection``.

    share_t proportional to phi_t V_t: phi_t the local main-sequence fraction (:data:`LOCAL_TYPE_FRACTIONS`,
    LeDrew 2001) and V_t the mean over the type's Teff range of the number of dwarfs per unit local density
    that the survey's footprint and limits hold (:func:`_sightline_weights` integrated over distance; the
    Juric et al. 2008 Galaxy, the young disc for O/B; each selection component weighted by its share).
    Simplifications: one local luminosity function for every population (the old thick disc and halo lack
    main-sequence O-A stars; their A stars stand in for blue horizontal-branch stars); the giants' share of
    G/K/M stars stays ``giant_fraction``.
    """
    rng = np.random.default_rng(_VOLUME_SEED)
    components, b_min = STELLAR_SELECTIONS[selection]
    l_dir, b_dir = (a[:, None] for a in ast.survey_sightlines(rng, _VOLUME_SIGHTLINES, b_min))
    d = _D_GRID[::4]
    R, Z = ast.galactocentric(l_dir, b_dir, d[None, :])
    per_ln_d = {False: ast.population_densities(R, Z).sum(axis=-1) * d**3,  # n(d) d^3: stars per unit ln d
                True: ast.young_disc_density(R, Z) * d**3}
    ebv = ast.reddening_ebv(l_dir, b_dir, d[None, :])
    volume = np.zeros(len(SPECTRAL_TYPES))
    for t, name in enumerate(SPECTRAL_TYPES):
        lo_t, hi_t = TEFF_RANGES[name]
        teff = np.geomspace(lo_t, hi_t, _VOLUME_TEFFS + 1)[:-1] * (hi_t / lo_t) ** (0.5 / _VOLUME_TEFFS)
        radius = dwarf_radius(teff)
        logg = LOGG_SUN + np.log10(dwarf_mass(teff)) - 2.0 * np.log10(radius)
        dens = per_ln_d[t <= SPECTRAL_TYPES.index("B")]
        for share, band, lo, hi in components:
            abs_mag = selection_magnitudes(teff, radius, band, logg)
            mag = abs_mag[:, None, None] + 5.0 * np.log10(d / 10.0) + extinction_coefficient(band) * ebv[None]
            volume[t] += share * np.where((mag > lo) & (mag < hi), dens[None], 0.0).sum(axis=2).mean()
    out = np.asarray(LOCAL_TYPE_FRACTIONS) * volume
    return out / out.sum()


def _survey_stars(rng, m: int, giant_fraction: float, selection: str) -> dict[str, np.ndarray]:
    """``m`` stars whose spectral types follow :func:`survey_type_shares` (each type's stars drawn by
    :func:`~astromodal.data.simulate.stars.sample_stars`, giants among G/K/M in ``giant_fraction``); for a
    colour-targeted selection (:data:`COLOUR_TARGETED`) the targeted components' stars then follow the
    survey's colour categories (:func:`_colour_targeted`)."""
    out = _type_mix_stars(rng, m, giant_fraction, selection)
    if selection in COLOUR_TARGETED and m:
        out = _colour_targeted(rng, out, giant_fraction, selection)
    return out


def _type_mix_stars(rng, m: int, giant_fraction: float, selection: str) -> dict[str, np.ndarray]:
    """``m`` stars in random order with the spectral-type mix of :func:`survey_type_shares`."""
    share = survey_type_shares(selection)
    want = rng.multinomial(m, share)
    parts: list[dict[str, np.ndarray]] = []
    need = want.copy()
    frac = np.asarray(TYPE_FRACTIONS) / np.sum(TYPE_FRACTIONS)
    for _ in range(100):
        if not need.any():
            break
        pool = sample_stars(rng, int(np.max(need / frac)) + 16, giant_fraction)
        for t in np.flatnonzero(need):
            rows = np.flatnonzero(pool["spectral_type"] == t)[: need[t]]
            parts.append({key: v[rows] for key, v in pool.items()})
            need[t] -= len(rows)
    out = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0) for key in parts[0]} \
        if parts else sample_stars(rng, 0, giant_fraction)
    order = rng.permutation(m)
    return {key: v[order] for key, v in out.items()}


#: SEGUE's stellar target categories (Yanny et al. 2009, AJ 137, 4377, sect. 3.2 and Table 2; the SEGUE-1
#: target-selection pages of SDSS DR8-DR14, version 3.3-4.6): (name, fibres per plate pair, intrinsic g - r
#: range). SEGUE chose its stars by dereddened colour, a fixed number per category on each pair of bright and
#: faint plates: A/BHB -0.5 < g - r < 0.2 (goal 150), F/G 0.2 < g - r < 0.48 (50), F turnoff / sub-dwarfs
#: (200, 0.2 < g - r < 0.48: the turnoff's colour range; their P1(s) locus cut is not modelled), G dwarfs
#: 0.48 < g - r < 0.55 (375), K dwarfs 0.55 < g - r < 0.75 (90), K giants 0.5 < g - r < 0.8 (70; the l-colour
#: and proper-motion cuts that favour giants are not modelled), low-metallicity candidates -0.5 < g - r < 0.75
#: (150; their u - g excess cut is not modelled), M sub-dwarfs and dwarfs g - r > 1.4 (50). White dwarfs,
#: brown dwarfs and AGB stars (~70 fibres) have no counterpart among the simulated stars and are left out.
#: Checked against the SEGUE target-selection pages: the A/BHB and F/G categories (cuts and goals). NOT checked
#: against the paper here (recalled from Yanny et al. 2009 Table 2; to verify): the F turnoff, G dwarf, K dwarf,
#: K giant, low-metallicity and M categories' fibre goals and g - r ranges.
SEGUE_CATEGORIES = (("bhb", 150, -0.5, 0.2), ("fg", 50, 0.2, 0.48), ("turnoff", 200, 0.2, 0.48),
                    ("g_dwarf", 375, 0.48, 0.55), ("k_dwarf", 90, 0.55, 0.75), ("k_giant", 70, 0.5, 0.8),
                    ("low_metal", 150, -0.5, 0.75), ("m_dwarf", 50, 1.4, 3.0))
#: selections whose components are colour targeted: the component indices (of :data:`STELLAR_SELECTIONS`) that
#: follow :data:`SEGUE_CATEGORIES` (sdss: the SEGUE bright and faint plates; legacy and BOSS stars keep the
#: magnitude-limited mix)
COLOUR_TARGETED = {"sdss": (0, 1)}
#: candidate pool per colour-targeted star (drawn once per call, with the magnitude-limited type mix)
_TARGET_POOL = 4


def _colour_targeted(rng, stars: dict[str, np.ndarray], giant_fraction: float, selection: str
                     ) -> dict[str, np.ndarray]:
    """Assign each star a component of ``selection`` (by the shares of :data:`STELLAR_SELECTIONS`) and give the
    colour-targeted components' stars a SEGUE category (by its fibre share); each such star is replaced by a
    star of a candidate pool (the same magnitude-limited type mix, :func:`_type_mix_stars`) whose intrinsic g - r
    (continuum, :func:`~astromodal.data.simulate.stars.selection_magnitudes`) lies in the category's range.
    A category with no candidate in the pool keeps its stars. Sets ``stars["component"]``."""
    components, _ = STELLAR_SELECTIONS[selection]
    m = len(stars["teff"])
    share = np.array([c[0] for c in components])
    comp = rng.choice(len(components), size=m, p=share / share.sum())
    targeted = np.flatnonzero(np.isin(comp, COLOUR_TARGETED[selection]))
    out = {key: v.copy() for key, v in stars.items()}
    out["component"] = comp
    if targeted.size == 0:
        return out
    pool = _type_mix_stars(rng, _TARGET_POOL * targeted.size + 64, giant_fraction, selection)
    gr = (selection_magnitudes(pool["teff"], pool["radius"], "g", pool["logg"])
          - selection_magnitudes(pool["teff"], pool["radius"], "r", pool["logg"]))
    fib = np.array([c[1] for c in SEGUE_CATEGORIES], dtype=np.float64)
    cat = rng.choice(len(SEGUE_CATEGORIES), size=targeted.size, p=fib / fib.sum())
    for c, (_, _, lo, hi) in enumerate(SEGUE_CATEGORIES):
        rows = targeted[cat == c]
        cand = np.flatnonzero((gr > lo) & (gr < hi))
        if rows.size == 0 or cand.size == 0:
            continue
        pick = rng.choice(cand, size=rows.size, replace=cand.size < rows.size)
        for key in stars:
            out[key][rows] = pool[key][pick]
    return out


#: stars whose candidate sightlines are weighed at once (arrays of batch x SIGHTLINE_CANDIDATES x 500 grid
#: distances: 64 keeps each within a few MB, in cache; the draws do not depend on it)
_SIGHTLINE_BATCH = 64


def _magnitude_limited(rng, stars, selection, patch):
    """l, b, distance and population code of field stars of a magnitude-limited sample.

    Each star is first assigned one of the selection's components (:data:`STELLAR_SELECTIONS`, by their
    shares), whose band and limits apply to it.

    A star's position is drawn from n(l, b, d) d^2 (the Juric et al. 2008 thin + thick disc + halo densities;
    the young O/B disc for massive stars) restricted to the distances where its apparent magnitude
    M + 5 log10(d / 10 pc) + R_band E(B-V)(d) lies inside the survey's limits (continuum magnitudes, see
    :func:`~astromodal.data.simulate.stars.selection_magnitudes`): :data:`SIGHTLINE_CANDIDATES` directions
    isotropic over the footprint, one chosen with probability proportional to its integral of that density
    (so O/B stars crowd the Galactic plane and halo giants reach high latitudes, as in the sky), then the
    distance along it; its population is drawn from the components' densities at that point. A star whose
    limits no density reaches is placed at the grid distance nearest the limits on its first candidate.
    """
    _, b_min = STELLAR_SELECTIONS[selection]
    m, k = len(stars["teff"]), SIGHTLINE_CANDIDATES
    abs_mag, r_band, m_lo, m_hi = _component_limits(rng, stars, selection)
    l_all, b_all = (a.reshape(m, k) for a in ast.survey_sightlines(rng, m * k, b_min))
    young = stars["massive"] == 1
    l_deg, b_deg, distance = np.empty(m), np.empty(m), np.empty(m)
    population = np.empty(m, dtype=np.int64)
    ln_d = np.log(_D_GRID)
    step = ln_d[1] - ln_d[0]
    u = rng.random((m, 4))

    def place(s: int) -> None:  # one batch of stars: its own rows of the outputs, its own pre-drawn numbers
        sl = slice(s, min(m, s + _SIGHTLINE_BATCH))
        args = (abs_mag[sl], r_band[sl], m_lo[sl], m_hi[sl], patch[sl])
        j0, width = _distance_windows(b_all[sl], *args)
        w, _, _, _ = _sightline_weights(l_all[sl], b_all[sl], young[sl], *args, window=(j0, max(int(width.max()), 1)))
        counts = w.sum(axis=2)  # (chunk, k): the stars each candidate sightline holds
        ok = counts.sum(axis=1) > 0
        line_cdf = np.cumsum(counts, axis=1)
        pick = np.where(ok, (line_cdf < u[sl, 3:4] * line_cdf[:, -1:]).sum(axis=1), 0)
        pick = np.minimum(pick, k - 1)
        rows = np.arange(len(pick))
        cdf = np.cumsum(w[rows, pick], axis=1)  # zero below j0: the same cumulative sums as on the whole grid
        idx = np.where(ok, j0 + (cdf < u[sl, 0:1] * cdf[:, -1:]).sum(axis=1), 0)
        idx = np.minimum(idx, len(_D_GRID) - 1)
        bad = np.flatnonzero(~ok)
        if bad.size:  # no density inside the limits: the grid distance nearest them on the first candidate
            _, mag, _, _ = _sightline_weights(l_all[sl][bad, :1], b_all[sl][bad, :1], young[sl][bad],
                                              *(a[bad] for a in args))
            mag = mag[:, 0]
            miss = np.abs(mag - np.clip(mag, m_lo[sl][bad, None], m_hi[sl][bad, None]))
            idx[bad] = np.argmin(miss, axis=1)
        l_deg[sl], b_deg[sl] = l_all[sl][rows, pick], b_all[sl][rows, pick]
        distance[sl] = np.exp(ln_d[idx] + (u[sl, 1] - 0.5) * step)
        dens = ast.population_densities(*ast.galactocentric(l_deg[sl], b_deg[sl], _D_GRID[idx]))
        frac = dens / dens.sum(axis=1, keepdims=True)
        comp = (np.cumsum(frac, axis=1) < u[sl, 2:3]).sum(axis=1)
        population[sl] = np.where(young[sl], 0, 1 + np.minimum(comp, 2))

    _parallel(place, list(range(0, m, _SIGHTLINE_BATCH)))  # threads: the same numbers in any order
    return l_deg, b_deg, distance, population


# ---------------------------------------------------------------- spectra and photometry
class _Ticker:
    """Counts finished objects of one stage (thread-safe) and reports them to a progress callback."""

    def __init__(self, callback: Callable[[str, int, int], None] | None, stage: str, total: int):
        self.callback, self.stage, self.total, self.done = callback, stage, int(total), 0
        self._lock = threading.Lock()
        if callback is not None:
            callback(stage, 0, self.total)

    def __call__(self, k: int) -> None:
        if self.callback is None:
            return
        with self._lock:
            self.done += int(k)
            self.callback(self.stage, self.done, self.total)


def _parallel(fn, tasks) -> None:
    """Run ``fn(task)`` for every task on SIM_THREADS threads (numpy and the FFTs release the GIL).

    Each task writes disjoint rows and draws from its own seeded stream, so the result does not depend
    on the order in which threads run.
    """
    if SIM_THREADS <= 1 or len(tasks) <= 1:
        for task in tasks:
            fn(task)
        return
    with ThreadPoolExecutor(max_workers=SIM_THREADS) as pool:
        for _ in pool.map(fn, tasks):
            pass


def _model_spectra(k: int, p: dict[str, np.ndarray], sl: slice) -> np.ndarray:
    """Model spectra (B, L) in erg/s/cm2/A of class ``k`` (0 star, 1 galaxy, 2 qso) for parameter rows ``sl``."""
    if k == 0:
        return star_spectra(p["teff"][sl], p["radius"][sl], p["distance"][sl], p["rv"][sl], logg=p["logg"][sl],
                            feh=p["feh"][sl], ebv=p["ebv"][sl])
    sub = {key: v[sl] for key, v in p.items() if key != "groups"}
    return galaxy_spectra(sub) if k == 1 else quasar_spectra(sub)


def _observe_spectra(rows, params, insts, spectra_seed, snr, batch_size, n, tick=None):
    """True ugriz+G magnitudes (N, 6), each instrument's noisy Spectra (batches per class, threaded) and the
    galaxies' D4000 (N,) measured on their noiseless model spectra (:func:`.galaxies.d4000_narrow`; NaN else)."""
    mags = np.zeros((n, len(BANDS) + 1))
    d4000 = np.full(n, np.nan)
    flux = {i.name: np.empty((n, i.n_pixels), dtype=np.float32) for i in insts}
    # float64 inverse variances for tiny units (W/m2/nm) that overflow float32
    inv_var = {i.name: np.empty((n, i.n_pixels), dtype=np.float32 if i.flux_scale >= 1 else np.float64)
               for i in insts}
    masks = {i.name: np.zeros((n, i.n_pixels), dtype=bool) for i in insts}
    tasks = [(k, slice(s, s + batch_size)) for k in range(3) for s in range(0, len(rows[k]), batch_size)]
    seeds = spectra_seed.spawn(len(tasks))

    def run(t: int) -> None:
        k, sl = tasks[t]
        r = rows[k][sl]
        model = _model_spectra(k, params[k], sl)
        mags[r] = ab_magnitudes(model, (*BANDS, "G"))
        if k == 1:
            d4000[r] = d4000_narrow(model, params[1]["redshift"][sl])
        rngs = [np.random.default_rng(s) for s in seeds[t].spawn(len(insts))]
        smooth = observe_noise_free(model, insts)
        for inst, g in zip(insts, rngs, strict=True):  # the instrument's model (lamost) or white noise
            flux[inst.name][r], inv_var[inst.name][r], masks[inst.name][r] = observe(g, smooth[inst.name], snr, inst)
        if tick is not None:
            tick(len(r))

    _parallel(run, list(range(len(tasks))))
    # a mask only for instruments whose model masks pixels (white-noise instruments have none: no array stored)
    spectra = {i.name: Spectra(flux[i.name], i.wavelength, inv_var[i.name],
                               masks[i.name] if i.name in INSTRUMENT_MODELS else None, i.name, i.flux_unit)
               for i in insts}
    return mags, spectra, d4000


def _foreground_extinction(rng, true_mags, truth, rows) -> None:
    """Milky Way foreground extinction of the extragalactic objects ``rows``, added to their magnitudes in place.

    E(B - V) = E_pole / |sin b| times the sightline's log-normal patchiness (the dust layer of
    :func:`~astromodal.data.simulate.astrometry.reddening_ebv` seen to infinity: 0.02 mag at the poles, after
    the Schlegel et al. 1998 maps); A_band = R_band E(B - V) with the band-mean Fitzpatrick (1999) coefficients
    of :func:`~astromodal.data.simulate.photometry.extinction_coefficient` (for E(B - V) < 0.1 the band mean
    differs from the exact integral over a galaxy or quasar spectrum by < 0.003 mag). SDSS catalogue
    magnitudes are not corrected for it (Stoughton et al. 2002), while its target selections cut on
    extinction-corrected magnitudes, which is why the selection of :mod:`.galaxies` and :mod:`.quasars` uses
    the intrinsic ones. The spectra are left unreddened (their line fluxes are the SFR targets); the images,
    made from these magnitudes, are reddened with the catalogue.
    """
    if len(rows) == 0:
        return
    patch = 10.0 ** rng.normal(0.0, ast.DUST_PATCHINESS_DEX, len(rows))
    ebv = ast.reddening_ebv(truth["l"][rows], truth["b"][rows], np.full(len(rows), 1.0e9), patch)
    coeff = np.array([extinction_coefficient(b) for b in (*BANDS, "G")])
    true_mags[rows] += ebv[:, None] * coeff[None, :]


def _catalogue(rng, truth, true_mags) -> dict[str, Column]:
    """Catalogue columns: noisy ugriz magnitudes with errors, Gaia-like G and astrometry, l, b, association id."""
    mags, errs = observe_magnitudes(rng["photometry"], true_mags[:, : len(BANDS)])
    cols = {b: Column(mags[:, k], "mag") for k, b in enumerate(BANDS)}
    cols.update({f"{b}_err": Column(errs[:, k], "mag") for k, b in enumerate(BANDS)})
    g_mag = true_mags[:, -1]
    cols["phot_g_mean_mag"] = Column(g_mag + rng["photometry"].normal(0.0, 0.003, len(g_mag)), "mag")
    distance = np.where(truth["is_star"], truth["distance"], np.inf)
    astro = ast.observe_astrometry(rng["astrometry"], distance, truth["pmra"], truth["pmdec"], g_mag)
    units = {"parallax": "mas", "parallax_error": "mas", "pmra": "mas/yr", "pmra_error": "mas/yr",
             "pmdec": "mas/yr", "pmdec_error": "mas/yr", "parallax_over_error": ""}
    cols.update({k: Column(v, units[k]) for k, v in astro.items()})
    cols["l"] = Column(truth["l"], "deg")
    cols["b"] = Column(truth["b"], "deg")
    cols["association_id"] = Column(truth["association_id"], "")
    return cols


def _images(seed, labels, params, rows, true_mags, size, neighbour_fraction, batch_size, tick=None):
    """u g r i z cutouts (N, 5, S, S) float32 in nanomaggies (threaded batches in row order), neighbour counts
    and each cutout's seeing factor (N,)."""
    n = len(labels)
    sersic = {"sersic_n": np.ones(n), "r_e_arcsec": np.ones(n), "axis_ratio": np.ones(n), "position_angle": np.zeros(n)}
    for key in sersic:
        sersic[key][rows[1]] = params[1][key]
    flux = nanomaggies(true_mags[:, : len(BANDS)])
    pixels = np.empty((n, len(BANDS), size, size), dtype=np.float32)
    n_nb = np.zeros(n, dtype=np.int64)
    seeing = np.ones(n)
    starts = list(range(0, n, batch_size))
    seeds = seed.spawn(len(starts))

    def run(b: int) -> None:
        sl = slice(starts[b], starts[b] + batch_size)
        sub = {k: v[sl] for k, v in sersic.items()}
        _, n_nb[sl] = render_cutouts(np.random.default_rng(seeds[b]), flux[sl], labels[sl] == 1, sub, size,
                                     neighbour_fraction, out=pixels[sl], seeing_out=seeing[sl])
        if tick is not None:
            tick(len(n_nb[sl]))

    _parallel(run, list(range(len(starts))))
    return pixels, n_nb, seeing


def _targets(labels, truth) -> dict[str, Target]:
    """The learning targets: class labels and physical regression quantities (NaN where not applicable)."""
    return {
        "class": Target(labels.astype(np.int64), "class", CLASS_NAMES),
        "spectral_type": Target(truth["spectral_type"], "class", SPECTRAL_TYPE_NAMES),
        "massive": Target(truth["massive"], "class", MASSIVE_NAMES),
        "luminosity_class": Target(truth["luminosity_class"], "class", LUMINOSITY_CLASS_NAMES),
        "teff": Target(truth["teff"], "regression", unit="K"),
        "radius": Target(truth["radius"], "regression", unit="Rsun"),
        # log10 of the radius: the scale MESCR quotes its errors in (dex), where a Gaussian error model fits a
        # quantity spanning dwarfs to giants (0.1 to 100 Rsun) far better than in Rsun
        "log_radius": Target(np.log10(truth["radius"]), "regression", unit="dex"),
        "luminosity": Target(truth["luminosity"], "regression", unit="Lsun"),
        "redshift": Target(truth["redshift"], "regression", unit=""),
        "sfr": Target(truth["sfr"], "regression", unit="Msun/yr"),
        # study D's target on the MPA-JHU scale (log10 of the SFR in Msun/yr, like the AVG column)
        "log_sfr": Target(np.log10(truth["sfr"]), "regression", unit="log10(Msun/yr)"),
        "log_mass": Target(truth["log_mass"], "regression", unit="log10(Msun)"),
        "d4000": Target(truth["d4000"], "regression", unit=""),
        "halpha_flux": Target(truth["halpha_flux"], "regression", unit="erg/s/cm2"),
        "distance": Target(truth["distance"], "regression", unit="pc"),
        "logg": Target(truth["logg"], "regression", unit="dex"),
        "feh": Target(truth["feh"], "regression", unit="dex"),
        "ebv": Target(truth["ebv"], "regression", unit="mag"),
        "population": Target(truth["population"], "class", POPULATION_NAMES),
    }
