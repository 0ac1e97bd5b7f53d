"""One HDF5 file per dataset: a versioned, chunked, compressed schema, read lazily.

Layout (schema version 1)::

    /                      attrs: format="astromodal-dataset", schema_version=1, n_objects, meta (JSON)
    /ids  /ra  /dec        (N,)   ids as UTF-8 strings or int64; ra/dec in degrees
    /spectra/<name>/flux   (N, L) float32     attrs: instrument, unit
    /spectra/<name>/wavelength  (L,) or (N, L) Angstrom
    /spectra/<name>/ivar, /mask  optional (N, L)
    /images/<name>/pixels  (N, B, H, W) float32  attrs: bands (JSON), pixel_scale, unit
    /images/<name>/errors  optional (N, B, H, W) 1-sigma pixel errors (absent: not known)
    /columns/<name>        (N,)   attrs: unit
    /targets/<name>        (N,)   attrs: kind, class_names (JSON), unit

Every object-axis dataset is chunked along objects (so reading a subset touches few chunks) and
compressed (gzip with byte shuffle by default). A file is written to a temporary name beside the
target and renamed into place, so an interrupted write never leaves a half-written file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from astromodal.atomic import atomic_path
from astromodal.data.arrays import RowView
from astromodal.data.dataset import Column, Dataset, Images, Spectra, Target
from astromodal.errors import DataFormatError

FORMAT_NAME = "astromodal-dataset"
SCHEMA_VERSION = 1
_TARGET_CHUNK_BYTES = 1 << 20


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    """HDF5 chunks of whole rows of about a fixed size for an array of ``shape`` (None for an empty one)."""
    if not shape or shape[0] == 0:
        return None
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    rows = int(max(1, min(shape[0], _TARGET_CHUNK_BYTES // row_bytes)))
    return (rows, *shape[1:])


def _write(group: h5py.Group, name: str, values: Any, compression: str | None) -> h5py.Dataset:
    arr = values.read() if isinstance(values, RowView) else np.asarray(values)
    if arr.dtype.kind in ("U", "O"):
        arr = arr.astype(object)
        return group.create_dataset(name, data=arr, dtype=h5py.string_dtype("utf-8"), chunks=chunk_shape(arr.shape, 32))
    kw: dict[str, Any] = {}
    if compression and arr.ndim >= 1 and arr.size:
        kw = {"compression": compression, "shuffle": True, "chunks": chunk_shape(arr.shape, arr.dtype.itemsize)}
        if compression == "gzip":
            kw["compression_opts"] = 1
    return group.create_dataset(name, data=arr, **kw)


def save_hdf5(ds: Dataset, path: str | Path, compression: str | None = "gzip") -> Path:
    """Write ``ds`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["n_objects"] = len(ds)
        f.attrs["meta"] = json.dumps({k: v for k, v in ds.meta.items() if not k.startswith("_")}, default=str)
        _write(f, "ids", ds.ids, compression)
        _write(f, "ra", ds.ra, compression)
        _write(f, "dec", ds.dec, compression)
        for name, s in ds.spectra.items():
            g = f.create_group(f"spectra/{name}")
            g.attrs["instrument"] = s.instrument
            g.attrs["unit"] = s.unit
            _write(g, "flux", s.flux, compression)
            _write(g, "wavelength", s.wavelength, compression)
            if s.ivar is not None:
                _write(g, "ivar", s.ivar, compression)
            if s.mask is not None:
                _write(g, "mask", s.mask, compression)
        for name, im in ds.images.items():
            g = f.create_group(f"images/{name}")
            g.attrs["bands"] = json.dumps(list(im.bands))
            g.attrs["pixel_scale"] = float(im.pixel_scale)
            g.attrs["unit"] = im.unit
            _write(g, "pixels", im.pixels, compression)
            if im.errors is not None:
                _write(g, "errors", im.errors, compression)
        cols = f.create_group("columns")
        for name, c in ds.columns.items():
            _write(cols, name, c.values, compression).attrs["unit"] = c.unit
        tg = f.create_group("targets")
        for name, t in ds.targets.items():
            d = _write(tg, name, t.values, compression)
            d.attrs["kind"] = t.kind
            d.attrs["class_names"] = json.dumps(list(t.class_names))
            d.attrs["unit"] = t.unit
    return path


def _read(d: h5py.Dataset, lazy: bool) -> Any:
    if h5py.check_string_dtype(d.dtype) is not None:
        return d.asstr()[...].astype(str)  # ids/labels: small, always read
    return d if lazy else d[...]


def open_hdf5(path: str | Path) -> Any:
    """``h5py.File(path, "r")``; a missing or unreadable file is one DataFormatError line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file (truncated or another format): {exc}") from None


def load_hdf5(path: str | Path, lazy: bool = True) -> Dataset:
    """Open an astromodal HDF5 file. With ``lazy`` the large arrays are read on use (keep the file)."""
    path = Path(path)
    f = open_hdf5(path)
    try:
        fmt = f.attrs.get("format")
        if fmt != FORMAT_NAME:
            raise DataFormatError(f"{path}: an HDF5 file but not an astromodal dataset (format attribute {fmt!r})")
        version = int(f.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            newer = "newer" if version > SCHEMA_VERSION else "older"
            raise DataFormatError(
                f"{path}: written with dataset schema version {version} ({newer}); this astromodal reads "
                f"version {SCHEMA_VERSION}. Re-create the file with this version of astromodal."
            )
        spectra = {}
        for name, g in f.get("spectra", {}).items():
            spectra[name] = Spectra(
                _read(g["flux"], lazy),
                g["wavelength"][...] if g["wavelength"].ndim == 1 else _read(g["wavelength"], lazy),
                _read(g["ivar"], lazy) if "ivar" in g else None,
                _read(g["mask"], lazy) if "mask" in g else None,
                str(g.attrs.get("instrument", "")),
                str(g.attrs.get("unit", "")),
            )
        images = {
            name: Images(
                _read(g["pixels"], lazy), tuple(json.loads(g.attrs["bands"])), float(g.attrs["pixel_scale"]),
                str(g.attrs.get("unit", "")), _read(g["errors"], lazy) if "errors" in g else None,
            )
            for name, g in f.get("images", {}).items()
        }
        columns = {name: Column(_read(d, lazy), str(d.attrs.get("unit", ""))) for name, d in f["columns"].items()}
        targets = {
            name: Target(
                d[...], str(d.attrs["kind"]), tuple(json.loads(d.attrs["class_names"])), str(d.attrs.get("unit", ""))
            )
            for name, d in f["targets"].items()
        }
        ds = Dataset(
            _read(f["ids"], False), f["ra"][...], f["dec"][...], spectra, images, columns, targets,
            json.loads(f.attrs.get("meta", "{}")), validate=True,
        )
    except DataFormatError:
        f.close()
        raise
    except (KeyError, OSError, ValueError) as exc:
        f.close()
        raise DataFormatError(f"{path}: damaged astromodal dataset ({exc})") from None
    if not lazy:
        f.close()
    else:
        ds.meta["_h5file"] = f  # keeps the file open while the dataset is used
    ds.meta["source_file"] = str(path)
    return ds
