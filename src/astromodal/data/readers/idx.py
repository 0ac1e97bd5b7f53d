"""IDX files, the format of MNIST and Fashion-MNIST (``*-idx3-ubyte`` images, ``*-idx1-ubyte`` labels).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 size per dimension, then the values in C order. Files may be gzip-compressed
(``.gz``). Fashion-MNIST read this way gives the reference column of the AstroSpectra-MNIST tables.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from astromodal.data.dataset import Dataset, Images, Target
from astromodal.data.readers import register_reader
from astromodal.errors import BadValueError, DataFormatError

_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B, np.dtype(np.int32): 0x0C,
          np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}

#: class names of Fashion-MNIST, label order 0..9
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")


def _raw(path: Path) -> bytes:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except (OSError, EOFError) as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file (optionally gzipped), in native byte order."""
    path = Path(path)
    raw = _raw(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataFormatError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() if raw else 'empty'})")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataFormatError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape)) if shape else 1
    expected = head + count * dtype.itemsize
    if len(raw) != expected:
        raise DataFormatError(f"{path}: IDX size mismatch: header says shape {shape} ({expected} bytes), "
                              f"file has {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=head).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as IDX; gzip when the name ends in .gz."""
    path = Path(path)
    arr = np.asarray(array)
    if arr.dtype not in _CODES:
        raise BadValueError(f"IDX cannot store dtype {arr.dtype}")
    header = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    body = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(body)
    else:
        path.write_bytes(body)
    return path


def read_idx_dataset(
    images_path: str | Path, labels_path: str | Path, class_names: Sequence[str] | None = None
) -> Dataset:
    """IDX images (N, H, W) and labels (N,) -> Dataset with images ``"mnist"`` (N, 1, H, W) in [0, 1]
    (uint8 / 255) and class target ``"class"``.

    ``class_names`` names labels 0..K-1 (default: the label values as strings, "0" ... "9").
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataFormatError(f"{images_path}: expected images (N, height, width), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataFormatError(f"{labels_path}: expected labels (N,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataFormatError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
    labels = labels.astype(np.int64)
    if class_names is None:
        codes = np.unique(labels)
        if len(labels) and (codes.min() < 0):
            raise BadValueError(f"{labels_path}: negative label {codes.min()}")
        k = int(codes.max()) + 1 if len(labels) else 1
        class_names = tuple(str(i) for i in range(k))
    class_names = tuple(str(c) for c in class_names)
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(f"{labels_path}: label {labels[row]} at row {row} is outside 0..{len(class_names) - 1} "
                            f"({list(class_names)})")
    pixels = images.astype(np.float32)
    if images.dtype == np.uint8:
        pixels /= 255.0
    return Dataset(
        np.asarray([f"{i:06d}" for i in range(len(images))]),
        images={"mnist": Images(pixels[:, None], ("grey",), pixel_scale=1.0, unit="grey level / 255")},
        targets={"class": Target(labels, "class", class_names)},
        meta={"source_files": [str(images_path), str(labels_path)]},
    )


@register_reader("idx", suffixes=("-ubyte", "-ubyte.gz", ".idx", ".idx.gz"),
                 description="MNIST-style IDX array (read_idx_dataset pairs images with labels)")
def _read_idx_reader(path: Path, labels: str | Path | None = None, class_names: Sequence[str] | None = None) -> Dataset:
    """An IDX images file; its labels file is ``labels=`` or found by replacing 'images-idx3' by 'labels-idx1'."""
    path = Path(path)
    if labels is None:
        guess = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if guess == path or not guess.exists():
            raise DataFormatError(f"{path}: give the labels file (labels=...); {guess.name} not found beside it")
        labels = guess
    return read_idx_dataset(path, labels, class_names)
