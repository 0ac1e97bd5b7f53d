"""The MPA-JHU DR7 star-formation-rate catalogue, joined to SDSS spectra (study D's target).

The catalogue (Brinchmann et al. 2004; Salim et al. 2007 for the total SFRs) ships as two FITS binary
tables of the same length whose rows are aligned by position (row i of one is row i of the other):

* ``gal_info_dr7_v5_2.fit(s)``: PLATEID, MJD, FIBERID (the spectrum), RA, DEC (degrees), Z, ...;
* ``gal_totsfr_dr7_v5_2.fit(s)``: the total SFR's likelihood summary AVG, MEDIAN, MODE, P2P5, P16, P84,
  P97P5 (log10 of the SFR in Msun/yr), ENTROPY and FLAG (0: good; 1, 2: problems; -99 in the value
  columns where FLAG != 0).

:func:`read_mpajhu_sfr` joins the two by row (equal lengths checked), keeps FLAG = 0 (``flags``),
drops the rows whose target column holds the -99 sentinel (or is not finite), and counts each step in
``meta["selection"]``. The target column is a setting (default ``AVG``); the thesis calls it ``AVR``,
which is accepted as an alias for ``AVG`` with a warning and a note in ``meta``.

:func:`join_sfr` attaches the catalogue's SFR to a spectra Dataset (the SDSS reader's ``plate``, ``mjd``,
``fiberid`` columns) on (PLATEID, MJD, FIBERID) as int64 keys with a pandas left merge: the regression
target ``"sfr"`` (log10 Msun/yr) and the columns ``sfr_p16``, ``sfr_p84``; NaN where no catalogue row
matches, counted in ``meta["sfr_join"]``.

The dataset source ``mpajhu_sfr`` (:func:`load_mpajhu_source`) reads a folder of spec-*.fits files
and the two catalogue files and returns the joined Dataset. The public HiSS-Cube code joins the SFR
table to gal_info by row position without any FLAG or -99 filtering; here both filters are applied.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.data.ids import as_int_ids
from astromodal.errors import BadValueError, ConfigError, DataFormatError

#: the spectrum keys of gal_info, in join order, and the Dataset columns they meet
KEYS: tuple[str, ...] = ("PLATEID", "MJD", "FIBERID")
DATASET_KEYS: tuple[str, ...] = ("plate", "mjd", "fiberid")
#: the columns of gal_totsfr (log10 SFR in Msun/yr, except ENTROPY and FLAG)
SFR_COLUMNS: tuple[str, ...] = ("AVG", "MEDIAN", "MODE", "P2P5", "P16", "P84", "P97P5", "ENTROPY", "FLAG")
#: the columns that can be the target (log10 SFR)
TARGET_COLUMNS: tuple[str, ...] = ("AVG", "MEDIAN", "MODE", "P2P5", "P16", "P84", "P97P5")
#: other names of target columns: the thesis writes AVR for the catalogue's AVG
TARGET_ALIASES: dict[str, str] = {"AVR": "AVG"}
#: the value the catalogue writes where there is no measurement
SENTINEL = -99.0
SFR_UNIT = "log10(Msun/yr)"


@dataclass
class SFRCatalogue:
    """The filtered, row-joined MPA-JHU tables: ``frame`` has PLATEID, MJD, FIBERID (int64), the gal_info
    columns and the SFR columns; ``target`` is the catalogue column used as the target; ``meta`` records
    the files, the alias used (if any) and the rows kept at each step (``selection``)."""

    frame: pd.DataFrame
    target: str = "AVG"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)


def resolve_target(target: str) -> tuple[str, str | None]:
    """(catalogue column, alias note or None) for a target name; ``AVR`` means ``AVG``.

    An unknown name is one :class:`ConfigError` line listing the allowed ones."""
    name = str(target).strip().upper()
    if name in TARGET_ALIASES:
        real = TARGET_ALIASES[name]
        return real, f"target {target!r} is the thesis's name for the MPA-JHU column {real}; {real} is used"
    if name not in TARGET_COLUMNS:
        raise ConfigError(f"MPA-JHU SFR target {target!r} is not a column of gal_totsfr; choose one of "
                          f"{list(TARGET_COLUMNS)} (or 'AVR', the thesis's name for AVG)")
    return name, None


def _load(path: str | Path, need: Sequence[str], what: str) -> pd.DataFrame:
    """A catalogue file's scalar columns, names upper-cased; a missing column of ``need`` is one
    :class:`DataFormatError` line naming the file and the column."""
    from astromodal.data.readers.tables import load_frame

    frame = load_frame(path)
    frame.columns = [str(c).upper() for c in frame.columns]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: no column {missing[0]} (an MPA-JHU {what} table has "
                              f"{', '.join(need)}; columns found: {list(frame.columns)[:20]})")
    return frame


def read_gal_info(path: str | Path) -> pd.DataFrame:
    """``gal_info_dr7_v5_2``: its scalar columns, PLATEID, MJD and FIBERID as int64 (array columns such as
    PHOTOID or KCOR_MAG are left out)."""
    frame = _load(path, KEYS, "gal_info")
    for key in KEYS:
        frame[key] = as_int_ids(frame[key].to_numpy(), str(path), f"column {key}", error=DataFormatError)
    return frame


def read_totsfr(path: str | Path) -> pd.DataFrame:
    """``gal_totsfr_dr7_v5_2``: AVG, MEDIAN, MODE, P2P5, P16, P84, P97P5 (log10 Msun/yr), ENTROPY, FLAG."""
    frame = _load(path, SFR_COLUMNS, "gal_totsfr")
    frame["FLAG"] = as_int_ids(frame["FLAG"].to_numpy(), str(path), "column FLAG", error=DataFormatError)
    return frame


def read_mpajhu_sfr(gal_info: str | Path, totsfr: str | Path, target: str = "AVG",
                    flags: Sequence[int] = (0,)) -> SFRCatalogue:
    """The two MPA-JHU tables joined by row, with only FLAG in ``flags`` (default 0) and no -99 sentinel
    (nor NaN) in the ``target`` column.

    Different lengths are one :class:`DataFormatError` line naming both files. ``meta["selection"]`` lists
    ``{"cut": ..., "kept": n}`` for the input rows, the FLAG cut and the sentinel cut; ``meta["target_alias"]``
    says when ``AVR`` was read as ``AVG`` (a :class:`UserWarning` says it too).
    """
    column, alias = resolve_target(target)
    if alias:
        warnings.warn(alias, UserWarning, stacklevel=2)
    info = read_gal_info(gal_info)
    sfr = read_totsfr(totsfr)
    if len(info) != len(sfr):
        raise DataFormatError(f"{gal_info} has {len(info):,} rows but {totsfr} has {len(sfr):,}: the MPA-JHU "
                              "tables are aligned row by row and must have the same length")
    overlap = [c for c in sfr.columns if c in info.columns]
    frame = pd.concat([info.reset_index(drop=True),
                       sfr.drop(columns=overlap).reset_index(drop=True)], axis=1)
    for c in overlap:  # a column both tables carry keeps the SFR table's under its own name
        frame[f"SFR_{c}"] = sfr[c].to_numpy()
    selection = [{"cut": "input", "kept": len(frame)}]
    keep_flags = [int(flags)] if isinstance(flags, (int, np.integer)) else [int(f) for f in flags]
    frame = frame[frame["FLAG"].isin(keep_flags)]
    selection.append({"cut": f"FLAG in {keep_flags}", "kept": len(frame)})
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    good = np.isfinite(values) & (values != SENTINEL)
    frame = frame[good].reset_index(drop=True)
    selection.append({"cut": f"{column} != {SENTINEL:g} and finite", "kept": len(frame)})
    meta: dict[str, Any] = {"gal_info": str(gal_info), "totsfr": str(totsfr), "target": column,
                            "unit": SFR_UNIT, "selection": selection}
    if alias:
        meta["target_alias"] = alias
    return SFRCatalogue(frame, column, meta)


def _dataset_keys(ds: Dataset, where: str) -> pd.DataFrame:
    cols = {}
    for name, key in zip(DATASET_KEYS, KEYS, strict=True):
        if name not in ds.columns:
            raise BadValueError(f"{where}: the dataset has no column {name!r} to join on {key} (columns: "
                                f"{sorted(ds.columns)}); read the spectra with the SDSS reader")
        cols[key] = as_int_ids(ds.columns[name].values.read(), where, f"column {name!r}")
    return pd.DataFrame(cols)


def join_sfr(ds: Dataset, sfr_table: SFRCatalogue | pd.DataFrame, target: str | None = None,
             name: str = "sfr", drop_unmatched: bool = False) -> Dataset:
    """``ds`` with the MPA-JHU SFR attached on (PLATEID, MJD, FIBERID) = (plate, mjd, fiberid).

    ``sfr_table``: a :class:`SFRCatalogue` (:func:`read_mpajhu_sfr`) or a DataFrame with the key columns
    and the target column. ``target`` (default the catalogue's, else AVG; ``AVR`` = AVG): the column that
    becomes the regression target ``name`` (log10 Msun/yr); P16 and P84, where present, become the columns
    ``{name}_p16`` and ``{name}_p84``. Objects without a catalogue row get NaN (a regression target's NaN
    is masked in the loss), or are dropped with ``drop_unmatched=True``; ``meta["sfr_join"]`` counts them.
    A key repeated in the catalogue is one :class:`BadValueError` line naming it.
    """
    if isinstance(sfr_table, SFRCatalogue):
        frame, cat_meta = sfr_table.frame, dict(sfr_table.meta)
        default = sfr_table.target
        where = f"{cat_meta.get('totsfr', 'SFR table')}"
    else:
        frame, cat_meta, default, where = sfr_table, {}, "AVG", "SFR table"
    column, alias = resolve_target(target if target is not None else default)
    if alias:
        warnings.warn(alias, UserWarning, stacklevel=2)
        cat_meta["target_alias"] = alias
    frame = frame.rename(columns={c: str(c).upper() for c in frame.columns})
    for need in (*KEYS, column):
        if need not in frame.columns:
            raise DataFormatError(f"{where}: no column {need} to join on (columns: {list(frame.columns)[:20]})")
    right_cols = [c for c in dict.fromkeys((column, "P16", "P84")) if c in frame.columns]
    right = frame[[*KEYS, *right_cols]].copy()
    for key in KEYS:
        right[key] = as_int_ids(right[key].to_numpy(), where, f"column {key}", error=DataFormatError)
    dup = right.duplicated(list(KEYS), keep=False)
    if dup.any():
        first = right[dup].iloc[0]
        raise BadValueError(f"{where}: spectrum {'-'.join(str(int(first[k])) for k in KEYS)} "
                            f"(PLATEID-MJD-FIBERID) appears in {int(dup.sum())} rows; each must be unique")
    left = _dataset_keys(ds, "join_sfr")
    merged = left.merge(right, how="left", on=list(KEYS), validate="many_to_one", sort=False)
    values = np.array(merged[column].to_numpy(dtype=np.float64))  # a writable copy
    values[values == SENTINEL] = np.nan  # a DataFrame given unfiltered
    matched = np.isfinite(values)
    info = {"target": column, "n": len(ds), "matched": int(matched.sum()), "unmatched": int((~matched).sum()),
            "unit": SFR_UNIT, **({"catalogue": cat_meta} if cat_meta else {})}
    out = ds.with_targets({name: Target(values, "regression", unit=SFR_UNIT)})
    extra = {f"{name}_{c.lower()}": merged[c].to_numpy(dtype=np.float64) for c in right_cols if c in ("P16", "P84")}
    if extra:
        out = out.with_columns({k: Column(np.where(v == SENTINEL, np.nan, v), SFR_UNIT) for k, v in extra.items()})
    out.meta = {**out.meta, "sfr_join": info}
    if drop_unmatched:
        out = out.subset(np.flatnonzero(matched))
        out.meta = {**out.meta, "sfr_join": {**info, "dropped_unmatched": info["unmatched"]}}
    return out


#: the options of the ``mpajhu_sfr`` dataset source
MPAJHU_OPTIONS = ("path", "gal_info", "totsfr", "target", "target_name", "flags", "drop_unmatched")


def load_mpajhu_source(options: dict[str, Any]) -> tuple[Dataset, None]:
    """The ``mpajhu_sfr`` source: SDSS spectra (``path``: a folder, a glob or a file, read by the ``sdss``
    reader) joined to the MPA-JHU SFR (``gal_info``, ``totsfr``: the two catalogue files; ``target``,
    default AVG; ``target_name``, default ``sfr``; ``flags``, default [0]; ``drop_unmatched``, default
    false)."""
    from astromodal.data.readers import read
    from astromodal.data.sources import resolve_path

    for key in ("path", "gal_info", "totsfr"):
        if options.get(key) is None:
            raise ConfigError(f"dataset source 'mpajhu_sfr' needs option {key!r}")
    catalogue = read_mpajhu_sfr(resolve_path(options["gal_info"]), resolve_path(options["totsfr"]),
                                target=options.get("target", "AVG"), flags=options.get("flags", (0,)))
    spectra = read(options["path"], reader="sdss")
    return join_sfr(spectra, catalogue, name=options.get("target_name", "sfr"),
                    drop_unmatched=bool(options.get("drop_unmatched", False))), None


__all__ = ["KEYS", "MPAJHU_OPTIONS", "SENTINEL", "SFRCatalogue", "SFR_COLUMNS", "TARGET_ALIASES", "join_sfr",
           "load_mpajhu_source", "read_gal_info", "read_mpajhu_sfr", "read_totsfr", "resolve_target"]
