"""Gaia DR3 BP/RP (XP) spectra: archive XP_SAMPLED files and XP continuous coefficients.

Gaia DR3 publishes the low-resolution BP/RP spectra as 55 + 55 coefficients of a basis-function
expansion (``XP_CONTINUOUS``); sampled on the default grid they give ``XP_SAMPLED`` spectra: 343
fluxes from 336 to 1020 nm in steps of 2 nm, in W m^-2 nm^-1, with an error per sample.

Here every XP spectrum enters a :class:`~astromodal.data.dataset.Dataset` as the spectra block
``"gaia_xp"`` on the wavelength grid 3360..10200 Angstrom (step 20 Angstrom), flux converted to
1e-17 erg s^-1 cm^-2 Angstrom^-1 (1 W m^-2 nm^-1 = 1e19 of these units) and inverse variance
``ivar = 1 / flux_error^2`` in the same units. Samples whose flux is missing (NaN, for example a
source with only one of BP or RP) are masked (``mask`` True), with flux 0 and ivar 0 there.

Readers
    :func:`read_xp_sampled` reads the archive's XP_SAMPLED tables as CSV (arrays as bracketed
    strings, ``"[1.2e-17, 1.3e-17, ...]"``), ECSV, VOTable or Parquet (list columns).
    :func:`read_xp_continuous` reads XP_CONTINUOUS tables in the same formats and samples them.
    :func:`read_xp_continuous_npz` reads the coefficient file of the real test set
    (``gaia_dr3_xp_c110_binary.npz``: ``X`` (N, 110) = 55 BP then 55 RP coefficients, ``y``,
    ``source_id``).

Sampling
    :func:`xp_continuous_to_sampled` evaluates the expansion with GaiaXPy's own calibration model
    (the sampled basis functions and the BP/RP merge weights of ``gaiaxpy.calibrate``, which ship
    inside the package and work offline) as one matrix product per band, so thousands of sources take
    a fraction of a second; the result agrees with ``gaiaxpy.calibrate`` to 1e-12 relative
    (:func:`calibrate_with_gaiaxpy` runs GaiaXPy itself, one source at a time, silenced).
    Flux errors follow GaiaXPy: per band sigma_k^2 = sum_ij e_i D_ik rho_ij e_j D_jk (coefficient
    errors ``e``, correlation matrix ``rho``), merged as sqrt(w_bp^2 sigma_bp^2 + w_rp^2 sigma_rp^2).

Writers (:func:`write_xp_sampled`) produce small files in the archive's XP_SAMPLED layout, for tests
and for exchanging spectra with other tools.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from astromodal.data.dataset import Dataset, Spectra, Target
from astromodal.data.ids import as_int_ids
from astromodal.errors import BadValueError, DataFormatError

#: XP_SAMPLED default grid in nm (343 samples)
XP_SAMPLING_NM = np.arange(336.0, 1021.0, 2.0)
#: the same grid in Angstrom, as stored in a Dataset
XP_WAVELENGTH_A = XP_SAMPLING_NM * 10.0
#: 1 W m^-2 nm^-1 expressed in 1e-17 erg s^-1 cm^-2 Angstrom^-1
W_M2_NM_TO_FLUX_UNIT = 1e19
FLUX_UNIT = "1e-17 erg / (s cm2 Angstrom)"
N_XP_COEFFICIENTS = 55
SPECTRA_NAME = "gaia_xp"

#: what the label of ``gaia_dr3_xp_c110_binary.npz`` means (see :func:`read_xp_continuous_npz`)
NPZ_LABEL_NOTE = (
    "y is the 'VOSA' column of VOSA_labels_training.csv (0: 2,257, 1: 558). The source repository "
    "(KristupasPr/GaiaXP_Spectra_Analysis) describes its binary task as binary versus single stellar "
    "systems from VOSA SED fits, not massive versus low-mass stars; astromodal uses it as a real "
    "imbalanced binary stand-in for the massive-star task of study C (1 -> 'massive')."
)

_SUFFIX_FORMATS = {
    ".csv": "csv",
    ".ecsv": "ecsv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
    ".parquet": "parquet",
    ".pq": "parquet",
}


# ---------------------------------------------------------------------------------------------- parsing
def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in set(_SUFFIX_FORMATS.values()):
            raise BadValueError(f"unknown Gaia XP table format {fmt!r}; use one of {sorted(set(_SUFFIX_FORMATS.values()))}")
        return fmt
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
    try:
        return _SUFFIX_FORMATS[suffix]
    except KeyError:
        raise DataFormatError(
            f"{path}: cannot tell the Gaia XP table format from the suffix {path.suffix!r}; "
            f"expected one of {sorted(_SUFFIX_FORMATS)}"
        ) from None


def parse_array_strings(
    values: Sequence[Any],
    column: str,
    source_ids: Sequence[Any] | None = None,
    length: int | None = None,
    where: str = "",
) -> np.ndarray:
    """Parse a column of bracketed number lists (``"[1.2e-17, 3.4e-17, ...]"``) into an (N, L) array.

    The whole column is parsed at once (joined into one comma-separated string for ``np.fromstring``).
    Every row must hold the same number of values (``length`` if given). A value that is not a number,
    a missing cell or a row of the wrong length raises :class:`BadValueError` naming the row and its
    source_id. ``nan``/``null`` entries are kept as NaN.
    """
    prefix = f"{where}: " if where else ""
    s = pd.Series(values, dtype=object)
    missing = s.isna().to_numpy()
    text = s.where(~missing, "").astype(str).str.strip().str.strip("[]()").str.strip()
    text = text.str.replace("null", "nan", regex=False).str.replace("NULL", "nan", regex=False)
    counts = np.where(text.str.len().to_numpy() == 0, 0, text.str.count(",").to_numpy() + 1)

    def who(row: int) -> str:
        sid = f" (source_id {source_ids[row]})" if source_ids is not None and row < len(source_ids) else ""
        return f"row {row}{sid}"

    expected = length if length is not None else (int(counts[0]) if len(counts) else 0)
    bad = np.flatnonzero(missing | (counts != expected))
    if len(bad):
        row = int(bad[0])
        got = "an empty cell" if counts[row] == 0 else f"{counts[row]} values"
        raise BadValueError(f"{prefix}column {column!r}: {got} at {who(row)}, expected {expected} values")
    if len(text) == 0:
        return np.empty((0, expected), dtype=np.float64)
    joined = ",".join(text.tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            flat = np.fromstring(joined, dtype=np.float64, sep=",")
        except ValueError:  # newer numpy raises where older numpy stopped early with a warning
            flat = np.empty(0)
    if flat.size != expected * len(text):
        # locate the first row that does not parse (error path only)
        for row, cell in enumerate(text.tolist()):
            for k, token in enumerate(cell.split(",")):
                try:
                    float(token)
                except ValueError:
                    raise BadValueError(
                        f"{prefix}column {column!r}: value {k + 1} {token.strip()[:40]!r} is not a number at {who(row)}"
                    ) from None
        raise BadValueError(f"{prefix}column {column!r}: could not parse the arrays")  # pragma: no cover
    return flat.reshape(len(text), expected)


def _as_matrix(col: Any, column: str, source_ids: Any, length: int | None, where: str) -> np.ndarray:
    """An array-valued table column (strings, object arrays of arrays, 2-D arrays) as an (N, L) float array."""
    if isinstance(col, pd.Series):
        col = col.to_numpy()
    if np.ma.isMaskedArray(col):
        col = np.ma.filled(col.astype(np.float64), np.nan) if col.dtype != object else np.ma.getdata(col)
    arr = np.asarray(col)
    if arr.ndim == 2 and arr.dtype != object:
        out = arr.astype(np.float64)
    elif len(arr) and isinstance(arr.flat[0], (str, bytes)):
        strings = [v.decode() if isinstance(v, bytes) else v for v in arr] if isinstance(arr.flat[0], bytes) else arr
        return parse_array_strings(strings, column, source_ids, length, where)
    else:
        rows = [np.ma.filled(np.ma.asarray(v, dtype=np.float64), np.nan).ravel() for v in arr]
        lengths = np.array([len(r) for r in rows])
        expected = length if length is not None else (int(lengths[0]) if len(lengths) else 0)
        bad = np.flatnonzero(lengths != expected)
        if len(bad):
            row = int(bad[0])
            sid = f" (source_id {source_ids[row]})" if source_ids is not None else ""
            raise BadValueError(
                f"{where}: column {column!r}: {lengths[row]} values at row {row}{sid}, expected {expected}"
            )
        out = np.stack(rows) if rows else np.empty((0, expected))
    if length is not None and out.shape[1] != length:
        raise BadValueError(f"{where}: column {column!r} has {out.shape[1]} values per row, expected {length}")
    return out


def _parquet_list_column(table: Any, name: str, path: Path, source_ids: Any, length: int | None) -> np.ndarray:
    """A pyarrow list column as (N, L) float64 without a Python loop over rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name).combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type)):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            return parse_array_strings(col.to_pylist(), name, source_ids, length, str(path))
        raise DataFormatError(f"{path}: column {name!r} is {col.type}, not a list of numbers")
    lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
    expected = length if length is not None else (int(lengths[0]) if len(lengths) else 0)
    bad = np.flatnonzero((lengths != expected) | col.is_null().to_numpy(zero_copy_only=False))
    if len(bad):
        row = int(bad[0])
        sid = f" (source_id {source_ids[row]})" if source_ids is not None else ""
        raise BadValueError(f"{path}: column {name!r}: {lengths[row]} values at row {row}{sid}, expected {expected}")
    flat = pc.list_flatten(col).cast(pa.float64()).fill_null(float("nan")).to_numpy(zero_copy_only=False)
    return flat.reshape(len(col), expected)


def _read_frame(path: Path, fmt: str, array_columns: Sequence[str]) -> tuple[dict[str, Any], Any]:
    """Columns of an archive table as {name: column}; array columns left for :func:`_as_matrix`."""
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, comment="#", dtype={c: str for c in array_columns})
            return {c: frame[c] for c in frame.columns}, None
        if fmt == "ecsv":
            from astropy.table import Table

            table = Table.read(path, format="ascii.ecsv")
            return {c: table[c] for c in table.colnames}, None
        if fmt == "votable":
            from astropy.io.votable import parse_single_table

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = parse_single_table(str(path)).to_table()
            return {c: table[c] for c in table.colnames}, None
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return {c: None for c in table.column_names}, table
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(f"{path}: not a readable {fmt} table ({exc})") from exc


def _plain(col: Any) -> np.ndarray:
    if np.ma.isMaskedArray(col):
        data = np.ma.getdata(col)
        if data.dtype.kind == "f":
            return np.ma.filled(col, np.nan)
        return np.asarray(data)
    return np.asarray(col)


class _Columns:
    """Uniform access to the columns of a CSV/ECSV/VOTable/Parquet archive table."""

    def __init__(self, path: Path, fmt: str, array_columns: Sequence[str]):
        self.path = path
        self.cols, self.arrow = _read_frame(path, fmt, array_columns)
        self.names = list(self.cols)
        lower = {c.lower(): c for c in self.names}
        self.lower = lower
        self.n = self.arrow.num_rows if self.arrow is not None else (len(next(iter(self.cols.values()))) if self.cols else 0)

    def find(self, name: str) -> str | None:
        return self.lower.get(name.lower())

    def require(self, name: str) -> str:
        found = self.find(name)
        if found is None:
            raise DataFormatError(f"{self.path}: no column {name!r}; the table has columns {self.names}")
        return found

    def scalar(self, name: str) -> np.ndarray:
        key = self.require(name)
        if self.arrow is not None:
            return self.arrow.column(key).to_numpy(zero_copy_only=False)
        return _plain(self.cols[key])

    def matrix(self, name: str, source_ids: Any, length: int | None) -> np.ndarray:
        key = self.require(name)
        if self.arrow is not None:
            return _parquet_list_column(self.arrow, key, self.path, source_ids, length)
        return _as_matrix(self.cols[key], key, source_ids, length, str(self.path))


# ---------------------------------------------------------------------------------------------- datasets
def _source_ids(values: Any, where: Any) -> np.ndarray:
    """Gaia source_ids as exact int64: integers (or text of integers) as they are; floats only when they
    hold exact integers below 2**53 (float64) or 2**24 (float32), else an error (:func:`as_int_ids`)."""
    arr = np.ma.getdata(values) if np.ma.isMaskedArray(values) else np.asarray(values)
    if np.ma.isMaskedArray(values) and np.ma.getmaskarray(values).any():
        row = int(np.flatnonzero(np.ma.getmaskarray(values))[0])
        raise DataFormatError(f"{where}: source_id is empty at row {row}")
    if arr.dtype.kind in "iubf":  # floats only when each holds an exact integer in its own float type
        return as_int_ids(arr, str(where), "source_id", error=DataFormatError,
                          hint=" (a 19-digit Gaia id stored as floating point has lost its last digits)")
    try:
        return np.asarray([int(str(v).strip()) for v in arr.tolist()], dtype=np.int64)
    except (ValueError, OverflowError):
        row = next((i for i, v in enumerate(arr.tolist()) if not str(v).strip().lstrip("-").isdigit()), 0)
        raise DataFormatError(f"{where}: source_id {arr[row]!r} at row {row} is not an integer") from None


def _spectra_from_flux(flux_w: np.ndarray, error_w: np.ndarray | None, wavelength_a: np.ndarray) -> Spectra:
    """A Spectra block from fluxes (and errors) in W m^-2 nm^-1; NaN samples masked."""
    flux = flux_w * W_M2_NM_TO_FLUX_UNIT
    bad = ~np.isfinite(flux)
    ivar = None
    if error_w is not None:
        err = error_w * W_M2_NM_TO_FLUX_UNIT
        good_err = np.isfinite(err) & (err > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ivar = np.where(good_err & ~bad, 1.0 / np.where(good_err, err, 1.0) ** 2, 0.0)
    mask = bad if bad.any() else None
    flux = np.where(bad, 0.0, flux)
    return Spectra(flux, wavelength_a, ivar, mask, instrument="Gaia DR3 XP", unit=FLUX_UNIT)


def _positions_and_target(
    table: _Columns, n: int, target: str | None, target_name: str | None, class_names: Sequence[str] | None,
    task: str,
) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, Target]]:
    ra = table.scalar("ra").astype(np.float64) if table.find("ra") else None
    dec = table.scalar("dec").astype(np.float64) if table.find("dec") else None
    targets: dict[str, Target] = {}
    if target is not None:
        values = table.scalar(target)
        name = target_name or target
        if task == "regression":
            targets[name] = Target(np.asarray(values, dtype=np.float64), "regression")
        else:
            targets[name] = Target.from_labels(np.asarray(values).astype(str), class_names)
    return ra, dec, targets


def read_xp_sampled(
    path: str | Path,
    format: str | None = None,
    target: str | None = None,
    target_name: str | None = None,
    class_names: Sequence[str] | None = None,
    task: str = "class",
) -> Dataset:
    """Read Gaia archive XP_SAMPLED spectra (CSV, ECSV, VOTable or Parquet) into a Dataset.

    The table holds one source per row: ``source_id``, array columns ``flux`` and ``flux_error``
    (343 values each, W m^-2 nm^-1, on 336..1020 nm), optionally ``ra``/``dec`` (degrees) and a label
    column. ``target`` names a label column to keep as a target (class labels, or ``task="regression"``),
    stored as ``target_name`` (default: the column name); ``class_names`` fixes the class order.
    A wavelength column or grid is not needed: the archive grid 336..1020 nm is used; a table with a
    different number of samples is an error.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    table = _Columns(path, fmt, ("flux", "flux_error"))
    ids = table.scalar("source_id")
    flux = table.matrix("flux", ids, len(XP_SAMPLING_NM))
    err = table.matrix("flux_error", ids, len(XP_SAMPLING_NM)) if table.find("flux_error") else None
    ra, dec, targets = _positions_and_target(table, len(ids), target, target_name, class_names, task)
    spectra = {SPECTRA_NAME: _spectra_from_flux(flux, err, XP_WAVELENGTH_A)}
    return Dataset(_source_ids(ids, path), ra, dec, spectra=spectra, targets=targets,
                   meta={"source": str(path), "reader": "gaia_xp_sampled"})


def read_xp_continuous(
    path: str | Path,
    format: str | None = None,
    target: str | None = None,
    target_name: str | None = None,
    class_names: Sequence[str] | None = None,
    task: str = "class",
) -> Dataset:
    """Read Gaia archive XP_CONTINUOUS coefficients (CSV, ECSV, VOTable, Parquet) and sample them.

    Required columns ``source_id``, ``bp_coefficients``, ``rp_coefficients`` (55 each); with
    ``bp_coefficient_errors``/``rp_coefficient_errors`` the flux errors are propagated (with
    ``*_coefficient_correlations``, the 1485 lower-triangle values of the archive, if present;
    otherwise the coefficients are taken as uncorrelated). The spectra are sampled on 336..1020 nm
    (see :func:`xp_continuous_to_sampled`).
    """
    path = Path(path)
    fmt = _format_of(path, format)
    arrays = [f"{b}_{k}" for b in ("bp", "rp") for k in ("coefficients", "coefficient_errors", "coefficient_correlations")]
    table = _Columns(path, fmt, arrays)
    ids = table.scalar("source_id")
    coeff: dict[str, np.ndarray | None] = {}
    for band in ("bp", "rp"):
        coeff[f"{band}"] = table.matrix(f"{band}_coefficients", ids, None)
        for kind in ("coefficient_errors", "coefficient_correlations"):
            key = f"{band}_{kind}"
            coeff[key] = table.matrix(key, ids, None) if table.find(key) else None
    flux, err = xp_continuous_to_sampled(
        coeff["bp"], coeff["rp"], coeff["bp_coefficient_errors"], coeff["rp_coefficient_errors"],
        coeff["bp_coefficient_correlations"], coeff["rp_coefficient_correlations"],
    )
    ra, dec, targets = _positions_and_target(table, len(ids), target, target_name, class_names, task)
    spectra = {SPECTRA_NAME: _spectra_from_flux(flux, err, XP_WAVELENGTH_A)}
    return Dataset(_source_ids(ids, path), ra, dec, spectra=spectra, targets=targets,
                   meta={"source": str(path), "reader": "gaia_xp_continuous"})


def read_xp_continuous_npz(
    path: str | Path,
    target_name: str = "massive",
    class_names: Sequence[str] = ("low_mass", "massive"),
    keep_coefficients: bool = True,
) -> Dataset:
    """The real coefficient file ``gaia_dr3_xp_c110_binary.npz`` as sampled Gaia XP spectra.

    ``X`` (N, 110) holds the raw XP continuous coefficients, 55 BP then 55 RP; they are sampled on
    336..1020 nm with GaiaXPy's calibration model (no errors are in the file, so ``ivar`` is None).
    ``y`` (0/1) becomes the class target ``target_name`` with ``class_names`` for 0 and 1 (default
    ``"massive"`` with ("low_mass", "massive"), the names study C uses; see :data:`NPZ_LABEL_NOTE` for
    what the label really is: a VOSA binary-system flag, kept in ``meta["label_note"]``).

    With ``keep_coefficients`` the raw coefficients are also kept as 110 catalogue columns
    ``xp_bp_00`` .. ``xp_bp_54``, ``xp_rp_00`` .. ``xp_rp_54`` (their names in ``meta["coefficient_columns"]``).
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            missing = [k for k in ("X", "y", "source_id") if k not in data.files]
            if missing:
                raise DataFormatError(f"{path}: missing arrays {missing}; the file has {data.files}")
            X = np.asarray(data["X"], dtype=np.float64)
            y = np.asarray(data["y"])
            ids = _source_ids(data["source_id"], path)
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: not a readable npz file ({exc})") from exc
    if X.ndim != 2 or X.shape[1] != 2 * N_XP_COEFFICIENTS:
        raise DataFormatError(f"{path}: X has shape {X.shape}, expected (N, {2 * N_XP_COEFFICIENTS})")
    if not (len(y) == len(ids) == len(X)):
        raise DataFormatError(f"{path}: X, y and source_id have {len(X)}, {len(y)} and {len(ids)} rows")
    if len(class_names) != 2:
        raise BadValueError(f"class_names must name the classes of y = 0 and 1, got {list(class_names)}")
    bad = np.flatnonzero(~np.isin(y, (0, 1)))
    if len(bad):
        raise BadValueError(f"{path}: label y = {y[bad[0]]} at row {bad[0]} (source_id {ids[bad[0]]}); expected 0 or 1")
    flux, _ = xp_continuous_to_sampled(X[:, :N_XP_COEFFICIENTS], X[:, N_XP_COEFFICIENTS:])
    columns: dict[str, Any] = {}
    names: list[str] = []
    if keep_coefficients:
        for band, offset in (("bp", 0), ("rp", N_XP_COEFFICIENTS)):
            for k in range(N_XP_COEFFICIENTS):
                name = f"xp_{band}_{k:02d}"
                names.append(name)
                columns[name] = X[:, offset + k]
    ds = Dataset(
        ids,
        spectra={SPECTRA_NAME: _spectra_from_flux(flux, None, XP_WAVELENGTH_A)},
        targets={target_name: Target(y.astype(np.int64), "class", tuple(class_names))},
        meta={"source": str(path), "reader": "gaia_xp_npz", "label_note": NPZ_LABEL_NOTE,
              "coefficient_columns": names},
    )
    if columns:
        ds = ds.with_columns(columns, units={k: "e-/s (XP coefficient)" for k in columns})
    return ds


# ---------------------------------------------------------------------------------------------- sampling
@lru_cache(maxsize=4)
def _import_gaiaxpy_calibrator() -> Any:
    """Import GaiaXPy's calibrator without its side effect on matplotlib.

    GaiaXPy's plotter (imported with the package) sets ``rcParams['text.usetex'] = True`` globally,
    which breaks every later plot on machines without LaTeX; the setting is put back as it was.
    """
    import matplotlib

    usetex = matplotlib.rcParams["text.usetex"]
    try:
        import gaiaxpy.calibrator.calibrator as cal
    finally:
        matplotlib.rcParams["text.usetex"] = usetex
    return cal


def xp_design_matrices(sampling_nm: tuple[float, ...] | None = None) -> dict[str, np.ndarray]:
    """GaiaXPy's calibration model on a grid: ``{"bp", "rp"}`` design matrices (55, L) and merge weights.

    Keys ``bp``/``rp`` (basis functions times instrument response, W m^-2 nm^-1 per coefficient unit)
    and ``merge_bp``/``merge_rp`` (L,) (BP alone blue-ward of 620 nm ... RP alone red-ward of 640 nm,
    linear in between). The default grid is 336..1020 nm in 2 nm steps. Read from the files shipped
    with GaiaXPy: no network access.
    """
    cal = _import_gaiaxpy_calibrator()

    grid = np.asarray(sampling_nm if sampling_nm is not None else XP_SAMPLING_NM, dtype=np.float64)
    generate = getattr(cal, "__generate_xp_matrices_and_merge")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        design, merge = generate("calibrator", grid, "v375wi", "v142r")
    return {
        "bp": np.asarray(design["bp"].get_design_matrix(), dtype=np.float64),
        "rp": np.asarray(design["rp"].get_design_matrix(), dtype=np.float64),
        "merge_bp": np.asarray(merge["bp"], dtype=np.float64),
        "merge_rp": np.asarray(merge["rp"], dtype=np.float64),
    }


def _pad(coeff: np.ndarray, n_basis: int, what: str) -> np.ndarray:
    coeff = np.atleast_2d(np.asarray(coeff, dtype=np.float64))
    if coeff.shape[1] > n_basis:
        raise BadValueError(f"{what} has {coeff.shape[1]} coefficients per source; Gaia DR3 XP has {n_basis}")
    if coeff.shape[1] < n_basis:  # a truncated expansion: the missing coefficients are zero
        coeff = np.pad(coeff, ((0, 0), (0, n_basis - coeff.shape[1])))
    return coeff


def _band_sigma(design: np.ndarray, errors: np.ndarray, corr: np.ndarray | None, batch: int) -> np.ndarray:
    """Flux standard deviation per sample for one band (N, L).

    sigma_k^2 = sum_i e_i^2 D_ik^2 + 2 sum_{i>j} e_i e_j rho_ij D_ik D_jk, evaluated as two matrix products
    over the coefficient pairs (the archive stores rho as the strict lower triangle, row by row).
    """
    n_basis = design.shape[0]
    rows, cols = np.tril_indices(n_basis, k=-1)
    if corr is not None and corr.shape[1] != len(rows):
        raise BadValueError(f"coefficient correlations have {corr.shape[1]} values per source, expected {len(rows)}")
    if corr is not None and len(corr) != len(errors):
        raise BadValueError(f"{len(corr)} correlation rows for {len(errors)} sources")
    var = (errors**2) @ design**2
    if corr is not None:
        pair_design = design[rows] * design[cols]  # (pairs, L)
        for start in range(0, len(errors), batch):
            e = errors[start:start + batch]
            weight = 2.0 * e[:, rows] * e[:, cols] * corr[start:start + batch]
            var[start:start + batch] += weight @ pair_design
    return np.sqrt(np.maximum(var, 0.0))


def xp_continuous_to_sampled(
    bp: np.ndarray,
    rp: np.ndarray,
    bp_errors: np.ndarray | None = None,
    rp_errors: np.ndarray | None = None,
    bp_correlations: np.ndarray | None = None,
    rp_correlations: np.ndarray | None = None,
    sampling_nm: np.ndarray | None = None,
    batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample XP continuous spectra: (flux, flux_error) (N, L) in W m^-2 nm^-1 on ``sampling_nm``.

    ``bp``/``rp`` (N, 55) coefficients (shorter rows are zero-padded: a truncated expansion).
    flux = w_bp * (bp @ D_bp) + w_rp * (rp @ D_rp) with GaiaXPy's design matrices D and merge
    weights w (identical to ``gaiaxpy.calibrate`` without truncation). A source whose BP (RP)
    coefficients are all NaN gets NaN flux wherever BP (RP) contributes. Errors are returned only when
    both ``bp_errors`` and ``rp_errors`` are given (correlations optional: uncorrelated if absent).
    """
    grid = tuple(np.asarray(sampling_nm, dtype=np.float64).tolist()) if sampling_nm is not None else None
    m = xp_design_matrices(grid)
    n_basis = m["bp"].shape[0]
    bp = _pad(bp, n_basis, "bp coefficients")
    rp = _pad(rp, n_basis, "rp coefficients")
    if len(bp) != len(rp):
        raise BadValueError(f"{len(bp)} BP but {len(rp)} RP coefficient rows")
    flux = np.zeros((len(bp), m["bp"].shape[1]))
    for band, coeff in (("bp", bp), ("rp", rp)):
        absent = np.isnan(coeff).all(axis=1)
        part = np.nan_to_num(coeff, nan=0.0) @ m[band]
        part[absent] = np.nan
        w = m[f"merge_{band}"]
        flux += np.where(w > 0, part * w, 0.0)
    if bp_errors is None or rp_errors is None:
        return flux, None
    sig2 = np.zeros_like(flux)
    for band, errors, corr in (("bp", bp_errors, bp_correlations), ("rp", rp_errors, rp_correlations)):
        errors = _pad(errors, n_basis, f"{band} coefficient errors")
        corr = None if corr is None else np.atleast_2d(np.asarray(corr, dtype=np.float64))
        sigma = _band_sigma(m[band], errors, corr, batch)
        w = m[f"merge_{band}"]
        sig2 += np.where(w > 0, (sigma * w) ** 2, 0.0)
    return flux, np.sqrt(sig2)


def calibrate_with_gaiaxpy(
    bp: np.ndarray,
    rp: np.ndarray,
    source_ids: np.ndarray | None = None,
    bp_errors: np.ndarray | None = None,
    rp_errors: np.ndarray | None = None,
    bp_correlations: np.ndarray | None = None,
    rp_correlations: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The same as :func:`xp_continuous_to_sampled` computed by ``gaiaxpy.calibrate`` itself.

    GaiaXPy is given a DataFrame (so it reads nothing from disk or network), ``save_file=False``, the
    sampling ``np.arange(336, 1021, 2)``; its messages and progress bar are silenced. It works one
    source at a time (about 60 sources per second): use it to cross-check, not for large samples.
    Without errors, unit errors and zero correlations are passed and the errors are not returned.
    """
    cal = _import_gaiaxpy_calibrator()

    bp = _pad(bp, N_XP_COEFFICIENTS, "bp coefficients")
    rp = _pad(rp, N_XP_COEFFICIENTS, "rp coefficients")
    n = len(bp)
    with_errors = bp_errors is not None and rp_errors is not None
    n_off = N_XP_COEFFICIENTS * (N_XP_COEFFICIENTS - 1) // 2
    frame = pd.DataFrame({
        "source_id": np.arange(n) if source_ids is None else np.asarray(source_ids),
        "bp_n_parameters": N_XP_COEFFICIENTS,
        "rp_n_parameters": N_XP_COEFFICIENTS,
        "bp_standard_deviation": 1.0,
        "rp_standard_deviation": 1.0,
    })
    for band, coeff, err, corr in (("bp", bp, bp_errors, bp_correlations), ("rp", rp, rp_errors, rp_correlations)):
        frame[f"{band}_coefficients"] = list(coeff)
        frame[f"{band}_coefficient_errors"] = list(
            _pad(err, N_XP_COEFFICIENTS, "errors") if err is not None else np.ones_like(coeff))
        frame[f"{band}_coefficient_correlations"] = list(
            np.asarray(corr, dtype=np.float64) if corr is not None else np.zeros((n, n_off)))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        # ``calibrate`` is ``_calibrate`` with its progress bar on (written to the original stdout, which
        # redirect_stdout does not reach): call the inner function with disable_info=True.
        spectra, _ = cal._calibrate(frame, sampling=XP_SAMPLING_NM.astype(int), truncation=False,
                                    save_file=False, disable_info=True)
    flux = np.stack(spectra["flux"].to_numpy()).astype(np.float64)
    err_out = np.stack(spectra["flux_error"].to_numpy()).astype(np.float64) if with_errors else None
    return flux, err_out


# ---------------------------------------------------------------------------------------------- writers
def _archive_arrays(ds: Dataset, spectra: str) -> tuple[np.ndarray, np.ndarray | None]:
    s = ds.spectra.get(spectra)
    if s is None:
        raise BadValueError(f"unknown spectra {spectra!r}; this dataset has spectra {list(ds.spectra)}")
    if s.n_pixels != len(XP_SAMPLING_NM):
        raise BadValueError(f"spectra {spectra!r} have {s.n_pixels} samples; XP_SAMPLED needs {len(XP_SAMPLING_NM)}")
    flux = s.flux.read().astype(np.float64) / W_M2_NM_TO_FLUX_UNIT
    if s.mask is not None:
        flux = np.where(s.mask.read(), np.nan, flux)
    err = None
    if s.ivar is not None:
        ivar = s.ivar.read().astype(np.float64)
        with np.errstate(divide="ignore"):
            err = np.where(ivar > 0, 1.0 / np.sqrt(np.where(ivar > 0, ivar, 1.0)), np.nan) / W_M2_NM_TO_FLUX_UNIT
    return flux, err


def _bracketed(arr: np.ndarray) -> list[str]:
    buf = io.StringIO()
    np.savetxt(buf, arr, fmt="%.17g", delimiter=", ")
    return ["[" + line + "]" for line in buf.getvalue().splitlines()]


def write_xp_sampled(
    ds: Dataset,
    path: str | Path,
    format: str | None = None,
    spectra: str = SPECTRA_NAME,
    target: str | None = None,
) -> Path:
    """Write a Dataset's XP spectra as an archive-style XP_SAMPLED table (CSV, ECSV, VOTable, Parquet).

    Columns: ``source_id``, ``ra``, ``dec``, ``flux`` and ``flux_error`` (343 values, W m^-2 nm^-1;
    masked samples NaN), and the class names (or values) of ``target`` under that name.
    CSV cells hold bracketed strings, ECSV/VOTable fixed-length array columns, Parquet list columns.
    """
    path = Path(path)
    fmt = _format_of(path, format)
    flux, err = _archive_arrays(ds, spectra)
    ids = np.asarray(ds.ids.read())
    base: dict[str, Any] = {"source_id": ids, "ra": ds.ra.read().astype(np.float64),
                            "dec": ds.dec.read().astype(np.float64)}
    if target is not None:
        t = ds.target(target)
        base[target] = t.labels() if t.kind == "class" else t.values.read()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame = pd.DataFrame(base)
        frame["flux"] = _bracketed(flux)
        if err is not None:
            frame["flux_error"] = _bracketed(err)
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        def as_list(a: np.ndarray) -> Any:
            offsets = np.arange(0, a.size + 1, a.shape[1], dtype=np.int32)
            return pa.ListArray.from_arrays(pa.array(offsets), pa.array(a.ravel()))

        cols = {k: pa.array(v) for k, v in base.items()}
        cols["flux"] = as_list(flux)
        if err is not None:
            cols["flux_error"] = as_list(err)
        pq.write_table(pa.table(cols), path)
    else:
        from astropy.table import Table

        table = Table(base)
        table["flux"] = flux
        table["flux"].unit = "W / (m2 nm)"
        if err is not None:
            table["flux_error"] = err
            table["flux_error"].unit = "W / (m2 nm)"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table.write(path, format="ascii.ecsv" if fmt == "ecsv" else "votable", overwrite=True)
    return path


# ---------------------------------------------------------------------------------------------- registry
def _header_names(path: Path) -> set[str]:
    """Column names of a CSV/ECSV/VOTable/Parquet table, read from its header only (lower case)."""
    fmt = _format_of(path, None)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return {n.lower() for n in pq.read_schema(path).names}
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.read(65536)
    if fmt == "csv":
        line = next((ln for ln in head.splitlines() if ln.strip() and not ln.startswith("#")), "")
        return {c.strip().strip('"').lower() for c in line.split(",")}
    import re

    pattern = r"-\s*\{\s*name:\s*([\w.]+)" if fmt == "ecsv" else r"<FIELD[^>]*\bname=\"([^\"]+)\""
    return {m.lower() for m in re.findall(pattern, head)}


def _is_sampled(path: Path) -> bool:
    names = _header_names(path)
    return {"source_id", "flux"} <= names


def _is_continuous(path: Path) -> bool:
    names = _header_names(path)
    return {"source_id", "bp_coefficients", "rp_coefficients"} <= names


def _register() -> None:
    from astromodal.data.readers import register_reader

    suffixes = tuple(_SUFFIX_FORMATS)
    register_reader("gaia_xp_sampled", suffixes=suffixes, sniff=_is_sampled,
                    description="Gaia DR3 XP_SAMPLED spectra (archive CSV/ECSV/VOTable/Parquet: source_id, "
                                "flux, flux_error) -> spectra 'gaia_xp', 343 samples 3360-10200 A")(read_xp_sampled)
    register_reader("gaia_xp_continuous", suffixes=suffixes, sniff=_is_continuous,
                    description="Gaia DR3 XP_CONTINUOUS coefficients (archive tables) sampled with GaiaXPy's "
                                "model -> spectra 'gaia_xp'")(read_xp_continuous)
    register_reader("gaia_xp_npz", suffixes=(".npz",),
                    description="npz of XP coefficients X (N, 110), labels y, source_id -> spectra 'gaia_xp', "
                                "target 'massive'")(read_xp_continuous_npz)


_register()
