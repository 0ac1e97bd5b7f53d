"""Building a HiSS-Cube ML cube from survey files: SDSS spectra (several epochs per object) + SDSS frames.

:func:`build_cube` (the verb ``astromodal build cube``) does, in this order:

1. **Objects**: the spectra (``spec-PLATE-MJD-FIBER.fits``, read by :mod:`astromodal.data.readers.sdss`) whose
   plug positions lie within ``match_radius`` (3 arcsec) of each other, directly or through a chain, are one
   object's epochs (astropy ``search_around_sky``, then connected groups). The object's position is the mean of
   its epochs' unit vectors; its id, ``plate``, ``mjd``, ``fiberid``, class and redshift are those of its first
   epoch (earliest MJD), the MPA-JHU join key.
2. **Rebinning** (:func:`rebin_spectrum`): each epoch onto ``linspace(3839.7244, 8914.597, 4620)`` Angstrom with
   the flux-conserving ``spectres`` package (the integral of flux over any run of whole new bins equals the
   integral of the input's piecewise-constant flux over the same range); bad input pixels (ivar 0, and_mask)
   are NaN before rebinning, so every new bin they touch is NaN; new bins not wholly inside the spectrum's range
   are NaN. A spectrum with no overlap with the grid is one DataFormatError line naming the file.
3. **Epochs** (:func:`combine_epochs`): inverse-variance weighting per sample, w = 1 / sigma^2,
   flux = sum(w f) / sum(w), sigma = 1 / sqrt(sum w), over the epochs where the sample is finite (NaN where none).
4. **Cutouts**: the 5-band (u g r i z) 64-pixel cutouts at the object's position from the first field whose
   every band holds it wholly (:func:`astromodal.transforms.images.cut_field`, each band through its own WCS, whole
   pixels), and the same windows of each frame's noise map (:func:`frame_sigma`); an object with no whole cutout
   is skipped and counted (HiSS-Cube also keeps only targets with all five bands).
5. **Zooms** 1..3 and the file: :mod:`astromodal.data.readers.hisscube` (pairwise / 2 x 2 averaging with the
   errors propagated as independent: sigma_pair = sqrt(s1^2 + s2^2) / 2, sigma_block = sqrt(sum of 4 var) / 4; the
   public HiSS-Cube code halves sigma per zoom and reads the image errors from the image data: not copied).

Frame noise (:func:`frame_sigma`), the SDSS frame data model's recipe: the frame's nanomaggies ``img``, the
calibration vector ``calib`` (HDU 1, nanomaggies per count, one per column), the sky ``ALLSKY`` (HDU 2, counts,
bilinearly interpolated at ``XINTERP``, ``YINTERP``; clamped at the edges) give counts
``dn = img / calib + sky`` and ``sigma = calib * sqrt(max(dn, 0) / gain + darkVariance)`` [nanomaggies], with the
gain and dark variance per camcol, band and run of the data model's tables (:data:`GAIN`, :data:`DARK_VARIANCE`).

This module is the survey-file side (spectres, astropy matching, frames); the cube's layout, reading and writing
and the zoom arithmetic are in :mod:`astromodal.data.readers.hisscube`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.readers.hisscube import WAVE_MAX, WAVE_MIN, CubeLevels, cube_grid
from astromodal.errors import BadValueError, DataFormatError

#: SDSS camera gain [electrons / count] per camcol (1..6) and band, from the frame data model;
#: camcol 2 u is 1.595 before run 1100 and 1.825 from it.
GAIN = {1: (1.62, 3.32, 4.71, 5.165, 4.745), 2: (1.825, 3.855, 4.6, 6.565, 5.155),
        3: (1.59, 3.845, 4.72, 4.86, 4.885), 4: (1.6, 3.995, 4.76, 4.885, 4.775),
        5: (1.47, 4.05, 4.725, 4.64, 3.48), 6: (2.17, 4.035, 4.895, 4.76, 4.69)}
#: SDSS dark variance [counts^2] per camcol and band (runs from 1500; earlier runs: :data:`_DARK_EARLY`).
DARK_VARIANCE = {1: (9.61, 15.6025, 1.8225, 7.84, 0.81), 2: (12.6025, 1.44, 1.00, 6.25, 1.0),
                 3: (8.7025, 1.3225, 1.3225, 4.6225, 1.0), 4: (12.6025, 1.96, 1.3225, 7.5625, 12.6025),
                 5: (9.3025, 1.1025, 0.81, 7.84, 2.1025), 6: (7.0225, 1.8225, 0.9025, 5.0625, 1.21)}
_DARK_EARLY = {(2, "i"): 5.76, (4, "i"): 6.25, (4, "z"): 9.61, (5, "z"): 1.8225}
_BANDS = ("u", "g", "r", "i", "z")


def sdss_gain(band: str, camcol: int, run: int) -> float:
    """Gain [e-/count] of SDSS camcol ``camcol``, band ``band``, imaging run ``run``."""
    if int(camcol) not in GAIN or band not in _BANDS:
        raise BadValueError(f"no SDSS gain for camcol {camcol}, band {band!r} (camcols 1..6, bands ugriz)")
    if int(camcol) == 2 and band == "u" and int(run) < 1100:
        return 1.595
    return GAIN[int(camcol)][_BANDS.index(band)]


def sdss_dark_variance(band: str, camcol: int, run: int) -> float:
    """Dark variance [counts^2] of SDSS camcol ``camcol``, band ``band``, imaging run ``run``."""
    if int(camcol) not in DARK_VARIANCE or band not in _BANDS:
        raise BadValueError(f"no SDSS dark variance for camcol {camcol}, band {band!r} (camcols 1..6, bands ugriz)")
    if int(run) < 1500 and (int(camcol), band) in _DARK_EARLY:
        return _DARK_EARLY[(int(camcol), band)]
    return DARK_VARIANCE[int(camcol)][_BANDS.index(band)]


def frame_sigma(path: str | Path, band: str, camcol: int, run: int, image: np.ndarray | None = None) -> np.ndarray:
    """The 1-sigma noise map [nanomaggies] (H, W) float32 of an SDSS frame (module text for the formula).

    ``image``: HDU 0 already read (else it is read). A frame without the calibration (HDU 1) or sky (HDU 2,
    ALLSKY / XINTERP / YINTERP) is one DataFormatError line naming the file.
    """
    from astropy.io import fits
    from scipy.ndimage import map_coordinates

    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            img = np.asarray(hdul[0].data if image is None else image, dtype=np.float64)
            calib = np.asarray(hdul[1].data, dtype=np.float64)
            sky = hdul[2].data
            allsky = np.asarray(sky["ALLSKY"][0], dtype=np.float64)
            xinterp = np.asarray(sky["XINTERP"][0], dtype=np.float64)
            yinterp = np.asarray(sky["YINTERP"][0], dtype=np.float64)
    except (OSError, IndexError, KeyError, TypeError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataFormatError(f"{path}: no SDSS frame calibration (HDU 1) and sky (HDU 2 ALLSKY, XINTERP, YINTERP) "
                              f"for the noise map ({first})") from None
    h, w = img.shape
    if calib.shape != (w,) or xinterp.shape != (w,) or yinterp.shape != (h,) or allsky.ndim != 2:
        raise DataFormatError(f"{path}: calibration {calib.shape}, XINTERP {xinterp.shape}, YINTERP {yinterp.shape} "
                              f"do not fit the {h}x{w} image")
    yy, xx = np.meshgrid(yinterp, xinterp, indexing="ij")
    sky_counts = map_coordinates(allsky, [yy, xx], order=1, mode="nearest")
    cimg = np.broadcast_to(calib, (h, w))
    dn = img / cimg + sky_counts
    sigma = cimg * np.sqrt(np.maximum(dn, 0.0) / sdss_gain(band, camcol, run) + sdss_dark_variance(band, camcol, run))
    return sigma.astype(np.float32)


# ------------------------------------------------------------------------------------------------ spectra


def _spectres(wave: np.ndarray, flux: np.ndarray, sigma: np.ndarray, grid: np.ndarray,
              prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shared step of :func:`rebin_spectrum` and :func:`rebin_spectra`: samples sorted by wavelength, no
    overlap with ``grid`` refused (one line starting with ``prefix``), one ``spectres`` call over the last
    axis. Returns (new flux, new sigma, the sorted wavelengths)."""
    import warnings

    import spectres

    order = np.argsort(wave)
    wave, flux, sigma = wave[order], flux[..., order], sigma[..., order]
    lo_edge = grid[0] - (grid[1] - grid[0]) / 2
    hi_edge = grid[-1] + (grid[-1] - grid[-2]) / 2
    if wave[-1] <= lo_edge or wave[0] >= hi_edge:
        what = "spectrum covers" if flux.ndim == 1 else "spectra cover"
        raise DataFormatError(f"{prefix}the {what} {wave[0]:.1f}-{wave[-1]:.1f} Angstrom: no overlap with "
                              f"the cube grid {grid[0]:.1f}-{grid[-1]:.1f} Angstrom")
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore")  # spectres warns of the new bins outside the spectrum (filled NaN)
        new_f, new_s = spectres.spectres(grid, wave, flux, spec_errs=sigma, fill=np.nan, verbose=False)
    return np.asarray(new_f, dtype=np.float64), np.asarray(new_s, dtype=np.float64), wave


def rebin_spectrum(wave: np.ndarray, flux: np.ndarray, sigma: np.ndarray | None = None,
                   grid: np.ndarray | None = None, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``flux`` (and its 1-sigma ``sigma``) at wavelengths ``wave`` [Angstrom] rebinned onto ``grid`` (default the
    cube grid) with ``spectres`` (flux-conserving; module text). NaN input samples are bad: every new bin they
    touch is NaN; new bins not wholly covered are NaN. No overlap with the grid at all, or no finite value on
    it, is one DataFormatError line starting with ``where`` (a file name). Returns float64 (flux, sigma)."""
    grid = cube_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float64)
    sigma = np.full_like(flux, np.nan) if sigma is None else np.asarray(sigma, dtype=np.float64)
    prefix = f"{where}: " if where else ""
    if wave.ndim != 1 or wave.shape != flux.shape or sigma.shape != flux.shape or len(wave) < 2:
        raise BadValueError(f"{prefix}wavelength {wave.shape}, flux {flux.shape}, sigma {sigma.shape}: three 1-D "
                            "arrays of one length (at least 2) are needed")
    new_f, new_s, wave = _spectres(wave, flux, sigma, grid, prefix)
    good = np.isfinite(new_f)
    if not good.any():
        raise DataFormatError(f"{prefix}no usable sample on the cube grid {grid[0]:.1f}-{grid[-1]:.1f} Angstrom "
                              f"(the spectrum covers {wave[0]:.1f}-{wave[-1]:.1f} Angstrom, bad pixels excluded)")
    return new_f, np.where(good, new_s, np.nan)


def rebin_spectra(wave: np.ndarray, flux: np.ndarray, sigma: np.ndarray, grid: np.ndarray | None = None,
                  ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Many spectra on ONE wavelength grid ``wave`` (L,), ``flux`` and ``sigma`` (N, L), rebinned onto ``grid`` in
    one ``spectres`` call (the same numbers as :func:`rebin_spectrum` row by row, ~100x faster for a survey's
    shared grid). A row with no usable sample on the grid is one DataFormatError line naming its id and row."""
    grid = cube_grid() if grid is None else np.asarray(grid, dtype=np.float64)
    wave = np.asarray(wave, dtype=np.float64)
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if wave.ndim != 1 or flux.shape[-1] != len(wave) or sigma.shape != flux.shape:
        raise BadValueError(f"wavelength {wave.shape}, flux {flux.shape}, sigma {sigma.shape}: one grid (L,) and "
                            "(N, L) flux and sigma are needed")
    new_f, new_s, _ = _spectres(wave, flux, sigma, grid, "")
    good = np.isfinite(new_f)
    empty = np.flatnonzero(~good.any(axis=1))
    if len(empty):
        r = int(empty[0])
        name = f"object id {ids[r].item()!r} (row {r})" if ids is not None else f"row {r}"
        raise DataFormatError(f"{name}: no usable sample on the cube grid {grid[0]:.1f}-{grid[-1]:.1f} Angstrom "
                              f"({len(empty)} of {len(flux)} spectra have none)")
    return new_f, np.where(good, new_s, np.nan)


def combine_epochs(fluxes: np.ndarray, sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance mean of epochs (E, L) -> (L,): w = 1/sigma^2 over the epochs where flux and sigma are
    finite and sigma > 0; flux = sum(w f) / sum(w), sigma = 1 / sqrt(sum w); NaN where no epoch has the sample."""
    f = np.atleast_2d(np.asarray(fluxes, dtype=np.float64))
    s = np.atleast_2d(np.asarray(sigmas, dtype=np.float64))
    if f.shape != s.shape:
        raise BadValueError(f"epoch fluxes {f.shape} and sigmas {s.shape} differ in shape")
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(f) & np.isfinite(s) & (s > 0)
        w = np.where(ok, 1.0 / np.where(ok, s, 1.0) ** 2, 0.0)
        wsum = w.sum(axis=0)
        flux = np.where(wsum > 0, (w * np.where(ok, f, 0.0)).sum(axis=0) / np.where(wsum > 0, wsum, 1.0), np.nan)
        sigma = np.where(wsum > 0, 1.0 / np.sqrt(np.where(wsum > 0, wsum, 1.0)), np.nan)
    return flux, sigma


def group_positions(ra: np.ndarray, dec: np.ndarray, radius_arcsec: float = 3.0) -> np.ndarray:
    """Object labels 0..K-1 (in order of first appearance): positions [deg] within ``radius_arcsec`` of each
    other, directly or through a chain, share a label (astropy ``search_around_sky``)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ra)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    c = SkyCoord(np.asarray(ra, np.float64) * u.deg, np.asarray(dec, np.float64) * u.deg)
    i, j, _, _ = search_around_sky(c, c, float(radius_arcsec) * u.arcsec)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = {}
    out = np.empty(n, dtype=np.int64)
    for k, lab in enumerate(labels):
        out[k] = first.setdefault(int(lab), len(first))
    return out


def _mean_position(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    r, d = np.radians(ra), np.radians(dec)
    v = np.array([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]).mean(axis=1)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(v[2] / np.linalg.norm(v))))


def find_spectra(spectra: str | Path | Iterable[str | Path]) -> list[Path]:
    """SDSS spectrum files: a list of files (each must be one), or a folder (recursively) / glob of which the
    files with a COADD HDU are taken (frames and other FITS files there are passed over)."""
    from astromodal.data.readers import _expand
    from astromodal.data.readers.sdss import sniff_sdss
    from astromodal.data.readers.sdss_frames import is_frame_name

    items = [spectra] if isinstance(spectra, (str, Path)) else list(spectra)
    files: list[Path] = []
    for item in items:
        folder, found = _expand(item)
        if folder is None and len(found) == 1 and not any(ch in str(item) for ch in "*?["):
            files.append(found[0])
            continue
        for p in found:
            name = p.name.lower()
            if name.endswith((".fits", ".fits.gz", ".fit", ".fit.gz")) and not is_frame_name(p):
                try:
                    if sniff_sdss(p):
                        files.append(p)
                except Exception:
                    continue
    if not files:
        raise DataFormatError(f"{spectra}: no SDSS spectrum file (spec-*.fits with a COADD HDU)")
    return sorted(dict.fromkeys(files))


def build_cube(
    spectra: str | Path | Iterable[str | Path],
    frames: str | Path | Iterable[str | Path],
    out: str | Path,
    *,
    size: int = 64,
    match_radius: float = 3.0,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Build a HiSS-Cube ML cube from SDSS spectra and frames (module text); returns (path, counts).

    ``out`` is checked before any work (new, or a cube astromodal wrote with ``overwrite``) and written
    atomically. A spectrum whose PLATE-MJD-FIBER was already read (a copy of a file) is skipped, never counted
    as a second epoch (it would shrink the combined sigma by sqrt 2). counts: ``spectra`` (files),
    ``duplicates`` (skipped copies), ``objects`` (after grouping epochs), ``kept``, ``skipped_edge``,
    ``skipped_off``, ``skipped_nan`` (objects without a whole five-band cutout). No object kept: one BadValueError
    line.
    """
    from astromodal.atomic import check_output_file
    from astromodal.data.dataset import Column, Target
    from astromodal.data.readers.hisscube import write_cube_levels
    from astromodal.data.readers.sdss import read_spectrum_file
    from astromodal.data.readers.sdss_frames import Frame, find_frames, group_frames, read_frame
    from astromodal.errors import ConfigError
    from astromodal.transforms import images as tim

    out = Path(out).expanduser()
    if int(size) < 8 or int(size) % 8:
        raise ConfigError(f"--size must be a multiple of 8 (three halvings), got {size}")
    if not match_radius > 0:
        raise ConfigError(f"--match-radius must be positive, got {match_radius}")
    files = find_spectra(spectra)
    check_output_file(out, inputs=files, overwrite=overwrite)  # before any work
    fields = group_frames(find_frames(frames), _BANDS)
    grid = cube_grid()
    records = []
    seen: dict[str, Path] = {}
    copies: list[str] = []
    for k, p in enumerate(files):
        rec = read_spectrum_file(p, "and")
        if rec["id"] in seen:  # the same PLATE-MJD-FIBER twice (a copy of a file): one epoch, never two
            copies.append(f"{p} (= {seen[rec['id']]})")
            continue
        seen[rec["id"]] = p
        flux = np.where(rec["mask"], np.nan, rec["flux"])
        with np.errstate(divide="ignore"):
            sigma = np.where(rec["mask"], np.nan, 1.0 / np.sqrt(np.where(rec["mask"], 1.0, rec["ivar"])))
        rec["grid_flux"], rec["grid_sigma"] = rebin_spectrum(rec["wave"], flux, sigma, grid, where=str(p))
        rec["file"] = p
        records.append(rec)
        if progress is not None:
            progress("rebinning spectra", k + 1, len(files))
    labels = group_positions(np.array([r["ra"] for r in records]), np.array([r["dec"] for r in records]),
                             match_radius)
    n_obj = int(labels.max()) + 1
    groups = [sorted((r for r, lab in zip(records, labels, strict=True) if lab == g), key=lambda r: (r["mjd"], r["id"]))
              for g in range(n_obj)]
    ra = np.empty(n_obj)
    dec = np.empty(n_obj)
    flux0 = np.empty((n_obj, len(grid)))
    sigma0 = np.empty_like(flux0)
    for g, epochs in enumerate(groups):
        ra[g], dec[g] = _mean_position(np.array([e["ra"] for e in epochs]), np.array([e["dec"] for e in epochs]))
        flux0[g], sigma0[g] = combine_epochs(np.stack([e["grid_flux"] for e in epochs]),
                                             np.stack([e["grid_sigma"] for e in epochs]))
    size = int(size)
    pixels = np.zeros((n_obj, 5, size, size), dtype=np.float32)
    errors = np.zeros_like(pixels)
    origin = np.full((n_obj, 3), -1, dtype=np.int64)
    done = np.zeros(n_obj, dtype=bool)
    statuses = []
    for k, (key, group) in enumerate(fields.items()):
        rows = np.flatnonzero(~done)
        st = np.full(n_obj, tim.OFF, dtype=np.int8)
        if len(rows):
            field = {b: read_frame(p) for b, p in group.items()}
            pix, st_rows = tim.cut_field(field, ra[rows], dec[rows], size, _BANDS, "skip")
            kept = rows[st_rows == tim.KEPT]
            if len(kept):
                noise = {b: Frame(fr.path, fr.band, fr.run, fr.camcol, fr.field,
                                  frame_sigma(fr.path, b, fr.camcol, fr.run, fr.data), fr.wcs)
                         for b, fr in field.items()}
                err, st_err = tim.cut_field(noise, ra[kept], dec[kept], size, _BANDS, "skip")
                ok = st_err == tim.KEPT
                pixels[kept[ok]] = pix[st_rows == tim.KEPT][ok]
                errors[kept[ok]] = err[ok]
                origin[kept[ok]] = key
                st_rows[np.flatnonzero(st_rows == tim.KEPT)[~ok]] = tim.NAN
            st[rows] = st_rows
            done[rows[(st_rows == tim.KEPT) | (st_rows == tim.NAN)]] = True
            del field
        statuses.append(st)
        if progress is not None:
            progress("cutting fields", k + 1, len(fields))
    final, cut_counts = tim.combine_status(statuses)
    keep = final == tim.KEPT
    counts = {"spectra": len(files), "duplicates": len(copies), "objects": n_obj, **cut_counts}
    if not keep.any():
        raise BadValueError(f"no object of {len(files)} spectra has a whole {size}-pixel cutout in every band of "
                            f"the frames {frames} ({counts['skipped_off']} off every frame, {counts['skipped_edge']} "
                            f"near an edge, {counts['skipped_nan']} with NaN pixels)")
    idx = np.flatnonzero(keep)
    first = [groups[g][0] for g in idx]
    levels = CubeLevels.from_zoom0(pixels[idx], errors[idx], flux0[idx] * 1e-17, sigma0[idx] * 1e-17, grid)
    columns = {name: Column(np.array([e[name] for e in first], dtype=np.int64)) for name in ("plate", "mjd", "fiberid")}
    columns["n_epochs"] = Column(np.array([len(groups[g]) for g in idx], dtype=np.int64))
    for j, name in enumerate(("frame_run", "frame_camcol", "frame_field")):
        columns[name] = Column(origin[idx, j])
    targets = {"class": Target.from_labels([e["class"] for e in first]),
               "redshift": Target(np.array([e["z"] for e in first], dtype=np.float64), "regression")}
    ids = np.array([e["id"] for e in first])
    meta = {"source": "astromodal build cube", "cube": {
        "spectra": [str(p) for p in files], "frames": [str(p) for g in fields.values() for p in g.values()],
        "match_radius_arcsec": float(match_radius), "size": size, "counts": counts,
        "grid": f"linspace({WAVE_MIN}, {WAVE_MAX}, {len(grid)}) Angstrom",
        "epochs": {str(ids[k]): [e["id"] for e in groups[g]] for k, g in enumerate(idx)},
        "duplicate_spectra_skipped": copies,
        "image_errors": "SDSS frame noise model (calibration, sky, gain, dark variance)"}}
    path = write_cube_levels(out, levels, ids, ra[idx], dec[idx], columns, targets, meta=meta, overwrite=overwrite,
                             inputs=files)
    return path, counts


__all__ = ["DARK_VARIANCE", "GAIN", "build_cube", "combine_epochs", "find_spectra", "frame_sigma", "group_positions",
           "rebin_spectrum", "sdss_dark_variance", "sdss_gain"]
