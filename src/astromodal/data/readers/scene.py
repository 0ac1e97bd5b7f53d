"""The Scene dataset layout (study D's preliminary experiment): a folder of video frames and one CSV with a row per
frame: its file name, feature columns (an MFCC audio vector per frame) and label columns (Indoors/Outdoors and
the 8 environments) -> Dataset::

    from astromodal.data.readers.scene import read_scene
    ds = read_scene("scene/", "scene.csv", file_column="frame",
                    label_columns=["indoor_outdoor", "environment"], feature_columns="mfcc_*", size=32)

The real Scene data is not shipped with the project (nor reachable here); this reads any set in its shape.

* frames: each row's ``file_column`` names an image file relative to the folder (sub-folders allowed). It is
  read with Pillow and converted to RGB (``bands``: 3 names; 1 name: grey), to float32 levels and, when
  ``size`` is given and differs, resized to ``size`` x ``size`` by area averaging
  (:func:`astromodal.data.readers.image_folder.resize_area`, Pillow's ``BOX`` filter on float pixels), then
  scaled to [0, 1] (8-bit level / 255). The images block ``frames`` holds (N, C, H, W) float32. Without
  ``size`` every frame must have the first frame's size.
* features: the catalogue columns. ``feature_columns``: a shell pattern or a list of them (``mfcc_*``), or by
  default every column other than the file and label columns that holds a number in any row (a column of
  text only, e.g. a video name, is left out and listed in ``meta["text_columns"]``). Every cell of a feature
  column must be a finite number.
* labels: one class target per label column, named after it; the classes are the label values, in numeric
  order when all are integers, else sorted as text.
* ids: the file-name column's text (each frame once).

Bad input is one line naming the file, the CSV line (the header is line 1) and the column: a CSV without the
file column or a label column, a row whose frame is missing, an empty label, a feature cell that is not a
number, an unreadable image, frames of different sizes without ``size``, a file listed twice.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from astromodal.data.dataset import Column, Dataset, Images, Target
from astromodal.errors import ConfigError, DataFormatError

#: Pillow mode per channel count
_MODES = {1: "L", 3: "RGB"}

__all__ = ["read_scene"]


def _find_csv(folder: Path, csv: str | Path | None) -> Path:
    """The CSV: ``csv`` (a relative name is looked up in ``folder`` first), or else the one ``*.csv`` at the
    folder's top level."""
    if csv is not None:
        path = Path(csv).expanduser()
        return path if path.is_absolute() or not (folder / path).exists() else folder / path
    found = sorted(folder.glob("*.csv"))
    if len(found) != 1:
        raise DataFormatError(f"{folder}: {len(found)} CSV files at the top level {[p.name for p in found]}; "
                              "name the frame table with option 'csv'")
    return found[0]


def _read_csv(path: Path):
    from astromodal.data.readers.image_folder import read_text_csv

    table = read_text_csv(path)
    return table.apply(lambda col: col.str.strip())


def _as_list(value: str | Sequence[str] | None, option: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"scene option {option!r} must be a column name or a list of them, got {value!r}")
    return list(value)


def _feature_names(table, csv: Path, patterns: list[str] | None, exclude: set[str]) -> tuple[list[str], list[str]]:
    """The feature columns (CSV order) and the text-only columns left out by the default."""
    import pandas as pd

    candidates = [c for c in table.columns if c not in exclude]
    if patterns is not None:
        names = [c for c in candidates if any(fnmatch.fnmatchcase(c, p) for p in patterns)]
        if not names:
            raise ConfigError(f"scene option 'feature_columns' {patterns} matches no column of {csv} "
                              f"(columns other than the file and label ones: {candidates})")
        return names, []
    numeric = [c for c in candidates if pd.to_numeric(table[c], errors="coerce").notna().any()]
    return numeric, [c for c in candidates if c not in numeric]


def _features(table, csv: Path, names: list[str]) -> dict[str, Column]:
    """Each feature column as float64; a cell that is not a finite number is one line naming it."""
    import pandas as pd

    out = {}
    for name in names:
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            row = int(bad[0])
            raise DataFormatError(f"{csv}: line {row + 2}, feature column {name!r}: {table[name].iloc[row]!r} is not "
                                  f"a finite number ({len(bad)} such row(s); choose the features with "
                                  "'feature_columns')")
        out[name] = Column(values, "")
    return out


def _labels(table, csv: Path, column: str) -> Target:
    values = table[column].to_numpy(dtype=str)
    empty = np.flatnonzero(values == "")
    if len(empty):
        raise DataFormatError(f"{csv}: line {int(empty[0]) + 2}: empty label in column {column!r}")
    uniq = sorted(set(values.tolist()))
    try:
        uniq = sorted(uniq, key=int)  # integer labels in numeric order (2 before 10)
    except ValueError:
        pass
    return Target.from_labels(values, uniq)


def _load_frame(path: Path, mode: str, size: int | None) -> np.ndarray:
    """(C, H, W) float32 levels 0..255 of one frame, area-resized to ``size`` when given."""
    from PIL import Image, UnidentifiedImageError

    from astromodal.data.readers.image_folder import resize_area

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert(mode), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(f"{path}: cannot be read as an image ({exc})") from None
    arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    if size is not None and arr.shape[1:] != (size, size):
        arr = resize_area(arr, size)
    return arr


def read_scene(
    path: str | Path,
    csv: str | Path | None = None,
    *,
    file_column: str = "file",
    label_columns: str | Sequence[str] = ("indoor_outdoor", "environment"),
    feature_columns: str | Sequence[str] | None = None,
    size: int | None = None,
    bands: Sequence[str] = ("red", "green", "blue"),
    name: str = "frames",
) -> Dataset:
    """A Scene-format set (the module text): the frames under the folder ``path`` named by the CSV ``csv``
    (default the one CSV in ``path``; a relative name is looked up in ``path``) -> Dataset with the images block
    ``name`` (C, H, W float32 in [0, 1]), the feature columns and one class target per label column."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: no such folder (the Scene frames)")
    labels = _as_list(label_columns, "label_columns") or []
    if not labels:
        raise ConfigError("scene option 'label_columns' names no column")
    if len(bands) not in _MODES or len(set(bands)) != len(bands):
        raise ConfigError(f"scene option 'bands' {list(bands)}: give 3 distinct names (RGB) or 1 (grey)")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"scene option 'size' must be a positive whole number of pixels, got {size!r}")
    csv_path = _find_csv(folder, csv)
    table = _read_csv(csv_path)
    missing = [c for c in (file_column, *labels) if c not in table.columns]
    if missing:
        raise DataFormatError(f"{csv_path}: no column(s) {missing} (columns: {list(table.columns)}); set "
                              "file_column / label_columns")
    files = table[file_column].to_numpy(dtype=str)
    uniq, counts = np.unique(files, return_counts=True)
    if (counts > 1).any():
        dup = str(uniq[counts > 1][0])
        lines = (np.flatnonzero(files == dup) + 2).tolist()
        raise DataFormatError(f"{csv_path}: frame {dup!r} is listed on lines {lines}")
    names, text = _feature_names(table, csv_path, _as_list(feature_columns, "feature_columns"),
                                 {file_column, *labels})
    columns = _features(table, csv_path, names)
    targets = {c: _labels(table, csv_path, c) for c in labels}
    paths = [folder / f for f in files.tolist()]
    for row, (f, p) in enumerate(zip(files.tolist(), paths, strict=True)):
        if f == "" or not p.is_file():
            raise DataFormatError(f"{csv_path}: line {row + 2}: frame {f!r} ({file_column}) is not a file in {folder}")
    mode = _MODES[len(bands)]
    pixels: np.ndarray | None = None
    for row, p in enumerate(paths):
        arr = _load_frame(p, mode, size)
        if pixels is None:
            pixels = np.empty((len(paths), *arr.shape), dtype=np.float32)
        elif arr.shape != pixels.shape[1:]:
            raise DataFormatError(f"{p}: {arr.shape[2]}x{arr.shape[1]} pixels, but {paths[0].name} has "
                                  f"{pixels.shape[3]}x{pixels.shape[2]}; set size to resize every frame")
        pixels[row] = arr
    if pixels is None:
        pixels = np.zeros((0, len(bands), size or 1, size or 1), dtype=np.float32)
    pixels /= 255.0
    return Dataset(
        files.astype(str),
        images={name: Images(pixels, tuple(bands), pixel_scale=1.0, unit="8-bit level / 255")},
        columns=columns,
        targets=targets,
        meta={"source": "scene", "source_files": [str(csv_path), str(folder)], "features": names,
              "text_columns": text, "labels": labels},
    )
