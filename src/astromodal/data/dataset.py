"""The one dataset type of astromodal.

A :class:`Dataset` holds N objects, each with an id and a sky position (ra, dec in degrees), and any
of these modalities, all aligned on the object axis:

* ``spectra``: named :class:`Spectra` blocks (for example ``"lamost"``, ``"sdss"``, ``"gaia_xp"``):
  flux (N, L) on a wavelength grid in Angstrom (shared (L,) or per object (N, L)), optional inverse
  variance and a bad-pixel mask (True = bad);
* ``images``: named :class:`Images` blocks: pixels (N, B, H, W), band names and pixel scale
  (arcsec/pixel), with area-averaged lower resolutions on request (64 -> 32 -> 16 -> 8);
* ``columns``: named float catalogue columns (magnitudes, parallax, pmra, ...) with units;
* ``targets``: named :class:`Target` s, either class labels (integer codes 0..K-1 with class names)
  or regression values with a unit.

Arrays are held as :class:`~astromodal.data.arrays.RowView` s, so subsets never copy and a dataset
loaded from HDF5 reads from disk only what is used; :meth:`Dataset.input_stream` hands the model inputs to the
trainer block by block (``data: stream``) for data larger than memory. Units are fixed where data enters: wavelength in
Angstrom, positions in degrees, parallax in mas, proper motion in mas/yr, pixel scale in arcsec/pixel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.arrays import RowView, as_view, materialise
from astromodal.errors import BadValueError

SDSS_BANDS = ("u", "g", "r", "i", "z")


def _check_finite(values: np.ndarray, what: str, ids: np.ndarray | None = None) -> None:
    """Raise a BadValueError naming the first object whose values are NaN or infinite."""
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1)) if values.ndim > 1 else np.flatnonzero(bad)
        row = int(rows[0])
        who = f"object id {ids[row]!r} (row {row})" if ids is not None and row < len(ids) else f"row {row}"
        raise BadValueError(f"{what}: NaN or infinite values in {len(rows)} object(s), first at {who}")


@dataclass
class Spectra:
    """Spectra of N objects: flux (N, L) on a wavelength grid in Angstrom.

    ``mask`` marks bad pixels (True = bad); flux at masked pixels is still required to be finite
    (readers replace it, for example by interpolation or zero, and record the mask).
    """

    flux: RowView
    wavelength: np.ndarray | RowView
    ivar: RowView | None = None
    mask: RowView | None = None
    instrument: str = ""
    unit: str = "1e-17 erg / (s cm2 Angstrom)"

    def __post_init__(self) -> None:
        self.flux = as_view(self.flux)
        if isinstance(self.wavelength, RowView) or np.ndim(self.wavelength) == 2:
            self.wavelength = as_view(self.wavelength)
        else:
            self.wavelength = np.asarray(self.wavelength, dtype=np.float64)
        self.ivar = None if self.ivar is None else as_view(self.ivar)
        self.mask = None if self.mask is None else as_view(self.mask)
        if self.flux.ndim != 2:
            raise BadValueError(f"spectra flux must be 2-D (objects, pixels), got shape {self.flux.shape}")
        n, length = self.flux.shape
        wshape = self.wavelength.shape
        if wshape not in ((length,), (n, length)):
            raise BadValueError(f"wavelength shape {wshape} does not match flux shape {self.flux.shape}")
        for name in ("ivar", "mask"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != self.flux.shape:
                raise BadValueError(f"spectra {name} shape {arr.shape} differs from flux shape {self.flux.shape}")

    @property
    def n_pixels(self) -> int:
        return self.flux.shape[1]

    @property
    def shared_grid(self) -> bool:
        """True when every object shares one wavelength grid."""
        return not isinstance(self.wavelength, RowView)

    def take(self, rows: np.ndarray) -> Spectra:
        wave = self.wavelength.take(rows) if isinstance(self.wavelength, RowView) else self.wavelength
        return Spectra(
            self.flux.take(rows),
            wave,
            None if self.ivar is None else self.ivar.take(rows),
            None if self.mask is None else self.mask.take(rows),
            self.instrument,
            self.unit,
        )


@dataclass
class Images:
    """Multi-band image cutouts: pixels (N, B, H, W), one band name per B, pixel scale in arcsec.

    ``errors`` (optional, default None = not known): the 1-sigma uncertainty of each pixel, same shape and
    unit as ``pixels`` (NaN where it is not known); carried by :meth:`take`, :meth:`select_bands` and
    :meth:`downsample` (which propagates it: sigma = sqrt(sum of the f x f variances) / f^2).
    """

    pixels: RowView
    bands: tuple[str, ...]
    pixel_scale: float = 0.396
    unit: str = "nanomaggies"
    errors: RowView | None = None

    def __post_init__(self) -> None:
        self.pixels = as_view(self.pixels)
        self.errors = None if self.errors is None else as_view(self.errors)
        self.bands = tuple(str(b) for b in self.bands)
        if self.pixels.ndim != 4:
            raise BadValueError(f"images must be 4-D (objects, bands, height, width), got shape {self.pixels.shape}")
        if self.pixels.shape[1] != len(self.bands):
            raise BadValueError(f"images have {self.pixels.shape[1]} bands but {len(self.bands)} band names {self.bands}")
        if self.errors is not None and self.errors.shape != self.pixels.shape:
            raise BadValueError(f"image errors shape {self.errors.shape} differs from pixels shape {self.pixels.shape}")

    @property
    def size(self) -> int:
        return int(self.pixels.shape[-1])

    def band_index(self, band: str) -> int:
        """Index of ``band``; an unknown band is an error listing the known ones."""
        try:
            return self.bands.index(band)
        except ValueError:
            raise BadValueError(f"unknown band {band!r}; these images have bands {list(self.bands)}") from None

    def select_bands(self, bands: Sequence[str]) -> Images:
        idx = [self.band_index(b) for b in bands]
        errors = None if self.errors is None else self.errors.read()[:, idx]
        return Images(self.pixels.read()[:, idx], tuple(bands), self.pixel_scale, self.unit, errors)

    def take(self, rows: np.ndarray) -> Images:
        return Images(self.pixels.take(rows), self.bands, self.pixel_scale, self.unit,
                      None if self.errors is None else self.errors.take(rows))

    def downsample(self, size: int) -> Images:
        """Area-averaged copy at ``size`` x ``size`` pixels (the size must divide the current one).

        Flux per pixel is averaged (surface brightness is kept), so the pixel scale grows by the factor.
        """
        factor, rest = divmod(self.size, size)
        if rest or factor < 1 or self.pixels.shape[-2] % size:
            raise BadValueError(f"cannot area-average {self.pixels.shape[-2]}x{self.size} images to {size}x{size}")
        pix = self.pixels.read()
        n, b, h, w = pix.shape
        small = pix.reshape(n, b, h // factor, factor, w // factor, factor).mean(axis=(3, 5))
        errors = None
        if self.errors is not None:
            err = self.errors.read().astype(np.float64)
            var = (err ** 2).reshape(n, b, h // factor, factor, w // factor, factor).sum(axis=(3, 5))
            errors = (np.sqrt(var) / factor ** 2).astype(self.errors.dtype, copy=False)
        return Images(small.astype(pix.dtype, copy=False), self.bands, self.pixel_scale * factor, self.unit, errors)

    def pyramid(self, sizes: Sequence[int] = (64, 32, 16, 8)) -> dict[int, Images]:
        """The images at each of ``sizes`` (64 -> 32 -> 16 -> 8 by area averaging by default)."""
        return {s: (self if s == self.size else self.downsample(s)) for s in sizes}


@dataclass
class Target:
    """A learning target: class codes 0..K-1 with ``class_names``, or regression values with a ``unit``."""

    values: RowView
    kind: str = "class"  # "class" or "regression"
    class_names: tuple[str, ...] = ()
    unit: str = ""

    def __post_init__(self) -> None:
        self.values = as_view(self.values)
        self.class_names = tuple(str(c) for c in self.class_names)
        if self.kind not in ("class", "regression"):
            raise BadValueError(f"target kind must be 'class' or 'regression', not {self.kind!r}")
        if self.kind == "class" and not self.class_names:
            raise BadValueError("a class target needs its class_names")

    @classmethod
    def from_labels(cls, labels: Sequence[Any], class_names: Sequence[str] | None = None) -> Target:
        """Encode string (or any hashable) labels; ``class_names`` fixes the order and rejects unknowns."""
        labels = np.asarray(labels).astype(str)
        names = tuple(str(c) for c in class_names) if class_names is not None else tuple(np.unique(labels).tolist())
        order = np.argsort(np.asarray(names))
        sorted_names = np.asarray(names)[order]
        pos = np.clip(np.searchsorted(sorted_names, labels), 0, len(names) - 1)
        unknown = sorted_names[pos] != labels
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise BadValueError(f"unknown class {str(labels[row])!r} at row {row}; expected one of {list(names)}")
        return cls(order[pos].astype(np.int64), "class", names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def unseen_classes(self, class_names: Sequence[str]) -> dict[str, int]:
        """The classes of this target's objects that are not in ``class_names``, with their counts."""
        if self.kind != "class":
            raise BadValueError("only a class target has classes")
        known = {str(c) for c in class_names}
        counts = np.bincount(self.values.read(), minlength=self.n_classes)
        return {c: int(n) for c, n in zip(self.class_names, counts, strict=True) if n and c not in known}

    def recode(self, class_names: Sequence[str], unseen: str = "error", where: str = "") -> Target:
        """The same labels coded BY NAME onto ``class_names`` (e.g. a test file onto the training classes).

        A class of this target's objects that is not in ``class_names`` raises :class:`BadValueError`
        naming it and its count (``unseen="error"``, prefixed by ``where``), or, with ``unseen="append"``,
        is kept as an extra class after ``class_names`` (codes K, K+1, ...): a model trained on
        ``class_names`` never predicts it, so its objects are scored as misclassified.
        """
        if self.kind != "class":
            raise BadValueError("only a class target can be re-coded onto class names")
        if unseen not in ("error", "append"):
            raise BadValueError(f"unseen must be 'error' or 'append', not {unseen!r}")
        names = tuple(str(c) for c in class_names)
        extra = self.unseen_classes(names)
        if extra and unseen == "error":
            what = ", ".join(f"{c!r} ({n:,} row{'s' if n != 1 else ''})" for c, n in extra.items())
            prefix = f"{where}: " if where else ""
            raise BadValueError(f"{prefix}class{'es' if len(extra) > 1 else ''} {what} not among the "
                                f"training classes {list(names)}")
        all_names = names + tuple(extra)
        lookup = {c: i for i, c in enumerate(all_names)}
        mapping = np.array([lookup.get(c, -1) for c in self.class_names], dtype=np.int64)
        values = self.values.read()
        return Target(mapping[values] if len(mapping) else values.astype(np.int64), "class", all_names, self.unit)

    def take(self, rows: np.ndarray) -> Target:
        return Target(self.values.take(rows), self.kind, self.class_names, self.unit)

    def labels(self) -> np.ndarray:
        """Class names per object (class targets only)."""
        return np.asarray(self.class_names)[self.values.read()]


@dataclass
class Column:
    """A named catalogue quantity with its unit."""

    values: RowView
    unit: str = ""

    def __post_init__(self) -> None:
        self.values = as_view(self.values)

    def take(self, rows: np.ndarray) -> Column:
        return Column(self.values.take(rows), self.unit)


@dataclass
class Dataset:
    """N objects with positions and any of spectra, images, catalogue columns and targets."""

    ids: np.ndarray | RowView
    ra: np.ndarray | RowView | None = None
    dec: np.ndarray | RowView | None = None
    spectra: dict[str, Spectra] = field(default_factory=dict)
    images: dict[str, Images] = field(default_factory=dict)
    columns: dict[str, Column] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    validate: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        self.ids = as_view(self.ids)
        n = len(self.ids)
        self.ra = as_view(np.full(n, np.nan) if self.ra is None else self.ra)
        self.dec = as_view(np.full(n, np.nan) if self.dec is None else self.dec)
        self.columns = {k: (v if isinstance(v, Column) else Column(v)) for k, v in self.columns.items()}
        self.targets = {
            k: (v if isinstance(v, Target) else Target(v, "regression")) for k, v in self.targets.items()
        }
        for what, block in self._blocks():
            if len(block) != n:
                raise BadValueError(f"{what} has {len(block)} rows but the dataset has {n} objects")
        if self.validate:
            self._validate_values()

    # ------------------------------------------------------------------ structure
    def _blocks(self) -> Iterator[tuple[str, RowView]]:
        yield "ra", self.ra
        yield "dec", self.dec
        for name, s in self.spectra.items():
            yield f"spectra[{name!r}].flux", s.flux
        for name, im in self.images.items():
            yield f"images[{name!r}].pixels", im.pixels
        for name, c in self.columns.items():
            yield f"columns[{name!r}]", c.values
        for name, t in self.targets.items():
            yield f"targets[{name!r}]", t.values

    def _validate_values(self) -> None:
        """Check in-memory values once (data on disk is checked when it is read into tensors)."""
        ids = self.ids.read() if not self.ids.is_lazy else None
        for name, s in self.spectra.items():
            if not s.flux.is_lazy:
                _check_finite(s.flux.read(), f"spectra {name!r} flux", ids)
        for name, im in self.images.items():
            if not im.pixels.is_lazy:
                _check_finite(im.pixels.read(), f"images {name!r}", ids)
        for name, t in self.targets.items():
            if t.values.is_lazy:
                continue
            vals = t.values.read()
            if t.kind == "class":
                bad = (vals < 0) | (vals >= t.n_classes)
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise BadValueError(
                        f"target {name!r}: class code {vals[row]} at row {row} is outside 0..{t.n_classes - 1} "
                        f"({list(t.class_names)})"
                    )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        parts = [f"n={len(self)}"]
        if self.spectra:
            parts.append("spectra: " + ", ".join(f"{k} {s.flux.shape[1]} px" for k, s in self.spectra.items()))
        if self.images:
            parts.append("images: " + ", ".join(f"{k} {''.join(im.bands)} {im.size} px" for k, im in self.images.items()))
        if self.columns:
            parts.append(f"{len(self.columns)} columns")
        if self.targets:
            parts.append("targets: " + ", ".join(self.targets))
        return "Dataset(" + "; ".join(parts) + ")"

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description of the contents (shapes, bands, classes and counts)."""
        out: dict[str, Any] = {"n_objects": len(self)}
        out["spectra"] = {
            k: {"n_pixels": s.n_pixels, "instrument": s.instrument, "wavelength_range_A": self._wave_range(s)}
            for k, s in self.spectra.items()
        }
        out["images"] = {
            k: {"bands": list(im.bands), "size": im.size, "pixel_scale_arcsec": im.pixel_scale}
            for k, im in self.images.items()
        }
        out["columns"] = {k: c.unit for k, c in self.columns.items()}
        targets: dict[str, Any] = {}
        for k, t in self.targets.items():
            if t.kind == "class":
                counts = np.bincount(t.values.read(), minlength=t.n_classes)
                targets[k] = {"kind": "class", "counts": dict(zip(t.class_names, counts.tolist(), strict=True))}
            else:
                targets[k] = {"kind": "regression", "unit": t.unit}
        out["targets"] = targets
        return out

    @staticmethod
    def _wave_range(s: Spectra) -> list[float]:
        w = s.wavelength.read() if isinstance(s.wavelength, RowView) else s.wavelength
        return [float(np.min(w)), float(np.max(w))]

    # ------------------------------------------------------------------ subsets and splits
    def subset(self, rows: np.ndarray | Sequence[int] | slice) -> Dataset:
        """The objects at ``rows`` (indices, boolean mask or slice), without copying any data."""
        if isinstance(rows, slice):
            rows = np.arange(len(self))[rows]
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if len(rows) != len(self):
                raise BadValueError(f"boolean mask of length {len(rows)} for a dataset of {len(self)} objects")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise BadValueError(f"row index out of range for a dataset of {len(self)} objects")
        rows = np.where(rows < 0, rows + len(self), rows)
        return Dataset(
            self.ids.take(rows),
            self.ra.take(rows),
            self.dec.take(rows),
            {k: s.take(rows) for k, s in self.spectra.items()},
            {k: im.take(rows) for k, im in self.images.items()},
            {k: c.take(rows) for k, c in self.columns.items()},
            {k: t.take(rows) for k, t in self.targets.items()},
            dict(self.meta),
            validate=False,
        )

    def __getitem__(self, rows: Any) -> Dataset:
        return self.subset(rows)

    def class_codes(self, target: str) -> np.ndarray:
        """Integer class codes of a class target (error if it is missing or a regression target)."""
        t = self.target(target)
        if t.kind != "class":
            raise BadValueError(f"target {target!r} is a regression target, not class labels")
        return t.values.read()

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise BadValueError(f"unknown target {name!r}; this dataset has targets {list(self.targets)}") from None

    def split(
        self, test_fraction: float = 0.2, stratify: str | None = None, seed: int = 0
    ) -> tuple[Dataset, Dataset]:
        """Seeded (stratified on class target ``stratify``) train/test split: two views."""
        from astromodal.data.splits import train_test_indices

        labels = self.class_codes(stratify) if stratify else None
        train, test = train_test_indices(len(self), test_fraction, labels, seed)
        return self.subset(train), self.subset(test)

    def kfold(self, k: int = 10, stratify: str | None = None, seed: int = 0) -> Iterator[tuple[Dataset, Dataset]]:
        """Seeded (stratified, shuffled) k-fold: yields (train, validation) views."""
        from astromodal.data.splits import kfold_indices

        labels = self.class_codes(stratify) if stratify else None
        for train, val in kfold_indices(len(self), k, labels, seed):
            yield self.subset(train), self.subset(val)

    # ------------------------------------------------------------------ building
    def with_columns(self, columns: Mapping[str, Any], units: Mapping[str, str] | None = None) -> Dataset:
        """A copy with extra catalogue columns."""
        units = units or {}
        cols = dict(self.columns)
        for k, v in columns.items():
            cols[k] = v if isinstance(v, Column) else Column(v, units.get(k, ""))
        return replace(self, columns=cols, validate=True)

    def with_targets(self, targets: Mapping[str, Target]) -> Dataset:
        """A copy with extra (or replaced) targets."""
        return replace(self, targets={**self.targets, **targets}, validate=True)

    # ------------------------------------------------------------------ arrays and tensors
    def column_matrix(self, names: Sequence[str]) -> np.ndarray:
        """(N, len(names)) float array of catalogue columns; an unknown name lists the known ones."""
        missing = [c for c in names if c not in self.columns]
        if missing:
            raise BadValueError(f"unknown column(s) {missing}; this dataset has columns {list(self.columns)}")
        if not names:
            return np.empty((len(self), 0), dtype=np.float64)
        return np.stack([self.columns[c].values.read().astype(np.float64) for c in names], axis=1)

    def arrays(
        self,
        spectra: str | None = None,
        images: str | None = None,
        columns: Sequence[str] | None = None,
        target: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Numpy arrays of the chosen modalities, keyed ``spectrum``, ``image``, ``columns``, ``target``.

        Values read from disk are checked here for NaN/inf, naming the first bad object.
        """
        out: dict[str, np.ndarray] = {}
        ids = None
        if spectra is not None:
            s = self._get(self.spectra, spectra, "spectra")
            out["spectrum"] = s.flux.read()
            if s.flux.is_lazy:
                ids = self.ids.read()
                _check_finite(out["spectrum"], f"spectra {spectra!r} flux", ids)
        if images is not None:
            im = self._get(self.images, images, "images")
            out["image"] = im.pixels.read()
            if im.pixels.is_lazy:
                _check_finite(out["image"], f"images {images!r}", ids if ids is not None else self.ids.read())
        if columns:
            out["columns"] = self.column_matrix(columns)
            _check_finite(out["columns"], f"columns {list(columns)}", self.ids.read())
        if target is not None:
            out["target"] = self.target(target).values.read()
        return out

    def inputs(self, views: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Model inputs ``{name: array}``, one per view (:mod:`astromodal.data.views`): each computed per
        object and never fitted, so building them on any split leaks nothing."""
        return {name: view.build(self) for name, view in views.items()}

    def input_stream(self, views: Mapping[str, Any], rows: np.ndarray | Sequence[int] | None = None) -> Any:
        """The model inputs of :meth:`inputs` as a stream (:class:`astromodal.training.batches.InputStream`):
        ``read(positions)`` builds the views for those objects only (of ``rows``, default all), so a dataset
        loaded lazily from HDF5 is read block by block; ``Trainer`` with ``data: stream`` trains from it."""
        from astromodal.training.batches import InputStream

        return InputStream(self, views, rows)

    def to_tensors(self, dtype: Any = None, device: Any = None, **selection: Any) -> dict[str, Any]:
        """:meth:`arrays` as batched torch tensors (float32 features; int64 class / float32 regression target)."""
        import torch

        dtype = dtype or torch.float32
        out = {}
        for key, arr in self.arrays(**selection).items():
            if key == "target" and self.target(selection["target"]).kind == "class":
                out[key] = torch.as_tensor(arr, dtype=torch.int64, device=device)
            else:
                out[key] = torch.as_tensor(np.ascontiguousarray(arr), dtype=dtype, device=device)
        return out

    @staticmethod
    def _get(blocks: Mapping[str, Any], name: str, what: str) -> Any:
        try:
            return blocks[name]
        except KeyError:
            raise BadValueError(f"unknown {what} {name!r}; this dataset has {what} {list(blocks)}") from None

    def materialise(self) -> Dataset:
        """An in-memory copy (reads every lazy array)."""

        def mem(v: Any) -> Any:
            return materialise(v) if isinstance(v, RowView) else v

        return Dataset(
            mem(self.ids),
            mem(self.ra),
            mem(self.dec),
            {k: Spectra(mem(s.flux), mem(s.wavelength), mem(s.ivar), mem(s.mask), s.instrument, s.unit)
             for k, s in self.spectra.items()},
            {k: Images(mem(im.pixels), im.bands, im.pixel_scale, im.unit, mem(im.errors))
             for k, im in self.images.items()},
            {k: Column(mem(c.values), c.unit) for k, c in self.columns.items()},
            {k: Target(mem(t.values), t.kind, t.class_names, t.unit) for k, t in self.targets.items()},
            dict(self.meta),
        )

    # ------------------------------------------------------------------ storage
    def save(self, path: str | Path, compression: str | None = "gzip") -> Path:
        """Write to one HDF5 file (atomically: a temp file renamed into place). See :mod:`storage`."""
        from astromodal.data.storage import save_hdf5

        return save_hdf5(self, path, compression=compression)

    @classmethod
    def load(cls, path: str | Path, lazy: bool = True) -> Dataset:
        """Read an astromodal HDF5 file (lazily by default: arrays stay on disk until used)."""
        from astromodal.data.storage import load_hdf5

        return load_hdf5(path, lazy=lazy)
