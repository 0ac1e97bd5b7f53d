"""Sky cross-match of two catalogues and the quality cuts of a Gaia x SDSS selection (MESCR, study B).

:func:`crossmatch` pairs catalogue A with catalogue B by position: each A object's nearest B object
(astropy :meth:`~astropy.coordinates.SkyCoord.match_to_catalog_sky`, great-circle separations) is its match
when it lies within the radius; when several A objects have the same nearest B object, only the nearest
pair is kept (ties: the first A row) and the others are dropped as duplicates, so every B object appears at
most once. This is not a global optimal assignment: a dropped A object is not offered its second-nearest
B object (TOPCAT's "best match" per row with uniqueness on B).

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
        # per B row, the A row nearest to it: sort by (B row, separation, A row) and take each group's first
        order = np.lexsort((within, sep_all[within], nearest[within]))
        cand = within[order]
        first = np.ones(len(cand), dtype=bool)
        first[1:] = nearest[cand][1:] != nearest[cand][:-1]
        idx_a = np.sort(cand[first]).astype(np.int64)
        idx_b = np.asarray(nearest[idx_a], dtype=np.int64)
        sep = sep_all[idx_a]
        n_dup = int(len(cand) - len(idx_a))
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

    cols = {"A": _position_columns(a, ra_a, dec_a, "A"), "B": _position_columns(b, ra_b, dec_b, "B")}
    positions = []
    for frame, side in ((a, "A"), (b, "B")):
        ra, dec = cols[side]
        try:
            positions += [pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float64) for c in (ra, dec)]
        except (ValueError, TypeError):
            raise BadValueError(f"catalogue {side}: position columns {ra!r}, {dec!r} hold non-numbers "
                                "(degrees expected)") from None
    counts: dict[str, int] = {}
    idx_a, idx_b, sep = crossmatch(*positions, radius_arcsec, counts=counts)
    both = set(map(str, a.columns)) & set(map(str, b.columns))
    left = a.iloc[idx_a].reset_index(drop=True)
    right = b.iloc[idx_b].reset_index(drop=True)
    left.columns = [f"{c}{suffixes[0]}" if str(c) in both else str(c) for c in a.columns]
    right.columns = [f"{c}{suffixes[1]}" if str(c) in both else str(c) for c in b.columns]
    names = [*left.columns, *right.columns, "separation_arcsec"]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"the joined table would have column(s) {twice} twice; choose other --suffixes")
    joined = pd.concat([left, right], axis=1)
    joined["separation_arcsec"] = sep
    return joined, counts


__all__ = ["crossmatch", "crossmatch_tables", "parse_radius", "apply_quality_cuts", "check_cuts", "QUALITY_CUTS",
           "SDSS_SATURATED_BIT"]
