"""SDSS / BOSS optical spectrum files (``spec-PLATE-MJD-FIBER.fits``) -> one Dataset.

Each file holds the coadded spectrum in HDU ``COADD`` (columns ``flux`` in 1e-17 erg/s/cm2/Angstrom,
``loglam`` = log10 of the vacuum wavelength in Angstrom, ``ivar``, ``and_mask``) and the pipeline's
classification in HDU ``SPECOBJ`` (SDSS-I/II) or ``SPALL`` (BOSS): CLASS (GALAXY, QSO, STAR), SUBCLASS,
Z, PLATE, MJD, FIBERID and the plug position PLUG_RA, PLUG_DEC (degrees).

The output matches the LAMOST reader (:mod:`astromodal.data.readers.lamost`): spectra ``"sdss"`` on the
common grid (3601 log-linear samples over 3700-9100 Angstrom by default, flux-conserving, so the
two surveys can be stacked; pixels outside a file's own range are masked), targets ``"class"``,
``"subclass"`` and ``"redshift"``, columns ``plate``, ``mjd``, ``fiberid``; ids ``"PLATE-MJD-FIBERID"``.
Bad pixels: ivar == 0, NaN flux or any ``and_mask`` bit (``mask_bits="and"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.dataset import Column, Dataset
from astromodal.data.readers import register_reader
from astromodal.data.readers.lamost import _SUFFIXES, _as_files, build_spectra_dataset, open_fits
from astromodal.errors import ConfigError, DataFormatError
from astromodal.transforms.spectra import SpectrumPreprocessing, make_settings

_INFO_HDUS = ("SPECOBJ", "SPALL")


def sniff_sdss(path: Path) -> bool:
    """True for a FITS file with a COADD extension (SDSS/BOSS spec-*.fits)."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        return any(h.name == "COADD" for h in hdul)


def _field(table: Any, names: tuple[str, ...], path: Path, hdu: str, default: Any = None) -> Any:
    cols = {c.upper(): c for c in table.columns.names}
    for n in names:
        if n in cols:
            value = table[cols[n]][0]
            return value.strip() if isinstance(value, str) else value
    if default is not None:
        return default
    raise DataFormatError(f"{path}: HDU {hdu} has no column {names[0]} (columns: {list(table.columns.names)})")


def read_spectrum_file(path: Path, mask_bits: str) -> dict[str, Any]:
    """One SDSS/BOSS spectrum file as a record: id ("PLATE-MJD-FIBERID"), wave, flux, ivar, mask (``mask_bits``
    "and": ivar 0, NaN flux or any and_mask bit; "none": ivar 0 and NaN only), class, z, plate, mjd, fiberid, ra,
    dec (the module text). Bad files: one DataFormatError line naming the file."""
    with open_fits(path) as hdul:
        names = [h.name for h in hdul]
        if "COADD" not in names:
            raise DataFormatError(f"{path}: no COADD HDU with the spectrum (HDUs: {names})")
        coadd = hdul["COADD"].data
        if coadd is None or len(coadd) == 0:
            raise DataFormatError(f"{path}: the COADD HDU is empty")
        cols = {c.lower(): c for c in coadd.columns.names}
        for need in ("flux", "loglam", "ivar"):
            if need not in cols:
                raise DataFormatError(f"{path}: COADD has no column {need!r} (columns: {list(coadd.columns.names)})")
        flux = np.asarray(coadd[cols["flux"]], dtype=np.float64)
        wave = 10.0 ** np.asarray(coadd[cols["loglam"]], dtype=np.float64)
        ivar = np.asarray(coadd[cols["ivar"]], dtype=np.float64)
        if not np.isfinite(flux).any():
            raise DataFormatError(f"{path}: the flux is NaN everywhere")
        bad = ~np.isfinite(flux) | ~np.isfinite(ivar) | (ivar <= 0)
        mask_col = {"and": "and_mask", "or": "or_mask"}.get(mask_bits)
        if mask_col and mask_col in cols:
            bad |= np.asarray(coadd[cols[mask_col]]) != 0
        if bad.all():
            raise DataFormatError(f"{path}: no usable pixel (inverse variance zero or flux NaN everywhere)")
        info_name = next((n for n in _INFO_HDUS if n in names), None)
        if info_name is None:
            raise DataFormatError(f"{path}: no SPECOBJ or SPALL HDU with CLASS and Z (HDUs: {names})")
        info = hdul[info_name].data
        header = hdul[0].header
        plate = int(_field(info, ("PLATE",), path, info_name, header.get("PLATEID", -1)))
        mjd = int(_field(info, ("MJD",), path, info_name, header.get("MJD", -1)))
        fiber = int(_field(info, ("FIBERID", "FIBER"), path, info_name, header.get("FIBERID", -1)))
        ra = float(_field(info, ("PLUG_RA", "RA"), path, info_name, header.get("PLUG_RA", np.nan)))
        dec = float(_field(info, ("PLUG_DEC", "DEC"), path, info_name, header.get("PLUG_DEC", np.nan)))
        return {
            "id": f"{plate:04d}-{mjd:05d}-{fiber:04d}",
            "ra": ra,
            "dec": dec,
            "class": str(_field(info, ("CLASS",), path, info_name)),
            "subclass": str(_field(info, ("SUBCLASS",), path, info_name, "")),
            "z": float(_field(info, ("Z",), path, info_name)),
            "plate": plate,
            "mjd": mjd,
            "fiberid": fiber,
            "wave": wave,
            "flux": np.where(np.isfinite(flux), flux, 0.0),
            "ivar": np.where(bad, 0.0, ivar),
            "mask": bad,
        }


@register_reader(
    "sdss", suffixes=_SUFFIXES, sniff=sniff_sdss, many=True,
    description="SDSS/BOSS spec-*.fits (COADD flux/loglam/ivar, SPECOBJ or SPALL CLASS/Z)",
)
def read_sdss(
    paths: str | Path | list[str | Path],
    settings: SpectrumPreprocessing | dict | None = None,
    mask_bits: str = "and",
    **grid: Any,
) -> Dataset:
    """Read SDSS spec-*.fits files (a list, a folder or a glob) into one Dataset on a common grid.

    Options as :func:`astromodal.data.readers.lamost.read_lamost` (``grid_size``, ``wave_min``,
    ``wave_max``, ``resample``, ``mask_bits``).
    """
    settings = make_settings({**(make_settings(settings).model_dump()), **grid})
    if mask_bits not in ("and", "or", "none"):
        raise ConfigError(f"mask_bits must be 'and', 'or' or 'none', not {mask_bits!r}")
    files = _as_files(paths)
    records = [read_spectrum_file(f, mask_bits) for f in files]
    columns = {k: Column(np.asarray([r[k] for r in records], dtype=np.int64)) for k in ("plate", "mjd", "fiberid")}
    return build_spectra_dataset(records, files, settings, "sdss", "SDSS", "1e-17 erg / (s cm2 Angstrom)", columns)
