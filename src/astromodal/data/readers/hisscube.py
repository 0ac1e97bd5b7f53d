"""HiSS-Cube "ML cube" HDF5 files <-> astromodal Datasets: four image resolutions, four spectral qualities.

The layout is the one the public HiSS-Cube code (nadvornikjiri/HiSS-Cube, ``MLProcessorStrategy``) writes, for
zooms z = 0..3 (S = 64 pixels, L = 4620 samples there)::

    /                                       attrs NX_class="NXroot", default="/dense_cube"
    /dense_cube                             attrs target_count = N, default="/dense_cube/0"
    /dense_cube/{z}/ml_image                attrs NX_class="NXdata", signal="cutout_3d_cube_zoom_{z}"
    /dense_cube/{z}/ml_image/cutout_3d_cube_zoom_{z}     float32 (N, 5, S/2^z, S/2^z), bands u g r i z
                                            attrs interpretation="image", error_ds = object reference to ->
    /dense_cube/{z}/ml_image/errors         float32, same shape: 1-sigma of each pixel
    /dense_cube/{z}/ml_spectrum             attrs NX_class="NXdata", signal="spectral_1d_cube_zoom_{z}"
    /dense_cube/{z}/ml_spectrum/spectral_1d_cube_zoom_{z}  float32 (N, floor(L/2^z)) = 4620, 2310, 1155, 577
                                            attrs interpretation="spectrum", error_ds = object reference to ->
    /dense_cube/{z}/ml_spectrum/errors      float32, same shape: 1-sigma of each sample (NaN: no data)

HiSS-Cube's spectra are in erg / (s cm2 Angstrom) (the SDSS flux times 1e-17) on
``linspace(3839.7244, 8914.597, 4620)`` Angstrom, NaN outside a spectrum's coverage. astromodal adds, and a
reference cube without them still reads:

* ``/dense_cube/{z}/ml_spectrum/spectral_wl`` float64 (L_z,) Angstrom, an HDF5 dimension scale ``wl`` on axis 1
  (the name follows the reference's unused ``spectral_<dim>`` scales); absent, zoom 0 is the linspace above and
  each lower zoom the mean of neighbouring pairs;
* ``/dense_cube/metadata``: the per-object table, a compound dataset (N,) with fields ``id``, ``ra``, ``dec``
  [deg], then every catalogue column of the dataset (a cube built from SDSS files: ``plate``, ``mjd``,
  ``fiberid`` of the object's first epoch, the join key (PLATEID, MJD, FIBERID) of the MPA-JHU tables,
  ``n_epochs``, ``frame_run``, ``frame_camcol``, ``frame_field``) and one field ``target_<name>`` per target;
  attributes ``columns`` (JSON list), ``units`` (JSON), ``targets`` (JSON: field, kind, class_names, unit).
  Absent (a reference cube): ids are the row numbers, positions NaN;
* root attributes ``format = "astromodal-hisscube"``, ``schema_version``, ``meta`` (JSON); ``bands``,
  ``pixel_scale`` [arcsec/pixel] and ``unit`` on each image dataset, ``unit`` on each spectrum dataset.

As a :class:`~astromodal.data.dataset.Dataset` (:func:`read_cube`, registered as reader ``hisscube``, found by its
``dense_cube`` group) a cube has image blocks ``image_z0`` .. ``image_z3`` (Images with ``errors``, pixel scale
0.396 x 2^z arcsec) and spectra blocks ``spectrum_z0`` .. ``spectrum_z3`` in 1e-17 erg / (s cm2 Angstrom) (the
astromodal unit, so the file's values times 1e17), ``ivar = 1 / sigma^2`` and ``mask`` (True = bad) where the flux
or sigma is not finite or sigma <= 0 (flux set to 0 there). :func:`write_cube` writes a Dataset as a cube.

Lower zooms (:func:`halve_spectrum`, :func:`halve_image`), with independent errors:

* spectra: neighbouring samples averaged in pairs, f = (f1 + f2) / 2, sigma = sqrt(s1^2 + s2^2) / 2 (an odd
  last sample is dropped: 1155 -> 577); a pair with a missing sample is missing;
* images: 2 x 2 blocks averaged, f = mean of 4, sigma = sqrt(s1^2 + s2^2 + s3^2 + s4^2) / 4.

Where this differs from the public code (on purpose): HiSS-Cube smooths each lower zoom with a Gaussian
(sigma 2 px) before halving the grid and halves sigma at each zoom (independent samples give sqrt 2, not 2);
its ML cube's image "errors" are read from the image data itself. Here errors are propagated as above.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.arrays import RowView
from astromodal.data.dataset import SDSS_BANDS, Column, Dataset, Images, Spectra, Target
from astromodal.data.readers import register_reader
from astromodal.errors import BadValueError, DataFormatError

FORMAT_NAME = "astromodal-hisscube"
SCHEMA_VERSION = 1
N_ZOOMS = 4
CUTOUT_SIZE = 64
N_SAMPLES = 4620
WAVE_MIN = 3839.7244  # Angstrom, HiSS-Cube's rebinning grid
WAVE_MAX = 8914.597
FILE_FLUX_UNIT = "erg / (s cm2 Angstrom)"  # HiSS-Cube's: the SDSS flux x 1e-17
FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"  # astromodal's
SDSS_PIXEL_SCALE = 0.396


def image_path(z: int) -> str:
    return f"dense_cube/{z}/ml_image/cutout_3d_cube_zoom_{z}"


def spectrum_path(z: int) -> str:
    return f"dense_cube/{z}/ml_spectrum/spectral_1d_cube_zoom_{z}"


def cube_grid(n: int = N_SAMPLES) -> np.ndarray:
    """The zoom-0 wavelength grid [Angstrom]: ``linspace(3839.7244, 8914.597, n)``."""
    return np.linspace(WAVE_MIN, WAVE_MAX, int(n))


def _pairs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = values.shape[-1] // 2
    return values[..., 0:2 * m:2], values[..., 1:2 * m:2]


def halve_spectrum(flux: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One zoom down: samples (..., L) -> (..., floor(L/2)), f = (f1 + f2) / 2, sigma = sqrt(s1^2 + s2^2) / 2
    (NaN in a pair gives NaN; computed in float64)."""
    f1, f2 = _pairs(np.asarray(flux, dtype=np.float64))
    s1, s2 = _pairs(np.asarray(sigma, dtype=np.float64))
    return (f1 + f2) / 2.0, np.sqrt(s1 ** 2 + s2 ** 2) / 2.0


def halve_wavelength(wave: np.ndarray) -> np.ndarray:
    """The wavelengths of :func:`halve_spectrum`'s samples: the mean of each pair [Angstrom]."""
    w1, w2 = _pairs(np.asarray(wave, dtype=np.float64))
    return (w1 + w2) / 2.0


def halve_image(pixels: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One zoom down: (..., H, W) -> (..., H/2, W/2) by 2 x 2 blocks, f = mean of the 4 pixels,
    sigma = sqrt(sum of the 4 variances) / 4 (computed in float64)."""
    pix = np.asarray(pixels, dtype=np.float64)
    err = np.asarray(sigma, dtype=np.float64)
    h, w = pix.shape[-2:]
    if h % 2 or w % 2:
        raise BadValueError(f"cannot halve {h}x{w} images by 2x2 blocks (an odd side)")
    shape = (*pix.shape[:-2], h // 2, 2, w // 2, 2)
    return pix.reshape(shape).mean(axis=(-3, -1)), np.sqrt((err ** 2).reshape(shape).sum(axis=(-3, -1))) / 4.0


@dataclass
class CubeLevels:
    """The arrays of a cube, one entry per zoom: images/image_errors (N, 5, S_z, S_z), spectra/spectrum_errors
    (N, L_z) in ``flux_unit`` (NaN = no data), wavelengths (L_z,) Angstrom."""

    images: list[np.ndarray]
    image_errors: list[np.ndarray]
    spectra: list[np.ndarray]
    spectrum_errors: list[np.ndarray]
    wavelengths: list[np.ndarray]

    @classmethod
    def from_zoom0(cls, images: np.ndarray, image_errors: np.ndarray, spectra: np.ndarray,
                   spectrum_errors: np.ndarray, wavelength: np.ndarray, zooms: int = N_ZOOMS) -> CubeLevels:
        """Zoom 0 arrays and the lower zooms made from them by :func:`halve_image` / :func:`halve_spectrum`."""
        side = images.shape[-1]
        if side % (2 ** (zooms - 1)):
            raise BadValueError(f"images of {side} px cannot be halved {zooms - 1} times (the side must be a "
                                f"multiple of {2 ** (zooms - 1)})")
        lv = cls([np.asarray(images, np.float64)], [np.asarray(image_errors, np.float64)],
                 [np.asarray(spectra, np.float64)], [np.asarray(spectrum_errors, np.float64)],
                 [np.asarray(wavelength, np.float64)])
        for _ in range(1, zooms):
            p, e = halve_image(lv.images[-1], lv.image_errors[-1])
            lv.images.append(p)
            lv.image_errors.append(e)
            f, s = halve_spectrum(lv.spectra[-1], lv.spectrum_errors[-1])
            lv.spectra.append(f)
            lv.spectrum_errors.append(s)
            lv.wavelengths.append(halve_wavelength(lv.wavelengths[-1]))
        return lv


# ---------------------------------------------------------------------------------------------------- reading


class _Derived:
    """An on-disk array read through ``fn`` (duck-typed like an h5py dataset, so a RowView reads it lazily)."""

    def __init__(self, fn: Callable[..., np.ndarray], sources: Sequence[Any], dtype: Any):
        self.fn = fn
        self.sources = tuple(sources)
        self.shape = tuple(self.sources[0].shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.fn(*(np.asarray(s[key]) for s in self.sources)).astype(self.dtype, copy=False)


def _bad(flux: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(flux) | ~np.isfinite(sigma) | ~(sigma > 0)


def _spectra_views(flux: Any, sigma: Any, scale: float, lazy: bool) -> tuple[Any, Any, Any]:
    """(flux, ivar, mask) of a cube's spectra and errors (flux 0 and ivar 0 where masked)."""

    def f(fl: np.ndarray, sg: np.ndarray) -> np.ndarray:
        return np.where(_bad(fl, sg), 0.0, fl.astype(np.float64) * scale)

    def iv(fl: np.ndarray, sg: np.ndarray) -> np.ndarray:
        bad = _bad(fl, sg)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(bad, 0.0, 1.0 / (sg.astype(np.float64) * scale) ** 2)

    def mk(fl: np.ndarray, sg: np.ndarray) -> np.ndarray:
        return _bad(fl, sg)

    views = [_Derived(fn, (flux, sigma), dt) for fn, dt in ((f, np.float32), (iv, np.float32), (mk, bool))]
    if lazy:
        return tuple(RowView(v) for v in views)  # type: ignore[return-value]
    return tuple(v[...] for v in views)  # type: ignore[return-value]


def _attr_text(obj: Any, name: str, default: str = "") -> str:
    value = obj.attrs.get(name, default)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _error_dataset(f: Any, ds: Any, where: str) -> Any:
    """The error dataset of ``ds``: its ``error_ds`` object reference, else the sibling ``errors``."""
    ref = ds.attrs.get("error_ds")
    if ref is not None:
        try:
            return f[ref]
        except (ValueError, KeyError, TypeError):
            raise DataFormatError(f"{where}: {ds.name} has an error_ds attribute that does not point to a "
                                  "dataset") from None
    sibling = ds.parent.get("errors")
    if sibling is None:
        raise DataFormatError(f"{where}: {ds.name} has no error dataset (attribute error_ds or a sibling 'errors')")
    return sibling


def _check_layout(f: Any, where: str) -> tuple[int, list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """N and the (data, errors) datasets per zoom, images then spectra; every problem is one line naming
    the file and the dataset path."""
    import h5py

    if not isinstance(f.get("dense_cube"), h5py.Group):
        if _attr_text(f, "format") == "astromodal-dataset":
            raise DataFormatError(f"{where}: an astromodal dataset file, not a HiSS-Cube ML cube (no dense_cube "
                                  "group): open it with Dataset.load")
        raise DataFormatError(f"{where}: not a HiSS-Cube ML cube (no dense_cube group)")
    dense = f["dense_cube"]
    if "target_count" not in dense.attrs:
        raise DataFormatError(f"{where}: /dense_cube has no target_count attribute")
    n = int(dense.attrs["target_count"])
    images, spectra = [], []
    for z in range(N_ZOOMS):
        for path, out, ndim in ((image_path(z), images, 4), (spectrum_path(z), spectra, 2)):
            ds = f.get(path)
            if not isinstance(ds, h5py.Dataset):
                have = sorted(k for k in dense.keys() if k.isdigit())
                raise DataFormatError(f"{where}: /{path} is missing (a HiSS-Cube ML cube has zooms 0..{N_ZOOMS - 1}; "
                                      f"this file has zoom groups {have})")
            err = _error_dataset(f, ds, where)
            if ds.ndim != ndim:
                raise DataFormatError(f"{where}: /{path} has shape {ds.shape}; expected {ndim} axes")
            if ds.shape[0] != n:
                raise DataFormatError(f"{where}: /{path} holds {ds.shape[0]} objects but /dense_cube target_count "
                                      f"is {n}")
            if err.shape != ds.shape:
                raise DataFormatError(f"{where}: {err.name} has shape {err.shape} but /{path} has {ds.shape}")
            out.append((ds, err))
    im0, sp0 = images[0][0], spectra[0][0]
    side, length = im0.shape[-1], sp0.shape[-1]
    for z in range(N_ZOOMS):
        want_im = (n, 5, side // 2 ** z, side // 2 ** z)
        if images[z][0].shape != want_im or (z == 0 and im0.shape[-2] != side):
            raise DataFormatError(f"{where}: /{image_path(z)} has shape {images[z][0].shape}; expected {want_im} "
                                  f"(N, 5 bands, {side}/2^{z}, {side}/2^{z})")
        want_sp = (n, length // 2 ** z)
        if spectra[z][0].shape != want_sp:
            raise DataFormatError(f"{where}: /{spectrum_path(z)} has shape {spectra[z][0].shape}; expected {want_sp} "
                                  f"(N, floor({length}/2^{z}))")
    return n, images, spectra


def _wavelengths(f: Any, spectra: list[tuple[Any, Any]], where: str) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for z, (ds, _) in enumerate(spectra):
        wl = ds.parent.get("spectral_wl")
        if wl is not None:
            wave = np.asarray(wl[...], dtype=np.float64)
            if wave.shape != (ds.shape[1],):
                raise DataFormatError(f"{where}: {wl.name} has shape {wave.shape}; expected ({ds.shape[1]},)")
        elif z == 0:
            if ds.shape[1] != N_SAMPLES:
                raise DataFormatError(f"{where}: /{spectrum_path(0)} has {ds.shape[1]} samples and no spectral_wl "
                                      f"axis; only the {N_SAMPLES}-sample HiSS-Cube grid is known")
            wave = cube_grid()
        else:
            wave = halve_wavelength(out[-1])
        out.append(wave)
    return out


def _table(f: Any, n: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Column],
                                                 dict[str, Target]]:
    meta = f["dense_cube"].get("metadata")
    if meta is None:
        return np.arange(n, dtype=np.int64), np.full(n, np.nan), np.full(n, np.nan), {}, {}
    if meta.shape != (n,) or meta.dtype.names is None:
        raise DataFormatError(f"{where}: /dense_cube/metadata has shape {meta.shape}; expected a table of {n} rows "
                              "(target_count)")
    rows = meta[...]
    names = rows.dtype.names
    for need in ("id", "ra", "dec"):
        if need not in names:
            raise DataFormatError(f"{where}: /dense_cube/metadata has no field {need!r} (fields: {list(names)})")
    try:
        units = json.loads(_attr_text(meta, "units", "{}"))
        col_names = json.loads(_attr_text(meta, "columns", "[]"))
        targets_info = json.loads(_attr_text(meta, "targets", "{}"))
    except ValueError as exc:
        raise DataFormatError(f"{where}: /dense_cube/metadata has a broken JSON attribute ({exc})") from None
    ids = rows["id"]
    if ids.dtype.kind in ("O", "S"):
        ids = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in ids])
    columns = {}
    for c in col_names:
        if c not in names:
            raise DataFormatError(f"{where}: /dense_cube/metadata lists column {c!r} but has no such field")
        values = rows[c]
        if values.dtype.kind in ("O", "S"):
            values = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values])
        columns[c] = Column(np.asarray(values), str(units.get(c, "")))
    targets = {}
    for name, info in targets_info.items():
        field = info.get("field", f"target_{name}")
        if field not in names:
            raise DataFormatError(f"{where}: /dense_cube/metadata lists target {name!r} but has no field {field!r}")
        targets[name] = Target(np.asarray(rows[field]), str(info.get("kind", "regression")),
                               tuple(info.get("class_names", ())), str(info.get("unit", "")))
    return ids, np.asarray(rows["ra"], np.float64), np.asarray(rows["dec"], np.float64), columns, targets


def sniff_cube(path: Path) -> bool:
    """True for an HDF5 file with a ``dense_cube`` group (a HiSS-Cube ML cube)."""
    import h5py

    with h5py.File(path, "r") as f:
        return isinstance(f.get("dense_cube"), h5py.Group)


@register_reader("hisscube", suffixes=(".h5", ".hdf5"), sniff=sniff_cube,
                 description="HiSS-Cube ML cube HDF5 (dense_cube/{0..3}: 5-band cutouts and spectra with errors)")
def read_cube(path: str | Path, lazy: bool = False) -> Dataset:
    """Open a HiSS-Cube ML cube as a Dataset (module text: blocks ``image_z0..3`` and ``spectrum_z0..3``).

    ``lazy``: the arrays stay on disk and are read (and converted: flux x 1e17, ivar = 1/sigma^2, mask) when
    used; the file stays open (``meta["_h5file"]``). A missing zoom, a dataset whose object count differs from
    ``target_count``, a wrong shape or a missing error dataset is one DataFormatError line naming the file and
    the dataset path.
    """
    from astromodal.data.storage import open_hdf5

    path = Path(path)
    f = open_hdf5(path)
    try:
        n, image_sets, spectrum_sets = _check_layout(f, str(path))
        waves = _wavelengths(f, spectrum_sets, str(path))
        ids, ra, dec, columns, targets = _table(f, n, str(path))
        images: dict[str, Images] = {}
        for z, (ds, err) in enumerate(image_sets):
            bands = tuple(_attr_text(ds, "bands", "".join(SDSS_BANDS)))
            if len(bands) != 5:
                raise DataFormatError(f"{path}: /{image_path(z)} has bands attribute {''.join(bands)!r}; 5 expected")
            scale = float(ds.attrs.get("pixel_scale", SDSS_PIXEL_SCALE * 2 ** z))
            pix, sig = (RowView(ds), RowView(err)) if lazy else (ds[...], err[...])
            if not lazy and not np.isfinite(pix).all():
                rows = np.flatnonzero(~np.isfinite(pix.reshape(n, -1)).all(axis=1))
                raise DataFormatError(f"{path}: /{image_path(z)} has NaN or infinite pixels in {len(rows)} object(s), "
                                      f"first row {int(rows[0])}")
            images[f"image_z{z}"] = Images(pix, bands, scale, _attr_text(ds, "unit", "nanomaggies"), sig)
        spectra: dict[str, Spectra] = {}
        for z, (ds, err) in enumerate(spectrum_sets):
            unit = _attr_text(ds, "unit", FILE_FLUX_UNIT)
            scale, out_unit = (1e17, FLUX_UNIT) if unit == FILE_FLUX_UNIT else (1.0, unit)
            flux, ivar, mask = _spectra_views(ds, err, scale, lazy)
            spectra[f"spectrum_z{z}"] = Spectra(flux, waves[z], ivar, mask, "hisscube", out_unit)
        try:
            file_meta = json.loads(_attr_text(f, "meta", "{}"))
        except ValueError:
            file_meta = {}
        meta = {**file_meta, "reader": "hisscube", "source_file": str(path), "target_count": n}
        ds_out = Dataset(ids, ra, dec, spectra, images, columns, targets, meta)
    except DataFormatError:
        f.close()
        raise
    except (KeyError, OSError, ValueError, BadValueError) as exc:
        f.close()
        raise DataFormatError(f"{path}: damaged HiSS-Cube ML cube ({' '.join(str(exc).split())})") from None
    if lazy:
        ds_out.meta["_h5file"] = f
    else:
        f.close()
    return ds_out


# ---------------------------------------------------------------------------------------------------- writing


def _table_array(n: int, ids: np.ndarray, ra: np.ndarray, dec: np.ndarray, columns: dict[str, Column],
                 targets: dict[str, Target]) -> tuple[np.ndarray, dict[str, str]]:
    import h5py

    str_dt = h5py.string_dtype("utf-8")

    def kind(values: np.ndarray) -> Any:
        if values.dtype.kind in ("U", "O", "S"):
            return str_dt
        return np.int64 if values.dtype.kind in ("i", "u", "b") else np.float64

    ids = np.asarray(ids)
    fields: list[tuple[str, Any, np.ndarray]] = [("id", kind(ids), ids), ("ra", np.float64, np.asarray(ra)),
                                                 ("dec", np.float64, np.asarray(dec))]
    for name, c in columns.items():
        values = c.values.read()
        fields.append((name, kind(values), values))
    tinfo = {}
    for name, t in targets.items():
        values = t.values.read()
        fields.append((f"target_{name}", kind(values), values))
        tinfo[name] = {"field": f"target_{name}", "kind": t.kind, "class_names": list(t.class_names), "unit": t.unit}
    seen: set[str] = set()
    for name, _, _ in fields:
        if name in seen:
            raise BadValueError(f"the cube's metadata table would have two fields {name!r} (a column named like "
                                "id, ra, dec or target_<name>): rename the column")
        seen.add(name)
    table = np.zeros(n, dtype=[(name, dt) for name, dt, _ in fields])
    for name, dt, values in fields:
        table[name] = values.astype(object) if dt is str_dt else values
    return table, {"targets": json.dumps(tinfo)}


def write_cube_levels(
    path: str | Path,
    levels: CubeLevels,
    ids: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    columns: dict[str, Column] | None = None,
    targets: dict[str, Target] | None = None,
    *,
    bands: Sequence[str] = SDSS_BANDS,
    pixel_scale: float = SDSS_PIXEL_SCALE,
    image_unit: str = "nanomaggies",
    flux_unit: str = FILE_FLUX_UNIT,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
    inputs: Sequence[Any] = (),
) -> Path:
    """Write ``levels`` (fluxes already in ``flux_unit``) and the metadata table as a cube, atomically (module
    text for the layout); ``path`` must be new or a cube astromodal wrote (replaced with ``overwrite``)."""
    import h5py

    from astromodal import __version__
    from astromodal.atomic import atomic_path, check_output_file
    from astromodal.data.storage import chunk_shape

    path = check_output_file(Path(path).expanduser(), inputs=list(inputs), overwrite=overwrite)
    columns = dict(columns or {})
    targets = dict(targets or {})
    n = len(ids)
    table, tattrs = _table_array(n, ids, ra, dec, columns, targets)

    def put(group: Any, name: str, arr: np.ndarray, dtype: Any = "<f4") -> Any:
        arr = np.ascontiguousarray(arr, dtype=dtype)
        kw: dict[str, Any] = {}
        if arr.size and arr.ndim >= 1:
            kw = {"chunks": chunk_shape(arr.shape, arr.dtype.itemsize), "compression": "gzip", "compression_opts": 1,
                  "shuffle": True}
        return group.create_dataset(name, data=arr, **kw)

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["NX_class"] = "NXroot"
        f.attrs["default"] = "/dense_cube"
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["astromodal_version"] = __version__
        f.attrs["meta"] = json.dumps({k: v for k, v in (meta or {}).items() if not str(k).startswith("_")}, default=str)
        dense = f.create_group("dense_cube")
        dense.attrs["target_count"] = n
        dense.attrs["default"] = "/dense_cube/0"
        for z in range(len(levels.images)):
            zg = dense.create_group(str(z))
            for kind, name, data, errors, interp in (
                ("ml_image", f"cutout_3d_cube_zoom_{z}", levels.images[z], levels.image_errors[z], "image"),
                ("ml_spectrum", f"spectral_1d_cube_zoom_{z}", levels.spectra[z], levels.spectrum_errors[z],
                 "spectrum"),
            ):
                g = zg.create_group(kind)
                g.attrs["NX_class"] = "NXdata"
                g.attrs["signal"] = name
                ds = put(g, name, data)
                err = put(g, "errors", errors)
                ds.attrs["interpretation"] = interp
                ds.attrs["error_ds"] = err.ref
                if kind == "ml_image":
                    ds.attrs["bands"] = "".join(bands)
                    ds.attrs["pixel_scale"] = float(pixel_scale) * 2 ** z
                    ds.attrs["unit"] = image_unit
                else:
                    ds.attrs["unit"] = flux_unit
                    wl = put(g, "spectral_wl", levels.wavelengths[z], "<f8")
                    wl.attrs["unit"] = "Angstrom"
                    wl.make_scale("wl")
                    ds.dims[1].attach_scale(wl)
            if z == 0:
                zg.attrs["default"] = "/dense_cube/0/ml_image"
                zg["ml_image"].attrs["default"] = "/dense_cube/0/ml_image/cutout_3d_cube_zoom_0"
        md = dense.create_dataset("metadata", data=table)
        md.attrs["columns"] = json.dumps(list(columns))
        md.attrs["units"] = json.dumps({"ra": "deg", "dec": "deg", **{k: c.unit for k, c in columns.items()}})
        for k, v in tattrs.items():
            md.attrs[k] = v
    return path


def _pick(blocks: dict[str, Any], name: str | None, what: str, option: str) -> tuple[str, Any]:
    if name is not None:
        if name not in blocks:
            raise BadValueError(f"unknown {what} {name!r}; this dataset has {what} {list(blocks)}")
        return name, blocks[name]
    if len(blocks) != 1:
        raise BadValueError(f"a cube takes one {what} block and this dataset has {list(blocks) or 'none'}: "
                            f"choose one with {option}=...")
    return next(iter(blocks.items()))


def _sigma_of(s: Spectra, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(flux with NaN where masked, sigma = 1/sqrt(ivar), NaN where ivar <= 0 or masked)."""
    if s.ivar is None:
        raise BadValueError(f"spectra {name!r} have no ivar: the cube stores 1-sigma errors")
    flux = s.flux.read().astype(np.float64)
    ivar = s.ivar.read().astype(np.float64)
    bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | ~(ivar > 0)
    if s.mask is not None:
        bad |= s.mask.read().astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(bad, np.nan, 1.0 / np.sqrt(np.where(bad, 1.0, ivar)))
    return np.where(bad, np.nan, flux), sigma


def _flux_scale(unit: str) -> tuple[float, str]:
    """(factor to the file unit, file unit) for spectra in ``unit``."""
    return (1e-17, FILE_FLUX_UNIT) if unit == FLUX_UNIT else (1.0, unit)


def _image_arrays(im: Images, name: str) -> tuple[np.ndarray, np.ndarray]:
    pix = im.pixels.read().astype(np.float64)
    err = np.full_like(pix, np.nan) if im.errors is None else im.errors.read().astype(np.float64)
    return pix, err


def dataset_levels(ds: Dataset, images: str | None = None, spectra: str | None = None) -> tuple[CubeLevels, dict]:
    """The cube arrays of ``ds`` and the writing options (bands, pixel scale, units).

    A dataset read from a cube (blocks ``image_z0..3`` and ``spectrum_z0..3``, neither option given) is written as
    it is. Otherwise one images block (``images``; the only one by default) with the five bands u g r i z (put in
    that order) and a side divisible by 8, and one spectra block (``spectra``) with ivar: on the cube grid
    already, or rebinned onto it flux-conservingly (:func:`astromodal.data.cube.rebin_spectrum`); the lower
    zooms are made as the module text says. Image errors absent are written as NaN.
    """
    names_im = [f"image_z{z}" for z in range(N_ZOOMS)]
    names_sp = [f"spectrum_z{z}" for z in range(N_ZOOMS)]
    if images is None and spectra is None and all(k in ds.images for k in names_im) and \
            all(k in ds.spectra for k in names_sp):
        ims = [_image_arrays(ds.images[k], k) for k in names_im]
        sps = [_sigma_of(ds.spectra[k], k) for k in names_sp]
        scale, unit = _flux_scale(ds.spectra[names_sp[0]].unit)
        waves = []
        for k in names_sp:
            s = ds.spectra[k]
            if not s.shared_grid:
                raise BadValueError(f"spectra {k!r} have a wavelength grid per object; a cube has one per zoom")
            waves.append(np.asarray(s.wavelength, dtype=np.float64))
        im0 = ds.images[names_im[0]]
        levels = CubeLevels([p for p, _ in ims], [e for _, e in ims], [f * scale for f, _ in sps],
                            [s * scale for _, s in sps], waves)
        side = levels.images[0].shape[-1]
        for z in range(N_ZOOMS):
            if levels.images[z].shape[-2:] != (side // 2 ** z, side // 2 ** z) or levels.images[z].shape[1] != 5:
                raise BadValueError(f"images {names_im[z]!r} have shape {levels.images[z].shape}; a cube's zoom {z} "
                                    f"is (N, 5, {side // 2 ** z}, {side // 2 ** z})")
            want = levels.spectra[0].shape[-1] // 2 ** z
            if levels.spectra[z].shape[-1] != want:
                raise BadValueError(f"spectra {names_sp[z]!r} have {levels.spectra[z].shape[-1]} samples; a cube's zoom "
                                    f"{z} has {want}")
        opts = {"bands": im0.bands, "pixel_scale": im0.pixel_scale, "image_unit": im0.unit, "flux_unit": unit}
        return levels, opts
    im_name, im = _pick(ds.images, images, "images", "images")
    missing = [b for b in SDSS_BANDS if b not in im.bands]
    if missing or len(im.bands) != 5:
        raise BadValueError(f"images {im_name!r} have bands {''.join(im.bands)}; a cube needs exactly u g r i z")
    im = im.select_bands(SDSS_BANDS)
    sp_name, sp = _pick(ds.spectra, spectra, "spectra", "spectra")
    flux, sigma = _sigma_of(sp, sp_name)
    grid = cube_grid()
    wave = sp.wavelength.read() if isinstance(sp.wavelength, RowView) else sp.wavelength
    if not (sp.shared_grid and wave.shape == grid.shape and np.allclose(wave, grid, rtol=0, atol=1e-6)):
        from astromodal.data.cube import rebin_spectra, rebin_spectrum

        ids = ds.ids.read()
        if sp.shared_grid:  # one spectres call for the whole block
            flux, sigma = rebin_spectra(wave, flux, sigma, grid, ids=ids)
        else:
            out_f = np.empty((len(ds), len(grid)))
            out_s = np.empty_like(out_f)
            for r in range(len(ds)):
                out_f[r], out_s[r] = rebin_spectrum(wave[r], flux[r], sigma[r], grid,
                                                    where=f"object id {ids[r]!r} (row {r})")
            flux, sigma = out_f, out_s
    scale, unit = _flux_scale(sp.unit)
    pix, err = _image_arrays(im, im_name)
    levels = CubeLevels.from_zoom0(pix, err, flux * scale, sigma * scale, grid)
    return levels, {"bands": im.bands, "pixel_scale": im.pixel_scale, "image_unit": im.unit, "flux_unit": unit}


def cube_dataset(ds: Dataset, images: str | None = None, spectra: str | None = None) -> Dataset:
    """``ds`` in the cube's layout, in memory: what :func:`write_cube` then :func:`read_cube` would give (blocks
    ``image_z0..3`` and ``spectrum_z0..3``, spectra rebinned onto the cube grid, lower zooms by 2 x 2 / pairwise
    averaging with errors propagated), without the file. Ids, positions, columns, targets and meta are kept.
    Image errors absent (simulated cutouts) stay absent (``errors`` None) rather than becoming NaN arrays."""
    levels, opts = dataset_levels(ds, images, spectra)
    # levels hold the file unit; back to astromodal's (x 1e17) as read_cube does
    scale, out_unit = (1e17, FLUX_UNIT) if opts["flux_unit"] == FILE_FLUX_UNIT else (1.0, opts["flux_unit"])
    blocks_im: dict[str, Images] = {}
    blocks_sp: dict[str, Spectra] = {}
    for z in range(N_ZOOMS):
        err = levels.image_errors[z]
        err32 = None if not np.isfinite(err).any() else err.astype(np.float32)
        blocks_im[f"image_z{z}"] = Images(levels.images[z].astype(np.float32), tuple(opts["bands"]),
                                          float(opts["pixel_scale"]) * 2 ** z, opts["image_unit"], err32)
        flux, ivar, mask = _spectra_views(levels.spectra[z], levels.spectrum_errors[z], scale, lazy=False)
        blocks_sp[f"spectrum_z{z}"] = Spectra(flux, levels.wavelengths[z], ivar, mask, "hisscube", out_unit)
    meta = {**ds.meta, "layout": "hisscube", "target_count": len(ds)}
    return Dataset(ds.ids, ds.ra, ds.dec, blocks_sp, blocks_im, dict(ds.columns), dict(ds.targets), meta)


def write_cube(ds: Dataset, path: str | Path, *, images: str | None = None, spectra: str | None = None,
               overwrite: bool = False) -> Path:
    """Write ``ds`` as a HiSS-Cube ML cube at ``path`` (atomically; see :func:`dataset_levels` for which blocks),
    with its ids, positions, catalogue columns and targets in ``/dense_cube/metadata``. Returns the path."""
    from astromodal.atomic import check_output_file

    check_output_file(Path(path).expanduser(), overwrite=overwrite)  # before any work
    levels, opts = dataset_levels(ds, images, spectra)
    return write_cube_levels(path, levels, ds.ids.read(), ds.ra.read(), ds.dec.read(), ds.columns, ds.targets,
                             meta={k: v for k, v in ds.meta.items() if k not in ("source_file", "reader")},
                             overwrite=overwrite, **opts)


__all__ = ["CUTOUT_SIZE", "N_SAMPLES", "N_ZOOMS", "WAVE_MAX", "WAVE_MIN", "CubeLevels",
           "cube_dataset", "cube_grid", "dataset_levels", "halve_image", "halve_spectrum", "halve_wavelength", "image_path",
           "read_cube", "sniff_cube", "spectrum_path", "write_cube", "write_cube_levels"]
