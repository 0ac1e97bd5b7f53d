"""SDSS imaging frames: ``frame-<band>-<run>-<camcol>-<field>.fits[.bz2]`` -> pixels and WCS.

An SDSS "corrected frame" (the DR8+ ``frame`` data model) holds the calibrated, sky-subtracted image in
nanomaggies in HDU 0 (2048 x 1489 pixels, 0.396"/pixel) with its astrometric solution as a TAN WCS in
the same header; HDUs 1-3 hold the calibration vector, the sky and the astrometry tables (not needed for
cutouts). astropy reads the ``.bz2`` files directly. Each band has its own WCS: the five frames of one
field are *not* pixel-aligned (the camera's filters sit on different CCD rows), so cutouts are cut from
each band through its own WCS (:func:`astromodal.transforms.images.cutouts_from_frames`).

Pixel convention: everything here is 0-based (numpy / astropy ``world_to_pixel``: the centre of the
first pixel is 0.0). FITS ``CRPIX`` is 1-based; astropy converts it. (The MESCR public code calls
``all_world2pix(ra, dec, 1)`` and then slices 0-based arrays: a one-pixel offset this reader avoids.)

    from astromodal.data.readers.sdss_frames import read_fields
    fields = read_fields("../shared/data/sdss-frame-5band")      # {(2820, 3, 122): {"u": Frame, ...}}

A frame without a celestial WCS, an unreadable file or one whose HDU 0 is not a 2-D image is a
:class:`~astromodal.errors.DataFormatError` naming the file; :func:`read_fields` reads every frame and
names *all* bad ones in one line.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.errors import DataFormatError

#: ``frame-<band>-<run6>-<camcol>-<field4>.fits`` (optionally ``.bz2`` or ``.gz``)
FRAME_PATTERN = re.compile(r"^frame-([ugriz])-(\d+)-(\d)-(\d+)\.fits(\.bz2|\.gz)?$", re.IGNORECASE)

#: SDSS pixel scale [arcsec/pixel] (the value of every frame's WCS to 0.1 %)
SDSS_PIXEL_SCALE = 0.396


@dataclass
class Frame:
    """One SDSS frame: ``data`` (H, W) float32 nanomaggies, its celestial ``wcs`` and where it came from."""

    path: Path
    band: str
    run: int
    camcol: int
    field: int
    data: np.ndarray
    wcs: Any  # astropy.wcs.WCS (celestial)

    @property
    def key(self) -> tuple[int, int, int]:
        """(run, camcol, field): the frames of one field share it."""
        return (self.run, self.camcol, self.field)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.data.shape[0]), int(self.data.shape[1]))

    @property
    def pixel_scale(self) -> float:
        """Mean pixel scale of the WCS [arcsec/pixel]."""
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.mean(proj_plane_pixel_scales(self.wcs)) * 3600.0)

    def to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel positions (x = column, y = row) of sky positions [deg] (ICRS), through this WCS."""
        from astropy.coordinates import SkyCoord

        coords = SkyCoord(np.atleast_1d(np.asarray(ra, dtype=np.float64)),
                          np.atleast_1d(np.asarray(dec, dtype=np.float64)), unit="deg", frame="icrs")
        x, y = self.wcs.world_to_pixel(coords)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """True for sky positions that fall on this frame's pixels (anywhere, edges included)."""
        x, y = self.to_pixel(ra, dec)
        h, w = self.shape
        with np.errstate(invalid="ignore"):
            return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)


def parse_frame_name(path: str | Path) -> tuple[str, int, int, int] | None:
    """(band, run, camcol, field) from an SDSS frame file name, or None when the name is not one."""
    m = FRAME_PATTERN.match(Path(path).name)
    if m is None:
        return None
    return m.group(1).lower(), int(m.group(2)), int(m.group(3)), int(m.group(4))


def is_frame_name(path: str | Path) -> bool:
    """True when ``path`` is named like an SDSS frame (``frame-r-002820-3-0122.fits.bz2``)."""
    return parse_frame_name(path) is not None


def read_frame(path: str | Path) -> Frame:
    """Read one SDSS frame: HDU 0 as float32 nanomaggies and its celestial WCS.

    The band, run, camcol and field come from the file name (``frame-<band>-<run>-<camcol>-<field>``) or,
    for another name, from the header keywords ``FILTER``, ``RUN``, ``CAMCOL``, ``FRAME``. A file that is not
    readable FITS, whose HDU 0 is not a 2-D image, or whose header has no celestial WCS is a
    :class:`DataFormatError` naming the file.
    """
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such frame file")
    try:
        with fits.open(path, memmap=False) as hdus:
            header = hdus[0].header
            data = hdus[0].data
            data = None if data is None else np.asarray(data, dtype=np.float32)
    except (OSError, ValueError, EOFError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataFormatError(f"{path}: not a readable FITS frame ({first})") from None
    if data is None or data.ndim != 2:
        shape = None if data is None else data.shape
        raise DataFormatError(f"{path}: HDU 0 is not a 2-D image (shape {shape}); not an SDSS frame")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # SDSS's deprecated RADECSYS, DATE-OBS fixes
            wcs = WCS(header, naxis=2)
    except Exception as exc:  # astropy raises several types for a broken WCS
        raise DataFormatError(f"{path}: the header's WCS cannot be read ({' '.join(str(exc).split())})") from None
    if not wcs.has_celestial or wcs.naxis != 2:
        raise DataFormatError(f"{path}: no celestial WCS in the header of HDU 0 (CTYPE {list(wcs.wcs.ctype)}); "
                              "cutouts need each frame's sky coordinates")
    wcs = wcs.celestial
    parsed = parse_frame_name(path)
    if parsed is None:
        band = str(header.get("FILTER", "")).strip().lower()
        if band not in ("u", "g", "r", "i", "z"):
            raise DataFormatError(f"{path}: not named frame-<band>-<run>-<camcol>-<field>.fits and the header has "
                                  f"no FILTER of u g r i z (FILTER = {header.get('FILTER')!r})")
        parsed = (band, int(header.get("RUN", 0)), int(header.get("CAMCOL", 0)), int(header.get("FRAME", 0)))
    band, run, camcol, field = parsed
    return Frame(path, band, run, camcol, field, data, wcs)


def read_frame_header(path: str | Path) -> Any:
    """HDU 0's header of a frame file without decompressing the image (``.bz2`` / ``.gz`` read as a stream up
    to the ``END`` card): a fast look at every frame before any is read. Unreadable: DataFormatError."""
    import bz2
    import gzip

    from astropy.io import fits

    path = Path(path)
    name = path.name.lower()
    opener: Any = bz2.open if name.endswith(".bz2") else gzip.open if name.endswith(".gz") else open
    block = 2880
    text = b""
    try:
        with opener(path, "rb") as fh:
            for _ in range(1000):  # a header of up to 36,000 cards
                chunk = fh.read(block)
                if len(chunk) < block:
                    break
                text += chunk
                cards = [chunk[i:i + 80] for i in range(0, block, 80)]
                if any(c.rstrip() == b"END" for c in cards):
                    return fits.Header.fromstring(text.decode("ascii", "replace"))
    except (OSError, EOFError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DataFormatError(f"{path}: not a readable FITS frame ({first})") from None
    raise DataFormatError(f"{path}: not a readable FITS frame (no complete header)")


def header_problem(header: Any) -> str | None:
    """Why a frame header cannot give cutouts (no celestial 2-D WCS), or None when it can."""
    from astropy.wcs import WCS, FITSFixedWarning

    if int(header.get("NAXIS", 0)) != 2:
        return f"HDU 0 is not a 2-D image (NAXIS = {header.get('NAXIS')})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header, naxis=2)
    except Exception as exc:
        return f"the header's WCS cannot be read ({' '.join(str(exc).split())})"
    if not wcs.has_celestial:
        return f"no celestial WCS in the header of HDU 0 (CTYPE {list(wcs.wcs.ctype)})"
    return None


def group_frames(
    paths: Iterable[str | Path], bands: Iterable[str] = ("u", "g", "r", "i", "z")
) -> dict[tuple[int, int, int], dict[str, Path]]:
    """The frame files grouped by field, ``{(run, camcol, field): {band: path}}``, after a look at every
    header (:func:`read_frame_header`): every bad frame (unreadable, no celestial WCS, a name that is not
    ``frame-<band>-<run>-<camcol>-<field>``, a second frame of one band), and every field that lacks one of
    ``bands``, are named together in one DataFormatError line. Frames of other bands are ignored."""
    bands = [str(b) for b in bands]
    fields: dict[tuple[int, int, int], dict[str, Path]] = {}
    bad: list[str] = []
    for p in (Path(q) for q in paths):
        parsed = parse_frame_name(p)
        if parsed is None:
            bad.append(f"{p}: not named frame-<band>-<run>-<camcol>-<field>.fits[.bz2]")
            continue
        band, run, camcol, field = parsed
        if band not in bands:
            continue
        try:
            problem = header_problem(read_frame_header(p))
        except DataFormatError as exc:
            problem = str(exc).split(": ", 1)[-1]
        if problem:
            bad.append(f"{p}: {problem}")
            continue
        group = fields.setdefault((run, camcol, field), {})
        if band in group:
            bad.append(f"{p}: a second {band} frame of field {run}-{camcol}-{field} (first {group[band]})")
        else:
            group[band] = p
    if bad:
        raise DataFormatError(f"{len(bad)} bad SDSS frame{'s' if len(bad) > 1 else ''}: " + "; ".join(bad))
    if not fields:
        raise DataFormatError(f"no SDSS frame of the bands {''.join(bands)}")
    return _complete_fields(fields, bands)


def _complete_fields(fields: dict[tuple[int, int, int], dict[str, Any]], bands: list[str],
                     where: str = "") -> dict[tuple[int, int, int], dict[str, Any]]:
    """``fields`` sorted, each with its frames in ``bands`` order; every field that lacks a band is named in
    one DataFormatError line (prefixed by ``where``)."""
    incomplete = [f"{run}-{camcol}-{field} lacks {''.join(b for b in bands if b not in group)}"
                  for (run, camcol, field), group in fields.items() if any(b not in group for b in bands)]
    if incomplete:
        raise DataFormatError(f"{where + ': ' if where else ''}field{'s' if len(incomplete) > 1 else ''} without "
                              f"every band of {''.join(bands)}: {'; '.join(incomplete)} (choose the bands with "
                              "--bands)")
    return {key: {b: group[b] for b in bands} for key, group in sorted(fields.items())}


def find_frames(where: str | Path | Iterable[str | Path]) -> list[Path]:
    """The SDSS frame files of a folder (searched recursively), a glob, one file, or a list of files, sorted.

    Only files named like frames count in a folder or glob; a folder or glob with none is a
    :class:`DataFormatError`.
    """
    import glob as _glob

    if not isinstance(where, (str, Path)):
        paths = [Path(p) for p in where]
        return sorted(paths)
    text = str(where)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_frame_name(p))
    elif any(c in text for c in "*?["):
        found = sorted(Path(p) for p in _glob.glob(str(path), recursive=True) if Path(p).is_file())
    else:
        raise DataFormatError(f"{path}: no such file or folder of SDSS frames")
    if not found:
        raise DataFormatError(f"{where}: no SDSS frame files (frame-<band>-<run>-<camcol>-<field>.fits[.bz2])")
    return found


def read_fields(
    where: str | Path | Iterable[str | Path],
    bands: Iterable[str] = ("u", "g", "r", "i", "z"),
    progress: Callable[[int, int], None] | None = None,
) -> dict[tuple[int, int, int], dict[str, Frame]]:
    """Every frame of ``where`` (see :func:`find_frames`), grouped by field: ``{(run, camcol, field): {band:
    Frame}}``, in ``bands`` order; frames of other bands are not read.

    All frames are read before any error is raised, so every bad frame is named in one line
    (``DataFormatError: 2 bad SDSS frames: a.fits.bz2 (no celestial WCS ...); b.fits (...)``); a field that
    lacks one of ``bands``, or holds two frames of one band, is named too. ``progress(done, total)`` is
    called after each frame.
    """
    bands = [str(b) for b in bands]
    paths = find_frames(where)
    wanted = []
    for p in paths:
        parsed = parse_frame_name(p)
        if parsed is None or parsed[0] in bands:
            wanted.append(p)
    if not wanted:
        raise DataFormatError(f"{where}: no SDSS frame of the bands {''.join(bands)}")
    fields: dict[tuple[int, int, int], dict[str, Frame]] = {}
    bad: list[str] = []
    for k, p in enumerate(wanted):
        try:
            frame = read_frame(p)
        except DataFormatError as exc:
            bad.append(str(exc))
        else:
            if frame.band in bands:
                field = fields.setdefault(frame.key, {})
                if frame.band in field:
                    bad.append(f"{p}: a second {frame.band} frame of field {frame.key} (first {field[frame.band].path})")
                else:
                    field[frame.band] = frame
        if progress is not None:
            progress(k + 1, len(wanted))
    if bad:
        raise DataFormatError(f"{len(bad)} bad SDSS frame{'s' if len(bad) > 1 else ''}: " + "; ".join(bad))
    return _complete_fields(fields, bands, str(where))


__all__ = ["FRAME_PATTERN", "Frame", "find_frames", "group_frames", "header_problem", "is_frame_name", "parse_frame_name",
           "read_fields", "read_frame", "read_frame_header"]


# ---------------------------------------------------------------------------------------------------
# frames (+ a catalogue) -> an astromodal Dataset file of cutouts
# ---------------------------------------------------------------------------------------------------

#: the layout version of a cutouts parts folder's fingerprint
_PARTS_VERSION = 1
VERB = "build cutouts"


def _file_state(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"name": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def load_catalogue(
    path: str | Path, ra_column: str | None = None, dec_column: str | None = None, id_column: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(ids, ra, dec, numeric columns) of a CSV / Parquet / FITS / ECSV catalogue (the project's table loader,
    :func:`astromodal.data.readers.tables.load_frame`). ``ra``/``dec`` default to the usual names (ra, RA_ICRS,
    RAJ2000, ...); ids to the first of source_id, objid, specobjid, obsid, id, else the row numbers. Every
    other numeric column is carried through: integers as int64 (exact, a second 64-bit id too), the rest as
    float64 (missing values NaN). A position that is not a number is a BadValueError naming the column."""
    import pandas as pd

    from astromodal.data.readers.tables import (
        ID_COLUMNS,
        _ids,
        first_present,
        load_frame,
        position_columns,
        resolve_column,
    )
    from astromodal.errors import BadValueError

    frame = load_frame(path)
    where = str(path)
    if (ra_column is None) != (dec_column is None):
        raise BadValueError(f"{where}: give both --ra-column and --dec-column, or neither")
    if ra_column is None:
        ra_col, dec_col = position_columns(frame)
        if ra_col is None or dec_col is None:
            raise BadValueError(f"{where}: no ra/dec columns found (columns: {list(frame.columns)}); name them with "
                                "--ra-column and --dec-column")
    else:
        ra_col = resolve_column(frame, ra_column, "ra column", where)
        dec_col = resolve_column(frame, str(dec_column), "dec column", where)
    id_col = resolve_column(frame, id_column, "id column", where) if id_column else first_present(frame, ID_COLUMNS)
    pos = []
    for col in (ra_col, dec_col):
        try:
            pos.append(pd.to_numeric(frame[col], errors="raise").to_numpy(dtype=np.float64))
        except (ValueError, TypeError):
            raise BadValueError(f"{where}: position column {col!r} holds non-numbers (degrees expected)") from None
    ids = _ids(frame, id_col, where)
    columns = {str(c): _carried(frame[c], where) for c in frame.columns if c not in (ra_col, dec_col, id_col)
               and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])}
    return ids, pos[0], pos[1], columns


def _carried(series: Any, where: str) -> np.ndarray:
    """A numeric catalogue column as carried into the cutouts file: integers stay 64-bit integers (a
    second id column, flags), other numbers float64 with missing values NaN. An integer column with
    missing values becomes float64 only when every value is exact in a float (|v| <= 2**53); otherwise
    one error line naming it."""
    import pandas as pd

    from astromodal.errors import BadValueError

    if pd.api.types.is_integer_dtype(series.dtype):
        if not series.isna().any():
            return series.to_numpy(dtype=np.uint64 if pd.api.types.is_unsigned_integer_dtype(series.dtype)
                                   and int(series.max()) > np.iinfo(np.int64).max else np.int64)
        if series.abs().max() > 2**53:
            raise BadValueError(f"{where}: column {series.name!r} holds integers beyond 2**53 and missing values: "
                                "they cannot be carried exactly (fill or drop the missing values, or drop the column)")
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _parts_folder(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _is_ours(p: Path) -> bool:
    """True for a parts-folder entry this tool writes (fingerprint, field/sources parts, atomic temp files)."""
    return p.is_file() and not p.is_symlink() and (
        p.name == "fingerprint.json" or re.fullmatch(r"(field-\d+-\d+-\d+|sources)\.npz", p.name) is not None
        or re.fullmatch(r"\.(field-\d+-\d+-\d+\.npz|sources\.npz|fingerprint\.json)\..+\.tmp", p.name) is not None)


def _remove_parts(parts: Path) -> None:
    """Remove this tool's entries of ``parts``, then the folder if that left it empty (never a file it did
    not write, e.g. one put there while the run went on)."""
    if not parts.is_dir() or parts.is_symlink():
        return
    for p in parts.iterdir():
        if _is_ours(p):
            p.unlink(missing_ok=True)
    try:
        parts.rmdir()
    except OSError:
        pass


def _open_parts(parts: Path, fingerprint: dict[str, Any], restart: bool) -> None:
    """Create ``parts`` with ``fingerprint`` or check the one there (another run's parts: refused unless
    ``restart``, which removes only this tool's files); a file astromodal did not write is never removed."""
    import json

    from astromodal.atomic import write_json
    from astromodal.errors import ConfigError

    if parts.is_dir():
        entries = list(parts.iterdir())
        ours = [p for p in entries if _is_ours(p)]
        foreign = sorted(p.name for p in entries if p not in ours)
        if foreign:
            raise ConfigError(f"{parts} holds files astromodal did not write ({', '.join(foreign[:3])}); it is never "
                              "emptied: move them away or choose another --out")
        try:
            old = json.loads((parts / "fingerprint.json").read_text())
        except (OSError, ValueError):
            old = None
        if old != fingerprint and entries:
            if not restart:
                raise ConfigError(f"{parts} holds the finished fields of another run (other frames, catalogue or "
                                  "settings): rerun with --restart to discard them, or choose another --out")
            for p in ours:
                p.unlink(missing_ok=True)
        elif old == fingerprint and restart:
            for p in ours:
                p.unlink(missing_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / "fingerprint.json", fingerprint)


def _save_npz(path: Path, **arrays: Any) -> None:
    from astromodal.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def build_cutouts(
    frames: str | Path | Iterable[str | Path],
    out: str | Path,
    catalogue: str | Path | None = None,
    size: int = 64,
    bands: str = "ugriz",
    ra_column: str | None = None,
    dec_column: str | None = None,
    id_column: str | None = None,
    images_name: str = "sdss",
    nan: str = "skip",
    detection: dict[str, Any] | None = None,
    overwrite: bool = False,
    restart: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    align: str = "pixel",
) -> tuple[Path, dict[str, Any]]:
    """Write an astromodal Dataset HDF5 of aligned (B, size, size) cutouts (nanomaggies) from SDSS frames.

    Positions come from ``catalogue`` (its numeric columns are carried through) or, without one, from the
    sources photutils finds on each field's r frame (:func:`astromodal.transforms.images.detect_sources_on`
    with ``detection`` options; a source on the r frame of an earlier field is kept once). Each object is cut
    from the first field where every band's cutout lies wholly on its frame
    (:func:`astromodal.transforms.images.cut_field`); objects near an edge, off every frame, or with NaN
    pixels (``nan="skip"``; ``"error"``: one line) are skipped and counted. The images block ``images_name``
    holds ``bands``; columns ``frame_run``, ``frame_camcol``, ``frame_field`` name each cutout's field
    (detections add ``det_x``, ``det_y`` (0-based r-frame pixels), ``det_flux`` (nanomaggies), ``det_area``
    (pixels)); ``meta["cutouts"]`` records the settings, frames, counts and fingerprint. ``align``:
    ``"pixel"`` (whole pixels, the survey's values) or ``"subpixel"`` (each band shifted so the object sits on
    the centre, :mod:`astromodal.transforms.images`).

    Before any work: every frame's header is checked (all bad frames named in one line) and ``out`` must be
    new or a file astromodal wrote (replaced only with ``overwrite``). The file is written atomically. Each
    finished field is kept in ``OUT.parts/`` with a fingerprint of the run (frames, catalogue, settings), so a
    rerun after an interruption resumes; a rerun of a finished run with the same fingerprint does nothing
    (``counts["up_to_date"]``). ``progress(stage, done, total)`` reports the stages. Returns (path, counts).
    """
    from astromodal.atomic import check_output_file, is_tool_written
    from astromodal.data.dataset import Column, Dataset, Images
    from astromodal.errors import BadValueError, ConfigError
    from astromodal.transforms import images as tim

    out = Path(out).expanduser()
    bands_list = [str(b) for b in bands]
    if not bands_list or len(set(bands_list)) != len(bands_list) or any(b not in "ugriz" for b in bands_list):
        raise ConfigError(f"--bands must be distinct letters of ugriz, got {bands!r}")
    if int(size) < 2:
        raise ConfigError(f"--size must be at least 2 pixels, got {size}")
    if nan not in ("skip", "error"):
        raise ConfigError(f"--on-nan must be skip or error, not {nan!r}")
    if catalogue is None and "r" not in bands_list:
        raise ConfigError("without --catalogue the sources are detected on the r frame: --bands must include r")
    detection = dict(detection or {})
    inputs = [catalogue] if catalogue is not None else []
    if overwrite or not (out.is_file() and is_tool_written(out)):
        check_output_file(out, inputs=inputs, overwrite=overwrite)  # before any work
    paths = find_frames(frames)
    fields = group_frames(paths, bands_list)
    frame_files = [_file_state(p) for group in fields.values() for p in group.values()]
    settings = {"size": int(size), "bands": "".join(bands_list), "images": images_name, "nan": nan,
                "ra_column": ra_column, "dec_column": dec_column, "id_column": id_column,
                "detection": detection if catalogue is None else None}
    if align != "pixel":  # whole-pixel runs keep the fingerprint they always had
        if align not in tim.ALIGNMENTS:
            raise ConfigError(f"--align {align!r}: unknown; known: {', '.join(tim.ALIGNMENTS)}")
        settings["align"] = align
    fingerprint = {"version": _PARTS_VERSION, "frames": frame_files,
                   "catalogue": None if catalogue is None else _file_state(Path(catalogue)), **settings}
    if out.is_file() and is_tool_written(out) and not overwrite:
        from astromodal.data.storage import load_hdf5

        try:
            done = load_hdf5(out, lazy=True)
            same = done.meta.get("cutouts", {}).get("fingerprint") == fingerprint
            counts = dict(done.meta.get("cutouts", {}).get("counts", {}))
            done.meta["_h5file"].close()
        except Exception:
            same = False
        if same:
            return out, {**counts, "up_to_date": True}
    check_output_file(out, inputs=inputs, overwrite=overwrite)
    if catalogue is not None:
        ids, ra, dec, columns = load_catalogue(catalogue, ra_column, dec_column, id_column)
        if not len(ids):
            raise BadValueError(f"{catalogue}: the catalogue has no rows")
    parts = _parts_folder(out)
    _open_parts(parts, fingerprint, restart)
    try:
        keys = list(fields)
        if catalogue is None:
            src = parts / "sources.npz"
            if src.is_file():
                with np.load(src) as z:
                    det = {k: z[k] for k in z.files}
            else:
                det = _detect(fields, detection, progress)
                _save_npz(src, **det)
            ids = np.arange(len(det["ra"]), dtype=np.int64)
            ra, dec = det["ra"], det["dec"]
            columns = {k: det[k] for k in ("det_x", "det_y", "det_flux", "det_area")}
            if not len(ids):
                raise BadValueError(f"no source detected on the r frame{'s' if len(keys) > 1 else ''} of {frames}")
        n = len(ids)
        pixels = np.zeros((n, len(bands_list), int(size), int(size)), dtype=np.float32)
        origin = np.full((n, 3), -1, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        statuses = []
        for k, key in enumerate(keys):
            part = parts / f"field-{key[0]}-{key[1]}-{key[2]}.npz"
            rows = np.flatnonzero(~done)
            if part.is_file():
                with np.load(part) as z:
                    rows, st_rows, kept_pix = z["rows"], z["status"], z["pixels"]
            else:
                field = {b: read_frame(p) for b, p in fields[key].items()}
                pix, st_rows = tim.cut_field(field, ra[rows], dec[rows], size, bands_list, nan, [ids[r] for r in rows],
                                             align)
                kept_pix = pix[st_rows == tim.KEPT]
                _save_npz(part, rows=rows, status=st_rows, pixels=kept_pix)
                del field
            st = np.full(n, tim.OFF, dtype=np.int8)
            st[rows] = st_rows
            kept = rows[st_rows == tim.KEPT]
            pixels[kept] = kept_pix
            origin[kept] = key
            done[rows[(st_rows == tim.KEPT) | (st_rows == tim.NAN)]] = True
            statuses.append(st)
            if progress is not None:
                progress("cutting fields", k + 1, len(keys))
        final, counts = tim.combine_status(statuses)
        if not counts["kept"]:
            _remove_parts(parts)
            what = {"skipped_off": "off every frame", "skipped_edge": "too near a frame edge",
                    "skipped_nan": "with NaN pixels"}
            why = ", ".join(f"{counts[c]} {w}" for c, w in what.items() if counts[c])
            raise BadValueError(f"no cutout made from {frames}: of {n} position{'s' if n != 1 else ''}, {why} "
                                f"(frames cover ra {_span(fields, 'ra')}, dec {_span(fields, 'dec')})")
    except BaseException:
        # a run that finished nothing leaves nothing behind (an interrupted one keeps its finished fields)
        if parts.is_dir() and all(p.name == "fingerprint.json" for p in parts.iterdir()):
            _remove_parts(parts)
        raise
    keep = final == tim.KEPT
    r_frame = fields[keys[0]].get("r", next(iter(fields[keys[0]].values())))
    pixel_scale = _header_scale(read_frame_header(r_frame))
    cols = {name: Column(values[keep], "") for name, values in columns.items()}
    for j, name in enumerate(("frame_run", "frame_camcol", "frame_field")):
        cols.setdefault(name, Column(origin[keep, j].astype(np.int64), ""))
    units = {"det_x": "pixel", "det_y": "pixel", "det_flux": "nanomaggies", "det_area": "pixel2", "ra": "deg"}
    for name, c in cols.items():
        c.unit = units.get(name, c.unit)
    meta = {"source": str(frames), "reader": "sdss_frames",
            "cutouts": {**settings, "catalogue": None if catalogue is None else str(catalogue),
                        "frames": [Path(f["name"]).name for f in frame_files], "counts": counts,
                        "fingerprint": fingerprint, "centre": "pixel (S-1)/2 for even S, S//2 for odd S (0-based)"}}
    ds = Dataset(ids[keep], ra[keep], dec[keep],
                 images={images_name: Images(pixels[keep], tuple(bands_list), pixel_scale, "nanomaggies")},
                 columns=cols, meta=meta)
    check_output_file(out, inputs=inputs, overwrite=overwrite)  # again: the path may have changed meanwhile
    ds.save(out)
    _remove_parts(parts)
    return out, counts


def _header_scale(header: Any) -> float:
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, naxis=2).celestial
    return round(float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0), 4)


def _span(fields: dict[tuple[int, int, int], dict[str, Path]], axis: str) -> str:
    """The range of ra or dec the fields' frames cover (from their headers), as text."""
    from astropy.wcs import WCS, FITSFixedWarning

    values = []
    for group in fields.values():
        for p in group.values():
            header = read_frame_header(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, naxis=2).celestial
            h, w = int(header.get("NAXIS2", 1)), int(header.get("NAXIS1", 1))
            fp = wcs.calc_footprint(axes=(w, h))
            values.extend(fp[:, 0 if axis == "ra" else 1])
    return f"{min(values):.4f}..{max(values):.4f}" if values else "?"


def _detect(fields: dict[tuple[int, int, int], dict[str, Path]], detection: dict[str, Any],
            progress: Callable[[str, int, int], None] | None) -> dict[str, np.ndarray]:
    """Sources on each field's r frame; one on the r frame of an earlier field is kept once."""
    from astromodal.transforms.images import detect_sources_on

    out: dict[str, list[np.ndarray]] = {k: [] for k in ("ra", "dec", "det_x", "det_y", "det_flux", "det_area")}
    seen: list[Frame] = []
    for k, group in enumerate(fields.values()):
        frame = read_frame(group["r"])
        table = detect_sources_on(frame, **detection)
        ra, dec = np.asarray(table["ra"], dtype=np.float64), np.asarray(table["dec"], dtype=np.float64)
        fresh = np.ones(len(ra), dtype=bool)
        for earlier in seen:
            fresh &= ~earlier.contains(ra, dec)
        for name, col in (("ra", "ra"), ("dec", "dec"), ("det_x", "x"), ("det_y", "y"), ("det_flux", "flux"),
                          ("det_area", "area")):
            out[name].append(np.asarray(table[col], dtype=np.float64)[fresh])
        # only the WCS and the shape are needed later: the pixels are let go
        seen.append(Frame(frame.path, frame.band, frame.run, frame.camcol, frame.field,
                          np.broadcast_to(np.float32(0), frame.shape), frame.wcs))
        del frame
        if progress is not None:
            progress("detecting sources (r)", k + 1, len(fields))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in out.items()}
