"""Survey frames -> model images: WCS cutouts, source detection, Lupton RGB composites, the ROI crop, resizing.

The MESCR path (study B, ``../shared/docs/seed-methods.md``): for each star an aligned (5, S, S) ugriz
cutout in nanomaggies (:func:`cutouts_from_frames`, astropy ``Cutout2D`` through *each band's own* WCS,
because the five SDSS frames of a field are not pixel-aligned); two Lupton et al. (2004) RGB composites
``gri`` and ``urz`` (:func:`lupton_rgb`, astropy ``make_lupton_rgb``, Q = 8, stretch = 0.5, minimum = 0),
or any combination of the study's Table A1 (:data:`TABLE_A1_COMBINATIONS`); the ROI crop on the r band
(:func:`roi_side`, :func:`roi_crop`); and a resize to the model size (:func:`resize_images`: bilinear up,
area down). Every step is a fixed function of one object's pixels: nothing is fitted (the no-leak rule
of :mod:`astromodal.data.views`).

Conventions:

* Pixels are 0-based (the centre of the first pixel is 0.0), as numpy and astropy's ``world_to_pixel``.
* **Centre pixel** of an S x S cutout: for odd S the pixel ``S // 2``; for even S there is no central
  pixel, and the centre is the corner shared by the four central pixels, at ``(S - 1) / 2`` (31.5 for
  S = 64: between pixels 31 and 32). ``Cutout2D`` cuts whole pixels (no resampling: the values stay the
  survey's), so a source lands within half a pixel of that centre on each axis, in every band.
  The bands' pixel grids differ by fractions of a pixel, so with whole pixels the five bands of one star are
  offset by up to one pixel from each other: colour fringes in an RGB composite once the ROI crop zooms in.
  ``align="subpixel"`` removes them: a cutout 2 px larger is cut, shifted by the fractional offset of the
  source (at most half a pixel per axis; ``scipy.ndimage.shift``, cubic spline, which keeps the total flux
  to a fraction of a per cent and correlates the noise of neighbouring pixels) and trimmed, so the source
  sits on the centre within a few hundredths of a pixel in every band. Only the translation is corrected:
  the bands of one SDSS field share their orientation (to far below a pixel over 64 px); for frames of
  different orientations, reproject them first. An object 1 px nearer an edge is then skipped as too near.
* RGB channel order: the images are (N, 3, S, S) in RGB order, the reddest band red: a part ``b1 b2 b3``
  (``gri``) maps b3 -> red, b2 -> green, b1 -> blue, as ``make_lupton_rgb(i, r, g)`` in astropy's
  documentation; a 2-band part ``b1 b2`` is (b1, mean(b1, b2), b2) as blue, green, red (Wu & Boada 2019:
  for ``gr``, blue = g, red = r, green = their average). Lupton's stretch treats the three channels alike,
  so the order matters only for display (``images.transpose(0, 2, 3, 1)`` is a displayable RGB picture).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from astromodal.errors import BadValueError, ConfigError

if TYPE_CHECKING:
    from astromodal.data.readers.sdss_frames import Frame

SDSS_BANDS = ("u", "g", "r", "i", "z")

#: the combination the study uses throughout (r reused): gri + urz
PAPER_COMBINATION = "gri+urz"

#: the 25 other band combinations of the study's Table A1 (section 4.3.1), named as the paper names them:
#: 15 pairs of 3-band images reusing one band, then 10 pairs of a 3-band and a 2-band image (the 2-band
#: image made as Wu & Boada 2019: (b1, mean, b2))
TABLE_A1_COMBINATIONS: tuple[str, ...] = (
    "gri+ruz", "gri+iuz", "gri+guz", "gru+giz", "gru+riz", "gru+iuz", "giu+grz", "giu+riz", "giu+ruz",
    "giz+riu", "giz+ruz", "guz+riu", "guz+riz", "riu+grz", "iuz+grz",
    "gri+uz", "gru+iz", "grz+iu", "giu+rz", "giz+ru", "guz+ri", "riu+gz", "riz+gu", "ruz+gi", "iuz+gr",
)

#: the Lupton et al. (2004) settings of the study's public code (astropy's default minimum)
LUPTON_Q = 8.0
LUPTON_STRETCH = 0.5
LUPTON_MINIMUM = 0.0

#: the ROI settings of the paper (section 2.2) and of the study's public code (compiled, never called)
ROI_PAPER = {"l": 6, "alpha": 0.05, "beta": 0.2}
ROI_PUBLIC_CODE = {"l": 12, "alpha_start": 0.11, "alpha": 0.05, "beta": 0.2, "max_side": 62}
ROI_VARIANTS = ("paper", "ring", "extent", "public_code")


# --------------------------------------------------------------------------------------- band combinations
def check_part(part: str, bands: Sequence[str] = SDSS_BANDS, where: str = "") -> str:
    """``part`` if it is 2 or 3 distinct letters of ``bands`` (``gri``, ``uz``); else one ConfigError line."""
    text = str(part)
    prefix = f"{where}: " if where else ""
    letters = list(text)
    if not (2 <= len(letters) <= 3) or len(set(letters)) != len(letters) or any(b not in bands for b in letters):
        raise ConfigError(f"{prefix}unknown band combination {text!r}: an RGB image is 3 (e.g. 'gri') or 2 "
                          f"(e.g. 'uz') distinct bands of {''.join(bands)}")
    return text


def parse_combination(name: str, bands: Sequence[str] = SDSS_BANDS) -> list[str]:
    """The RGB parts of a band combination: ``"gru+iuz"`` -> ``["gru", "iuz"]``, ``"gri"`` -> ``["gri"]``.

    Each part is 3 or 2 distinct letters of ``bands``; anything else is one ConfigError line naming it.
    """
    text = str(name).strip()
    parts = text.split("+")
    try:
        return [check_part(p, bands) for p in parts]
    except ConfigError:
        raise ConfigError(f"unknown band combination {text!r}: parts of 3 or 2 distinct bands of {''.join(bands)} "
                          f"joined by '+', e.g. {PAPER_COMBINATION!r} or one of Table A1 ({', '.join(TABLE_A1_COMBINATIONS[:3])}, "
                          "...)") from None


def _band_rows(band_names: Sequence[str], part: str) -> list[int]:
    names = [str(b) for b in band_names]
    missing = [b for b in part if b not in names]
    if missing:
        raise BadValueError(f"band combination {part!r} needs band{'s' if len(missing) > 1 else ''} "
                            f"{''.join(missing)}; these images have bands {''.join(names)}")
    return [names.index(b) for b in part]


# --------------------------------------------------------------------------------------- Lupton RGB
def lupton_rgb(
    pixels: np.ndarray,
    band_names: Sequence[str],
    part: str,
    Q: float = LUPTON_Q,
    stretch: float = LUPTON_STRETCH,
    minimum: float = LUPTON_MINIMUM,
) -> np.ndarray:
    """Lupton et al. (2004) colour composites of one part (``gri``, ``urz``, ``uz``): (N, 3, S, S) float32 in [0, 1].

    ``pixels`` (N, B, S, S) in the images' unit (nanomaggies), ``band_names`` its B bands. Each image goes
    through astropy ``make_lupton_rgb(red, green, blue, minimum, stretch, Q)`` (an asinh stretch of the
    mean intensity that keeps colours), which returns 8-bit values; they are divided by 255 as the study
    does, so the values are the study's exactly. Channels in RGB order (see the module doc): for ``b1 b2 b3``
    (red, green, blue) = (b3, b2, b1); for ``b1 b2`` = (b2, mean(b1, b2), b1). A part that is not 2 or 3
    distinct letters of ugriz is one ConfigError line; a band the images lack is a BadValueError.
    """
    from astropy.visualization import make_lupton_rgb

    check_part(part)
    pixels = np.asarray(pixels)
    if pixels.ndim != 4:
        raise BadValueError(f"images must be (objects, bands, height, width), got shape {pixels.shape}")
    if not (Q > 0 and stretch > 0):
        raise ConfigError(f"Lupton RGB needs Q > 0 and stretch > 0, got Q={Q}, stretch={stretch}")
    rows = _band_rows(band_names, part)
    n, _, h, w = pixels.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    # astropy's Lupton mapping is a per-pixel function (the minimum is fixed, no image statistic is used), so
    # a block of objects stacked into one tall 2-D image gives each object's own result, much faster
    block = max(1, (1 << 22) // max(1, h * w))
    for start in range(0, n, block):
        chunk = np.asarray(pixels[start:start + block], dtype=np.float64)
        m = len(chunk)
        chans = [chunk[:, r].reshape(m * h, w) for r in rows]
        if len(chans) == 2:
            chans = [chans[0], 0.5 * (chans[0] + chans[1]), chans[1]]
        blue, green, red = chans
        with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides 0 by 0 where the intensity is 0
            rgb = make_lupton_rgb(red, green, blue, minimum=minimum, stretch=stretch, Q=Q)  # (m h, w, 3) uint8
        out[start:start + m] = np.moveaxis(rgb.reshape(m, h, w, 3), -1, 1).astype(np.float32) / np.float32(255.0)
    return out


def combination_images(pixels: np.ndarray, band_names: Sequence[str], combination: str,
                       **lupton: Any) -> dict[str, np.ndarray]:
    """``{part: (N, 3, S, S)}`` for each part of a combination (``"gri+urz"`` -> gri and urz images)."""
    return {p: lupton_rgb(pixels, band_names, p, **lupton) for p in parse_combination(combination)}


# --------------------------------------------------------------------------------------- ROI crop
def roi_window(size: int, side: int) -> tuple[int, int]:
    """(start, stop) rows (and columns) of the centred ``side`` x ``side`` window of an S x S image
    (start ``(S - side) // 2``; for even S and even side exactly centred on the image centre)."""
    start = (size - side) // 2
    return start, start + side


def _check_roi(r: np.ndarray, l: int, alpha: float, beta: float, variant: str) -> np.ndarray:  # noqa: E741 (the paper's name)
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 3 or r.shape[1] != r.shape[2]:
        raise BadValueError(f"the ROI is found on square images (N, S, S), got shape {r.shape}")
    if variant not in ROI_VARIANTS:
        raise ConfigError(f"unknown ROI variant {variant!r}; choose one of {list(ROI_VARIANTS)}")
    if not (isinstance(l, (int, np.integer)) and not isinstance(l, bool) and 1 <= l <= r.shape[1]):
        raise ConfigError(f"ROI start side l must be a whole number from 1 to the image side {r.shape[1]}, got {l!r}")
    if not 0.0 <= beta <= 1.0:
        raise ConfigError(f"ROI beta (the invalid fraction) must be in [0, 1], got {beta}")
    return r


def _window_counts(mask: np.ndarray, sides: Sequence[int]) -> np.ndarray:
    """(N, len(sides)): the True pixels of ``mask`` (N, S, S) in each centred window (2-D prefix sums: every
    window costs four look-ups, and each ring is the difference of two windows)."""
    n, size, _ = mask.shape
    prefix = np.zeros((n, size + 1, size + 1), dtype=np.int64)
    prefix[:, 1:, 1:] = mask.cumsum(axis=1).cumsum(axis=2)
    out = np.empty((n, len(sides)), dtype=np.int64)
    for k, side in enumerate(sides):
        lo, hi = roi_window(size, int(side))
        out[:, k] = prefix[:, hi, hi] - prefix[:, lo, hi] - prefix[:, hi, lo] + prefix[:, lo, lo]
    return out


def _first(condition: np.ndarray, sides: np.ndarray, default: int) -> np.ndarray:
    """Per row, the side at the first True column of ``condition``, else ``default``."""
    hit = condition.any(axis=1)
    return np.where(hit, sides[np.argmax(condition, axis=1)], default).astype(np.int64)


def roi_sides(r: np.ndarray, l: int = 6, alpha: float = 0.05, beta: float = 0.2,  # noqa: E741 (the paper's name)
              variant: str = "paper") -> np.ndarray:
    """:func:`roi_side` of each image of ``r`` (N, S, S): (N,) int."""
    r = _check_roi(r, l, alpha, beta, variant)
    size = r.shape[1]
    if variant in ("extent", "public_code"):
        start, alpha_start, max_side = l, alpha, size
        if variant == "public_code":
            start = min(ROI_PUBLIC_CODE["l"] if l == ROI_PAPER["l"] else l, size)
            alpha_start, max_side = ROI_PUBLIC_CODE["alpha_start"], min(ROI_PUBLIC_CODE["max_side"], size)
        sides = np.arange(start, max(start, max_side) + 1, 2)
        start_bad = _window_counts(r <= alpha_start, sides[:1])[:, 0] / float(start * start)
        counts = _window_counts(r <= alpha, sides)
        ring_frac = np.diff(counts, axis=1) / np.diff(sides**2)[None, :].astype(np.float64)
        grown = (_first(ring_frac > beta, sides[1:], int(sides[-1])) if len(sides) > 1  # the ring crossing
                 else np.full(len(r), start, dtype=np.int64))  # the edge is kept
        return np.where(start_bad > beta, start, grown).astype(np.int64)
    sides = np.array(sorted({*range(l, size, 2), size}))
    counts = _window_counts(r <= alpha, sides)
    frac = counts / (sides**2)[None, :].astype(np.float64)
    if variant == "ring":
        frac[:, 1:] = np.diff(counts, axis=1) / np.diff(sides**2)[None, :].astype(np.float64)
    return _first(frac <= beta, sides, size)


def roi_side(r: np.ndarray, l: int = 6, alpha: float = 0.05, beta: float = 0.2, variant: str = "paper") -> int:  # noqa: E741 (the paper's name)
    """The side of the ROI window of one r-band image (S, S) (see :func:`roi_window` for where it lies).

    A pixel is *invalid* when its intensity is <= ``alpha``. The window starts as the centred ``l`` x ``l``
    one and grows by one pixel on every side (side + 2) at each step, never past S:

    * ``paper`` (the paper's text, section 2.2, the default): while the invalid fraction *of the whole
      window* is > ``beta``, grow. (The paper counts only the newly added ring at each step, for speed; the
      counts here come from 2-D prefix sums, the same numbers.) Taken literally this stops at once (side
      l) on a source whose central l x l is at least 1 - beta valid, and grows towards S when the centre is
      faint: on the real SDSS field 82 % of the sources get 6 and the rest 64. It is the paper's stated
      rule, kept as written.
    * ``ring``: the same rule with the fraction of *the new ring alone* deciding after the first window
      (the other reading of "only the newly added annular area").
    * ``extent``: the opposite test, the one that matches the paper's Figure A2 and its "most ROIs between
      10 x 10 and 20 x 20": a start window more than ``beta`` invalid is the ROI; otherwise grow while the
      new ring is at most ``beta`` invalid (the source still fills it), keeping the ring that crosses the
      source's edge (more than ``beta`` invalid). On the real SDSS field: 6-15 px for 90 % of the sources.
    * ``public_code`` (the study's compiled, never-called helper): ``extent`` with a 12 x 12 start box tested
      at threshold 0.11, the rings at ``alpha`` (0.05), and a largest side of 62. For this variant ``l`` = 6
      (the paper's default) means the code's 12.
    """
    r = np.asarray(r)
    if r.ndim != 2:
        raise BadValueError(f"the ROI is found on one square image (S, S), got shape {r.shape}")
    return int(roi_sides(r[None], l, alpha, beta, variant)[0])


def roi_crop(
    pixels: np.ndarray,
    r: np.ndarray,
    size: int | None = None,
    l: int = 6,  # noqa: E741 (the paper's name)
    alpha: float = 0.05,
    beta: float = 0.2,
    variant: str = "paper",
) -> tuple[np.ndarray, np.ndarray]:
    """Crop every channel of ``pixels`` (N, C, S, S) to each object's ROI window found on ``r`` (N, S, S), then
    resize to ``size`` x ``size`` (default S) with :func:`resize_images`. Returns (images (N, C, size, size)
    float32, sides (N,) int)."""
    pixels = np.asarray(pixels)
    r = np.asarray(r)
    if pixels.ndim != 4 or r.shape != (pixels.shape[0], *pixels.shape[2:]):
        raise BadValueError(f"roi_crop needs pixels (N, C, S, S) and r (N, S, S); got {pixels.shape} and {r.shape}")
    n, c, s, _ = pixels.shape
    size = s if size is None else int(size)
    sides = roi_sides(r, l, alpha, beta, variant) if n else np.zeros(0, dtype=np.int64)
    out = np.empty((n, c, size, size), dtype=np.float32)
    for side in np.unique(sides):
        rows = np.flatnonzero(sides == side)
        lo, hi = roi_window(s, int(side))
        out[rows] = resize_images(pixels[rows][:, :, lo:hi, lo:hi], size)
    return out, sides


# --------------------------------------------------------------------------------------- resize
def resize_images(pixels: np.ndarray, size: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, size, size) float32: bilinear interpolation to enlarge, area averaging to reduce
    (the study's section 4.3.2; torch ``interpolate``, ``align_corners=False``); the same size is a copy.
    A side enlarged and the other reduced (a non-square input) uses bilinear."""
    import torch
    import torch.nn.functional as F

    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 4:
        raise BadValueError(f"images must be (objects, channels, height, width), got shape {pixels.shape}")
    size = int(size)
    if size < 1:
        raise ConfigError(f"the image size must be a positive number of pixels, got {size}")
    h, w = pixels.shape[-2:]
    if (h, w) == (size, size):
        return pixels.copy()
    if not len(pixels):
        return np.zeros((0, pixels.shape[1], size, size), dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(pixels))
    if size <= h and size <= w:
        y = F.interpolate(x, size=(size, size), mode="area")
    else:
        y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return y.numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------- cutouts
def _as_fields(frames: Any) -> list[Mapping[str, Frame]]:
    """One field ``{band: Frame}``, a list of them, or ``{key: {band: Frame}}`` -> a list of fields."""
    if isinstance(frames, Mapping):
        values = list(frames.values())
        if values and isinstance(values[0], Mapping):
            return [v for v in values]
        return [frames]
    return list(frames)


#: per-object outcome of :func:`cut_field`
KEPT, EDGE, OFF, NAN = 0, 1, 2, 3


def cut_field(
    field: Mapping[str, Frame],
    ra: np.ndarray,
    dec: np.ndarray,
    size: int = 64,
    bands: Sequence[str] = SDSS_BANDS,
    nan: str = "skip",
    ids: Sequence[Any] | None = None,
    align: str = "pixel",
) -> tuple[np.ndarray, np.ndarray]:
    """Cutouts of one field ``{band: Frame}`` (see :func:`cutouts_from_frames`): ``(pixels (N, B, S, S)
    float32, status (N,) int8)``, status :data:`KEPT`, :data:`EDGE` (on a frame of the field, but not wholly
    on every band's frame), :data:`OFF` (on none of them) or :data:`NAN` (whole, with NaN pixels; with
    ``nan="error"`` one BadValueError line instead). ``align``: ``"pixel"`` (whole pixels) or
    ``"subpixel"`` (shifted onto the centre; module text)."""
    from astropy.nddata import Cutout2D
    from astropy.nddata.utils import NoOverlapError, PartialOverlapError

    if nan not in ("skip", "error"):
        raise ConfigError(f"nan must be 'skip' or 'error', not {nan!r}")
    if align not in ALIGNMENTS:
        raise ConfigError(f"align must be one of {', '.join(ALIGNMENTS)}, not {align!r}")
    size = int(size)
    if size < 2:
        raise ConfigError(f"the cutout size must be at least 2 pixels, got {size}")
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise BadValueError(f"ra and dec must be two 1-D arrays of one length, got shapes {ra.shape} and {dec.shape}")
    bands = [str(b) for b in bands]
    missing = [b for b in bands if b not in field]
    if missing:
        raise BadValueError(f"a field lacks the frame{'s' if len(missing) > 1 else ''} of band(s) {''.join(missing)}")
    n = len(ra)
    pixels = np.zeros((n, len(bands), size, size), dtype=np.float32)
    status = np.full(n, OFF, dtype=np.int8)
    finite = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    if not len(finite):
        return pixels, status
    xy = {b: field[b].to_pixel(ra[finite], dec[finite]) for b in bands}
    for j, row in enumerate(finite):
        stack: list[np.ndarray] = []
        on_frame = False
        for b in bands:
            x, y = float(xy[b][0][j]), float(xy[b][1][j])
            frame = field[b]
            h, w = frame.shape
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            on_frame |= -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5
            try:
                if align == "pixel":
                    stack.append(Cutout2D(frame.data, (x, y), (size, size), mode="strict", copy=True).data)
                else:
                    stack.append(_subpixel_cutout(Cutout2D(frame.data, (x, y), (size + 2, size + 2), mode="strict",
                                                           copy=True), size))
            except (NoOverlapError, PartialOverlapError, ValueError):
                pass  # the other bands are looked at too, so that "on a frame" is known
        if len(stack) != len(bands):
            status[row] = EDGE if on_frame else OFF
            continue
        cube = np.stack(stack).astype(np.float32)
        bad = ~np.isfinite(cube)
        if bad.any():
            if nan == "error":
                oid = ids[row].item() if ids is not None and isinstance(ids[row], np.generic) else None if ids is None else ids[row]
                who = f"object {oid!r} (row {row})" if ids is not None else f"row {row}"
                band = bands[int(np.flatnonzero(bad.reshape(len(bands), -1).any(axis=1))[0])]
                src = f" ({field[band].path.name})" if field[band].path is not None else ""
                raise BadValueError(f"the cutout of {who} at ra {ra[row]:.6f}, dec {dec[row]:.6f} has "
                                    f"{int(bad.sum())} NaN or infinite pixel(s) in band {band}{src}")
            status[row] = NAN
            continue
        pixels[row] = cube
        status[row] = KEPT
    return pixels, status


#: how cutouts are placed on the source: whole pixels, or shifted by the source's fractional offset
ALIGNMENTS = ("pixel", "subpixel")


def _subpixel_cutout(big: Any, size: int) -> np.ndarray:
    """The (size, size) cutout of a (size + 2)-pixel ``Cutout2D`` shifted so that its input position lies
    on the centre ``(size - 1) / 2`` (cubic spline, ``scipy.ndimage.shift``), then trimmed by one pixel."""
    from scipy.ndimage import shift

    x, y = big.input_position_cutout
    centre = (size + 1) / 2.0  # the centre of the (size + 2) cutout
    data = np.asarray(big.data, dtype=np.float64)
    moved = shift(data, (centre - y, centre - x), order=3, mode="nearest")
    return moved[1:-1, 1:-1]


def combine_status(statuses: Sequence[np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """The outcome over several fields (each object's first :data:`KEPT` or :data:`NAN`, else :data:`EDGE`
    when on any frame, else :data:`OFF`) and the counts ``kept, skipped_edge, skipped_off, skipped_nan``."""
    statuses = [np.asarray(s) for s in statuses]
    if not statuses:
        raise BadValueError("no field to cut from")
    final = np.full(len(statuses[0]), OFF, dtype=np.int8)
    done = np.zeros(len(final), dtype=bool)
    for st in statuses:
        take = ~done & ((st == KEPT) | (st == NAN))
        final[take] = st[take]
        done |= take
        final[~done & (st == EDGE)] = EDGE
    counts = {"kept": int((final == KEPT).sum()), "skipped_edge": int((final == EDGE).sum()),
              "skipped_off": int((final == OFF).sum()), "skipped_nan": int((final == NAN).sum())}
    return final, counts


def cutouts_from_frames(
    frames: Any,
    ra: Sequence[float] | np.ndarray,
    dec: Sequence[float] | np.ndarray,
    size: int = 64,
    bands: Sequence[str] = SDSS_BANDS,
    nan: str = "skip",
    ids: Sequence[Any] | None = None,
    align: str = "pixel",
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Aligned (B, S, S) cutouts centred on each sky position, one per band through that band's own WCS.

    ``frames``: one field ``{band: Frame}`` (:func:`~astromodal.data.readers.sdss_frames.read_fields`
    gives ``{(run, camcol, field): {band: Frame}}``, also accepted, as is a list of fields). Each position
    is converted to 0-based pixels by every band's WCS (astropy ``world_to_pixel``) and cut with astropy
    ``Cutout2D(mode="strict")``: whole pixels, no resampling, the source within half a pixel of the
    cutout's centre (module doc) in every band; ``align="subpixel"``: shifted onto the centre (module
    doc). An object is taken from the first field where every band's cutout lies wholly on its frame.

    Returns ``(pixels (N, B, S, S) float32, ok (N,) bool, counts)``; rows with ``ok`` False are zeros.
    ``counts``: ``kept``; ``skipped_edge`` (on a frame but too near its edge in some band for a whole
    cutout); ``skipped_off`` (on no frame at all); ``skipped_nan`` (a cutout with NaN or infinite pixels:
    ``nan="skip"`` drops the object and counts it, ``nan="error"`` raises one BadValueError line naming the
    object and band). Positions that are not finite count as off every frame.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    fields = _as_fields(frames)
    pixels = np.zeros((len(ra), len(bands), int(size), int(size)), dtype=np.float32)
    done = np.zeros(len(ra), dtype=bool)
    statuses = []
    for field in fields:
        rows = np.flatnonzero(~done)
        st = np.full(len(ra), OFF, dtype=np.int8)
        if len(rows):
            sub_ids = None if ids is None else [ids[r] for r in rows]
            pix, st_rows = cut_field(field, ra[rows], dec[rows], size, bands, nan, sub_ids, align)
            st[rows] = st_rows
            kept = rows[st_rows == KEPT]
            pixels[kept] = pix[st_rows == KEPT]
            done[rows[(st_rows == KEPT) | (st_rows == NAN)]] = True
        statuses.append(st)
    final, counts = combine_status(statuses) if statuses else (np.full(len(ra), OFF, np.int8), {
        "kept": 0, "skipped_edge": 0, "skipped_off": len(ra), "skipped_nan": 0})
    return pixels, final == KEPT, counts


# --------------------------------------------------------------------------------------- source detection
def detect_sources_on(
    frame: Frame,
    nsigma: float = 3.0,
    npixels: int = 10,
    fwhm: float = 3.0,
    box_size: int = 64,
    deblend: bool = True,
    max_sources: int | None = None,
) -> Any:
    """Sources on one frame (the r frame in MESCR) with photutils: an astropy Table ``id, ra, dec, x, y,
    flux, area``, brightest first.

    The background and its RMS come from ``Background2D`` (``box_size`` boxes, 3-sigma clipped medians,
    a 3 x 3 median filter); the background-subtracted image is smoothed with a Gaussian kernel of
    ``fwhm`` pixels; ``detect_sources`` keeps groups of >= ``npixels`` connected pixels above ``nsigma``
    times the RMS; ``deblend_sources`` splits blended groups (``deblend=False`` skips it); ``SourceCatalog``
    gives the centroids (x, y: 0-based pixels, windowed on the unsmoothed image) and the segment fluxes
    (nanomaggies); ra, dec are the centroids through the frame's WCS (degrees). ``max_sources`` keeps the
    brightest ones. A frame with no source gives an empty table.
    """
    from astropy.convolution import convolve
    from astropy.stats import SigmaClip
    from astropy.table import Table
    from photutils.background import Background2D, MedianBackground
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel

    data = np.asarray(frame.data, dtype=np.float64)
    mask = ~np.isfinite(data)
    data = np.where(mask, 0.0, data)
    box = int(min(box_size, *data.shape))
    bkg = Background2D(data, box, mask=mask if mask.any() else None, filter_size=(3, 3),
                       sigma_clip=SigmaClip(sigma=3.0), bkg_estimator=MedianBackground())
    sub = data - bkg.background
    ksize = 2 * int(np.ceil(1.5 * fwhm)) + 1
    kernel = make_2dgaussian_kernel(fwhm, size=ksize)
    smooth = convolve(sub, kernel)
    threshold = nsigma * bkg.background_rms
    segm = detect_sources(smooth, threshold, int(npixels), mask=mask if mask.any() else None)
    cols = ("id", "ra", "dec", "x", "y", "flux", "area")
    if segm is None:
        return Table(names=cols, dtype=(np.int64, float, float, float, float, float, float))
    if deblend and len(segm.labels):
        try:
            import skimage  # noqa: F401  (photutils' deblending uses its watershed)
        except ImportError:
            raise ConfigError("deblending sources needs scikit-image (pip install scikit-image); "
                              "or detect without deblending (--no-deblend)") from None
        segm = deblend_sources(smooth, segm, int(npixels), progress_bar=False)
    cat = SourceCatalog(sub, segm, convolved_data=smooth, mask=mask if mask.any() else None)
    new_names = hasattr(type(cat), "x_centroid")  # photutils >= 3 renamed xcentroid
    x = np.asarray(cat.x_centroid if new_names else cat.xcentroid, dtype=np.float64)
    y = np.asarray(cat.y_centroid if new_names else cat.ycentroid, dtype=np.float64)
    flux = np.asarray(cat.segment_flux, dtype=np.float64)
    area = np.asarray(cat.area.value if hasattr(cat.area, "value") else cat.area, dtype=np.float64)
    good = np.isfinite(x) & np.isfinite(y)
    x, y, flux, area = x[good], y[good], flux[good], area[good]
    order = np.argsort(-np.nan_to_num(flux, nan=-np.inf), kind="stable")
    if max_sources is not None:
        order = order[: int(max_sources)]
    x, y, flux, area = x[order], y[order], flux[order], area[order]
    sky = frame.wcs.pixel_to_world(x, y)
    ra = np.atleast_1d(sky.icrs.ra.deg).astype(np.float64)
    dec = np.atleast_1d(sky.icrs.dec.deg).astype(np.float64)
    return Table([np.arange(len(x), dtype=np.int64), ra, dec, x, y, flux, area], names=cols)


__all__ = [
    "LUPTON_MINIMUM", "LUPTON_Q", "LUPTON_STRETCH", "PAPER_COMBINATION", "ROI_PAPER", "ROI_PUBLIC_CODE", "ROI_VARIANTS",
    "TABLE_A1_COMBINATIONS", "check_part", "combination_images", "combine_status", "cut_field", "cutouts_from_frames", "detect_sources_on",
    "lupton_rgb", "parse_combination", "resize_images", "roi_crop", "roi_side", "roi_sides", "roi_window",
]
