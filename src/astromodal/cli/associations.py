"""``astromodal associations PRED_OR_CATALOG --out DIR``: OB associations with DBSCAN (study C)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import typer

from astromodal.atomic import atomic_dir
from astromodal.cli import app
from astromodal.cli.common import out_console
from astromodal.errors import BadValueError, ConfigError, DataFormatError


def load_catalogue_frame(path: Path) -> Any:
    """A predictions table or catalogue as a DataFrame: Parquet/CSV table, astromodal HDF5, ALS II .dat."""
    from astromodal.analysis.associations import as_frame

    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith((".h5", ".hdf5")):
        from astromodal.data.dataset import Dataset

        return as_frame(Dataset.load(path))
    if name.endswith(".dat"):
        from astromodal.data.readers.als import read_als

        return as_frame(read_als(path))
    if name.endswith((".parquet", ".pq", ".csv", ".csv.gz", ".fits", ".ecsv")):
        from astromodal.data.readers.tables import load_frame

        return load_frame(path)
    raise DataFormatError(f"{path}: expected a Parquet/CSV/FITS table, an astromodal HDF5 file or an ALS II .dat file")


#: table files read a block of rows at a time (:func:`astromodal.data.readers.tables.iter_frames`)
_CHUNKED_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".fits")


def iter_catalogue_frames(path: Path, chunk_rows: int) -> Iterator[Any]:
    """The table of :func:`load_catalogue_frame` as blocks of ``chunk_rows`` rows, each indexed by its rows'
    numbers in the file (Parquet, CSV, FITS tables are read block by block, so memory does not grow with
    the table; an astromodal HDF5 file is opened lazily and read ``chunk_rows`` objects at a time, its
    spectra and images never read); an ALS II .dat file or an ECSV table come as one block."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    if path.name.lower().endswith((".h5", ".hdf5")):
        from astromodal.analysis.associations import as_frame
        from astromodal.data.dataset import Dataset

        ds = Dataset.load(path)  # lazy: only the rows of a block are read, and only its catalogue columns
        for at in range(0, max(len(ds), 1), chunk_rows):
            block = as_frame(ds.subset(np.arange(at, min(len(ds), at + chunk_rows))))
            block.index = pd.RangeIndex(at, at + len(block))
            yield block
        return
    if not path.name.lower().endswith(_CHUNKED_SUFFIXES):
        yield load_catalogue_frame(path)
        return
    from astromodal.data.readers.tables import iter_frames

    at = 0
    for block in iter_frames(path, chunk_rows):
        block.index = pd.RangeIndex(at, at + len(block))
        at += len(block)
        yield block


class _Selection:
    """The per-block selection of the verb: ``--query``, then the probability threshold
    (:func:`select_predicted`), with the counts summed over the blocks and the truth column checked on the
    first block."""

    def __init__(self, catalog: Path, query: str | None, only_predicted: bool | None, column: str,
                 threshold: float, truth_column: str | None):
        self.catalog, self.query, self.only_predicted = catalog, query, only_predicted
        self.column, self.threshold, self.truth_column = column, threshold, truth_column
        self.columns: list | None = None
        self.n_query = 0
        self.info: dict[str, Any] = {}

    def __call__(self, block: Any) -> Any:
        if self.columns is None:
            self.columns = list(block.columns)
            if self.truth_column and self.truth_column not in block.columns:  # named by the user: it must exist
                raise ConfigError(f"--truth-column {self.truth_column!r} is not a column of {self.catalog}; "
                                  f"columns: {self.columns}")
        if self.query:
            block = apply_query(block, self.query, self.catalog, allow_empty=True)
            self.n_query += len(block)
        kept, info = select_predicted(block, self.only_predicted, self.column, self.threshold)
        if not self.info:
            self.info = info
        elif info.get("filtered"):
            self.info["n_before"] += info["n_before"]
            self.info["n_selected"] += info["n_selected"]
        return kept


def apply_query(frame: Any, query: str, source: Path, allow_empty: bool = False) -> Any:
    """The rows of ``frame`` matching a pandas query; a bad query names the columns; no row matching is a
    :class:`BadValueError` unless ``allow_empty`` (one block of a table read in blocks)."""
    try:
        kept = frame.query(query, engine="python")
    except Exception as exc:  # pandas raises many kinds (UndefinedVariableError, SyntaxError, ...)
        raise ConfigError(f"--query {query!r} on {source}: {exc}; columns: {list(frame.columns)}") from None
    if len(kept) == 0 and not allow_empty:
        raise BadValueError(f"{source}: no row matches --query {query!r}")
    return kept  # the index keeps the input row numbers (messages name the rows of the file as given)


def select_predicted(frame: Any, only_predicted: bool | None, column: str, threshold: float) -> tuple[Any, dict]:
    """Keep the rows with ``column >= threshold`` (when asked, or by default when the column exists)."""
    info: dict[str, Any] = {"probability_column": column, "threshold": threshold, "filtered": False}
    if only_predicted is False:
        return frame, info
    if column not in frame.columns:
        if only_predicted:
            raise ConfigError(f"--only-predicted needs the probability column {column!r}; the table has columns "
                              f"{list(frame.columns)} (choose one with --probability-column, or use --all)")
        return frame, info
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--threshold must be within 0..1 (got {threshold})")
    try:
        prob = frame[column].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"--probability-column {column!r} is not numeric (e.g. {frame[column].iloc[0]!r}); "
                          "choose a column of probabilities 0..1 with --probability-column, or use --all") from None
    outside = prob[np.isfinite(prob) & ((prob < 0) | (prob > 1))]
    if outside.size:
        raise ConfigError(f"--probability-column {column!r} holds values outside 0..1 (e.g. {outside[0]:g}), so it "
                          "is not a probability; choose another with --probability-column, or use --all")
    keep = prob >= threshold
    info.update(filtered=True, n_before=int(len(frame)), n_selected=int(keep.sum()))
    return frame[keep], info  # the index keeps the input row numbers


@app.command("associations")
def associations_command(
    catalog: Path = typer.Argument(..., help="Predictions (Parquet/CSV with id, ra, dec or l, b, parallax, "
                                             "parallax_error, prob_massive) or a catalogue: astromodal HDF5, "
                                             "table, or the ALS II .dat file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: groups.csv, members.parquet, sky_map.png, "
                                                      "xy_map.png (xyz mode), summary.json. A new or empty folder, "
                                                      "or one astromodal wrote (replaced only with --overwrite); "
                                                      "never the folder holding the input."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an --out folder that astromodal wrote (never a folder it did not "
                                        "write, one holding the input, '.', '~' or '/')."),
    mode: str = typer.Option("xyz", help="xyz: DBSCAN on Galactic x, y, z (kpc) from l, b and 1/parallax; "
                                         "sky: DBSCAN on (l, b) with the haversine metric."),
    eps: float = typer.Option(0.5, help="DBSCAN radius: kpc in xyz mode, degrees in sky mode."),
    min_samples: int = typer.Option(10, "--min-samples", help="DBSCAN: stars within eps to make a core star."),
    min_parallax_over_error: float = typer.Option(3.0, "--min-parallax-over-error",
                                                  help="Keep stars with parallax/parallax_error at least this (xyz)."),
    distance_column: str = typer.Option(None, "--distance-column",
                                        help="Use this distance column instead of 1/parallax."),
    distance_unit: str = typer.Option(None, "--distance-unit",
                                      help="pc or kpc for --distance-column (default: the column's unit, else kpc)."),
    only_predicted: bool = typer.Option(None, "--only-predicted/--all",
                                        help="Cluster only stars predicted massive (probability >= threshold); "
                                             "default: only those when the probability column exists."),
    probability_column: str = typer.Option("prob_massive", "--probability-column"),
    threshold: float = typer.Option(0.5, help="Probability threshold for --only-predicted."),
    drop_missing: bool = typer.Option(False, "--drop-missing",
                                      help="Leave out stars with missing position/parallax instead of failing."),
    query: str = typer.Option(None, "--query",
                              help="Keep only the rows matching this pandas query before clustering, e.g. "
                                   "\"massive == 'massive'\" (a simulated survey's true class) or \"G < 12\"."),
    truth_column: str = typer.Option(None, "--truth-column",
                                     help="Column of true group ids (-1 = field star); the found groups are scored "
                                          "against it with the adjusted Rand index (summary.json). Default: "
                                          "association_id when the table has it (a simulated survey); a column "
                                          "named here must exist."),
    scan_eps: str = typer.Option(None, "--scan-eps",
                                 help="Also run DBSCAN for each of these comma-separated eps values (e.g. "
                                      "0.05,0.1,0.2) and write scan.csv: groups found and, with a truth column, "
                                      "the adjusted Rand index of each setting. The maps and tables use --eps."),
    scan_min_samples: str = typer.Option(None, "--scan-min-samples",
                                         help="min_samples values of the scan (comma-separated; default: "
                                              "--min-samples)."),
    chunk_rows: int = typer.Option(200_000, "--chunk-rows", min=1,
                                   help="Read a Parquet/CSV/FITS table or an astromodal HDF5 file this many rows at a time and keep only the "
                                        "selected stars (--query, --threshold) of each block, so memory is bounded "
                                        "by the block and the selection, not the table (a 10^6-row prediction "
                                        "with 1 % candidates: see benchmarks/bench_associations.py). The result "
                                        "does not depend on it."),
) -> None:
    """Find stellar associations among (predicted) massive stars with DBSCAN and map them."""
    from astromodal.analysis.associations import plot_sky_map, plot_xy_map
    from astromodal.atomic import check_output_dir

    check_output_dir(out, inputs=[catalog], overwrite=overwrite, verb="associations")  # before any work
    from astromodal.analysis.associations import MODES

    if mode not in MODES:  # the cheap checks before loading the catalogue
        raise ConfigError(f"--mode must be one of {list(MODES)}, not {mode!r}")
    if min_samples < 1:
        raise ConfigError(f"--min-samples must be at least 1, got {min_samples}")
    if not (math.isfinite(eps) and eps > 0):
        raise ConfigError(f"--eps must be a positive number (kpc in xyz mode, degrees in sky mode), got {eps}")
    if not math.isfinite(min_parallax_over_error):
        raise ConfigError(f"--min-parallax-over-error must be a number, got {min_parallax_over_error}")
    if scan_min_samples and not scan_eps:
        raise ConfigError("--scan-min-samples needs --scan-eps (the eps values of the scan)")
    eps_grid = _numbers(scan_eps, float, "--scan-eps") if scan_eps else None
    samples_grid = _numbers(scan_min_samples, int, "--scan-min-samples") if scan_min_samples else [min_samples]
    from astromodal.analysis.associations import NoStarSelected, find_associations_chunked

    select = _Selection(catalog, query, only_predicted, probability_column, threshold, truth_column or None)
    if truth_column is None:
        truth_column = "association_id"  # scored when present
    try:
        result, frame = find_associations_chunked(
            iter_catalogue_frames(catalog, chunk_rows), select, mode=mode, eps=eps, min_samples=min_samples,
            parallax_over_error_min=min_parallax_over_error, distance_column=distance_column,
            distance_unit=distance_unit, drop_missing=drop_missing)
    except NoStarSelected:
        if query and select.n_query == 0:
            raise BadValueError(f"{catalog}: no row matches --query {query!r}") from None
        raise BadValueError(f"{catalog}: no star left to cluster (selection: {select.info})") from None
    selection = select.info
    if result.summary.get("n_clustered_input") == 0:  # an adjusted Rand index of no star would read 1.0
        raise BadValueError(f"{catalog}: no star left to cluster: all {result.summary.get('n_stars')} were cut "
                            f"(parallax/parallax_error < {min_parallax_over_error} or missing); lower "
                            "--min-parallax-over-error or use --mode sky")
    summary = {"input": str(catalog), "selection": {**selection, "query": query}, **result.summary,
               "groups": _records(result.groups.head(20))}
    if truth_column and truth_column in frame.columns:
        from astromodal.analysis.associations import truth_score

        summary["truth"] = {"column": truth_column, **truth_score(result, frame[truth_column].to_numpy())}
    scan = None
    if scan_eps:
        from astromodal.analysis.associations import scan_associations

        scan = scan_associations(frame, eps_grid or [], samples_grid, truth_column=truth_column, mode=mode,
                                 parallax_over_error_min=min_parallax_over_error, distance_column=distance_column,
                                 distance_unit=distance_unit, drop_missing=drop_missing)
    with atomic_dir(out, overwrite=overwrite, inputs=[catalog], verb="associations") as tmp:
        if scan is not None:
            scan.to_csv(tmp / "scan.csv", index=False)
        result.groups.to_csv(tmp / "groups.csv", index=False)
        members = result.members.copy()
        for c in members.columns:  # Parquet needs one type per column
            if members[c].dtype == object:
                members[c] = members[c].astype(str)
        members.to_parquet(tmp / "members.parquet", index=False)
        plot_sky_map(result, tmp / "sky_map.png")
        if mode == "xyz":
            plot_xy_map(result, tmp / "xy_map.png")
        (tmp / "summary.json").write_text(json.dumps(_finite(summary), indent=2, default=_json_default,
                                                     allow_nan=False) + "\n")
    # results: stdout
    out_console.print(f"{result.summary['n_groups']} groups among {result.summary['n_clustered_input']} "
                      f"stars ({mode} mode, eps {eps}) -> {out}", highlight=False)
    if "truth" in summary:
        out_console.print(f"adjusted Rand index against {truth_column!r}: {summary['truth']['adjusted_rand_index']:.3f} "
                      f"({summary['truth']['n_true_groups']} true groups)")
    if scan is not None:
        from rich.table import Table

        table = Table(title=f"DBSCAN scan ({mode} mode) -> {out / 'scan.csv'}")
        for col in scan.columns:
            table.add_column({"adjusted_rand_index": "ARI"}.get(col, col), justify="right")
        for row in scan.itertuples(index=False):
            table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
        out_console.print(table)


def _numbers(text: str, kind: type, option: str) -> list:
    """Comma-separated positive numbers of a scan option (finite floats, or integers >= 1); a bad one names
    the option."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated numbers, e.g. 0.05,0.1,0.2") from None
    if not values:
        raise ConfigError(f"{option} {text!r}: no value given")
    bad = [v for v in values if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ConfigError(f"{option} {text!r}: every value must be a positive number, not {bad[0]}")
    return values


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats replaced by None (null): summary.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _records(table: Any) -> list[dict]:
    """Rows as JSON-safe dicts (NaN -> null)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    return str(value)
