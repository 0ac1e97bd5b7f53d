"""A folder of images with a label CSV -> Dataset (images block + class target), e.g. Galaxy Zoo 1.

Layout: image files (``.jpg``, ``.jpeg``, ``.png``, ``.tif``, ``.tiff``, ``.bmp``, ``.gif``, ``.webp``) named
``<id>.<ext>`` anywhere under a folder (or matched by a glob), and one CSV with an id column (the file
stem) and a label column::

    from astromodal.data.readers.image_folder import read_image_folder
    ds = read_image_folder("../shared/data/galaxyzoo1-small/smallGZ1/Imagenes",
                           "../shared/data/galaxyzoo1-small/smallGZ1/smallCSV_class.csv",
                           id_column="OBJID", label_column="CLASS", size=32, bands=["i", "r", "g"],
                           class_names=GALAXY_ZOO1_CLASSES)

Every CSV row becomes one object, in CSV order: its image is found by its id (the file stem), read with
Pillow, converted to as many channels as ``bands`` names (1: grey, 3: RGB, 4: RGBA), optionally cut to its
centred square of side ``crop`` (pixels, or a fraction of the side), optionally resized to
``size`` x ``size`` with Pillow's ``BOX`` filter on float32 pixels (area averaging: every input pixel
counts once, with equal weight, in the output pixel whose area holds its centre, so an integer factor gives the
mean of each factor x factor block; 423 -> 32 averages blocks of 13 or 14 pixels a side; enlarging repeats
pixels) and scaled to [0, 1] (8-bit level / 255). Images are read one at a time into one preallocated float32 array, so a full-
resolution copy of every image is never held. Image files without a CSV row are ignored (their count is in
``meta["images_without_row"]``).

Ids: int64 when every id is an integer (Galaxy Zoo's SDSS OBJIDs), else text. Labels: ``class_names``
either maps each label value to a name (``{0: Elliptical, 1: ...}``, which also fixes the class order; a
label value not in the map is an error naming its row) or lists the names of integer labels 0..K-1;
without it the classes are the label values themselves (integers in numeric order).

Bad input is one line naming the file or the CSV row: a CSV without the id or label column, a row whose
image is missing (or ``missing="skip"``: the row is dropped and counted in ``meta["rows_without_image"]``),
an unreadable image, images of different sizes without ``size``, a repeated id.

Galaxy Zoo 1 (``../shared/data/galaxyzoo1-small``): the cutouts are SDSS colour composites (Lupton et al.
2004), whose red, green and blue channels are the SDSS i, r and g images (asinh-stretched, 8-bit): name the
bands ``[i, r, g]`` (the channel order of the file). The pixel values are display levels, not fluxes.
Classes 1 and 2 (clockwise / anticlockwise spirals) differ only by the sense of rotation: a mirror flip
turns one into the other, so flip augmentation must swap them (rotations keep them).
"""

from __future__ import annotations

import glob as _glob
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.dataset import Dataset, Images, Target
from astromodal.data.readers import register_reader
from astromodal.errors import BadValueError, ConfigError, DataFormatError

#: file-name endings read as images (lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp")
#: the classes of ``smallCSV_class.csv`` (Galaxy Zoo 1 leaf classes), label value -> name
GALAXY_ZOO1_CLASSES = {0: "elliptical", 1: "clockwise_spiral", 2: "anticlockwise_spiral", 3: "edge_on",
                       4: "dont_know", 5: "merger"}
#: Pillow mode of each channel count
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}

__all__ = ["GALAXY_ZOO1_CLASSES", "IMAGE_SUFFIXES", "image_files", "read_image_folder", "resize_area"]


def image_files(images: str | Path) -> dict[str, Path]:
    """Image files of a folder (searched recursively) or a glob, by file stem. Two files of one stem are an
    error naming both; a folder without image files or a glob matching none is an error naming it."""
    text = str(images)
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in _glob.glob(str(path), recursive=True) if Path(p).is_file())
    elif path.exists():
        raise DataFormatError(f"{path}: give the images as a folder or a glob, not one file")
    else:
        raise DataFormatError(f"{path}: no such folder")
    found: dict[str, Path] = {}
    for f in files:
        if f.name.startswith(".") or not f.name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if f.stem in found:
            raise DataFormatError(f"{f}: a second image of id {f.stem!r} (also {found[f.stem]})")
        found[f.stem] = f
    if not found:
        raise DataFormatError(f"{text}: no image file ({', '.join(IMAGE_SUFFIXES)})")
    return found


def resize_area(pixels: np.ndarray, size: int) -> np.ndarray:
    """(C, H, W) float pixels -> (C, size, size) float32 by Pillow's ``BOX`` filter (area averaging, as the
    reader does; module text), channel by channel in 32-bit float (no 8-bit rounding)."""
    from PIL import Image

    out = np.empty((pixels.shape[0], size, size), dtype=np.float32)
    for c in range(pixels.shape[0]):
        im = Image.fromarray(np.ascontiguousarray(pixels[c], dtype=np.float32), mode="F")
        out[c] = np.asarray(im.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return out


def read_text_csv(path: Path) -> Any:
    """A label CSV as text (a pandas DataFrame of str, nothing parsed as NaN), column names stripped; a missing
    or unreadable file is one DataFormatError line naming it. Shared by the image-folder and Scene readers."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFormatError(f"{path}: cannot be read as a CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _read_labels(labels: Path, id_column: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    table = read_text_csv(labels)
    columns = list(table.columns)
    missing = [c for c in (id_column, label_column) if c not in columns]
    if missing:
        raise DataFormatError(f"{labels}: no column(s) {missing} (columns: {columns}); set id_column / label_column")
    ids = table[id_column].str.strip().to_numpy(dtype=str)
    values = table[label_column].str.strip().to_numpy(dtype=str)
    empty = np.flatnonzero((ids == "") | (values == ""))
    if len(empty):
        row = int(empty[0])
        raise DataFormatError(f"{labels}: line {row + 2} has an empty {id_column!r} or "
                              f"{label_column!r} cell")
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        lines = (np.flatnonzero(ids == dup) + 2).tolist()
        raise DataFormatError(f"{labels}: id {str(dup)!r} appears {int(counts[uniq == dup][0])} times (lines {lines})")
    return ids, values


def _class_target(values: np.ndarray, class_names: Mapping[Any, str] | Sequence[str] | None,
                  labels: Path, label_column: str) -> Target:
    """The class target of the label strings ``values``; see the module text for ``class_names``."""
    if isinstance(class_names, Mapping):
        lookup = {str(k).strip(): str(v) for k, v in class_names.items()}
        names = list(dict.fromkeys(lookup.values()))
        if len(names) != len(lookup):
            raise ConfigError(f"class_names {dict(class_names)}: two label values share one name")
        unknown = np.flatnonzero(~np.isin(values, list(lookup)))
        if len(unknown):
            row = int(unknown[0])
            raise DataFormatError(f"{labels}: line {row + 2}: {label_column} {str(values[row])!r} is not among the "
                                  f"class_names keys {list(lookup)}")
        return Target.from_labels([lookup[v] for v in values], names)
    as_int = _integer_text(values)
    if class_names is not None:
        names = [str(c) for c in class_names]
        bad = np.flatnonzero(~as_int)
        if len(bad):
            row = int(bad[0])
            raise DataFormatError(f"{labels}: line {row + 2}: {label_column} {str(values[row])!r} is not an integer "
                                  f"label 0..{len(names) - 1} (class_names is a list; give a mapping instead)")
        codes = values.astype(np.int64)
        out = np.flatnonzero((codes < 0) | (codes >= len(names)))
        if len(out):
            row = int(out[0])
            raise DataFormatError(f"{labels}: line {row + 2}: label {codes[row]} is outside 0..{len(names) - 1} "
                                  f"({names})")
        return Target(codes, "class", tuple(names))
    if len(values) and as_int.all():
        order = [str(v) for v in sorted({int(v) for v in values})]
        return Target.from_labels([str(int(v)) for v in values], order)
    return Target.from_labels(values)


def _integer_text(values: np.ndarray) -> np.ndarray:
    """Per value: whether it is the text of a whole number (ASCII digits with an optional leading minus);
    "--5", "5-", "²" and "" are not."""
    pattern = re.compile(r"-?[0-9]+")
    return np.fromiter((pattern.fullmatch(str(v)) is not None for v in values), dtype=bool, count=len(values))


def _object_ids(ids: np.ndarray, labels: Path) -> np.ndarray:
    """The dataset ids: int64 when every id is the text of a whole number that fits, else the text itself;
    ids that become one integer ("007" and "7") are one error line."""
    if not (len(ids) and _integer_text(ids).all()):
        return ids.astype(str)
    try:
        out: np.ndarray = np.asarray([int(i) for i in ids], dtype=np.int64)
    except OverflowError:
        return ids.astype(str)
    if len(np.unique(out)) != len(out):
        raise BadValueError(f"{labels}: ids that differ only by leading zeros; they would be one integer id")
    return out


def _subsample(target: Target, limit: int | None, per_class: int | None, seed: int) -> np.ndarray:
    """Rows kept: at most ``per_class`` of each class (a seeded random choice), then the first ``limit``."""
    rows = np.arange(len(target.values))
    if per_class is not None:
        codes = target.values.read()
        rng = np.random.default_rng(seed)
        keep = [np.sort(rng.permutation(np.flatnonzero(codes == k))[:per_class]) for k in range(target.n_classes)]
        rows = np.sort(np.concatenate(keep)) if keep else rows[:0]
    if limit is not None:
        rows = rows[:limit]
    return rows


def _crop_box(width: int, height: int, crop: float | None) -> tuple[int, int, int, int] | None:
    """The centred square (left, upper, right, lower) of side ``crop`` (an integer: pixels; a real number up to
    1.0: a fraction of the shorter side, 1.0 the whole square), or None for no crop."""
    if crop is None:
        return None
    fraction = crop < 1 or (isinstance(crop, float) and crop == 1.0)
    side = int(round(crop * min(width, height))) if fraction else int(crop)
    side = max(1, min(side, width, height))
    left, upper = (width - side) // 2, (height - side) // 2
    return left, upper, left + side, upper + side


def _load(path: Path, mode: str, size: int | None, crop: float | None = None) -> np.ndarray:
    """One image as (C, H, W) float32 levels 0..255, centre-cropped (``crop``), then resized to ``size`` x ``size`` by area averaging (each
    channel as a 32-bit float image, so no 8-bit rounding) when given and different; an unreadable file is
    one line naming it. A JPEG is decoded in full (a DCT-scaled draft would not be an exact area average)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            box = _crop_box(im.width, im.height, crop)
            if box is not None:
                im = im.crop(box)
            if size is not None and im.size != (size, size):
                return np.stack([np.asarray(b.convert("F").resize((size, size), Image.Resampling.BOX),
                                            dtype=np.float32) for b in im.split()])
            arr = np.asarray(im, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataFormatError(f"{path}: cannot be read as an image ({exc})") from None
    return arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)


def read_image_folder(
    images: str | Path,
    labels: str | Path,
    *,
    id_column: str = "id",
    label_column: str = "label",
    class_names: Mapping[Any, str] | Sequence[str] | None = None,
    bands: Sequence[str] = ("red", "green", "blue"),
    size: int | None = None,
    crop: float | None = None,
    limit: int | None = None,
    per_class: int | None = None,
    seed: int = 0,
    missing: str = "error",
    name: str = "image",
    target: str = "class",
    pixel_scale: float = 1.0,
    progress: bool = True,
) -> Dataset:
    """Images (a folder, searched recursively, or a glob) labelled by a CSV -> Dataset.

    ``bands``: one name per channel, 1 (grey), 3 (RGB) or 4 (RGBA) of them; the images are converted to that
    many channels. ``crop``: first cut the centred square of that side, in pixels (a whole number above 1) or
as a fraction of the shorter side (in (0, 1]; 0.5 of Galaxy Zoo's 423 px: the central 212 px). ``size``: resize every image to ``size`` x ``size`` by area averaging (``BOX``); without it
    every image must have the size of the first. ``limit``: only the first ``limit`` rows (after
    ``per_class``); ``per_class``: at most that many rows of each class, a random choice seeded by ``seed``
    (for quick runs; the rows keep CSV order). ``missing``: ``"error"`` (a row without an image stops the
    read naming it) or ``"skip"``. ``name`` / ``target``: the images block and the class target.
    ``pixel_scale``: arcsec per pixel of the files (multiplied by the resize factor). The module text
    describes ids, ``class_names`` and the errors.
    """
    images_path, labels = Path(images), Path(labels)
    if len(bands) not in _MODES:
        raise ConfigError(f"bands {list(bands)}: give 1 (grey), 3 (RGB) or 4 (RGBA) names, one per channel")
    if len(set(bands)) != len(bands):
        raise ConfigError(f"bands {list(bands)}: a name given twice")
    if missing not in ("error", "skip"):
        raise ConfigError(f"missing must be 'error' or 'skip', not {missing!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, float)) or crop <= 0
                             or (crop > 1 and crop != int(crop))):
        raise ConfigError(f"crop must be a whole number of pixels or a fraction in (0, 1], not {crop!r}")
    for key, value in (("size", size), ("limit", limit), ("per_class", per_class)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    ids, values = _read_labels(labels, id_column, label_column)
    cls = _class_target(values, class_names, labels, label_column)
    files = image_files(images)
    has = np.asarray([i in files for i in ids], dtype=bool)
    if not has.all() and missing == "error":
        row = int(np.flatnonzero(~has)[0])
        raise DataFormatError(f"{labels}: line {row + 2}: no image of id {str(ids[row])!r} in {images} "
                              f"({int((~has).sum()):,} row(s) without an image; missing='skip' drops them)")
    rows_without = int((~has).sum())
    unlabelled = len(set(files) - set(ids.tolist()))
    present = np.flatnonzero(has)
    ids, cls = ids[present], cls.take(present)
    rows = _subsample(cls, limit, per_class, seed)
    ids, cls = ids[rows], cls.take(rows)
    mode = _MODES[len(bands)]
    out_ids = _object_ids(ids, labels)  # before reading any image: a bad id costs no time

    n = len(ids)
    first_shape: tuple[int, int] | None = None
    pixels: np.ndarray | None = None
    if n == 0:
        pixels = np.zeros((0, len(bands), size or 1, size or 1), dtype=np.float32)
    from astromodal.progress import progress as _progress

    bar = _progress() if progress else None
    task = bar.add_task(f"reading {n:,} images", total=n) if bar is not None else None
    if bar is not None:
        bar.start()
    try:
        for j, oid in enumerate(ids):
            path = files[oid]
            arr = _load(path, mode, size, crop)
            if first_shape is None:
                first_shape = _file_shape(path, crop) if size is not None else (arr.shape[1], arr.shape[2])
            if size is None and arr.shape[1:] != first_shape:
                raise DataFormatError(f"{path}: {arr.shape[2]}x{arr.shape[1]} pixels, but {files[ids[0]].name} has "
                                      f"{first_shape[1]}x{first_shape[0]}; set size to resize them all")
            if pixels is None:
                pixels = np.empty((n, len(bands), arr.shape[1], arr.shape[2]), dtype=np.float32)
            pixels[j] = arr
            if bar is not None and task is not None and (j % 64 == 63 or j == n - 1):
                bar.update(task, completed=j + 1)
    finally:
        if bar is not None:
            bar.stop()
    assert pixels is not None
    pixels /= 255.0
    scale = pixel_scale * (first_shape[1] / size if (size and first_shape) else 1.0)
    return Dataset(
        out_ids,
        images={name: Images(pixels, tuple(bands), pixel_scale=scale, unit="8-bit level / 255")},
        targets={target: cls},
        meta={"source_files": [str(labels), str(images_path)], "images_without_row": unlabelled,
              "rows_without_image": rows_without},
    )


def _file_shape(path: Path, crop: float | None) -> tuple[int, int]:
    """(height, width) of the file's image after the crop."""
    from PIL import Image

    with Image.open(path) as im:
        box = _crop_box(im.width, im.height, crop)
        return (im.height, im.width) if box is None else (box[3] - box[1], box[2] - box[0])


def _only_csv(folder: Path) -> Path:
    csvs = sorted(p for p in folder.glob("*.csv") if p.is_file())
    if len(csvs) != 1:
        raise DataFormatError(f"{folder}: give the label CSV (labels=...); found {len(csvs)} CSV files at its top "
                              f"level {[p.name for p in csvs]}")
    return csvs[0]


@register_reader("image_folder", directory=True, sniff=lambda path: False,
                 description="a folder of images named <id>.<ext> with a label CSV (e.g. Galaxy Zoo 1); by name only")
def _read_image_folder_reader(path: Path, labels: str | Path | None = None, images: str | Path | None = None,
                              **options: Any) -> Dataset:
    """The images under the folder ``path`` (or ``images=``) with the label CSV ``labels=`` (default: the one
    CSV at the folder's top level); other options as :func:`read_image_folder`."""
    path = Path(path)
    return read_image_folder(images if images is not None else path,
                             labels if labels is not None else _only_csv(path), **options)
