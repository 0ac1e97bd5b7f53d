"""The ALS II catalogue of OB stars (Pantaleoni Gonzalez et al. 2021, MNRAS 504, 2968), supplements.

The files (``als_ii_b.dat``: 2,427 stars set aside for bad astrometry or colours; ``als_ii_d.dat``
duplicates; ``als_ii_u.dat`` unmatched) are fixed-width text with one header line of column names
and no byte-range ReadMe. Every field is right-aligned under its name, so a column spans from the
character after the previous name to the end of its own name: :func:`als_colspecs` derives these
byte ranges from the header, and :func:`read_als_table` checks them (no value may cross a boundary).

:func:`read_als` gives a :class:`~astromodal.data.dataset.Dataset`: ids = ``ID_ALS``, ra/dec in degrees
(Gaia DR2 position ``RA_DR2``/``DEC_DR2`` where present, else the ALS one; sexagesimal in the file) and
catalogue columns, renamed to astromodal's names where there is one:

==================  ================================  ==========
file                Dataset column                    unit
==================  ================================  ==========
GLON, GLAT          l, b                              deg
Plx, Plx_err        parallax, parallax_error          mas (Gaia DR2)
PM_RA, PM_DEC (+err) pmra, pmdec (pmra_error, ...)    mas/yr
RUWE                ruwe
Vmag Gmag Gmag_cor  vmag gmag gmag_cor                mag
BPmag RPmag         bp_mag rp_mag                     mag
ALS2_dist_*         ALS2_dist_* (mode, P50, ...)      pc
BJ_dist*, SH_dist*  BJ_dist, BJ_dist_low, ...         pc
ID_DR2, ID_DUP      gaia_dr2_source_id, ID_DUP        int64, -1 where empty
==================  ================================  ==========

Other numeric columns keep their names. Text columns (spectral type ``SpT_ALS``, flags, comments)
stay in the DataFrame of :func:`read_als_table`. Empty numeric fields are NaN.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from astromodal.data.dataset import Column, Dataset
from astromodal.errors import DataFormatError

RENAME = {
    "GLON": "l",
    "GLAT": "b",
    "Plx": "parallax",
    "Plx_err": "parallax_error",
    "PM_RA": "pmra",
    "PM_RA_err": "pmra_error",
    "PM_DEC": "pmdec",
    "PM_DEC_err": "pmdec_error",
    "RUWE": "ruwe",
    "Vmag": "vmag",
    "Gmag": "gmag",
    "Gmag_cor": "gmag_cor",
    "BPmag": "bp_mag",
    "RPmag": "rp_mag",
}

UNITS = {
    "l": "deg", "b": "deg", "parallax": "mas", "parallax_error": "mas", "pmra": "mas/yr", "pmra_error": "mas/yr",
    "pmdec": "mas/yr", "pmdec_error": "mas/yr", "vmag": "mag", "gmag": "mag", "gmag_cor": "mag", "bp_mag": "mag",
    "rp_mag": "mag", "G_abs_mode": "mag", "G_abs_P50": "mag", "CCDIST": "mag", "Sep_astr": "arcsec",
}

ID_COLUMNS = ("ID_ALS", "ID_DR2", "ID_DUP")
TEXT_COLUMNS = ("Cat", "ID_GOSC", "RA_ALS", "DEC_ALS", "RA_DR2", "DEC_DR2", "SpT_ALS", "Sflag", "Pflag", "Cflag", "Dflag",
                "Other_Crossmatch", "Comments")


def als_colspecs(header: str) -> list[tuple[str, int, int]]:
    """(name, start, end) byte ranges from the header line: each column ends where its name ends."""
    spans = []
    prev_end = 0
    for m in re.finditer(r"\S+", header.rstrip("\n")):
        spans.append((m.group(), prev_end, m.end()))
        prev_end = m.end()
    return spans


def read_als_table(path: str | Path) -> pd.DataFrame:
    """An ALS II fixed-width file as a DataFrame (numeric columns float, except ids as int64; text stripped)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    text = path.read_text(encoding="latin-1")
    lines = text.splitlines()
    if not lines or "ID_ALS" not in lines[0]:
        raise DataFormatError(f"{path}: not an ALS II table (the first line should name the columns, with ID_ALS)")
    spans = als_colspecs(lines[0])
    data = [ln for ln in lines[1:] if ln.strip()]
    width = max((len(ln) for ln in data), default=0)
    if max((len(ln.rstrip()) for ln in data), default=0) > spans[-1][2]:
        # the last column (comments) is right-aligned to its name too; anything beyond is a format change
        raise DataFormatError(f"{path}: data run past the last header column (byte {spans[-1][2]})")
    buf = np.frombuffer("".join(ln.ljust(width) for ln in data).encode("latin-1"), dtype="S1").reshape(len(data), width)
    # a value crossing a boundary would be split in two: the characters either side of it must not both be set
    for name, start, _ in spans[1:]:
        if 0 < start < width:
            crossing = (buf[:, start - 1] != b" ") & (buf[:, start] != b" ")
            if crossing.any():
                row = int(np.flatnonzero(crossing)[0])
                raise DataFormatError(f"{path}: line {row + 2}: a value crosses the start of column {name!r} "
                                      f"(byte {start}); the header does not describe this layout")
    frame = pd.read_fwf(path, colspecs=[(s, e) for _, s, e in spans], names=[n for n, _, _ in spans],
                        skiprows=1, dtype=str, encoding="latin-1", keep_default_na=False)
    frame = frame.apply(lambda c: c.str.strip())
    for name in frame.columns:
        if name in TEXT_COLUMNS:
            continue
        if name in ID_COLUMNS:  # 19-digit Gaia ids do not fit a float: parse as int64, -1 where empty
            try:
                frame[name] = frame[name].replace("", "-1").astype(np.int64)
            except (ValueError, OverflowError):
                raise DataFormatError(f"{path}: column {name!r} holds a value that is not an integer id") from None
            continue
        col = frame[name].replace(["", "nan", "NaN", "NAN", "--"], np.nan)
        numeric = pd.to_numeric(col, errors="coerce")
        bad = numeric.isna() & col.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(f"{path}: line {row + 2}, column {name!r}: {col.iloc[row]!r} is not a number")
        frame[name] = numeric
    return frame


def sexagesimal_to_deg(values: pd.Series, hours: bool) -> np.ndarray:
    """'hh:mm:ss.s' (hours=True) or '+dd:mm:ss.s' strings to degrees; empty -> NaN (vectorised)."""
    s = values.fillna("").astype(str).str.strip()
    parts = s.str.split(":", expand=True).reindex(columns=[0, 1, 2])
    parts = parts.apply(lambda c: pd.to_numeric(c, errors="coerce")).to_numpy(dtype=np.float64)
    sign = np.where(s.str.startswith("-").to_numpy(), -1.0, 1.0)
    value = np.abs(parts[:, 0]) + parts[:, 1] / 60.0 + parts[:, 2] / 3600.0
    return sign * value * (15.0 if hours else 1.0)


def read_als(path: str | Path) -> Dataset:
    """An ALS II supplement (``als_ii_b.dat``, ``_d``, ``_u``) as a Dataset of positions, astrometry, distances.

    See the module docstring for the columns and units; text columns (spectral types, flags) are in
    :func:`read_als_table`.
    """
    path = Path(path)
    frame = read_als_table(path)
    ids = frame["ID_ALS"].to_numpy(dtype=np.int64)
    if (ids < 0).any():
        raise DataFormatError(f"{path}: line {int(np.flatnonzero(ids < 0)[0]) + 2} has no ID_ALS")
    ra = dec = None
    for ra_name, dec_name in (("RA_DR2", "DEC_DR2"), ("RA_ALS", "DEC_ALS")):
        if ra_name in frame.columns:
            r = sexagesimal_to_deg(frame[ra_name], hours=True)
            d = sexagesimal_to_deg(frame[dec_name], hours=False)
            ra = r if ra is None else np.where(np.isnan(ra), r, ra)
            dec = d if dec is None else np.where(np.isnan(dec), d, dec)
    columns: dict[str, Column] = {}
    for name in frame.columns:
        if name in TEXT_COLUMNS or name == "ID_ALS":
            continue
        if name in ID_COLUMNS:
            new = "gaia_dr2_source_id" if name == "ID_DR2" else name
            columns[new] = Column(frame[name].to_numpy(dtype=np.int64))
            continue
        values = frame[name].to_numpy(dtype=np.float64)
        new = RENAME.get(name, name)
        unit = "pc" if "_dist" in name else UNITS.get(new, "")
        columns[new] = Column(values, unit)
    return Dataset(ids, ra, dec, columns=columns,
                   meta={"source": str(path), "reader": "als", "catalogue": "ALS II (Pantaleoni Gonzalez+ 2021)"})


def _is_als(path: Path) -> bool:
    with open(path, encoding="latin-1") as fh:
        first = fh.readline()
    return "ID_ALS" in first and "GLON" in first


def _register() -> None:
    from astromodal.data.readers import register_reader

    register_reader("als", suffixes=(".dat",), sniff=_is_als,
                    description="ALS II OB-star catalogue supplements (fixed-width .dat): l, b, parallax, "
                                "proper motions, distances")(read_als)


_register()
