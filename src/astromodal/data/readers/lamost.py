"""LAMOST spectrum FITS files (DR1 and later low-resolution "spec-*.fits") -> one Dataset.

A LAMOST DR1 file holds one spectrum in its primary HDU, an array (5, L) of rows flux, inverse
variance, sub-continuum, andmask and ormask (header ``EXTEN0``), on the log-linear wavelength grid
``lambda_i = 10**(COEFF0 + COEFF1 * i)`` Angstrom (vacuum, heliocentric). The header gives CLASS
(STAR, GALAXY, QSO, Unknown), SUBCLASS (F9, A3V, K5, ...), Z, RA and DEC (degrees) and OBSID (DR2+).

Many files become one Dataset on a common grid (:class:`~astromodal.transforms.spectra.SpectrumPreprocessing`:
3601 log-linear samples over 3700-9100 Angstrom by default, flux-conserving resampling), with:

* spectra ``"lamost"``: flux (relative units: DR1 flux is not absolutely calibrated), ivar and mask.
  Bad pixels (ivar == 0, NaN flux, andmask bits set, or outside the file's wavelength range) are
  interpolated over from their good neighbours and marked True in ``mask`` with ivar 0;
* targets ``"class"`` (star / galaxy / qso / unknown, lower case), ``"subclass"`` (first letter of
  SUBCLASS: O B A F G K M, then any other letter; "unknown" when empty or non-stellar) and
  ``"redshift"`` (Z, regression);
* ids: OBSID where the header has it, else the file name without ``.fits``; ra/dec from the header;
* ``meta["source_files"]``: the files read, in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.data.readers import register_reader
from astromodal.errors import DataFormatError
from astromodal.transforms.spectra import SpectrumPreprocessing, make_settings, resample_many

CLASS_ORDER = ("star", "galaxy", "qso", "unknown")
SUBCLASS_ORDER = ("O", "B", "A", "F", "G", "K", "M")
_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fit.gz")


def open_fits(path: Path) -> Any:
    """Open a FITS file fully into memory; a non-FITS, empty or truncated file is a DataFormatError."""
    import warnings

    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns, then fails, on truncated files: we raise
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # force reading: a truncated file fails here
        return hdul
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except Exception as exc:  # astropy raises OSError / TypeError / ValueError on broken files
        raise DataFormatError(f"{path}: not a readable FITS file ({type(exc).__name__}: {exc})") from None


def class_target(raw: list[str]) -> Target:
    """CLASS strings -> class target, names lower case in the order star, galaxy, qso, unknown, others."""
    labels = [(c.strip().lower() or "unknown") for c in raw]
    present = set(labels)
    names = [c for c in CLASS_ORDER if c in present] + sorted(present - set(CLASS_ORDER))
    return Target.from_labels(labels, names)


def subclass_target(raw: list[str], classes: list[str]) -> Target:
    """First letter of SUBCLASS for stars (O B A F G K M first); 'unknown' when empty or not a star."""
    labels = []
    for sub, cls in zip(raw, classes, strict=True):
        s = sub.strip()
        is_star = cls.strip().lower() in ("star", "")
        labels.append(s[0].upper() if s and is_star and s[0].isalpha() and s.lower() != "non" else "unknown")
    present = set(labels)
    names = [c for c in SUBCLASS_ORDER if c in present] + sorted(present - set(SUBCLASS_ORDER) - {"unknown"})
    if "unknown" in present:
        names.append("unknown")
    return Target.from_labels(labels, names)


def sniff_lamost(path: Path) -> bool:
    """True for a FITS file whose primary header has LAMOST's log-linear COEFF0/COEFF1 and a 2-D array."""
    from astropy.io import fits

    header = fits.getheader(path, 0)
    return "COEFF0" in header and "COEFF1" in header and header.get("NAXIS", 0) == 2


def _read_one(path: Path, mask_bits: str) -> dict[str, Any]:
    with open_fits(path) as hdul:
        hdu = hdul[0]
        header, data = hdu.header, hdu.data
        if data is None or data.ndim != 2 or data.shape[0] < 2:
            shape = None if data is None else data.shape
            raise DataFormatError(f"{path}: no LAMOST flux array in the primary HDU (shape {shape}; expected (5, L))")
        for key in ("COEFF0", "COEFF1"):
            if key not in header:
                raise DataFormatError(f"{path}: header keyword {key} (log-linear wavelength solution) is missing")
        data = np.asarray(data, dtype=np.float64)
        flux, ivar = data[0], data[1]
        if not np.isfinite(flux).any():
            raise DataFormatError(f"{path}: the flux is NaN everywhere")
        length = data.shape[1]
        wave = 10.0 ** (float(header["COEFF0"]) + float(header["COEFF1"]) * np.arange(length))
        bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
        if mask_bits in ("and", "or") and data.shape[0] >= 5:
            bad |= data[3 if mask_bits == "and" else 4] != 0
        if bad.all():
            raise DataFormatError(f"{path}: no usable pixel (inverse variance zero or flux NaN everywhere)")
        obsid = header.get("OBSID")
        name = path.name
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        return {
            "id": str(obsid) if obsid not in (None, "") else name,
            "ra": float(header.get("RA", np.nan)),
            "dec": float(header.get("DEC", np.nan)),
            "class": str(header.get("CLASS", "") or ""),
            "subclass": str(header.get("SUBCLASS", "") or ""),
            "z": float(header.get("Z", np.nan)) if header.get("Z") not in (None, "") else np.nan,
            "wave": wave,
            "flux": np.where(np.isfinite(flux), flux, 0.0),
            "ivar": np.where(bad, 0.0, ivar),
            "mask": bad,
        }


def build_spectra_dataset(
    records: list[dict[str, Any]],
    files: list[Path],
    settings: SpectrumPreprocessing,
    block: str,
    instrument: str,
    unit: str,
    extra_columns: dict[str, np.ndarray] | None = None,
) -> Dataset:
    """Resample per-file spectra to the common grid and assemble the Dataset (shared by LAMOST and SDSS)."""
    ids = np.asarray([r["id"] for r in records])
    grid = settings.grid()
    res = resample_many(
        [r["wave"] for r in records], [r["flux"] for r in records], [r["ivar"] for r in records],
        [r["mask"] for r in records], grid, settings.resample, ids=ids,
    )
    classes = [r["class"] for r in records]
    targets = {"class": class_target(classes)}
    if any("subclass" in r for r in records):
        targets["subclass"] = subclass_target([r.get("subclass", "") for r in records], classes)
    targets["redshift"] = Target(np.asarray([r["z"] for r in records], dtype=np.float64), "regression", unit="")
    spectra = Spectra(res.flux.astype(np.float32), grid, res.ivar.astype(np.float32), res.mask, instrument, unit)
    return Dataset(
        ids,
        np.asarray([r["ra"] for r in records], dtype=np.float64),
        np.asarray([r["dec"] for r in records], dtype=np.float64),
        spectra={block: spectra},
        columns=extra_columns or {},
        targets=targets,
        meta={
            "source_files": [str(f) for f in files],
            "reader": instrument.lower(),
            "preprocessing": settings.model_dump(),
        },
    )


def _as_files(paths: Any) -> list[Path]:
    if isinstance(paths, (str, Path)):
        from astromodal.data.readers import _expand

        folder, files = _expand(paths)
        files = [f for f in files if f.name.lower().endswith(_SUFFIXES)]
        if not files:
            raise DataFormatError(f"{paths}: no FITS file found")
        return files
    files = [Path(p) for p in paths]
    if not files:
        raise DataFormatError("no LAMOST FITS file given")
    return files


@register_reader(
    "lamost", suffixes=_SUFFIXES, sniff=sniff_lamost, many=True,
    description="LAMOST low-resolution spectrum FITS (primary array flux/ivar/masks, COEFF0/COEFF1 grid)",
)
def read_lamost(
    paths: str | Path | list[str | Path],
    settings: SpectrumPreprocessing | dict | None = None,
    mask_bits: str = "and",
    **grid: Any,
) -> Dataset:
    """Read LAMOST spectrum FITS files (a list, a folder or a glob) into one Dataset on a common grid.

    ``settings`` (or keyword overrides such as ``grid_size=3601, wave_min=3700, wave_max=9100,
    resample="flux"``) fix the common grid. ``mask_bits``: "and" (default) also marks pixels with any
    andmask bit as bad, "or" uses the ormask, "none" only ivar == 0 and NaN.
    """
    settings = make_settings({**(make_settings(settings).model_dump()), **grid})
    if mask_bits not in ("and", "or", "none"):
        from astromodal.errors import ConfigError

        raise ConfigError(f"mask_bits must be 'and', 'or' or 'none', not {mask_bits!r}")
    files = _as_files(paths)
    records = [_read_one(f, mask_bits) for f in files]
    return build_spectra_dataset(records, files, settings, "lamost", "LAMOST",
                                 "relative flux (LAMOST DR1, not absolutely calibrated)")
