"""OB associations from massive-star positions with DBSCAN (study C, the application step).

Two ways to cluster stars:

* ``mode="xyz"``: heliocentric Galactic Cartesian coordinates (kpc) from l, b and a distance,
  d = 1 / parallax (parallax in mas gives d in kpc) after keeping parallax / parallax_error >=
  ``parallax_over_error_min`` (3 in the study) and parallax > 0, or from a distance column; DBSCAN with
  ``eps`` in kpc (0.5 in the study) and ``min_samples`` (10).
* ``mode="sky"``: positions on the sky only; DBSCAN with the haversine metric on (b, l) in radians, so
  ``eps`` is an angle in degrees and the wrap of l at 0/360 deg is handled by the metric.

x points from the Sun to the Galactic centre (l = 0, b = 0), y in the direction of Galactic rotation
(l = 90 deg), z to the North Galactic Pole (b = +90 deg).

Positions come from columns ``l``, ``b`` (degrees) or are computed from ``ra``, ``dec`` (ICRS degrees).
Stars without usable values (NaN position; in xyz mode NaN parallax or parallax error or distance)
raise :class:`BadValueError` naming the column and the input rows (the index labels of a DataFrame, so a
selection still names the rows of the file as given; an infinite value is called infinite), unless ``drop_missing=True``, which leaves
them out of the clustering and counts them in ``result.summary["n_missing"]``.

Labels: -1 = noise or not clustered (cut or missing); groups are numbered 0, 1, ... by decreasing size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astromodal.errors import BadValueError, ConfigError

MODES = ("xyz", "sky")


class NoStarSelected(BadValueError):
    """:func:`find_associations_chunked`: no block had a selected row (the caller may say why)."""


def galactic_xyz(l_deg: Any, b_deg: Any, distance_kpc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heliocentric Galactic Cartesian coordinates (same unit as the distance).

    x = d cos b cos l (towards the Galactic centre), y = d cos b sin l (direction of rotation),
    z = d sin b (towards the North Galactic Pole).
    """
    lr = np.radians(np.asarray(l_deg, dtype=np.float64))
    br = np.radians(np.asarray(b_deg, dtype=np.float64))
    d = np.asarray(distance_kpc, dtype=np.float64)
    return d * np.cos(br) * np.cos(lr), d * np.cos(br) * np.sin(lr), d * np.sin(br)


def galactic_lb(ra_deg: Any, dec_deg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Galactic longitude and latitude (degrees) of ICRS ra, dec (degrees), vectorised with astropy."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    good = np.isfinite(ra) & np.isfinite(dec)
    l_out = np.full(ra.shape, np.nan)
    b_out = np.full(ra.shape, np.nan)
    if good.any():
        gal = SkyCoord(ra=ra[good] * u.deg, dec=dec[good] * u.deg, frame="icrs").galactic
        l_out[good] = gal.l.deg
        b_out[good] = gal.b.deg
    return l_out, b_out


def score_associations(true_ids: Sequence[Any], labels: Sequence[int]) -> float:
    """Adjusted Rand index between true group ids and found labels (1 = identical partitions)."""
    from sklearn.metrics import adjusted_rand_score

    true_ids = np.asarray(true_ids)
    labels = np.asarray(labels)
    if true_ids.shape != labels.shape:
        raise BadValueError(f"{len(true_ids)} true ids but {len(labels)} labels")
    return float(adjusted_rand_score(true_ids, labels))


@dataclass
class AssociationResult:
    """Per-star labels and members table, one row per group, and a summary."""

    labels: np.ndarray
    members: pd.DataFrame
    groups: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- inputs
def as_frame(data: Any) -> pd.DataFrame:
    """A Dataset or DataFrame as a DataFrame with ``id``, ``ra``, ``dec`` and the catalogue columns.

    Column units of a Dataset are returned in ``frame.attrs["units"]``.
    """
    from astromodal.data.dataset import Dataset

    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True).copy()
        frame.attrs["units"] = dict(data.attrs.get("units", {}))
        return frame
    if isinstance(data, Dataset):
        cols: dict[str, Any] = {"id": np.asarray(data.ids.read())}
        cols["ra"] = data.ra.read().astype(np.float64)
        cols["dec"] = data.dec.read().astype(np.float64)
        for name, c in data.columns.items():
            cols[name] = c.values.read()
        for name, t in data.targets.items():
            if name not in cols:
                cols[name] = t.labels() if t.kind == "class" else t.values.read()
        frame = pd.DataFrame(cols)
        frame.attrs["units"] = {k: c.unit for k, c in data.columns.items()}
        return frame
    raise BadValueError(f"associations need a Dataset or a pandas DataFrame, not {type(data).__name__}")


def _missing(values: np.ndarray, column: str, drop: bool, input_rows: np.ndarray | None = None) -> np.ndarray:
    """Stars whose ``values`` are not finite; an error naming their input rows unless ``drop``.

    ``input_rows`` maps each star to its row in the input as given (before any selection); an infinite
    value is called infinite, a NaN missing.
    """
    bad = ~np.isfinite(values)
    if bad.any() and not drop:
        pos = np.flatnonzero(bad)
        rows = (np.arange(len(values)) if input_rows is None else np.asarray(input_rows))[pos]
        inf = np.isinf(values[pos])
        what = ("infinite" if inf.all() else "missing (NaN) or infinite" if inf.any() else "missing (NaN)")
        raise BadValueError(
            f"column {column!r} is {what} for {len(pos)} star(s), rows {rows[:5].tolist()}"
            f"{' ...' if len(pos) > 5 else ''} of the input (data rows counted from 0); pass drop_missing=True "
            "(--drop-missing) to leave them out"
        )
    return bad


def _column(frame: pd.DataFrame, name: str, why: str) -> np.ndarray:
    if name not in frame.columns:
        raise BadValueError(f"{why} needs a column {name!r}; the table has columns {list(frame.columns)}")
    try:
        return pd.to_numeric(frame[name], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raw = frame[name]
        bad = pd.to_numeric(raw, errors="coerce").isna().to_numpy() & raw.notna().to_numpy()
        pos = np.flatnonzero(bad)
        rows = frame.attrs.get("input_rows")
        row = rows[pos[0]] if rows is not None and len(pos) else (pos[0] if len(pos) else None)
        where = f": {raw.iloc[pos[0]]!r} in row {row} of the input (data rows counted from 0)" if len(pos) else ""
        raise BadValueError(f"column {name!r} holds values that are not numbers{where}") from None


def _distance_kpc(frame: pd.DataFrame, column: str, unit: str | None) -> np.ndarray:
    values = _column(frame, column, "the distance")
    unit = unit or frame.attrs.get("units", {}).get(column) or "kpc"
    factors = {"kpc": 1.0, "pc": 1e-3, "mpc": 1e3}
    try:
        return values * factors[unit.lower()]
    except KeyError:
        raise ConfigError(f"distance unit {unit!r} of column {column!r} is not one of pc, kpc, Mpc") from None


# ---------------------------------------------------------------------------------------------- groups
def _group_table(labels: np.ndarray, l_deg: np.ndarray, b_deg: np.ndarray, dist_kpc: np.ndarray | None,
                 xyz: np.ndarray | None) -> pd.DataFrame:
    """One row per group: size, circular-mean l, mean b, median distance, spreads (vectorised by bincount)."""
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    if k == 0:
        return pd.DataFrame(columns=["group", "n_members", "l_deg", "b_deg", "distance_kpc", "l_spread_deg",
                                     "b_spread_deg", "spread_pc", "x_kpc", "y_kpc", "z_kpc"])
    m = labels >= 0
    g = labels[m]
    n = np.bincount(g, minlength=k).astype(np.float64)
    lr = np.radians(l_deg[m])
    l_c = np.degrees(np.arctan2(np.bincount(g, np.sin(lr), k), np.bincount(g, np.cos(lr), k))) % 360.0
    b_c = np.bincount(g, b_deg[m], k) / n
    dl = (l_deg[m] - l_c[g] + 180.0) % 360.0 - 180.0  # offsets across the l = 0/360 wrap
    l_sd = np.sqrt(np.bincount(g, dl**2, k) / n)
    b_sd = np.sqrt(np.bincount(g, (b_deg[m] - b_c[g]) ** 2, k) / n)
    table = pd.DataFrame({"group": np.arange(k), "n_members": n.astype(np.int64), "l_deg": l_c, "b_deg": b_c})
    dist = np.full(k, np.nan)
    if dist_kpc is not None:
        frame = pd.DataFrame({"g": g, "d": dist_kpc[m]})
        med = frame.groupby("g")["d"].median()
        dist[med.index.to_numpy()] = med.to_numpy()
    table["distance_kpc"] = dist
    table["l_spread_deg"] = l_sd
    table["b_spread_deg"] = b_sd
    if xyz is not None:
        centre = np.stack([np.bincount(g, xyz[m, j], k) / n for j in range(3)], axis=1)
        r2 = ((xyz[m] - centre[g]) ** 2).sum(axis=1)
        table["spread_pc"] = 1e3 * np.sqrt(np.bincount(g, r2, k) / n)  # rms 3-D distance from the centre
        table["x_kpc"], table["y_kpc"], table["z_kpc"] = centre[:, 0], centre[:, 1], centre[:, 2]
    else:
        # projected size: the rms angular offset times the median distance, where a distance is known
        ang = np.radians(np.sqrt(np.bincount(g, dl**2 * np.cos(np.radians(b_deg[m])) ** 2 + (b_deg[m] - b_c[g]) ** 2,
                                             k) / n))
        table["spread_pc"] = 1e3 * dist * ang
        for c in ("x_kpc", "y_kpc", "z_kpc"):
            table[c] = np.nan
        if dist_kpc is not None:
            x, y, z = galactic_xyz(l_c, b_c, dist)
            table["x_kpc"], table["y_kpc"], table["z_kpc"] = x, y, z
    return table


def _renumber_by_size(raw: np.ndarray) -> np.ndarray:
    """DBSCAN labels renumbered 0, 1, ... by decreasing group size (ties by first member); noise stays -1."""
    out = np.full(raw.shape, -1, dtype=np.int64)
    found = raw >= 0
    if not found.any():
        return out
    ids, first, counts = np.unique(raw[found], return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    new = np.empty(len(ids), dtype=np.int64)
    new[order] = np.arange(len(ids))
    out[found] = new[np.searchsorted(ids, raw[found])]
    return out


@dataclass
class _Stars:
    """The per-star quantities of :func:`find_associations` for one block of input rows (see
    :func:`_prepare`): the rows, positions, distance, x/y/z and the missing / cut flags."""

    frame: pd.DataFrame
    l_deg: np.ndarray
    b_deg: np.ndarray
    dist_kpc: np.ndarray | None
    xyz: np.ndarray | None
    missing: np.ndarray
    cut: np.ndarray


def _check_settings(mode: str, eps: float, min_samples: int) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {list(MODES)}, not {mode!r}")
    if not eps > 0:
        raise ConfigError(f"eps must be positive (got {eps})")
    if min_samples < 1:
        raise ConfigError(f"min_samples must be at least 1 (got {min_samples})")


def _prepare(data: Any, mode: str, parallax_over_error_min: float, distance_column: str | None,
             distance_unit: str | None, drop_missing: bool, parallax_column: str, parallax_error_column: str
             ) -> _Stars:
    """Galactic l, b (astropy, from ra/dec when there is no l/b), distance, x/y/z (kpc) and the missing /
    parallax-cut flags of the stars of ``data``, row by row: a block of rows gives the values the whole
    table would give for those rows (the basis of :func:`find_associations_chunked`)."""
    # messages name the rows of the input as given: the index labels of a (selected) DataFrame
    input_rows = data.index.to_numpy() if isinstance(data, pd.DataFrame) else None
    frame = as_frame(data)
    if input_rows is not None:
        frame.attrs["input_rows"] = input_rows.tolist()  # a list: pandas compares attrs when combining frames
    n = len(frame)
    if "l" in frame.columns and "b" in frame.columns:
        l_deg, b_deg = _column(frame, "l", "positions"), _column(frame, "b", "positions")
        missing = _missing(l_deg, "l", drop_missing, input_rows) | _missing(b_deg, "b", drop_missing, input_rows)
    elif "ra" in frame.columns and "dec" in frame.columns:
        ra, dec = _column(frame, "ra", "positions"), _column(frame, "dec", "positions")
        missing = _missing(ra, "ra", drop_missing, input_rows) | _missing(dec, "dec", drop_missing, input_rows)
        l_deg, b_deg = galactic_lb(ra, dec)
    else:
        raise BadValueError(f"positions need columns 'l', 'b' or 'ra', 'dec'; the table has {list(frame.columns)}")

    has_plx = parallax_column in frame.columns and parallax_error_column in frame.columns
    if mode == "xyz" and distance_column is None and not has_plx:
        need = parallax_column if parallax_column not in frame.columns else parallax_error_column
        raise BadValueError(
            f"xyz mode needs columns {parallax_column!r} and {parallax_error_column!r} (or --distance-column); "
            f"column {need!r} is missing; the table has columns {list(frame.columns)}"
        )
    cut = np.zeros(n, dtype=bool)
    dist_kpc: np.ndarray | None = None
    if has_plx:
        plx = _column(frame, parallax_column, "the parallax cut")
        plx_err = _column(frame, parallax_error_column, "the parallax cut")
        if mode == "xyz" and distance_column is None:
            missing |= (_missing(plx, parallax_column, drop_missing, input_rows)
                        | _missing(plx_err, parallax_error_column, drop_missing, input_rows))
        with np.errstate(divide="ignore", invalid="ignore"):
            poe = plx / plx_err
            cut = ~(poe >= parallax_over_error_min) | ~(plx > 0)
            if distance_column is None:
                dist_kpc = np.where(plx > 0, 1.0 / plx, np.nan)  # mas -> kpc
        if mode == "sky":
            cut = np.zeros(n, dtype=bool)  # the cut concerns distances: sky positions need none
    if distance_column is not None:
        dist_kpc = _distance_kpc(frame, distance_column, distance_unit)
        if mode == "xyz":
            missing |= _missing(dist_kpc, distance_column, drop_missing, input_rows)
            cut |= ~(dist_kpc > 0) & np.isfinite(dist_kpc)
    cut &= ~missing
    xyz = np.stack(galactic_xyz(l_deg, b_deg, dist_kpc), axis=1) if dist_kpc is not None else None
    return _Stars(frame, l_deg, b_deg, dist_kpc, xyz, missing, cut)


def _cluster(stars: _Stars, mode: str, eps: float, min_samples: int, parallax_over_error_min: float,
             distance_column: str | None) -> AssociationResult:
    """DBSCAN on the stars kept (not missing, not cut): a KD-tree on x/y/z (xyz mode) or a ball tree with the
    haversine metric on (b, l) (sky mode), neighbours found by tree queries (never a dense distance
    matrix); then labels by size, the group table, the members table and the summary."""
    from sklearn.cluster import DBSCAN

    frame, l_deg, b_deg, dist_kpc, xyz_all = stars.frame, stars.l_deg, stars.b_deg, stars.dist_kpc, stars.xyz
    missing, cut = stars.missing, stars.cut
    n = len(frame)
    used = ~missing & ~cut
    raw = np.full(n, -1, dtype=np.int64)
    if used.sum() >= 1:
        if mode == "xyz":
            pts = xyz_all[used]
            model = DBSCAN(eps=eps, min_samples=min_samples, algorithm="kd_tree")
        else:
            pts = np.radians(np.stack([b_deg[used], l_deg[used]], axis=1))
            model = DBSCAN(eps=np.radians(eps), min_samples=min_samples, metric="haversine", algorithm="ball_tree")
        raw[used] = model.fit_predict(pts)
    labels = _renumber_by_size(raw)
    groups = _group_table(labels, l_deg, b_deg, dist_kpc, xyz_all if mode == "xyz" else None)

    members = frame.copy()
    members["l"], members["b"] = l_deg, b_deg
    members["distance_kpc"] = dist_kpc if dist_kpc is not None else np.nan
    for j, c in enumerate(("x_kpc", "y_kpc", "z_kpc")):
        members[c] = xyz_all[:, j] if xyz_all is not None else np.nan
    members["used"] = used
    members["group"] = labels
    members.attrs = {}
    summary = {
        "mode": mode,
        "eps": float(eps),
        "eps_unit": "kpc" if mode == "xyz" else "deg",
        "min_samples": int(min_samples),
        "parallax_over_error_min": float(parallax_over_error_min),
        "distance_column": distance_column,
        "n_stars": int(n),
        "n_missing": int(missing.sum()),
        "n_cut": int(cut.sum()),
        "n_clustered_input": int(used.sum()),
        "n_in_groups": int((labels >= 0).sum()),
        "n_noise": int(used.sum() - (labels >= 0).sum()),
        "n_groups": int(len(groups)),
    }
    return AssociationResult(labels, members, groups, summary)


def find_associations(
    data: Any,
    mode: str = "xyz",
    eps: float = 0.5,
    min_samples: int = 10,
    parallax_over_error_min: float = 3.0,
    distance_column: str | None = None,
    distance_unit: str | None = None,
    drop_missing: bool = False,
    parallax_column: str = "parallax",
    parallax_error_column: str = "parallax_error",
) -> AssociationResult:
    """Cluster stars into associations with DBSCAN (see the module docstring for the two modes).

    ``eps``: kpc in xyz mode, degrees on the sky in sky mode. ``distance_column``: use this distance
    (unit ``distance_unit``, else the column's unit in a Dataset, else kpc) instead of 1/parallax; the
    parallax_over_error cut is still applied where parallax columns exist. In sky mode the distance
    (1/parallax or the column) is used only to describe groups, when available.

    Returns per-star ``labels`` (-1: noise, cut or missing), ``members`` (the input rows plus ``l``,
    ``b``, ``distance_kpc``, ``x/y/z_kpc``, ``used``, ``group``), ``groups`` (group, n_members, centre
    l/b in degrees, median distance in kpc, rms spread in l/b in degrees and in pc, centre x/y/z in kpc)
    and a ``summary`` dict (counts of stars in, cut, missing, clustered, groups; parameters).
    For a table too large for memory, :func:`find_associations_chunked` gives the same result.
    """
    _check_settings(mode, eps, min_samples)
    stars = _prepare(data, mode, parallax_over_error_min, distance_column, distance_unit, drop_missing,
                     parallax_column, parallax_error_column)
    return _cluster(stars, mode, eps, min_samples, parallax_over_error_min, distance_column)


def find_associations_chunked(
    chunks: Iterable[pd.DataFrame],
    select: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    **settings: Any,
) -> tuple[AssociationResult, pd.DataFrame]:
    """:func:`find_associations` over a table read in blocks of rows, in memory bounded by the block and the
    stars selected, not by the table (a million-row prediction of which ~1 % are massive-star candidates).

    ``chunks``: DataFrames of consecutive rows, each indexed by its rows' numbers in the input (so that
    messages name the rows of the file); ``select``: keeps the rows to cluster from a block (e.g. the
    query and the probability threshold of ``astromodal associations``; all rows when None). Each block's
    selected rows get l, b (astropy), distance, x/y/z and the parallax cut at once (:func:`_prepare`); the
    block is then dropped. DBSCAN runs once on the selected stars of all blocks with a KD-tree on x/y/z
    (xyz mode) or a ball tree (sky mode): memory O(stars selected + their neighbours within eps), no
    N x N distance matrix. The result equals ``find_associations(selected_rows)``.

    Peak memory: about three blocks of input columns (the block read, the selected copy, pandas' working
    copies: 3 x chunk rows x bytes a row) + the selected stars' rows twice (the selected table and the
    members table) + ~100 bytes a selected star (l, b, distance, x/y/z, flags, DBSCAN) + 8 bytes per
    neighbour pair within eps. Measured: ``benchmarks/bench_associations.py``.

    ``settings``: the keyword settings of :func:`find_associations` (``mode``, ``eps``, ``min_samples``,
    ``parallax_over_error_min``, ``distance_column``, ``distance_unit``, ``drop_missing``, ``parallax_column``,
    ``parallax_error_column``), with its defaults; an unknown one is an error naming the known ones.

    Returns the result and the selected rows (with their input row numbers as index), e.g. to score
    against a truth column or to scan eps.
    """
    import inspect

    known = {k: p.default for k, p in inspect.signature(find_associations).parameters.items() if k != "data"}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(f"find_associations_chunked: unknown setting(s) {unknown}; known: {sorted(known)}")
    cfg = {**known, **settings}
    mode, eps, min_samples = cfg["mode"], cfg["eps"], cfg["min_samples"]
    parallax_over_error_min, distance_column = cfg["parallax_over_error_min"], cfg["distance_column"]
    _check_settings(mode, eps, min_samples)
    pieces: list[_Stars] = []
    for block in chunks:
        chosen = select(block) if select is not None else block
        if len(chosen) == 0:
            continue
        pieces.append(_prepare(chosen, mode, parallax_over_error_min, distance_column, cfg["distance_unit"],
                               cfg["drop_missing"], cfg["parallax_column"], cfg["parallax_error_column"]))
        pieces[-1].frame.attrs["input_rows"] = chosen.index.to_numpy()  # to rebuild the selection's index
    if not pieces:
        raise NoStarSelected("no star left to cluster: the selection kept no row")
    index = np.concatenate([p.frame.attrs.pop("input_rows") for p in pieces])
    frames = [p.frame for p in pieces]
    for f in frames:
        f.attrs = {}
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    has_dist = pieces[0].dist_kpc is not None
    stars = _Stars(frame, np.concatenate([p.l_deg for p in pieces]), np.concatenate([p.b_deg for p in pieces]),
                   np.concatenate([p.dist_kpc for p in pieces]) if has_dist else None,
                   np.concatenate([p.xyz for p in pieces]) if has_dist else None,
                   np.concatenate([p.missing for p in pieces]), np.concatenate([p.cut for p in pieces]))
    del pieces, frames
    result = _cluster(stars, mode, eps, min_samples, parallax_over_error_min, distance_column)
    frame.index = index  # the selected rows as given (``_cluster`` worked on a copy)
    return result, frame


def truth_score(result: AssociationResult, truth: Sequence[Any]) -> dict[str, Any]:
    """How well ``result`` recovers the true groups ``truth`` (one id per input star, -1 = field): the
    adjusted Rand index over the stars that were clustered, their number and the number of true groups."""
    used = result.members["used"].to_numpy()
    true_used = np.asarray(truth)[used]
    return {"adjusted_rand_index": score_associations(true_used, result.labels[used]), "n_scored": int(used.sum()),
            "n_true_groups": int(len(set(true_used.tolist()) - {-1}))}


def scan_associations(
    data: Any,
    eps_values: Sequence[float],
    min_samples_values: Sequence[int],
    truth_column: str | None = "association_id",
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`find_associations` over a grid of ``eps`` x ``min_samples``: one row per pair with the
    number of groups, stars in groups and, when ``truth_column`` is in the data, the adjusted Rand index
    against it (scored on the stars that were clustered). ``kwargs`` go to :func:`find_associations`.

    DBSCAN's eps depends on the catalogue's density (a denser field needs a smaller eps); on a simulated
    survey, whose true associations are known, the scan shows which setting recovers them.
    """
    if not eps_values or not min_samples_values:
        raise ConfigError("a scan needs at least one eps and one min_samples value")
    frame = as_frame(data)
    truth = frame[truth_column].to_numpy() if truth_column and truth_column in frame.columns else None
    rows = []
    for eps in eps_values:
        for min_samples in min_samples_values:
            res = find_associations(frame, eps=float(eps), min_samples=int(min_samples), **kwargs)
            row: dict[str, Any] = {"eps": float(eps), "min_samples": int(min_samples),
                                   "n_groups": res.summary["n_groups"], "n_in_groups": res.summary["n_in_groups"],
                                   "n_clustered": res.summary["n_clustered_input"]}
            if truth is not None:
                row["adjusted_rand_index"] = truth_score(res, truth)["adjusted_rand_index"]
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- plots
def _figure(width: float = 9.0, height: float = 4.5) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _colours(labels: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return np.asarray([cmap(i % 20) for i in range(max(int(labels.max()) + 1, 0))]).reshape(-1, 4)


def plot_sky_map(result: AssociationResult, path: str | Path, title: str = "") -> Path:
    """Galactic sky map (l increasing to the left, as on the sky) with the groups in colour, noise grey."""
    path = Path(path)
    m = result.members
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    lab = m["group"].to_numpy()
    l_wrapped = ((m["l"].to_numpy() + 180.0) % 360.0) - 180.0
    noise = lab < 0
    ax.scatter(l_wrapped[noise], m["b"].to_numpy()[noise], s=2, c="0.75", label="not in a group", rasterized=True)
    if (~noise).any():
        cols = _colours(lab)
        ax.scatter(l_wrapped[~noise], m["b"].to_numpy()[~noise], s=6, c=cols[lab[~noise]], rasterized=True)
        for row in result.groups.itertuples():
            lw = ((row.l_deg + 180.0) % 360.0) - 180.0
            ax.annotate(str(row.group), (lw, row.b_deg), fontsize=7, ha="center", va="bottom")
    ax.set_xlim(180, -180)
    ax.set_xlabel("Galactic longitude l [deg] (wrapped to -180..180)")
    ax.set_ylabel("Galactic latitude b [deg]")
    ax.set_title(title or f"{result.summary.get('n_groups', 0)} groups ({result.summary.get('mode')} mode)")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_xy_map(result: AssociationResult, path: str | Path, title: str = "") -> Path:
    """Face-on map of the Galactic plane: x (to the Galactic centre) against y (rotation), Sun at 0."""
    path = Path(path)
    m = result.members
    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    x, y = m["x_kpc"].to_numpy(), m["y_kpc"].to_numpy()
    lab = m["group"].to_numpy()
    used = m["used"].to_numpy() & np.isfinite(x)
    noise = used & (lab < 0)
    ax.scatter(y[noise], x[noise], s=2, c="0.75", label="not in a group", rasterized=True)
    grouped = used & (lab >= 0)
    if grouped.any():
        ax.scatter(y[grouped], x[grouped], s=6, c=_colours(lab)[lab[grouped]], rasterized=True)
    ax.plot([0], [0], marker="*", color="gold", markeredgecolor="k", markersize=12, label="Sun")
    ax.set_xlabel("y [kpc] (direction of Galactic rotation)")
    ax.set_ylabel("x [kpc] (towards the Galactic centre)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or f"{result.summary.get('n_groups', 0)} groups, eps = {result.summary.get('eps')} kpc")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path
