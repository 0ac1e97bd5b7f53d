"""Several objects in one cutout: detect the central object and isolate it; aperture photometry of cutouts.

Study D (``../shared/docs/seed-methods.md``, section D) must handle cutouts that hold more than one object.
:func:`isolate_central` finds the objects of each cutout with photutils and keeps the central one, in one
of two ways (:data:`METHODS`):

* ``mask``: the pixels of every *other* segment, dilated by ``dilate`` pixels, are replaced in every band
  by Gaussian noise of that band's background level and rms (a seeded numpy ``Generator`` per object, so a
  result repeats); pixels of the central segment itself are never replaced, even where a neighbour's
  dilated footprint reaches into it (deblended touching objects keep the central one's share);
* ``crop``: everything outside the central object's footprint, dilated by ``dilate`` pixels, is set to
  the band's background level (a constant, no noise). **The output keeps the cutout's size** (it is not
  cut smaller), so models, resizing and the HiSS-Cube zoom levels see the same shapes as without it.

A cutout without a central segment (no source at all, or none within ``centre_radius`` pixels of the
centre) is returned unchanged and counted (``info.central_found`` False). Everything is a fixed function
of one cutout's own pixels: nothing is fitted (the no-leak rule of :mod:`astromodal.data.views`).

Steps, per cutout (``pixels`` (N, B, S, S), in nanomaggies, vectorised over cutouts in chunks):

1. **Detection image**: the sum of the bands (``detect="sum"``, default) or one band (``detect="r"``).
2. **Background and rms** of the detection image: sigma-clipped median and standard deviation
   (``sigma`` = 3, cenfunc median, stdfunc std, as astropy ``sigma_clipped_stats``; computed here by
   :func:`clipped_stats` on sorted rows, the same numbers about 20 times faster than astropy on
   3,000 x 5 x 64 x 64 pixels, which matters because the stats run for every cutout and band). Of the
   whole cutout when S >= :data:`SMALL_CUTOUT` (32) pixels; for smaller cutouts (HiSS-Cube zooms 2 and 3,
   16 and 8 px, where the object fills much of the cutout) of the **border ring** only (width
   max(1, S // 8) px: 28 of the 64 pixels at 8 px, 60 of 256 at 16 px), still sigma-clipped, so a
   neighbour on the border is clipped away. ``background="2d"``: a photutils ``Background2D`` map
   (``box_size`` boxes, 3 x 3 median filter, sigma-clipped medians) and rms map instead, for cutouts of at
   least 2 x ``box_size`` pixels (smaller ones fall back to the global estimate; ``info.background_mode``
   says which was used).
3. **Smoothing** (``smooth_fwhm`` pixels, a Gaussian, ``scipy.ndimage.gaussian_filter``; 0 = none) of the
   background-subtracted detection image; the threshold stays ``threshold`` x the *unsmoothed* rms, as in
   photutils' own examples and :func:`astromodal.transforms.images.detect_sources_on`.
4. **Segmentation**: photutils ``detect_sources`` (>= ``npixels`` 8-connected pixels above the threshold)
   and, with ``deblend``, ``deblend_sources`` (``nlevels``, ``contrast``, exponential mode) of the segments
   under the centre only (their split decides what is kept; two blended neighbours are removed alike
   either way), which makes deblending, the costly step, one segment per cutout at most. All cutouts of
   a chunk are stacked into one tall image separated by masked rows (segments cannot cross them), so
   photutils runs once per chunk rather than once per cutout.
5. **Central segment**: the segment under the central pixel (odd S: pixel S // 2; even S: the brightest
   labelled of the four pixels around the centre (S - 1) / 2), else the segment whose nearest pixel lies
   closest to the centre within ``centre_radius`` pixels, else none.
6. **Fill levels** per band: the sigma-clipped median and std of the pixels outside every segment (dilated
   by max(dilate, 1) px); when fewer than :data:`MIN_SKY_PIXELS` such pixels are left, the step-2
   estimate of that band (whole cutout or border ring) instead.

Auto settings (``None``): ``smooth_fwhm`` 2 px and ``deblend`` on for cutouts of at least
:data:`SMALL_CUTOUT` pixels; no smoothing and no deblending below (at 16 and 8 px an SDSS PSF is about one
pixel, and deblending one- or two-pixel blobs splits noise, not objects).

Speed (one core, 3,000 cutouts of 5 x 64 x 64 with neighbours in half of them): see the notes of session 20
(``/work/notes/s20/isolation.md``).

Limits: a neighbour much brighter than the central object whose footprint covers the centre, with the
central object only a shoulder on its wing (no peak of its own), cannot be deblended: the "central"
segment is then the neighbour's and nothing is removed; ``info.peak_offset`` (centre to the central
segment's brightest pixel) flags those cutouts (on the simulated survey the worst aperture-flux errors all
have offsets of 7-12 px). ``crop`` also removes the central object's own faint wings beyond its footprint
and the sky noise there (a few per cent of a 3" aperture flux of a galaxy); ``mask`` keeps both.

Image ``errors`` are not used for the rms: HiSS-Cube's image "errors" are read from the image data (one of
its slips, seed-methods section D), so the rms is measured from the pixels themselves.

The second half of the module is **aperture photometry** at the cutout centre (:func:`aperture_weights`,
:func:`aperture_fluxes`) and the asinh magnitudes of Lupton, Gunn & Szalay (1999) with SDSS softening
(:func:`asinh_magnitudes`), the photometry baseline of study D (the ``aperture_photometry`` view).
"""

from __future__ import annotations

import inspect
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from astromodal.errors import BadValueError, ConfigError

#: the isolation methods (``none`` is accepted by the views and means: do nothing)
METHODS = ("mask", "crop")

#: cutouts smaller than this (pixels) use the border-ring background, no smoothing and no deblending
SMALL_CUTOUT = 32

#: fewest unmasked pixels for the source-masked per-band fill level (else the step-2 estimate)
MIN_SKY_PIXELS = 16

#: SDSS asinh-magnitude softening b per band, in maggies (Lupton et al. 1999; SDSS DR7 photometry pages)
SDSS_SOFTENING = {"u": 1.4e-10, "g": 0.9e-10, "r": 1.2e-10, "i": 1.8e-10, "z": 7.4e-10}


class IsolationSettings(BaseModel):
    """The settings of :func:`isolate_central` (see the module doc for each step); ``None`` = auto by size."""

    model_config = ConfigDict(extra="forbid")
    detect: str = "sum"  # "sum" of the bands, or one band's name
    threshold: float = Field(default=2.0, gt=0)  # in units of the (unsmoothed) background rms
    npixels: int = Field(default=5, ge=1)
    smooth_fwhm: float | None = Field(default=None, ge=0)  # pixels; None: 2 px if S >= 32, else 0
    deblend: bool | None = None  # None: on if S >= 32
    nlevels: int = Field(default=32, ge=1)
    contrast: float = Field(default=0.001, ge=0, le=1)
    dilate: int = Field(default=2, ge=0)  # pixels
    centre_radius: float = Field(default=3.0, ge=0)  # pixels
    background: Literal["global", "2d"] = "global"
    box_size: int = Field(default=16, ge=2)
    sigma: float = Field(default=3.0, gt=0)  # clipping
    seed: int = Field(default=0, ge=0)


@dataclass
class IsolationInfo:
    """Per-cutout diagnostics of :func:`isolate_central`."""

    method: str
    n_segments: np.ndarray  # (N,) int: segments found (after deblending)
    central_found: np.ndarray  # (N,) bool: False -> the cutout was returned unchanged
    central_area: np.ndarray  # (N,) int: pixels of the central segment (0 when none)
    replaced_fraction: np.ndarray  # (N,) float: fraction of the S x S pixels replaced (the same in every band)
    background: np.ndarray  # (N, B): each band's fill level (nanomaggies)
    rms: np.ndarray  # (N, B): each band's background rms (nanomaggies)
    #: (N,) float: pixels from the centre to the central segment's brightest (smoothed detection) pixel, NaN
    #: when none. Large (> centre_radius) when a much brighter neighbour's footprint covers the centre and the
    #: central object, with no peak of its own on the neighbour's wing, cannot be deblended from it: the
    #: "central" segment is then the neighbour's and nothing is removed; drop or inspect such cutouts.
    peak_offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    background_mode: str = "global"  # global, border (small cutouts) or 2d
    settings: dict[str, Any] = field(default_factory=dict)  # the settings used, auto ones resolved

    @property
    def n_unchanged(self) -> int:
        """Cutouts returned unchanged because no central segment was found."""
        return int((~self.central_found).sum())

    def summary(self) -> dict[str, Any]:
        n = len(self.central_found)
        return {"method": self.method, "cutouts": n, "central_found": int(self.central_found.sum()),
                "unchanged_no_central": self.n_unchanged,
                "with_other_segments": int((self.n_segments > self.central_found).sum()),
                "mean_replaced_fraction": float(self.replaced_fraction.mean()) if n else 0.0,
                "central_peak_beyond_radius": int((self.peak_offset > self.settings.get("centre_radius", np.inf)).sum()),
                "background_mode": self.background_mode}


# --------------------------------------------------------------------------------------- statistics
def clipped_stats(values: np.ndarray, mask: np.ndarray | None = None, sigma: float = 3.0,
                  maxiters: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma-clipped ``(median, std, n_kept)`` of each row of ``values`` (M, P), ignoring ``mask`` True and
    non-finite values: astropy ``sigma_clipped_stats(axis=1, cenfunc="median", stdfunc="std")`` (keep
    ``median - sigma std <= x <= median + sigma std``, computed from the values kept so far, until nothing
    changes or ``maxiters``), the same numbers, vectorised: each row is sorted once, so the kept values are a
    contiguous range of it and every iteration is two counts and two prefix-sum look-ups. A row with no
    value gives NaN, NaN, 0."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise BadValueError(f"clipped_stats takes (rows, values), got shape {v.shape}")
    bad = ~np.isfinite(v) if mask is None else (np.asarray(mask, dtype=bool) | ~np.isfinite(v))
    s = np.sort(np.where(bad, np.inf, v), axis=1)
    m, p = s.shape
    rows = np.arange(m)
    lo = np.zeros(m, dtype=np.int64)
    hi = p - bad.sum(axis=1).astype(np.int64)
    shift = np.where(hi > 0, s[rows, np.maximum(hi - 1, 0) // 2], 0.0)  # a rough centre: prefix sums stay exact
    fin = np.where(np.isfinite(s), s - shift[:, None], 0.0)
    c1 = np.zeros((m, p + 1))
    c2 = np.zeros((m, p + 1))
    np.cumsum(fin, axis=1, out=c1[:, 1:])
    np.cumsum(fin * fin, axis=1, out=c2[:, 1:])

    def stats(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            a = s[rows, np.clip((lo + hi - 1) // 2, 0, p - 1)]
            b = s[rows, np.clip((lo + hi) // 2, 0, p - 1)]
            med = np.where(n > 0, np.where(n % 2, a, 0.5 * (a + b)), np.nan)
            mean = (c1[rows, hi] - c1[rows, lo]) / n
            var = (c2[rows, hi] - c2[rows, lo]) / n - mean * mean
        std = np.where(n > 0, np.sqrt(np.maximum(var, 0.0)), np.nan)
        return med, std

    for _ in range(int(maxiters)):
        med, std = stats(lo, hi)
        live = hi > lo
        lower = np.where(live, med - sigma * std, -np.inf)
        upper = np.where(live, med + sigma * std, np.inf)
        new_lo = np.maximum(lo, (s < lower[:, None]).sum(axis=1))
        new_hi = np.minimum(hi, (s <= upper[:, None]).sum(axis=1))
        new_hi = np.maximum(new_hi, new_lo)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    med, std = stats(lo, hi)
    return med, std, hi - lo


def _border_mask(size: int) -> np.ndarray:
    """(S, S) True outside the border ring of width max(1, S // 8): the pixels *not* used for small cutouts."""
    width = max(1, size // 8)
    inner = np.ones((size, size), dtype=bool)
    inner[:width] = inner[-width:] = False
    inner[:, :width] = inner[:, -width:] = False
    return inner


def _first_pass(values: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Background and rms of (M, S, S) images: whole image (S >= SMALL_CUTOUT) or the border ring."""
    m, size, _ = values.shape
    mask = None if size >= SMALL_CUTOUT else np.broadcast_to(_border_mask(size).ravel(), (m, size * size))
    med, std, _ = clipped_stats(values.reshape(m, -1), mask, sigma)
    return med, std


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return (xx * xx + yy * yy) <= r * r


def _dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of each (S, S) plane of (M, S, S) by a disc of ``radius`` pixels (none across planes)."""
    from scipy.ndimage import binary_dilation

    if radius <= 0 or not masks.any():
        return masks
    return binary_dilation(masks, structure=_disk(radius)[None])


def object_keys(ids: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Per-object seed keys (non-negative int64): the ids themselves when they are non-negative integers, else
    the CRC-32 of their text, so that an object's noise does not depend on which other objects are processed."""
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu" and (arr.size == 0 or int(arr.min()) >= 0):
        return arr.astype(np.int64)
    return np.array([zlib.crc32(str(x.item() if isinstance(x, np.generic) else x).encode()) for x in arr],
                    dtype=np.int64)


# --------------------------------------------------------------------------------------- segmentation
def _segment(det: np.ndarray, finite: np.ndarray, st: IsolationSettings, smooth_fwhm: float, deblend: bool
             ) -> tuple[np.ndarray, np.ndarray, str]:
    """Labels (M, S, S) int (0 = none; unique within the chunk) and the smoothed background-subtracted
    detection images (M, S, S), and the background mode used."""
    from photutils.segmentation import deblend_sources, detect_sources
    from scipy.ndimage import gaussian_filter

    m, size, _ = det.shape
    mode = "global" if size >= SMALL_CUTOUT else "border"
    if st.background == "2d" and size >= 2 * st.box_size:
        from astropy.stats import SigmaClip
        from photutils.background import Background2D, MedianBackground

        bkg_map = np.empty_like(det)
        rms_map = np.empty_like(det)
        for k in range(m):
            b2d = Background2D(np.where(finite[k], det[k], 0.0), st.box_size, mask=~finite[k] if not finite[k].all()
                               else None, filter_size=(3, 3), sigma_clip=SigmaClip(sigma=st.sigma),
                               bkg_estimator=MedianBackground())
            bkg_map[k], rms_map[k] = b2d.background, b2d.background_rms
        mode = "2d"
    else:
        med, std = _first_pass(np.where(finite, det, np.nan), st.sigma)
        bkg_map = np.broadcast_to(np.nan_to_num(med)[:, None, None], det.shape)
        rms_map = np.broadcast_to(np.nan_to_num(std)[:, None, None], det.shape)
    sub = np.where(finite, det - bkg_map, 0.0)
    if smooth_fwhm > 0:
        sub = gaussian_filter(sub, sigma=(0.0, smooth_fwhm / 2.3548200450309493, smooth_fwhm / 2.3548200450309493),
                              mode="nearest")
    # one tall image: each cutout followed by a masked separator row, so no segment joins two cutouts
    tall = np.zeros((m, size + 1, size))
    tall[:, :size] = sub
    thr = np.zeros((m, size + 1, size))
    thr[:, :size] = st.threshold * rms_map
    sep = np.zeros((m, size + 1, size), dtype=bool)
    sep[:, size] = True
    sep[:, :size] |= ~finite
    tall, thr, sep = tall.reshape(-1, size), thr.reshape(-1, size), sep.reshape(-1, size)
    segm = detect_sources(tall, thr, st.npixels, mask=sep)
    if segm is None:
        return np.zeros((m, size, size), dtype=np.int64), sub, mode
    labels = np.asarray(segm.data, dtype=np.int64).reshape(m, size + 1, size)[:, :size]
    # only the segments under the centre are deblended: they are the ones whose split decides what is kept
    # (two blended neighbours are both "other" either way), one per cutout at most rather than all of them
    at_centre = np.unique(labels[:, _centre_index(size)[0], _centre_index(size)[1]])
    at_centre = at_centre[at_centre > 0]
    if deblend and len(at_centre):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # photutils warns when it switches a source to linear mode
            levels = "n_levels" if "n_levels" in inspect.signature(deblend_sources).parameters else "nlevels"
            kw = {levels: st.nlevels}  # photutils >= 3 renamed nlevels
            segm = deblend_sources(tall, segm, st.npixels, labels=at_centre, contrast=st.contrast,
                                   progress_bar=False, **kw)
        labels = np.asarray(segm.data, dtype=np.int64).reshape(m, size + 1, size)[:, :size]
    return labels, sub, mode


def _centre_index(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the central pixel (odd S) or of the four pixels around the centre (even S)."""
    idx = [size // 2] if size % 2 else [size // 2 - 1, size // 2]
    yy, xx = np.meshgrid(idx, idx, indexing="ij")
    return yy.ravel(), xx.ravel()


def _central_labels(labels: np.ndarray, smooth: np.ndarray, radius: float) -> np.ndarray:
    """(M,) the label of each cutout's central segment, 0 when none (module doc, step 5)."""
    m, size, _ = labels.shape
    yy, xx = _centre_index(size)
    cent = labels[:, yy, xx]  # (M, 1 or 4)
    val = np.where(cent > 0, smooth[:, yy, xx], -np.inf)
    pick = cent[np.arange(m), np.argmax(val, axis=1)]
    missing = np.flatnonzero(pick == 0)
    if len(missing) and radius > 0:
        c = (size - 1) / 2.0
        g = np.arange(size) - c
        dist = np.hypot(g[:, None], g[None, :])
        d = np.where(labels[missing] > 0, dist[None], np.inf).reshape(len(missing), -1)
        near = np.argmin(d, axis=1)
        ok = np.flatnonzero(d[np.arange(len(missing)), near] <= radius)
        flat = labels.reshape(m, -1)
        pick[missing[ok]] = flat[missing[ok], near[ok]]
    return pick


def _resolve(st: IsolationSettings, size: int) -> tuple[float, bool]:
    big = size >= SMALL_CUTOUT
    smooth = st.smooth_fwhm if st.smooth_fwhm is not None else (2.0 if big else 0.0)
    deblend = st.deblend if st.deblend is not None else big
    return float(smooth), bool(deblend)


def isolate_central(
    pixels: np.ndarray,
    method: str,
    *,
    bands: Sequence[str] | None = None,
    keys: Sequence[Any] | np.ndarray | None = None,
    chunk: int = 256,
    **settings: Any,
) -> tuple[np.ndarray, IsolationInfo]:
    """Isolate the central object of each cutout ``pixels`` (N, B, S, S) (module doc): ``(pixels_out, info)``.

    ``method``: ``mask`` (other segments -> background noise) or ``crop`` (outside the central footprint ->
    background level; the size is kept). ``settings``: the fields of :class:`IsolationSettings`
    (``threshold``, ``npixels``, ``deblend``, ``dilate``, ``seed``, ...). ``bands``: the names of the B
    bands (needed when ``detect`` is a band name). ``keys``: one integer (or id) per cutout seeding its noise
    as ``numpy.random.default_rng([seed, key])`` (default the row numbers), so an object's noise is the same
    whichever other objects are processed with it. The input is not modified; the output has its dtype.
    Non-finite pixels are left as they are and take no part in detection or statistics.
    """
    if method not in METHODS:
        raise ConfigError(f"isolate: unknown method {method!r}; choose one of {', '.join(('none', *METHODS))}")
    try:
        st = IsolationSettings(**settings)
    except Exception as exc:  # pydantic ValidationError -> one line naming the option
        from pydantic import ValidationError

        from astromodal.errors import format_validation_error

        if isinstance(exc, ValidationError):
            raise ConfigError(format_validation_error(exc, IsolationSettings, "isolate_options")) from None
        raise
    pix = np.asarray(pixels)
    if pix.ndim != 4 or pix.shape[-1] != pix.shape[-2]:
        raise BadValueError(f"isolate: cutouts must be (objects, bands, S, S), got shape {pix.shape}")
    n, nb, size, _ = pix.shape
    if st.detect != "sum":
        names = [str(b) for b in (bands or ())]
        if st.detect not in names:
            raise ConfigError(f"isolate_options 'detect': band {st.detect!r} is not one of these images' bands "
                              f"{names or '(no band names given)'}; use 'sum' or one of them")
        det_band: int | None = names.index(st.detect)
    else:
        det_band = None
    key_arr = np.arange(n, dtype=np.int64) if keys is None else object_keys(keys)
    if len(key_arr) != n:
        raise BadValueError(f"isolate: {len(key_arr)} keys for {n} cutouts")
    smooth_fwhm, deblend = _resolve(st, size)
    out = np.array(pix, copy=True)
    info = IsolationInfo(method, np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n),
                         np.full((n, nb), np.nan), np.full((n, nb), np.nan),
                         settings={**st.model_dump(), "smooth_fwhm": smooth_fwhm, "deblend": deblend},
                         peak_offset=np.full(n, np.nan))
    npix = size * size
    for start in range(0, n, max(1, int(chunk))):
        sl = slice(start, min(n, start + max(1, int(chunk))))
        block = np.asarray(pix[sl], dtype=np.float64)
        m = len(block)
        finite_b = np.isfinite(block)
        finite = finite_b.all(axis=1)
        det = block.sum(axis=1) if det_band is None else block[:, det_band]
        labels, smooth, info.background_mode = _segment(det, finite, st, smooth_fwhm, deblend)
        central = _central_labels(labels, smooth, st.centre_radius)
        # segments per cutout (labels are unique in the chunk)
        present = np.unique(labels[labels > 0])
        owner = np.zeros(int(labels.max()) + 1, dtype=np.int64)
        owner[labels.reshape(-1)] = np.repeat(np.arange(m), npix)
        info.n_segments[sl] = np.bincount(owner[present], minlength=m) if len(present) else 0
        is_central = (labels == central[:, None, None]) & (central[:, None, None] > 0)
        found = central > 0
        info.central_found[sl] = found
        info.central_area[sl] = is_central.sum(axis=(1, 2))
        peak = np.argmax(np.where(is_central, smooth, -np.inf).reshape(m, -1), axis=1)
        centre = (size - 1) / 2.0
        info.peak_offset[sl] = np.where(found, np.hypot(peak // size - centre, peak % size - centre), np.nan)
        # per-band fill levels from the pixels outside every (dilated) segment
        sky_mask = _dilate(labels > 0, max(st.dilate, 1))[:, None] | ~finite_b
        med, std, kept = clipped_stats(block.reshape(m * nb, npix), sky_mask.reshape(m * nb, npix), st.sigma)
        med, std, kept = med.reshape(m, nb), std.reshape(m, nb), kept.reshape(m, nb)
        few = kept < MIN_SKY_PIXELS
        if few.any():
            rows = np.flatnonzero(few.any(axis=1))
            fmed, fstd = _first_pass(np.where(finite_b[rows], block[rows], np.nan).reshape(-1, size, size), st.sigma)
            fmed, fstd = fmed.reshape(len(rows), nb), fstd.reshape(len(rows), nb)
            med[rows] = np.where(few[rows], fmed, med[rows])
            std[rows] = np.where(few[rows], fstd, std[rows])
        med, std = np.nan_to_num(med), np.nan_to_num(std)
        info.background[sl], info.rms[sl] = med, std
        if method == "mask":
            other = (labels > 0) & ~is_central & found[:, None, None]
            replace = _dilate(other, st.dilate) & ~is_central
        else:
            replace = ~_dilate(is_central, st.dilate) & found[:, None, None]
        info.replaced_fraction[sl] = replace.sum(axis=(1, 2)) / npix
        target = out[sl]
        for k in np.flatnonzero(replace.any(axis=(1, 2))):
            where = replace[k]
            if method == "mask":
                rng = np.random.default_rng([st.seed, int(key_arr[start + k])])
                noise = rng.standard_normal((nb, int(where.sum())))
                target[k][:, where] = (med[k][:, None] + std[k][:, None] * noise).astype(out.dtype)
            else:
                target[k][:, where] = med[k][:, None].astype(out.dtype)
    return out, info


def isolate_images(images: Any, method: str, settings: IsolationSettings | dict[str, Any] | None = None,
                   keys: Sequence[Any] | np.ndarray | None = None) -> tuple[Any, IsolationInfo]:
    """:func:`isolate_central` on an :class:`~astromodal.data.dataset.Images` block (all its bands, native
    pixels): a new Images block (same bands, pixel scale, unit; errors kept as they are) and the info."""
    from astromodal.data.dataset import Images

    st = settings.model_dump() if isinstance(settings, IsolationSettings) else dict(settings or {})
    out, info = isolate_central(images.pixels.read(), method, bands=images.bands, keys=keys, **st)
    return Images(out, images.bands, images.pixel_scale, images.unit, images.errors), info


# --------------------------------------------------------------------------------------- aperture photometry
def aperture_weights(size: int, radii_pix: Sequence[float]) -> np.ndarray:
    """(R, S, S) float64: the exact overlap of each circular aperture of radius ``radii_pix`` (pixels) centred
    on the cutout centre ((S - 1) / 2, module doc of :mod:`astromodal.transforms.images`) with every pixel,
    from photutils ``CircularAperture(...).to_mask(method="exact").to_image``. A radius larger than S / 2
    (the aperture would leave the cutout) is one BadValueError line."""
    from photutils.aperture import CircularAperture

    c = (size - 1) / 2.0
    out = np.empty((len(radii_pix), size, size))
    for k, r in enumerate(radii_pix):
        if not (0 < float(r) <= size / 2.0):
            raise BadValueError(f"aperture radius {float(r):.3f} px must be in (0, {size / 2:g}] for {size}-pixel "
                                "cutouts")
        out[k] = CircularAperture((c, c), float(r)).to_mask(method="exact").to_image((size, size))
    return out


def aperture_fluxes(pixels: np.ndarray, radii_pix: Sequence[float]) -> np.ndarray:
    """(N, B, R) aperture sums of ``pixels`` (N, B, S, S) at the centre: the same numbers as photutils
    ``aperture_photometry(image, CircularAperture(centre, r), method="exact")`` per image and band, as one
    weighted sum over all cutouts (:func:`aperture_weights`). A NaN pixel inside an aperture gives NaN."""
    pix = np.asarray(pixels)
    if pix.ndim != 4 or pix.shape[-1] != pix.shape[-2]:
        raise BadValueError(f"aperture photometry needs cutouts (objects, bands, S, S), got shape {pix.shape}")
    w = aperture_weights(pix.shape[-1], radii_pix)
    n, b, s, _ = pix.shape
    flat = pix.reshape(n * b, s * s).astype(np.float64, copy=False)
    wf = w.reshape(len(w), -1)
    inside = wf > 0
    out = np.empty((n * b, len(w)))
    for k in range(len(w)):  # only the aperture's own pixels: a NaN outside it does not matter
        out[:, k] = flat[:, inside[k]] @ wf[k, inside[k]]
    return out.reshape(n, b, len(w))


def asinh_magnitudes(flux_nmgy: np.ndarray, softening: Sequence[float] | np.ndarray) -> np.ndarray:
    """Asinh magnitudes (Lupton, Gunn & Szalay 1999) of fluxes in nanomaggies:
    ``m = -(2.5 / ln 10) [asinh(f / (2 b)) + ln b]`` with ``f`` the flux in maggies (``flux_nmgy * 1e-9``)
    and ``b`` the softening in maggies, broadcast over the last axis (one per band; SDSS values in
    :data:`SDSS_SOFTENING`). Finite for zero and negative fluxes (``m(0) = -2.5 log10 b``); for f >> b it is the
    Pogson magnitude ``22.5 - 2.5 log10(flux_nmgy)``."""
    f = np.asarray(flux_nmgy, dtype=np.float64) * 1e-9
    b = np.asarray(softening, dtype=np.float64)
    return -(2.5 / np.log(10.0)) * (np.arcsinh(f / (2.0 * b)) + np.log(b))


__all__ = [
    "METHODS", "MIN_SKY_PIXELS", "SDSS_SOFTENING", "SMALL_CUTOUT", "IsolationInfo", "IsolationSettings",
    "aperture_fluxes", "aperture_weights", "asinh_magnitudes", "clipped_stats", "isolate_central",
    "isolate_images", "object_keys",
]
