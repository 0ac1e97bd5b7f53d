"""Spectral transforms: resampling, mean filtering, normalisation and the 28 x 28 image form.

The AstroSpectra-MNIST pipeline (study A) in this project is

1. every spectrum is put on one log-linear wavelength grid: ``grid_size`` = 3601 samples from
   ``wave_min`` = 3700 to ``wave_max`` = 9100 Angstrom (the LAMOST range; :func:`resample`,
   flux-conserving by default);
2. the 3601 fluxes are averaged in windows of ``bin_width`` = 5 pixels with stride 5; the last window
   holds one pixel only, so 3601 -> 721 values ("LineAstroSpectra", :func:`mean_filter`);
3. each 721-vector is min-max scaled to [0, 1] (:func:`normalise`);
4. for the image form, 63 pixels of ``pad_value`` = 0 are appended (721 + 63 = 784 = 28 x 28), the
   vector is filled row by row into a 28 x 28 image and stored as 8-bit grey levels
   ``uint8 = round(255 * v)`` (:func:`to_image`); :func:`from_image` undoes this exactly up to the
   8-bit quantisation (error <= 0.5/255).

The study did not publish its wavelength range, normalisation or padding: these are this project's
choices, all settings of :class:`SpectrumPreprocessing`. Wavelengths are in Angstrom throughout.

Also here, for the Gaia XP study (C): :func:`l2_normalise`, :func:`context_features` (raw max, min of
each spectrum) and :func:`pad_to_square` (343 -> 361 -> 19 x 19).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from astromodal.errors import BadValueError, ConfigError

if TYPE_CHECKING:
    from astromodal.data.dataset import Dataset


class SpectrumPreprocessing(BaseModel):
    """Settings of the spectrum -> LineAstroSpectra (721) -> 28 x 28 image pipeline (study A).

    Wavelengths in Angstrom. Defaults reproduce the published shapes: 3601 samples -> 721 after a
    window-5 mean filter -> 721 + 63 padding = 28 x 28.
    """

    model_config = ConfigDict(extra="forbid")

    grid_size: int = Field(3601, ge=2, description="samples of the common log-linear wavelength grid")
    wave_min: float = Field(3700.0, gt=0, description="first grid wavelength [Angstrom]")
    wave_max: float = Field(9100.0, gt=0, description="last grid wavelength [Angstrom]")
    resample: Literal["flux", "linear"] = Field(
        "flux", description="flux-conserving (pixel-overlap average) or linear interpolation"
    )
    normalise: Literal["minmax", "median", "l2", "standard", "none"] = Field(
        "minmax", description="per-spectrum scaling after the mean filter"
    )
    bin_width: int = Field(5, ge=1, description="mean-filter window and stride [pixels]")
    image_side: int = Field(28, ge=1, description="side of the square image")
    pad_value: float = Field(0.0, ge=0.0, le=1.0, description="value of the padding pixels (0..1)")

    @model_validator(mode="after")
    def _check(self) -> SpectrumPreprocessing:
        if self.wave_max <= self.wave_min:
            raise ValueError(f"wave_max ({self.wave_max}) must be larger than wave_min ({self.wave_min})")
        if self.line_length > self.image_side**2:
            raise ValueError(
                f"{self.line_length} mean-filtered values do not fit a {self.image_side}x{self.image_side} image"
            )
        return self

    @property
    def line_length(self) -> int:
        """Length of the mean-filtered vector: ceil(grid_size / bin_width) (721 by default)."""
        return -(-self.grid_size // self.bin_width)

    def grid(self) -> np.ndarray:
        """The common wavelength grid [Angstrom]."""
        return log_grid(self.wave_min, self.wave_max, self.grid_size)


def make_settings(settings: SpectrumPreprocessing | dict | None) -> SpectrumPreprocessing:
    """A :class:`SpectrumPreprocessing` from settings, a dict of them, or None (defaults)."""
    if settings is None:
        return SpectrumPreprocessing()
    if isinstance(settings, SpectrumPreprocessing):
        return settings
    try:
        return SpectrumPreprocessing(**settings)
    except Exception as exc:  # pydantic ValidationError
        raise ConfigError(f"spectrum preprocessing settings: {exc}") from None


def log_grid(wave_min: float, wave_max: float, n: int) -> np.ndarray:
    """``n`` wavelengths [Angstrom] equally spaced in log10 from ``wave_min`` to ``wave_max``."""
    return 10.0 ** np.linspace(np.log10(wave_min), np.log10(wave_max), int(n))


# ---------------------------------------------------------------------------------------- resampling
class Resampled(NamedTuple):
    """Spectra on a new grid: flux, inverse variance and bad-pixel mask (True = bad), all (N, M)."""

    flux: np.ndarray
    ivar: np.ndarray
    mask: np.ndarray


def _edges(wave: np.ndarray) -> np.ndarray:
    """Pixel edges of a monotonic grid of pixel centres: midpoints, ends extended by half a pixel."""
    mid = 0.5 * (wave[1:] + wave[:-1])
    return np.concatenate([[wave[0] - (mid[0] - wave[0])], mid, [wave[-1] + (wave[-1] - mid[-1])]])


def _flux_matrix(old: np.ndarray, new: np.ndarray) -> tuple[object, np.ndarray]:
    """Sparse (M, L) matrix of overlap weights and the covered fraction of each new pixel."""
    from scipy import sparse

    e, big_e = _edges(old), _edges(new)
    lo, hi = big_e[:-1], big_e[1:]
    j0 = np.clip(np.searchsorted(e, lo, side="right") - 1, 0, len(old) - 1)
    j1 = np.clip(np.searchsorted(e, hi, side="left"), 1, len(old))
    k = int(max(1, (j1 - j0).max()))
    cols = j0[:, None] + np.arange(k)[None, :]
    valid = cols < j1[:, None]
    cols = np.minimum(cols, len(old) - 1)
    overlap = np.minimum(hi[:, None], e[cols + 1]) - np.maximum(lo[:, None], e[cols])
    overlap = np.where(valid, np.clip(overlap, 0.0, None), 0.0)
    covered = overlap.sum(axis=1)
    width = hi - lo
    fraction = covered / width
    weights = overlap / np.where(covered > 0, covered, 1.0)[:, None]
    rows = np.repeat(np.arange(len(new)), k)
    mat = sparse.csr_matrix((weights.ravel(), (rows, cols.ravel())), shape=(len(new), len(old)))
    mat.eliminate_zeros()
    return mat, fraction


def _linear_matrix(old: np.ndarray, new: np.ndarray) -> tuple[object, np.ndarray]:
    """Sparse (M, L) linear-interpolation matrix; covered = 1 inside the old range, else 0."""
    from scipy import sparse

    j = np.clip(np.searchsorted(old, new, side="right") - 1, 0, len(old) - 2)
    t = np.clip((new - old[j]) / (old[j + 1] - old[j]), 0.0, 1.0)
    inside = (new >= old[0]) & (new <= old[-1])
    rows = np.repeat(np.arange(len(new)), 2)
    cols = np.stack([j, j + 1], axis=1).ravel()
    vals = np.stack([1.0 - t, t], axis=1).ravel()
    mat = sparse.csr_matrix((vals, (rows, cols)), shape=(len(new), len(old)))
    mat.eliminate_zeros()
    return mat, inside.astype(float)


def fill_masked(flux: np.ndarray, mask: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Replace masked pixels by linear interpolation (in pixel index) between the nearest good ones.

    Pixels before the first (after the last) good pixel take its value. Vectorised over objects.
    A spectrum with no good pixel is an error naming it.
    """
    flux = np.asarray(flux, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return flux
    good = ~mask
    empty = ~good.any(axis=1)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        who = f"object {ids[row]!r} (row {row})" if ids is not None else f"row {row}"
        raise BadValueError(f"spectrum of {who} has no usable pixel (all masked, NaN or zero inverse variance)")
    n, length = flux.shape
    idx = np.broadcast_to(np.arange(length), (n, length))
    prev = np.maximum.accumulate(np.where(good, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(good, idx, length)[:, ::-1], axis=1)[:, ::-1]
    prev_ok, next_ok = prev >= 0, nxt < length
    p = np.where(prev_ok, prev, nxt)
    q = np.where(next_ok, nxt, prev)
    rows = np.arange(n)[:, None]
    fp, fq = flux[rows, p], flux[rows, q]
    span = np.where(q > p, q - p, 1)
    t = np.where(q > p, (idx - p) / span, 0.0)
    filled = fp + t * (fq - fp)
    return np.where(mask, filled, flux)


def _unique_grids(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if wave.ndim == 1:
        return wave[None, :], np.zeros(0, dtype=np.int64)
    grids, inverse = np.unique(wave, axis=0, return_inverse=True)
    return grids, inverse.reshape(-1)


def resample(
    wave: np.ndarray,
    flux: np.ndarray,
    ivar: np.ndarray | None,
    new_wave: np.ndarray,
    method: Literal["flux", "linear"] = "flux",
    mask: np.ndarray | None = None,
    ids: np.ndarray | None = None,
) -> Resampled:
    """Put spectra (N, L) on the wavelength grid ``new_wave`` (M,) [Angstrom], vectorised over objects.

    ``wave`` is one grid (L,) shared by all objects or one per object (N, L); objects sharing a grid are
    resampled together by one sparse matrix product.

    * ``method="flux"`` (default, flux-conserving): each new pixel is the average of the flux density
      over its extent (pixel edges halfway between centres), weighting old pixels by their overlap, so
      integrated flux is kept. Variances propagate as sum(w^2 / ivar).
    * ``method="linear"``: linear interpolation between the two neighbouring old pixels; variances
      propagate the same way with the interpolation weights.

    Bad input pixels (``mask`` True, ivar == 0, NaN flux) are first interpolated over; a new pixel is
    bad (mask True, ivar 0) when any old pixel it draws on is bad or when it lies (partly) outside the
    old wavelength range; bad new pixels are filled by interpolation from their good neighbours.
    Returns :class:`Resampled` (flux, ivar, mask), each (N, M).
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    wave = np.asarray(wave, dtype=np.float64)
    new_wave = np.asarray(new_wave, dtype=np.float64)
    n, length = flux.shape
    if wave.shape not in ((length,), (n, length)):
        raise BadValueError(f"wavelength shape {wave.shape} does not match flux shape {flux.shape}")
    if method not in ("flux", "linear"):
        raise ConfigError(f"resample method must be 'flux' or 'linear', not {method!r}")
    ivar = np.ones_like(flux) if ivar is None else np.atleast_2d(np.asarray(ivar, dtype=np.float64))
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
    if mask is not None:
        bad |= np.atleast_2d(np.asarray(mask, dtype=bool))
    flux = fill_masked(np.where(np.isfinite(flux), flux, 0.0), bad, ids)
    var = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, ivar))
    build = _flux_matrix if method == "flux" else _linear_matrix

    out_f = np.empty((n, len(new_wave)))
    out_v = np.empty_like(out_f)
    out_bad = np.empty(out_f.shape, dtype=bool)
    grids, inverse = _unique_grids(wave)
    for g, grid in enumerate(grids):  # few distinct native grids (one per instrument set-up)
        rows = np.arange(n) if wave.ndim == 1 else np.flatnonzero(inverse == g)
        if np.any(np.diff(grid) <= 0):
            raise BadValueError("wavelength grid must increase strictly")
        mat, covered = build(grid, new_wave)
        mat_t = mat.T.tocsr()
        sq_t = mat_t.multiply(mat_t).tocsr()
        out_f[rows] = flux[rows] @ mat_t
        out_v[rows] = var[rows] @ sq_t
        touched = (bad[rows].astype(np.float64) @ (mat_t != 0).astype(np.float64)) > 0
        out_bad[rows] = touched | (covered < 1.0 - 1e-9)[None, :]
    out_f = fill_masked(out_f, out_bad, ids)
    out_ivar = np.where(out_bad | (out_v <= 0), 0.0, 1.0 / np.where(out_v > 0, out_v, 1.0))
    return Resampled(out_f, out_ivar, out_bad)


def resample_many(
    waves: list[np.ndarray],
    fluxes: list[np.ndarray],
    ivars: list[np.ndarray | None],
    masks: list[np.ndarray | None],
    new_wave: np.ndarray,
    method: Literal["flux", "linear"] = "flux",
    ids: np.ndarray | None = None,
) -> Resampled:
    """:func:`resample` for spectra of different lengths and grids (one per file, for example).

    Spectra sharing a native grid are stacked and resampled together; the result is in input order.
    """
    n = len(fluxes)
    out = Resampled(np.empty((n, len(new_wave))), np.empty((n, len(new_wave))), np.empty((n, len(new_wave)), bool))
    groups: dict[bytes, list[int]] = {}
    for i, w in enumerate(waves):
        groups.setdefault(np.asarray(w, dtype=np.float64).tobytes(), []).append(i)
    for rows in groups.values():
        r = np.asarray(rows)
        ivar = None if any(ivars[i] is None for i in rows) else np.stack([ivars[i] for i in rows])
        mask = None if any(masks[i] is None for i in rows) else np.stack([masks[i] for i in rows])
        res = resample(np.asarray(waves[rows[0]], dtype=np.float64), np.stack([fluxes[i] for i in rows]), ivar,
                       new_wave, method, mask=mask, ids=None if ids is None else np.asarray(ids)[r])
        out.flux[r], out.ivar[r], out.mask[r] = res.flux, res.ivar, res.mask
    return out


# ---------------------------------------------------------------------------------------- per-spectrum
def mean_filter(flux: np.ndarray, width: int = 5) -> np.ndarray:
    """Average adjacent pixels in windows of ``width`` with stride ``width`` (N, L) -> (N, ceil(L/width)).

    The last window is partial when ``width`` does not divide L (3601 / 5: 720 full windows and one of
    a single pixel -> 721 values); it is the mean of the pixels it holds.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    if width < 1:
        raise ConfigError(f"mean filter width must be >= 1, got {width}")
    n, length = flux.shape
    m = -(-length // width)
    padded = np.zeros((n, m * width))
    padded[:, :length] = flux
    counts = np.full(m, float(width))
    counts[-1] = length - (m - 1) * width
    return padded.reshape(n, m, width).sum(axis=2) / counts


def _who(row: int, ids: np.ndarray | None) -> str:
    return f"object {ids[row]!r} (row {row})" if ids is not None and row < len(ids) else f"row {row}"


def l2_normalise(flux: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """Each spectrum divided by its Euclidean norm; a zero (or non-finite) norm is an error naming the row."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    norm = np.sqrt(np.sum(flux**2, axis=1))
    bad = ~(np.isfinite(norm) & (norm > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(f"cannot L2-normalise the spectrum of {_who(row, ids)}: its norm is {norm[row]}")
    return flux / norm[:, None]


def normalise(
    flux: np.ndarray,
    method: Literal["minmax", "median", "l2", "standard", "none"] = "minmax",
    ids: np.ndarray | None = None,
) -> np.ndarray:
    """Per-spectrum scaling: ``minmax`` -> (f - min) / (max - min) in [0, 1]; ``median`` -> f / median(f);
    ``l2`` -> f / ||f||; ``standard`` -> (f - mean) / std; ``none`` -> unchanged. A constant spectrum
    (minmax, standard) or zero median is an error naming the row.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    if method == "none":
        return flux
    if method == "l2":
        return l2_normalise(flux, ids)
    if method == "minmax":
        lo, hi = flux.min(axis=1, keepdims=True), flux.max(axis=1, keepdims=True)
        span = (hi - lo)[:, 0]
        bad = ~(np.isfinite(span) & (span > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BadValueError(f"cannot min-max scale the spectrum of {_who(row, ids)}: it is constant or not finite")
        return (flux - lo) / (hi - lo)
    if method == "standard":
        std = flux.std(axis=1)
        bad = ~(np.isfinite(std) & (std > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BadValueError(f"cannot standardise the spectrum of {_who(row, ids)}: it is constant or not finite")
        return (flux - flux.mean(axis=1, keepdims=True)) / std[:, None]
    if method == "median":
        med = np.median(flux, axis=1)
        bad = ~(np.isfinite(med) & (med != 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BadValueError(f"cannot median-normalise the spectrum of {_who(row, ids)}: its median is {med[row]}")
        return flux / med[:, None]
    raise ConfigError(f"normalise must be one of minmax, median, l2, standard, none; not {method!r}")


def context_features(flux: np.ndarray) -> np.ndarray:
    """The raw [max, min] of each spectrum, (N, 2): the second input of the study C context models."""
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    return np.stack([flux.max(axis=1), flux.min(axis=1)], axis=1)


def pad_to_square(flux: np.ndarray, pad_value: float = 0.0) -> np.ndarray:
    """Pad each spectrum (N, L) with ``pad_value`` to the next square s*s >= L and reshape to (N, s, s).

    343 Gaia XP samples -> 361 -> 19 x 19.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    n, length = flux.shape
    side = math.isqrt(length - 1) + 1 if length > 1 else 1
    out = np.full((n, side * side), float(pad_value))
    out[:, :length] = flux
    return out.reshape(n, side, side)


# ---------------------------------------------------------------------------------------- image form
def to_image(vectors: np.ndarray, side: int = 28, pad_value: float = 0.0, ids: np.ndarray | None = None) -> np.ndarray:
    """Normalised vectors (N, L) with values in [0, 1] -> (N, side, side) uint8 images.

    The vector is padded with ``pad_value`` to side*side (721 + 63 = 784), filled row by row, and
    stored as grey levels ``round(255 * v)``. Values outside [0, 1] are an error naming the row
    (min-max normalise first).
    """
    vec = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n, length = vec.shape
    if length > side * side:
        raise BadValueError(f"{length} values do not fit a {side}x{side} image")
    bad = ~np.isfinite(vec).all(axis=1) | (vec.min(axis=1) < -1e-9) | (vec.max(axis=1) > 1 + 1e-9)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(
            f"image pixels must lie in [0, 1] (use normalise='minmax'); the vector of {_who(row, ids)} "
            f"spans [{vec[row].min():.4g}, {vec[row].max():.4g}]"
        )
    full = np.full((n, side * side), float(pad_value))
    full[:, :length] = np.clip(vec, 0.0, 1.0)
    return np.round(255.0 * full).astype(np.uint8).reshape(n, side, side)


def from_image(images: np.ndarray, length: int = 721) -> np.ndarray:
    """The exact inverse of :func:`to_image`: images -> (N, ``length``) vectors in [0, 1].

    Accepts (N, side, side), (N, 1, side, side) or flattened (N, side*side) images, either uint8 grey
    levels (divided by 255) or floats already in [0, 1] (as read by the AstroSpectra-MNIST reader).
    Equal to the original vector up to the 8-bit quantisation (<= 0.5/255).
    """
    arr = np.asarray(images)
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] < length):  # one image, flat or square
        arr = arr[None]
    flat = arr.reshape(arr.shape[0], -1)
    if flat.shape[1] < length:
        raise BadValueError(f"images of {flat.shape[1]} pixels hold fewer than {length} values")
    vals = flat[:, :length].astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer):
        vals = vals / 255.0
    return vals


# ---------------------------------------------------------------------------------------- datasets
def _on_grid(ds: Dataset, spectra_name: str, settings: SpectrumPreprocessing) -> np.ndarray:
    """Flux of block ``spectra_name`` on the settings' common grid (resampled unless already on it)."""
    try:
        block = ds.spectra[spectra_name]
    except KeyError:
        raise BadValueError(f"unknown spectra {spectra_name!r}; this dataset has spectra {list(ds.spectra)}") from None
    flux = ds.arrays(spectra=spectra_name)["spectrum"].astype(np.float64)
    grid = settings.grid()
    wave = block.wavelength.read() if not block.shared_grid else block.wavelength
    if wave.shape == grid.shape and np.allclose(wave, grid, rtol=1e-7, atol=0):
        return flux
    ivar = None if block.ivar is None else block.ivar.read()
    mask = None if block.mask is None else block.mask.read()
    return resample(wave, flux, ivar, grid, settings.resample, mask=mask, ids=ds.ids.read()).flux


def line_representation(
    ds: Dataset, spectra_name: str, settings: SpectrumPreprocessing | dict | None = None
) -> np.ndarray:
    """LineAstroSpectra vectors (N, 721): common grid -> mean filter -> per-spectrum normalisation."""
    settings = make_settings(settings)
    flux = _on_grid(ds, spectra_name, settings)
    line = mean_filter(flux, settings.bin_width)
    return normalise(line, settings.normalise, ids=ds.ids.read())


def image_representation(
    ds: Dataset, spectra_name: str, settings: SpectrumPreprocessing | dict | None = None
) -> np.ndarray:
    """AstroSpectra-MNIST images (N, 1, 28, 28), float in [0, 1]: exactly the 8-bit PNG grey levels / 255."""
    settings = make_settings(settings)
    line = line_representation(ds, spectra_name, settings)
    img = to_image(line, settings.image_side, settings.pad_value, ids=ds.ids.read())
    return (img.astype(np.float64) / 255.0)[:, None]
