"""Sky cross-match of two catalogues and the quality cuts of a Gaia x SDSS selection (MESCR, study B).

:func:`crossmatch` pairs catalogue A with catalogue B by position: each A object's nearest B object
(astropy :meth:`~astropy.coordinates.SkyCoord.match_to_catalog_sky`, great-circle separations) is its match
when it lies within the radius; when several A objects have the same nearest B object, only the nearest
pair is kept (ties: the first A row) and the others are dropped as duplicates, so every B object appears at
most once. This is not a global optimal assignment: a dropped A object is not offered its second-nearest
B object (TOPCAT's "best match" per row with uniqueness on B).

:func:`crossmatch_lsdb` applies the same rule through LSDB ("Using LSDB to enable large-scale catalog
distribution, cross-matching, and analytics", arXiv:2501.02103: HEALPix-partitioned Dask over the HATS
format in which Gaia, ZTF and Rubin catalogues are served): each partition pair
is matched with LSDB's KD-tree (B with a margin cache, so pairs across partition borders are found), the
separations are those of astropy, and the one-to-one rule is applied over all partitions. HATS folders
are read lazily, so catalogues larger than memory can be matched; on in-memory inputs both backends give
the same table (``tests/test_crossmatch_lsdb.py``).

:func:`apply_quality_cuts` keeps the rows that pass each configured cut (:data:`QUALITY_CUTS`), in the
order listed there, and counts the rows left after each: the study's ``parallax_over_error > 2``,
``pmra_error < 0.2``, ``pmdec_error < 0.2``, ``ruwe < 1.4`` and the removal of saturated SDSS sources
(a boolean ``saturated`` column, or the SATURATED bit 18 (value 2**18 = 262144) of the SDSS photometric
``flags`` column). A missing or NaN value fails a cut (a source without a parallax has no
parallax_over_error > 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from astromodal.errors import BadValueError, ConfigError

#: SDSS PhotoObj ``flags``: bit 18 is SATURATED ("object contains one or more saturated pixels"), the
#: value of ``dbo.fPhotoFlags('SATURATED')`` in SkyServer (the 64-bit flags = flags1 | flags2 << 32)
SDSS_SATURATED_BIT = 18

#: the quality cuts a dataset's ``cuts`` may set, in the order they are applied: key -> (column, operator);
#: the study's values: parallax_over_error_min 2, pmra_error_max 0.2, pmdec_error_max 0.2, ruwe_max 1.4
QUALITY_CUTS: dict[str, tuple[str, str]] = {
    "parallax_over_error_min": ("parallax_over_error", ">"),
    "pmra_error_max": ("pmra_error", "<"),
    "pmdec_error_max": ("pmdec_error", "<"),
    "ruwe_max": ("ruwe", "<"),
    "drop_saturated": ("saturated", "not"),
}


def check_cuts(cuts: Mapping[str, Any] | None) -> dict[str, Any]:
    """``cuts`` checked: known keys only, finite numbers for thresholds, a bool for ``drop_saturated``.

    Raises :class:`ConfigError` (one line naming the key and the allowed keys).
    """
    if cuts is None:
        return {}
    if not isinstance(cuts, Mapping):
        raise ConfigError(f"cuts must be a mapping of {list(QUALITY_CUTS)}, not {cuts!r}")
    unknown = sorted(set(cuts) - set(QUALITY_CUTS))
    if unknown:
        raise ConfigError(f"cuts: unknown key(s) {unknown}; allowed: {list(QUALITY_CUTS)}")
    out: dict[str, Any] = {}
    for key, value in cuts.items():
        if value is None:
            continue
        if key == "drop_saturated":
            if not isinstance(value, (bool, np.bool_)):
                raise ConfigError(f"cuts: 'drop_saturated' must be true or false, not {value!r}")
            out[key] = bool(value)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value):
            raise ConfigError(f"cuts: {key!r} must be a finite number, not {value!r}")
        out[key] = float(value)
    return out


def _column(columns: Any, name: str) -> np.ndarray | None:
    """Column ``name`` of a mapping / DataFrame / astropy Table / structured array, or None when absent."""
    names = getattr(columns, "colnames", None) or getattr(getattr(columns, "dtype", None), "names", None)
    if names is None:
        names = list(columns.keys()) if hasattr(columns, "keys") else list(columns)
    if name not in names:
        return None
    value = columns[name]
    value = getattr(value, "values", value)  # a Column or a pandas Series
    value = value.read() if hasattr(value, "read") else value
    return np.asarray(value)


def apply_quality_cuts(columns: Any, cuts: Mapping[str, Any] | None, where: str = "the table"
                       ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Rows passing every cut of ``cuts`` (keys of :data:`QUALITY_CUTS`), and the counts after each cut.

    ``columns``: a mapping of column name -> values (a Dataset's ``columns``, a dict of arrays), a pandas
    DataFrame or an astropy Table. Returns ``(mask, counts)``: ``mask`` (N,) True for the rows kept;
    ``counts`` a list of ``{"cut": "parallax_over_error > 2", "kept": n}`` in the order of
    :data:`QUALITY_CUTS`, each ``kept`` the rows left after that cut and every earlier one, preceded by
    ``{"cut": "input", "kept": N}``. ``parallax_over_error`` absent but ``parallax`` and ``parallax_error``
    present: their ratio is used. ``drop_saturated``: the bool ``saturated`` column, else SDSS ``flags``
    bit 18 (:data:`SDSS_SATURATED_BIT`). A cut whose column is missing raises :class:`ConfigError` naming the
    column and ``where``.
    """
    cuts = check_cuts(cuts)
    n = _length(columns)
    mask = np.ones(n, dtype=bool)
    counts: list[dict[str, Any]] = [{"cut": "input", "kept": n}]
    for key, (name, op) in QUALITY_CUTS.items():
        if key not in cuts or (key == "drop_saturated" and not cuts[key]):
            continue
        if op == "not":
            bad, label = _saturated(columns, where), "not saturated"
            mask &= ~bad
        else:
            values = _values(columns, name, where)
            threshold = cuts[key]
            with np.errstate(invalid="ignore"):
                ok = values > threshold if op == ">" else values < threshold
            mask &= ok
            label = f"{name} {op} {threshold:g}"
        counts.append({"cut": label, "kept": int(mask.sum())})
    return mask, counts


def _length(columns: Any) -> int:
    if hasattr(columns, "__len__") and not isinstance(columns, Mapping):
        return len(columns)
    for value in columns.values():
        value = getattr(value, "values", value)
        return len(value)
    return 0


def _values(columns: Any, name: str, where: str) -> np.ndarray:
    values = _column(columns, name)
    if values is None and name == "parallax_over_error":
        plx, err = _column(columns, "parallax"), _column(columns, "parallax_error")
        if plx is not None and err is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                return plx.astype(np.float64) / err.astype(np.float64)
    if values is None:
        extra = " (or parallax and parallax_error)" if name == "parallax_over_error" else ""
        raise ConfigError(f"{where}: the quality cut on {name!r} needs column {name!r}{extra}, which it lacks")
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        raise BadValueError(f"{where}: column {name!r} of a quality cut holds non-numbers") from None


def _saturated(columns: Any, where: str) -> np.ndarray:
    """True for saturated rows: the ``saturated`` column (bool or 0/1), else SDSS ``flags`` bit 18."""
    values = _column(columns, "saturated")
    if values is not None:
        if values.dtype.kind == "b":
            return values
        if values.dtype.kind in "iuf" and np.all(np.isin(values[np.isfinite(values.astype(float))], (0, 1))):
            return values.astype(float) == 1.0
        raise BadValueError(f"{where}: column 'saturated' must be true/false (or 0/1)")
    flags = _column(columns, "flags")
    if flags is None:
        raise ConfigError(f"{where}: the quality cut drop_saturated needs column 'saturated' or the SDSS "
                          "'flags' column, which it lacks")
    if flags.dtype.kind not in "iu":
        if flags.dtype.kind == "f" and np.all(np.isfinite(flags)) and np.all(flags == np.round(flags)):
            flags = flags.astype(np.int64)  # flags read as floats (e.g. a CSV with empty cells elsewhere)
        else:
            raise BadValueError(f"{where}: column 'flags' must hold whole numbers (SDSS photo flags)")
    return (flags.astype(np.int64) >> SDSS_SATURATED_BIT) & 1 == 1


# ---------------------------------------------------------------- cross-match
def parse_radius(text: str | float) -> float:
    """A match radius in arcsec from an astropy quantity string (``"3arcsec"``, ``"0.001deg"``, ``"50 mas"``).

    A bare number, a unit that is not an angle, or a radius that is not positive and finite is a
    :class:`ConfigError`.
    """
    import astropy.units as u

    try:
        quantity = u.Quantity(str(text).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"--radius {text!r} is not an angle; give a number with a unit, e.g. 3arcsec or "
                          "0.001deg") from None
    if quantity.unit == u.dimensionless_unscaled:
        raise ConfigError(f"--radius {text!r} has no unit; give e.g. 3arcsec or 0.001deg")
    if not quantity.unit.is_equivalent(u.arcsec):
        raise ConfigError(f"--radius {text!r}: {quantity.unit} is not an angle; give e.g. 3arcsec or 0.001deg")
    value = float(quantity.to_value(u.arcsec))
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"--radius {text!r} must be a positive, finite angle")
    return value


def _check_positions(ra: np.ndarray, dec: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    ra = np.asarray(ra, dtype=np.float64).ravel()
    dec = np.asarray(dec, dtype=np.float64).ravel()
    if ra.shape != dec.shape:
        raise BadValueError(f"catalogue {side}: {len(ra)} ra values but {len(dec)} dec values")
    bad = ~(np.isfinite(ra) & np.isfinite(dec)) | (np.abs(dec) > 90.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(f"catalogue {side}: {int(bad.sum())} position(s) are not finite degrees with "
                            f"|dec| <= 90, first at row {row} (ra {ra[row]!r}, dec {dec[row]!r})")
    return ra, dec


def _nearest_per_b(key_a: np.ndarray, sep: np.ndarray, key_b: tuple[np.ndarray, ...]) -> np.ndarray:
    """The candidate pairs kept by the one-to-one rule, as positions into the candidates, in the order of A.

    Candidate ``i`` pairs the A row of order key ``key_a[i]`` with the B object identified by the tuple
    ``key_b`` (one array, or several that together name a B object) at separation ``sep[i]``. Of the
    candidates sharing one B object only the nearest is kept, ties to the lowest ``key_a``: the pairs are
    sorted by (B object, separation, A key) and each group's first is taken.
    """
    if len(key_a) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((key_a, sep, *key_b[::-1]))
    first = np.ones(len(order), dtype=bool)
    for k in key_b:
        ks = k[order]
        first[1:] &= ks[1:] == ks[:-1]
    first = ~first
    first[0] = True
    kept = order[first]
    return kept[np.argsort(key_a[kept], kind="stable")]


def crossmatch(a_ra: np.ndarray, a_dec: np.ndarray, b_ra: np.ndarray, b_dec: np.ndarray, radius_arcsec: float,
               counts: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest, unique pairs of A and B within ``radius_arcsec`` (positions in degrees, ICRS).

    Returns ``(idx_a, idx_b, sep_arcsec)``: the row of each matched pair in A and in B (int64, sorted by
    ``idx_a``) and its great-circle separation in arcsec. A pair is kept when B's row is A's nearest and the
    separation is at most the radius; of several A rows sharing one nearest B row only the nearest is kept
    (ties: the lowest A row). ``counts``, when given, is filled with ``n_a``, ``n_b``, ``matched``,
    ``unmatched_a`` (A rows without a kept match), ``unmatched_b`` and ``duplicates_dropped`` (A rows whose
    nearest B row within the radius went to a nearer A row).
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    a_ra, a_dec = _check_positions(a_ra, a_dec, "A")
    b_ra, b_dec = _check_positions(b_ra, b_dec, "B")
    if not (np.isfinite(radius_arcsec) and radius_arcsec > 0):
        raise ConfigError(f"the match radius must be a positive number of arcsec, not {radius_arcsec!r}")
    n_a, n_b = len(a_ra), len(b_ra)
    empty = np.zeros(0, dtype=np.int64)
    if n_a == 0 or n_b == 0:
        idx_a, idx_b, sep, n_dup = empty, empty, np.zeros(0), 0
    else:
        a = SkyCoord(ra=a_ra * u.deg, dec=a_dec * u.deg, frame="icrs")
        b = SkyCoord(ra=b_ra * u.deg, dec=b_dec * u.deg, frame="icrs")
        nearest, sep2d, _ = a.match_to_catalog_sky(b)
        sep_all = sep2d.to_value(u.arcsec)
        within = np.flatnonzero(sep_all <= radius_arcsec)
        keep = _nearest_per_b(within, sep_all[within], (nearest[within],))
        idx_a = within[keep].astype(np.int64)
        idx_b = np.asarray(nearest[idx_a], dtype=np.int64)
        sep = sep_all[idx_a]
        n_dup = int(len(within) - len(idx_a))
    if counts is not None:
        counts.update({"n_a": n_a, "n_b": n_b, "matched": int(len(idx_a)), "unmatched_a": int(n_a - len(idx_a)),
                       "unmatched_b": int(n_b - len(idx_b)), "duplicates_dropped": n_dup})
    return idx_a, idx_b, sep



def _position_columns(frame: Any, ra: str | None, dec: str | None, side: str) -> tuple[str, str]:
    """The (ra, dec) columns of one side: named ones (as :func:`~astromodal.data.readers.tables.resolve_column`
    finds them) or the usual names (:data:`~astromodal.data.readers.tables.RA_COLUMNS` / ``DEC_COLUMNS``)."""
    from astromodal.data.readers.tables import DEC_COLUMNS, RA_COLUMNS, first_present, resolve_column

    where = f"catalogue {side}"
    out = []
    for given, usual, what in ((ra, RA_COLUMNS, "ra"), (dec, DEC_COLUMNS, "dec")):
        if given is not None:
            out.append(resolve_column(frame, given, f"{what} column", where))
            continue
        found = first_present(frame, usual)
        if found is None:
            raise BadValueError(f"{where}: no {what} column among the usual names {list(usual[:6])}...; name it "
                                f"with --{what}-column-{side.lower()} (columns: {list(frame.columns)})")
        out.append(found)
    return out[0], out[1]


def _frame_positions(frame: Any, ra: str | None, dec: str | None, side: str
                     ) -> tuple[str, str, np.ndarray, np.ndarray]:
    """The position columns of one in-memory side, and their values (float64 degrees, checked)."""
    import pandas as pd

    ra_col, dec_col = _position_columns(frame, ra, dec, side)
    try:
        values = [pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float64) for c in (ra_col, dec_col)]
    except (ValueError, TypeError):
        raise BadValueError(f"catalogue {side}: position columns {ra_col!r}, {dec_col!r} hold non-numbers "
                            "(degrees expected)") from None
    ra_values, dec_values = _check_positions(values[0], values[1], side)
    return ra_col, dec_col, ra_values, dec_values


def _joined_names(cols_a: list, cols_b: list, suffixes: tuple[str, str]) -> tuple[list[str], list[str]]:
    """Output names of A's and B's columns: a name both have gets its side's suffix; a name that would still
    appear twice (with ``separation_arcsec``) is a :class:`ConfigError`."""
    both = set(map(str, cols_a)) & set(map(str, cols_b))
    names_a = [f"{c}{suffixes[0]}" if str(c) in both else str(c) for c in cols_a]
    names_b = [f"{c}{suffixes[1]}" if str(c) in both else str(c) for c in cols_b]
    names = [*names_a, *names_b, "separation_arcsec"]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"the joined table would have column(s) {twice} twice; choose other --suffixes")
    return names_a, names_b


def crossmatch_tables(a: Any, b: Any, radius_arcsec: float, *, ra_a: str | None = None, dec_a: str | None = None,
                      ra_b: str | None = None, dec_b: str | None = None, suffixes: tuple[str, str] = ("_a", "_b")
                      ) -> tuple[Any, dict[str, int]]:
    """The matched rows of two pandas DataFrames side by side, and the counts of :func:`crossmatch`.

    Position columns (degrees): ``ra_a`` ... ``dec_b``, or the usual names (ra/dec, RA_ICRS/DE_ICRS, ...).
    Every column of A, then every column of B, then ``separation_arcsec``; a name both tables have gets
    ``suffixes`` (A's, B's); rows in the order of A. A name that would still appear twice is a
    :class:`ConfigError`.
    """
    import pandas as pd

    positions = [*_frame_positions(a, ra_a, dec_a, "A")[2:], *_frame_positions(b, ra_b, dec_b, "B")[2:]]
    counts: dict[str, int] = {}
    idx_a, idx_b, sep = crossmatch(*positions, radius_arcsec, counts=counts)
    names_a, names_b = _joined_names(list(a.columns), list(b.columns), suffixes)
    left = a.iloc[idx_a].reset_index(drop=True)
    right = b.iloc[idx_b].reset_index(drop=True)
    left.columns, right.columns = names_a, names_b
    joined = pd.concat([left, right], axis=1)
    joined["separation_arcsec"] = sep
    return joined, counts


# ---------------------------------------------------------------- cross-match at scale (LSDB)
#: cross-match backends of :func:`crossmatch_tables` / ``astromodal crossmatch --backend``
BACKENDS = ("astropy", "lsdb")

#: files whose presence makes a folder a HATS catalogue (or a HATS collection: catalogue + margin cache)
_HATS_MARKERS = ("collection.properties", "hats.properties", "properties")

#: internal column / suffix names of the LSDB path (never in the output)
_ROW_A, _ROW_B, _SFX_A, _SFX_B = "__am_row_a", "__am_row_b", "__am_a", "__am_b"

#: the LSDB search radius is the match radius times this (plus 1e-6 arcsec): candidates at the radius are
#: not lost to the chord-distance round-off of the KD-tree; the radius rule itself is then applied to the
#: astropy separation, exactly as in :func:`crossmatch`
_SEARCH_SLACK = 1.0 + 1e-6

#: partitions of the cross-match computed together: Dask's worker count (``dask.config`` ``num_workers``),
#: else the CPU count; a whole catalogue at once would let Dask hold many partitions in memory
def _batch() -> int:
    import os

    import dask

    return max(1, int(dask.config.get("num_workers", None) or os.cpu_count() or 1))


#: A's order key of a HATS catalogue: partition rank (in HEALPix order) * 2**40 + row within the partition
_RANK_SHIFT = 1 << 40


def is_hats(path: Any) -> bool:
    """True when ``path`` is a folder holding a HATS catalogue or collection (a ``properties`` file)."""
    from pathlib import Path

    try:
        path = Path(path)
    except TypeError:
        return False
    return path.is_dir() and any((path / name).is_file() for name in _HATS_MARKERS)


def _astropy_sep_arcsec(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Great-circle separations in arcsec by the formula of :meth:`SkyCoord.separation` (Vincenty)."""
    import astropy.units as u
    from astropy.coordinates import angular_separation

    def deg(values: Any) -> Any:
        return np.asarray(values, dtype=np.float64) * u.deg

    return np.asarray(angular_separation(deg(ra1), deg(dec1), deg(ra2), deg(dec2)).to_value(u.arcsec))


class _Side:
    """One catalogue of the LSDB path: the lsdb Catalog, its position columns, row count and B-key columns."""

    def __init__(self, catalog: Any, columns: list[str], ra: str, dec: str, n: int, frame: Any = None):
        self.catalog, self.columns, self.ra, self.dec, self.n, self.frame = catalog, columns, ra, dec, n, frame

    @property
    def in_memory(self) -> bool:
        return self.frame is not None


def _hats_side(path: Any, ra: str | None, dec: str | None, side: str) -> _Side:
    import lsdb

    try:
        catalog = lsdb.read_hats(path)
    except Exception as exc:  # hats / lsdb raise many kinds for a folder that is not a readable catalogue
        raise BadValueError(f"catalogue {side}: {path} is not a readable HATS catalogue ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    info = catalog.hc_structure.catalog_info
    columns = [str(c) for c in catalog.columns]
    names = []
    for given, default, what in ((ra, info.ra_column, "ra"), (dec, info.dec_column, "dec")):
        name = given or default
        if name not in columns:
            raise BadValueError(f"catalogue {side} (HATS {path}): no {what} column {name!r}; columns: {columns}")
        names.append(name)
    if names != [info.ra_column, info.dec_column]:
        raise ConfigError(f"catalogue {side} (HATS {path}) is partitioned on ({info.ra_column}, {info.dec_column}); "
                          f"it can only be matched on those columns, not on {tuple(names)}")
    n = info.total_rows
    if n is None:
        import dask

        n = int(sum(dask.compute(*[_delayed_len(p) for p in catalog[[names[0]]].to_delayed()])))
    return _Side(catalog, columns, names[0], names[1], int(n))


def _delayed_len(part: Any) -> Any:
    import dask

    return dask.delayed(len)(part)


def _frame_side(frame: Any, ra: str | None, dec: str | None, side: str, row_column: str,
                partition_rows: int | None, margin_arcsec: float | None) -> _Side:
    import warnings

    import lsdb

    ra_col, dec_col, ra_values, dec_values = _frame_positions(frame, ra, dec, side)
    if row_column in map(str, frame.columns):
        raise ConfigError(f"catalogue {side} has a column named {row_column!r}, which the lsdb backend uses itself")
    work = frame.reset_index(drop=True)
    work = work.assign(**{row_column: np.arange(len(work), dtype=np.int64)})
    work[ra_col], work[dec_col] = ra_values, dec_values  # as checked: float degrees
    with warnings.catch_warnings():  # "not intended for large datasets": the frame is in memory already
        warnings.filterwarnings("ignore", message="from_dataframe is not intended", category=RuntimeWarning)
        catalog = lsdb.from_dataframe(work, ra_column=ra_col, dec_column=dec_col, catalog_name=f"catalogue_{side}",
                                      partition_rows=partition_rows, margin_threshold=margin_arcsec,
                                      use_pyarrow_types=False)
    return _Side(catalog, [str(c) for c in frame.columns], ra_col, dec_col, len(frame), frame)


def _number_a(catalog: Any) -> Any:
    """A HATS catalogue A with its order key :data:`_ROW_A`: partitions in HEALPix order, rows within a
    partition sorted by their ``_healpix_29`` index (ties in stored order); key = rank * 2**40 + row."""
    pixels = catalog.get_ordered_healpix_pixels()
    rank = {(p.order, p.pixel): i for i, p in enumerate(pixels)}

    def number(df: Any, pixel: Any = None) -> Any:
        df = df.sort_index(kind="stable")
        start = rank.get((pixel.order, pixel.pixel), 0) * _RANK_SHIFT if pixel is not None else 0
        return df.assign(**{_ROW_A: start + np.arange(len(df), dtype=np.int64)})

    meta = catalog.meta.assign(**{_ROW_A: np.zeros(0, dtype=np.int64)})
    return catalog.map_partitions(number, include_pixel=True, meta=meta)


def crossmatch_lsdb(a: Any, b: Any, radius_arcsec: float, *, ra_a: str | None = None, dec_a: str | None = None,
                    ra_b: str | None = None, dec_b: str | None = None, suffixes: tuple[str, str] = ("_a", "_b"),
                    partition_rows: int | None = None) -> tuple[dict[str, int], Any]:
    """:func:`crossmatch_tables` through LSDB (HEALPix-partitioned Dask): catalogues larger than memory.

    ``a``, ``b``: a pandas DataFrame (converted with :func:`lsdb.from_dataframe`, at most
    ``partition_rows`` rows a HEALPix partition; lsdb's default when None; B gets a margin cache of the
    search radius) or the path of a HATS catalogue folder (:func:`lsdb.read_hats`, read lazily; B must
    be a HATS collection with a margin cache of at least the radius, unless it has a single partition).

    The rule is that of :func:`crossmatch`: LSDB's KD-tree finds each A object's nearest B object
    (``n_neighbors=1``) within the radius (searched a hair wider, :data:`_SEARCH_SLACK`); separations
    are recomputed with astropy's :func:`~astropy.coordinates.angular_separation`, the formula of
    ``SkyCoord.separation``, and the radius applied to them; then one-to-one on B, ties to the first A row.

    Returns ``(counts, frames)``: the counts of :func:`crossmatch`, and an iterator of the output table
    (the columns and names of :func:`crossmatch_tables`) in pieces. Rows in the order of A: A's rows for
    an in-memory A (the table is gathered and sorted: A is in memory already); for a HATS A its HATS
    order (partitions in HEALPix order, rows by ``_healpix_29``), one partition at a time.

    Memory: the first pass keeps, per candidate pair, its A key, B key and separation (24 bytes for an
    in-memory B, 32 for a HATS B, where a B object is named by its ra and dec; ~130 bytes a pair at the
    peak of the one-to-one rule: +1.4 million pairs measured +187 MB, ``benchmarks/bench_crossmatch.py``); the
    second pass holds one partition of the joined columns at a time (with a HATS A); the first pass
    computes as many partitions at a time as Dask has workers. The Dask scheduler
    is Dask's default (threads) unless configured (``dask.config.set(scheduler=...)``).
    """
    import pandas as pd

    if not (np.isfinite(radius_arcsec) and radius_arcsec > 0):
        raise ConfigError(f"the match radius must be a positive number of arcsec, not {radius_arcsec!r}")
    if partition_rows is not None and partition_rows < 1:
        raise ConfigError(f"--partition-rows must be at least 1, not {partition_rows}")
    a_frame, b_frame = isinstance(a, pd.DataFrame), isinstance(b, pd.DataFrame)
    if a_frame and b_frame and (len(a) == 0 or len(b) == 0):  # nothing to partition: the astropy result
        joined, counts = crossmatch_tables(a, b, radius_arcsec, ra_a=ra_a, dec_a=dec_a, ra_b=ra_b, dec_b=dec_b,
                                           suffixes=suffixes)
        return counts, iter([joined])
    search = radius_arcsec * _SEARCH_SLACK + 1e-6
    side_a = (_frame_side(a, ra_a, dec_a, "A", _ROW_A, partition_rows, None) if a_frame
              else _hats_side(a, ra_a, dec_a, "A"))
    side_b = (_frame_side(b, ra_b, dec_b, "B", _ROW_B, partition_rows, search * 1.05) if b_frame
              else _hats_side(b, ra_b, dec_b, "B"))
    names_a, names_b = _joined_names(side_a.columns, side_b.columns, suffixes)
    if not b_frame:
        margin = side_b.catalog.margin
        if margin is None and side_b.catalog.npartitions > 1:
            raise ConfigError(f"catalogue B ({b}) is a HATS catalogue of {side_b.catalog.npartitions} partitions "
                              "without a margin cache: matches across partition borders would be lost; give a "
                              f"HATS collection with a margin cache of at least {radius_arcsec:g} arcsec")
        threshold = getattr(margin.hc_structure.catalog_info, "margin_threshold", None) if margin is not None else None
        if threshold is not None and threshold < search:
            raise ConfigError(f"catalogue B ({b}): its margin cache is {threshold:g} arcsec, less than the match "
                              f"radius {radius_arcsec:g} arcsec: matches across partition borders would be lost")
    left = side_a.catalog if a_frame else _number_a(side_a.catalog)
    xm = left.crossmatch(side_b.catalog, n_neighbors=1, radius_arcsec=search, suffixes=(_SFX_A, _SFX_B),
                         suffix_method="all_columns", log_changes=False)
    ra1, dec1, ra2, dec2 = (side_a.ra + _SFX_A, side_a.dec + _SFX_A, side_b.ra + _SFX_B, side_b.dec + _SFX_B)
    key_a = _ROW_A + _SFX_A
    key_b = [_ROW_B + _SFX_B] if b_frame else [ra2, dec2]  # a HATS B object: named by its position

    def pairs(df: Any) -> Any:
        sep = _astropy_sep_arcsec(df[ra1], df[dec1], df[ra2], df[dec2])
        out = {"a": df[key_a].to_numpy(dtype=np.int64), "sep": sep}
        for j, k in enumerate(key_b):
            out[f"b{j}"] = df[k].to_numpy(dtype=np.float64 if k in (ra2, dec2) else np.int64)
        table = pd.DataFrame(out)
        return table[sep <= radius_arcsec]

    import dask

    parts = xm.to_delayed()
    found = []
    batch = _batch()
    for at in range(0, len(parts), batch):  # a few partitions at a time: memory bounded by the partitions
        found += dask.compute(*[dask.delayed(pairs)(p) for p in parts[at:at + batch]])
    lengths = [len(f) for f in found]
    cand = pd.concat(found, ignore_index=True) if found else pd.DataFrame({"a": [], "sep": []})
    del found
    ka = cand["a"].to_numpy(dtype=np.int64)
    if len(np.unique(ka)) != len(ka):
        raise BadValueError("lsdb backend: an A object was matched in two partitions; the catalogue's partitions "
                            "overlap (not a valid HATS catalogue)")
    keep = _nearest_per_b(ka, cand["sep"].to_numpy(), tuple(cand[f"b{j}"].to_numpy() for j in range(len(key_b))))
    winners = np.sort(ka[keep])
    part_of = np.repeat(np.arange(len(lengths)), lengths)[keep]
    counts = {"n_a": side_a.n, "n_b": side_b.n, "matched": int(len(keep)), "unmatched_a": int(side_a.n - len(keep)),
              "unmatched_b": int(side_b.n - len(keep)), "duplicates_dropped": int(len(ka) - len(keep))}
    first_key = pd.Series(ka[keep]).groupby(part_of).min()  # partitions with a kept pair, by their first A key
    wanted = [int(i) for i in first_key.sort_values(kind="stable").index]
    del cand, ka
    rename = {**{f"{c}{_SFX_A}": n for c, n in zip(side_a.columns, names_a, strict=True)},
              **{f"{c}{_SFX_B}": n for c, n in zip(side_b.columns, names_b, strict=True)}}
    out_columns = [*names_a, *names_b, "separation_arcsec"]

    def output(df: Any) -> Any:
        df = df[np.isin(df[key_a].to_numpy(dtype=np.int64), winners)]
        sep = _astropy_sep_arcsec(df[ra1], df[dec1], df[ra2], df[dec2])
        order = np.argsort(df[key_a].to_numpy(dtype=np.int64), kind="stable")
        piece = pd.DataFrame(df.iloc[order]).rename(columns=rename)
        piece["separation_arcsec"] = sep[order]
        piece.index = df[key_a].to_numpy(dtype=np.int64)[order]
        return piece[out_columns]

    def frames() -> Any:
        if side_a.in_memory:  # A (and so the output) is in memory: gather, order by A's rows, A's and B's types
            pieces = []
            for at in range(0, len(wanted), batch):
                pieces += dask.compute(*[dask.delayed(output)(parts[i]) for i in wanted[at:at + batch]])
            joined = pd.concat(pieces) if pieces else pd.DataFrame(columns=out_columns)
            joined = joined.sort_index(kind="stable").reset_index(drop=True)
            yield _source_types(joined, side_a, names_a, side_b, names_b)
            return
        last = -1
        yielded = False
        for i in wanted:
            piece = dask.compute(dask.delayed(output)(parts[i]))[0]
            if len(piece) and int(piece.index[0]) <= last:
                raise BadValueError("lsdb backend: the partitions of catalogue A are not in HEALPix order")
            last = int(piece.index[-1]) if len(piece) else last
            yielded = True
            yield _source_types(piece.reset_index(drop=True), side_a, names_a, side_b, names_b)
        if not yielded:
            meta = xm.meta.rename(columns=rename).assign(separation_arcsec=np.zeros(0))
            yield meta[out_columns]

    return counts, frames()


def _source_types(frame: Any, side_a: _Side, names_a: list[str], side_b: _Side, names_b: list[str]) -> Any:
    """The columns of an in-memory side back in their input types (LSDB may hand back pyarrow-backed ones)."""
    for side, names in ((side_a, names_a), (side_b, names_b)):
        if not side.in_memory:
            continue
        for col, name in zip(side.frame.columns, names, strict=True):
            want = side.frame[col].dtype
            if frame[name].dtype != want:
                try:
                    frame[name] = frame[name].astype(want)
                except (TypeError, ValueError):
                    pass  # kept as LSDB gave it (same values)
    return frame


__all__ = ["crossmatch", "crossmatch_tables", "crossmatch_lsdb", "is_hats", "BACKENDS", "parse_radius",
           "apply_quality_cuts", "check_cuts", "QUALITY_CUTS", "SDSS_SATURATED_BIT"]
