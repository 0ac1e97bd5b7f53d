"""Catalogue tables (CSV, Parquet, FITS, ECSV) -> Dataset of feature columns and a label.

:func:`read_table` turns any table into a :class:`~astromodal.data.dataset.Dataset`: chosen feature
columns become catalogue columns, a label column becomes a class (or regression) target, an id column
the object ids, ``ra``/``dec`` the positions (degrees). Column names are matched exactly first, then
without regard to case, then through :data:`COLUMN_ALIASES`, which maps the spelled-out names of the
SDSS DR17 photometry table (``ultraviolet_filter`` ... ``infrared_filter``,
``right_ascension_angle``, ``declination_angle``) to ``u g r i z``, ``ra``, ``dec``.

:func:`add_colours` adds the colour indices u-g, g-r, r-i, i-z (magnitudes) of the bands present;
:func:`add_absolute_magnitudes` adds M_b = m_b - DM(z), the distance modulus from a redshift column
and an astropy cosmology.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io.registry import IORegistryError

from astromodal.data.dataset import Column, Dataset, Target
from astromodal.data.ids import as_int_ids
from astromodal.errors import BadValueError, DataFormatError

#: long column names -> short astromodal names (the SDSS DR17 photometry table spells bands out)
COLUMN_ALIASES: dict[str, str] = {
    "ultraviolet_filter": "u",
    "green_filter": "g",
    "red_filter": "r",
    "near_infrared_filter": "i",
    "infrared_filter": "z",
    "right_ascension_angle": "ra",
    "declination_angle": "dec",
    "alpha": "ra",
    "delta": "dec",
}

#: the usual names of an object id column, tried in this order (case-insensitive) when none is given
ID_COLUMNS: tuple[str, ...] = ("source_id", "objid", "specobjid", "obsid", "id")

#: the usual names of the right ascension / declination columns (degrees), tried in this order
#: (case-insensitive) when ``ra`` / ``dec`` are not given: SDSS, Gaia, VizieR (ICRS, J2000) spellings
RA_COLUMNS: tuple[str, ...] = ("ra", "right_ascension_angle", "alpha", "ra_gaia", "ra_icrs", "raj2000",
                               "_raj2000", "ra_j2000", "radeg", "ra_deg", "ra_degrees")
DEC_COLUMNS: tuple[str, ...] = ("dec", "declination_angle", "delta", "dec_gaia", "de_icrs", "dec_icrs",
                                "dej2000", "_dej2000", "decj2000", "dec_j2000", "dedeg", "decdeg", "dec_deg",
                                "dec_degrees")

#: units of well-known columns
COLUMN_UNITS: dict[str, str] = {
    **{b: "mag" for b in "ugriz"},
    "redshift": "",
    "ra": "deg",
    "dec": "deg",
    "parallax": "mas",
    "parallax_error": "mas",
    "pmra": "mas/yr",
    "pmdec": "mas/yr",
    "l": "deg",
    "b": "deg",
}

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".fits": "fits", ".fit": "fits",
            ".fits.gz": "fits", ".ecsv": "ecsv", ".csv.gz": "csv"}


def _format(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return _FORMATS[suffix]
    raise DataFormatError(f"{path}: unknown table type {path.suffix!r}; expected one of {sorted(_FORMATS)}")


def load_frame(path: str | Path, hdu: int | str = 1) -> pd.DataFrame:
    """A table file as a pandas DataFrame (CSV, Parquet, FITS binary table ``hdu``, ECSV).

    Multi-dimensional FITS/ECSV columns are left out (this is a reader of scalar columns).
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    fmt = _format(path)
    try:
        if fmt == "csv":
            return pd.read_csv(path)
        if fmt == "parquet":
            return pd.read_parquet(path)
        from astropy.table import Table

        table = Table.read(path, hdu=hdu) if fmt == "fits" else Table.read(path, format="ascii.ecsv")
        return _scalar_frame(table)
    except (OSError, ValueError, KeyError, TypeError, IORegistryError) as exc:
        raise _unreadable(path, fmt, exc) from None


def _unreadable(path: Path, fmt: str, exc: BaseException) -> DataFormatError:
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return DataFormatError(f"{path}: not a readable {fmt} table ({first})")


def _scalar_frame(table: Any) -> pd.DataFrame:
    """An astropy Table's scalar columns as a DataFrame, FITS byte strings decoded and stripped."""
    scalar = [c for c in table.colnames if table[c].ndim == 1]
    frame = table[scalar].to_pandas()
    for c in frame.columns:  # FITS strings come as bytes
        if frame[c].dtype == object and len(frame) and isinstance(frame[c].iloc[0], bytes):
            frame[c] = frame[c].str.decode("utf-8").str.strip()
    return frame


#: the table formats :func:`iter_frames` reads a slice at a time (ECSV is read whole by :func:`load_frame`)
STREAMED_FORMATS = ("csv", "parquet", "fits")


def table_format(path: str | Path) -> str:
    """``csv``, ``parquet``, ``fits`` or ``ecsv`` from a table file's name (an unknown suffix is a DataFormatError)."""
    return _format(Path(path))


def _fits_table(hdus: Any, hdu: int | str, path: Path) -> Any:
    from astropy.io import fits

    try:
        table = hdus[hdu]
    except (KeyError, IndexError):
        raise DataFormatError(f"{path}: no HDU {hdu!r} (the file has {len(hdus)})") from None
    if not isinstance(table, (fits.BinTableHDU, fits.TableHDU)):
        raise DataFormatError(f"{path}: HDU {hdu!r} is not a table")
    return table


def count_rows(path: str | Path, hdu: int | str = 1) -> int:
    """The number of rows :func:`load_frame` would give, without reading the table whole: a Parquet file's
    footer, a FITS table's ``NAXIS2``, or a CSV file parsed a block at a time (one column kept, so quoted
    newlines and blank lines count as :func:`pandas.read_csv` counts them)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    fmt = _format(path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        if fmt == "fits":
            from astropy.io import fits

            with fits.open(path, memmap=True) as hdus:
                return int(_fits_table(hdus, hdu, path).header["NAXIS2"])
        if fmt == "csv":
            return sum(len(block) for block in pd.read_csv(path, usecols=[0], chunksize=1 << 20))
        return len(load_frame(path, hdu=hdu))
    except DataFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, pd.errors.ParserError) as exc:
        raise _unreadable(path, fmt, exc) from None


def iter_frames(path: str | Path, chunk_size: int, hdu: int | str = 1, start: int = 0) -> Iterator[pd.DataFrame]:
    """A table file as DataFrames of ``chunk_size`` rows (the last one shorter), from row ``start`` on.

    Rows, columns and values are those of :func:`load_frame`, read a slice at a time so that memory does
    not grow with the table: Parquet by :meth:`pyarrow.parquet.ParquetFile.iter_batches` (row groups
    before ``start`` are not read), CSV by ``pandas.read_csv(chunksize=...)`` (each block's column types
    are inferred on that block, as pandas does; rows before ``start`` are parsed and dropped), FITS by
    memory-mapping the table HDU and converting each row slice with :meth:`astropy.table.Table.read`
    (the file is reopened for every slice, so mapped pages do not pile up). Other formats (ECSV) are
    read whole and sliced.
    """
    path = Path(path)
    if chunk_size < 1:
        raise BadValueError(f"chunk_size must be positive (got {chunk_size})")
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    fmt = _format(path)
    try:
        if fmt == "parquet":
            yield from _parquet_frames(path, chunk_size, start)
        elif fmt == "csv":
            reader = pd.read_csv(path, chunksize=chunk_size, skiprows=range(1, start + 1) if start else None)
            with reader:
                for block in reader:
                    yield block.reset_index(drop=True)
        elif fmt == "fits":
            yield from _fits_frames(path, chunk_size, hdu, start)
        else:
            frame = load_frame(path, hdu=hdu)
            for at in range(start, len(frame), chunk_size):
                yield frame.iloc[at:at + chunk_size].reset_index(drop=True)
    except DataFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IORegistryError, pd.errors.ParserError) as exc:
        raise _unreadable(path, fmt, exc) from None


def _parquet_frames(path: Path, chunk_size: int, start: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    groups, first = [], 0
    for g in range(meta.num_row_groups):  # the row groups holding row ``start`` and after
        rows = meta.row_group(g).num_rows
        if not groups and first + rows <= start:  # a leading row group wholly before ``start``
            first += rows
            continue
        groups.append(g)
    skip = start - first
    held: list[pa.RecordBatch] = []
    size = 0
    # one row group decoded at a time: ``iter_batches`` over many row groups reads ahead of its consumer
    # and held ~80 bytes a row of a 2-million-row file alive at once (pyarrow 26)
    batches = (batch for g in groups for batch in pf.read_row_group(g).to_batches(max_chunksize=chunk_size))
    for batch in batches:
        if skip:
            drop = min(skip, batch.num_rows)
            batch, skip = batch.slice(drop), skip - drop
        held.append(batch)
        size += batch.num_rows
        while size >= chunk_size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, chunk_size).to_pandas()
            rest = table.slice(chunk_size)
            held, size = rest.to_batches(), rest.num_rows
    if size:
        yield pa.Table.from_batches(held, schema=pf.schema_arrow).to_pandas()


def _fits_frames(path: Path, chunk_size: int, hdu: int | str, start: int) -> Iterator[pd.DataFrame]:
    from astropy.io import fits
    from astropy.table import Table

    with fits.open(path, memmap=True) as hdus:
        n = int(_fits_table(hdus, hdu, path).header["NAXIS2"])
    for at in range(start, n, chunk_size):
        with fits.open(path, memmap=True) as hdus:
            table = _fits_table(hdus, hdu, path)
            rows = type(table)(data=table.data[at:at + chunk_size], header=table.header)
            frame = _scalar_frame(Table.read(rows))
        yield frame


def resolve_column(frame: pd.DataFrame, name: str, what: str = "column", where: str = "") -> str:
    """The column of ``frame`` meant by ``name``: exact, case-insensitive, or via :data:`COLUMN_ALIASES`.

    An unknown name raises :class:`BadValueError` listing the columns found.
    """
    cols = list(frame.columns)
    if name in cols:
        return name
    lower = {str(c).lower(): c for c in cols}
    if name.lower() in lower:
        return lower[name.lower()]
    # the short name of a long column, or the long name of a short one
    for long, short in COLUMN_ALIASES.items():
        if short == name and long in lower:
            return lower[long]
        if long == name.lower() and short in lower:
            return lower[short]
    prefix = f"{where}: " if where else ""
    raise BadValueError(f"{prefix}unknown {what} {name!r}; the table has columns {cols}")


def _short_name(name: str) -> str:
    return COLUMN_ALIASES.get(name.lower(), name)


def first_present(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The first column of ``frame`` named (case-insensitively) by one of ``candidates``, else None."""
    lower = {str(c).lower(): c for c in frame.columns}
    for name in candidates:
        if name.lower() in lower:
            return str(lower[name.lower()])
    return None


def position_columns(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """The (ra, dec) columns of ``frame`` found among :data:`RA_COLUMNS` / :data:`DEC_COLUMNS`
    ((None, None) unless both are found)."""
    ra, dec = first_present(frame, RA_COLUMNS), first_present(frame, DEC_COLUMNS)
    return (ra, dec) if ra is not None and dec is not None else (None, None)


def rename_columns(frame: pd.DataFrame, rename: Mapping[str, str] | None, where: str = "") -> pd.DataFrame:
    """``frame`` with columns renamed ``{old: new}`` (old names matched as :func:`resolve_column` does).

    An unknown old name, a new name that is already another column, or two columns renamed to one
    name raise :class:`BadValueError`.
    """
    if not rename:
        return frame
    if not isinstance(rename, Mapping):
        raise BadValueError(f"{where}: rename must be a mapping {{old: new}}, not {rename!r}")
    mapping: dict[Any, str] = {}
    for old, new in rename.items():
        col = resolve_column(frame, str(old), "column to rename", where)
        mapping[col] = str(new)
    targets = list(mapping.values())
    clash = sorted({n for n in targets if targets.count(n) > 1})
    clash += [n for n in targets if n in frame.columns and n not in mapping]  # would be two columns
    if clash:
        raise BadValueError(f"{where}: rename {dict(rename)} gives column name(s) {sorted(set(clash))} that the "
                            f"table already has (or gives twice)")
    return frame.rename(columns=mapping)


def _ids(frame: pd.DataFrame, col: str | None, where: str) -> np.ndarray:
    """Object ids from column ``col`` (int64 for integer values, text otherwise; never floats) or row numbers."""
    if col is None:
        return np.arange(len(frame), dtype=np.int64)
    series = frame[col]
    missing = series.isna().to_numpy()
    if missing.any():
        raise BadValueError(f"{where}: id column {col!r} is empty at {int(missing.sum())} row(s), first at row "
                            f"{int(np.flatnonzero(missing)[0])}")
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return series.astype(str).to_numpy(dtype=str)
    # each value in its own type (a float32 column holds every integer only below 2**24, float64 below 2**53)
    values = series.to_numpy(dtype=getattr(series.dtype, "numpy_dtype", series.dtype))
    return as_int_ids(values, where, f"id column {col!r}")


def read_table(
    path: str | Path | pd.DataFrame,
    features: Sequence[str] | None = None,
    label: str | None = None,
    id_column: str | None = None,
    ra: str | None = "ra",
    dec: str | None = "dec",
    class_names: Sequence[str] | None = None,
    task: str = "class",
    target_name: str | None = None,
    dropna: bool = False,
    units: Mapping[str, str] | None = None,
    hdu: int | str = 1,
    rename: Mapping[str, str] | None = None,
    label_prefix: int | None = None,
    source_name: str | None = None,
    missing_values: Sequence[float] | None = None,
) -> Dataset:
    """A Dataset from a CSV/Parquet/FITS/ECSV table (or a DataFrame).

    ``features``: the columns kept as catalogue columns (named by their short alias: ``green_filter``
    becomes ``g``); default every numeric column except the label, ids (any of :data:`ID_COLUMNS`) and
    positions.
    ``label``: the target column, class labels (``class_names`` fixes their order; a label outside it is
    an error) or, with ``task="regression"``, values; stored under ``target_name`` (default: the label's
    short name). ``label_prefix``: a class is the first N characters of the label (``1``: subclass
    ``F5`` -> class ``F``). ``id_column``: object ids, kept as int64 (integer values, also when the column
    is stored as floats) or text, never floats; default the first of :data:`ID_COLUMNS` present, else the
    row number. ``ra``/``dec``: position columns in degrees; by default ``ra``/``dec`` or the first of
    :data:`RA_COLUMNS` / :data:`DEC_COLUMNS` present (``None`` to ignore); a name given explicitly must
    exist. ``rename``: ``{old: new}`` column renames applied first (every other name refers to the new
    names). ``source_name``: how messages name a DataFrame given as ``path`` (default ``table``).
    ``missing_values``: feature values that mean "not measured" in this catalogue (e.g. ``[99, 0]`` for
    LAMOST DR1 magnitudes); they become NaN, so ``dropna`` drops those rows (or an error names the first).

    ``meta["preparation"]`` records what was done (see :mod:`astromodal.data.preparation`), so that
    :func:`~astromodal.data.preparation.replay_preparation` can do the same to another raw file.

    A feature or label name not in the table raises :class:`BadValueError` listing the columns found.
    NaN or infinite feature values raise :class:`BadValueError` naming the first row (and id), unless
    ``dropna=True``, which drops those rows and records their number in ``meta["n_dropped"]``.
    """
    if isinstance(path, pd.DataFrame):
        frame, where = path.reset_index(drop=True), source_name or "table"
    else:
        frame, where = load_frame(path, hdu=hdu), str(path)
    if task not in ("class", "regression"):
        raise BadValueError(f"task must be 'class' or 'regression', not {task!r}")
    if label_prefix is not None:
        if isinstance(label_prefix, bool) or not isinstance(label_prefix, int) or label_prefix < 1:
            raise BadValueError(f"{where}: label_prefix must be a whole number >= 1 (characters kept), "
                                f"not {label_prefix!r}")
        if task != "class":
            raise BadValueError(f"{where}: label_prefix makes classes; it does not apply to a regression label")
    frame = rename_columns(frame, rename, where)
    label_col = resolve_column(frame, label, "label column", where) if label is not None else None
    if id_column is not None:
        id_col: str | None = resolve_column(frame, id_column, "id column", where)
    else:
        id_col = first_present(frame, ID_COLUMNS)
    ra_col = dec_col = None
    if ra is not None and dec is not None:
        auto_ra, auto_dec = position_columns(frame)
        ra_col = auto_ra if ra == "ra" else resolve_column(frame, ra, "ra column", where)
        dec_col = auto_dec if dec == "dec" else resolve_column(frame, dec, "dec column", where)
        if (ra_col is None) != (dec_col is None):
            if (ra, dec) == ("ra", "dec"):
                ra_col = dec_col = None
            else:  # one side given explicitly, the other not found
                missing = "dec" if dec_col is None else "ra"
                raise BadValueError(f"{where}: no {missing} column among {list(DEC_COLUMNS if missing == 'dec' else RA_COLUMNS)}; "
                                    f"name it with the {missing!r} option (columns: {list(frame.columns)})")
    if features is None:
        skip = {label_col, id_col, ra_col, dec_col}  # and every column with a usual id name
        feature_cols = [c for c in frame.columns if c not in skip and str(c).lower() not in ID_COLUMNS
                        and pd.api.types.is_numeric_dtype(frame[c])]
    else:
        feature_cols = [resolve_column(frame, f, "feature column", where) for f in features]
    names = [_short_name(str(c)) for c in feature_cols]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadValueError(f"{where}: feature columns {dup} are named more than once (after aliases)")
    X = np.empty((len(frame), len(feature_cols)), dtype=np.float64)
    for k, c in enumerate(feature_cols):
        try:
            X[:, k] = pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            bad = pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()
            row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
            raise BadValueError(
                f"{where}: feature column {c!r} holds a non-number {frame[c].iloc[row]!r} at row {row}"
            ) from None
    if missing_values:
        try:
            sentinels = np.asarray(list(missing_values), dtype=np.float64)
        except (TypeError, ValueError):
            raise BadValueError(f"{where}: missing_values must be a list of numbers, not {missing_values!r}") from None
        X[np.isin(X, sentinels)] = np.nan
    ids = _ids(frame, id_col, where)
    bad_rows = ~np.isfinite(X).all(axis=1)
    if label_col is not None:
        bad_rows |= frame[label_col].isna().to_numpy()
    n_dropped = 0
    if bad_rows.any():
        if not dropna:
            row = int(np.flatnonzero(bad_rows)[0])
            cols = [feature_cols[k] for k in np.flatnonzero(~np.isfinite(X[row]))]
            if label_col is not None and pd.isna(frame[label_col].iloc[row]):
                cols.append(label_col)
            raise BadValueError(
                f"{where}: NaN or infinite values in {int(bad_rows.sum())} row(s), first at row {row} "
                f"(id {ids[row]!r}) in columns {cols}; pass dropna=True to drop such rows"
            )
        keep = ~bad_rows
        n_dropped = int(bad_rows.sum())
        frame, X, ids = frame[keep].reset_index(drop=True), X[keep], ids[keep]
    units = dict(units or {})
    columns = {n: Column(X[:, k], units.get(n, COLUMN_UNITS.get(n, ""))) for k, n in enumerate(names)}
    targets: dict[str, Target] = {}
    if label_col is not None:
        tname = target_name or _short_name(str(label_col))
        values = frame[label_col].to_numpy()
        if label_prefix is not None:
            values = frame[label_col].astype(str).str.strip().str[:label_prefix].to_numpy()
        if task == "regression":
            try:
                targets[tname] = Target(values.astype(np.float64), "regression", unit=units.get(tname, ""))
            except (ValueError, TypeError):
                raise BadValueError(f"{where}: regression label {label_col!r} holds non-numbers") from None
        else:
            try:
                targets[tname] = Target.from_labels(values, class_names)
            except BadValueError as exc:
                raise BadValueError(f"{where}: label column {label_col!r}: {exc}") from None
    ra_v, dec_v = (_positions(frame, c, where) for c in (ra_col, dec_col))
    from astromodal.data.preparation import table_recipe

    recipe = table_recipe(
        where, rename=rename, columns=names, raw_columns=[str(c) for c in feature_cols], label=label,
        label_column=None if label_col is None else str(label_col), target=tname if label_col is not None else None,
        task=task, class_names=list(targets[tname].class_names) if label_col is not None and task == "class" else None,
        label_prefix=label_prefix, id_column=None if id_col is None else str(id_col),
        ra=None if ra_col is None else str(ra_col), dec=None if dec_col is None else str(dec_col),
        dropna=dropna, units=units, hdu=hdu, missing_values=missing_values,
    )
    meta: dict[str, Any] = {"source": where, "reader": "table", "n_dropped": n_dropped,
                            "feature_columns": names, "preparation": recipe}
    return Dataset(ids, ra_v, dec_v, columns=columns, targets=targets, meta=meta)


def _positions(frame: pd.DataFrame, col: str | None, where: str) -> np.ndarray | None:
    if col is None:
        return None
    try:
        return pd.to_numeric(frame[col], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise BadValueError(f"{where}: position column {col!r} holds non-numbers (degrees expected)") from None


def add_colours(ds: Dataset, bands: Sequence[str] = ("u", "g", "r", "i", "z")) -> Dataset:
    """A copy with colour indices of neighbouring bands (``"u-g"``, ``"g-r"``, ``"r-i"``, ``"i-z"``, mag).

    Only pairs whose two magnitudes are both columns of ``ds`` are added; none at all is an error.
    """
    present = [b for b in bands if b in ds.columns]
    pairs = [(a, b) for a, b in zip(bands[:-1], bands[1:], strict=True) if a in ds.columns and b in ds.columns]
    if not pairs:
        raise BadValueError(f"no neighbouring pair of bands {list(bands)} among the columns {list(ds.columns)} "
                            f"(bands present: {present})")
    colours = {f"{a}-{b}": ds.columns[a].values.read().astype(np.float64) - ds.columns[b].values.read().astype(np.float64)
               for a, b in pairs}
    from astromodal.data.preparation import record_step

    return record_step(ds.with_columns(colours, units={k: "mag" for k in colours}),
                       {"step": "colours", "bands": list(bands)})


def add_absolute_magnitudes(ds: Dataset, redshift: str = "redshift",
                            bands: Sequence[str] = ("u", "g", "r", "i", "z"),
                            cosmology: str = "Planck18", z_min: float = 1e-4) -> Dataset:
    """A copy with ``M_<band> = <band> - DM(z)`` for each band present (magnitudes).

    DM is the distance modulus 5 log10(D_L / 10 pc) of the named astropy cosmology (``Planck18``,
    ``WMAP9``, ...) at the redshift column's value. No K-correction is applied, so these are
    distance-corrected apparent magnitudes, the luminosity a classifier needs to tell a quasar from
    a galaxy at the same redshift. Redshifts below ``z_min`` (stars, and slightly negative
    spectroscopic redshifts) are taken as ``z_min`` so every row has a finite value.
    """
    from astropy import cosmology as cosmo_module

    if redshift not in ds.columns:
        raise BadValueError(f"absolute magnitudes need the redshift column {redshift!r}; "
                            f"columns: {list(ds.columns)}")
    present = [b for b in bands if b in ds.columns]
    if not present:
        raise BadValueError(f"no band of {list(bands)} among the columns {list(ds.columns)}")
    if cosmology not in cosmo_module.realizations.available:
        raise BadValueError(f"unknown cosmology {cosmology!r}; astropy has "
                            f"{sorted(cosmo_module.realizations.available)}")
    if not z_min > 0:
        raise BadValueError(f"z_min must be > 0, not {z_min}")
    cosmo = getattr(cosmo_module, cosmology)
    z = np.maximum(ds.columns[redshift].values.read().astype(np.float64), z_min)
    dm = cosmo.distmod(z).value
    mags = {f"M_{b}": ds.columns[b].values.read().astype(np.float64) - dm for b in present}
    from astromodal.data.preparation import record_step

    return record_step(ds.with_columns(mags, units={k: "mag" for k in mags}),
                       {"step": "absolute_magnitudes", "redshift": redshift, "bands": list(bands),
                        "cosmology": cosmology, "z_min": float(z_min)})


def _is_table(path: Path) -> bool:
    """True unless a FITS file has no binary/ASCII table in HDU 1 (spectra and images are other readers')."""
    if _format(path) != "fits":
        return True
    from astropy.io import fits

    with fits.open(path) as hdus:
        return len(hdus) > 1 and isinstance(hdus[1], (fits.BinTableHDU, fits.TableHDU))


def _register() -> None:
    from astromodal.data.readers import register_reader

    register_reader("table", suffixes=tuple(_FORMATS), sniff=_is_table,
                    description="catalogue table (CSV, Parquet, FITS, ECSV): feature columns + label column, "
                                "SDSS DR17 long band names mapped to u g r i z")(read_table)


_register()
