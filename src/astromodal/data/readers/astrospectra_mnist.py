"""The AstroSpectra-MNIST folder layout: write it from spectra, read it back (published PNGs or ours).

Layout of one version ``<v>`` (``v1``: Star=1, Galaxy=2, QSO=3; ``v2``: F=1, G=2, K=3 stars)::

    AstroSpectra-MNIST-<v>/
        train_images<v>/*.png     28 x 28 8-bit grayscale PNGs
        test_images<v>/*.png
        train_labels<v>.csv       columns filename,label
        test_labels<v>.csv
        line<v>.npz               (ours) the 721-point LineAstroSpectra vectors, labels, ids, file names
        provenance.json           (ours) settings, source files, split seed, counts, astromodal version

The image of a spectrum is made by :mod:`astromodal.transforms.spectra` (common grid -> mean filter
3601 -> 721 -> min-max -> 63 zero pixels -> 28 x 28, grey = round(255 v)). Class names in the Dataset
are ``star, galaxy, qso`` (v1) and ``F, G, K`` (v2), codes 0..2 (label - 1).

The published label CSVs' column names are not documented, so the reader accepts any pair of columns
where one holds existing image file names and one integer labels of the version (or a header-less
CSV) and says what it found and expected when none fits.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.dataset import Dataset, Images, Target
from astromodal.data.readers import register_reader
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.transforms.spectra import SpectrumPreprocessing, line_representation, make_settings, to_image

VERSIONS = ("v1", "v2")
#: published label -> class name, per version
LABELS = {"v1": {1: "star", 2: "galaxy", 3: "qso"}, "v2": {1: "F", 2: "G", 3: "K"}}
SPLITS = ("train", "test")
_MK = re.compile(r"^([OBAFGKM])(?![A-Za-z])")


def _class_names(version: str) -> tuple[str, ...]:
    return tuple(LABELS[version][k] for k in sorted(LABELS[version]))


def _check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ConfigError(f"AstroSpectra-MNIST version must be one of {list(VERSIONS)}, not {version!r}")
    return version


# ------------------------------------------------------------------------------------------ writing
def _published_labels(names: np.ndarray, version: str) -> np.ndarray:
    """Published label (1..3) of each class name, 0 where the object is not of the version's classes."""
    if version == "v1":
        key = np.char.lower(names.astype(str))
        table = {"star": 1, "galaxy": 2, "qso": 3}
    else:  # v2: the letter of an MK spectral type (F, F9, G2V, K5III -> F, G, K; 'Galaxy' is no G star)
        key = np.asarray([(m.group(1) if (m := _MK.match(n.strip())) else "") for n in names.astype(str)])
        table = {"F": 1, "G": 2, "K": 3}
    out = np.zeros(len(names), dtype=np.int64)
    for name, label in table.items():
        out[key == name] = label
    return out


def _pick(ds: Dataset, name: str | None, blocks: dict[str, Any], what: str) -> str:
    if name is not None:
        if name not in blocks:
            raise BadValueError(f"unknown {what} {name!r}; the dataset has {what} {list(blocks)}")
        return name
    if len(blocks) == 1:
        return next(iter(blocks))
    raise ConfigError(f"say which {what} block to use; the dataset has {what} {list(blocks)}")


def _default_target(ds: Dataset, version: str) -> str:
    choices = ("class",) if version == "v1" else ("subclass", "spectral_type", "class")
    for t in choices:
        if t in ds.targets and ds.targets[t].kind == "class":
            return t
    raise BadValueError(f"AstroSpectra-MNIST {version} needs a class target {list(choices)}; "
                        f"the dataset has targets {list(ds.targets)}")


def write_astrospectra_mnist(
    ds: Dataset,
    out_dir: str | Path,
    version: str = "v1",
    test_fraction: float = 0.2,
    seed: int = 0,
    settings: SpectrumPreprocessing | dict | None = None,
    spectra_name: str | None = None,
    target: str | None = None,
    overwrite: bool = False,
    inputs: tuple[Any, ...] | list[Any] = (),
) -> Path:
    """Write the AstroSpectra-MNIST layout of ``version`` from the spectra of ``ds`` into ``out_dir``.

    ``out_dir`` follows the output rule of :mod:`astromodal.atomic`: a new or empty folder, or one
    astromodal wrote (replaced only with ``overwrite=True``); never a folder astromodal did not write or
    one that is or holds an input (``inputs`` and the dataset's source files).

    ``target`` is the class target to label by (v1: ``class`` with star/galaxy/qso; v2: ``subclass``
    or ``spectral_type``, first letter F/G/K); objects of other classes are dropped and counted in
    ``provenance.json``. The split is stratified and seeded. The folder is written atomically.
    """
    from astromodal import __version__
    from astromodal.atomic import atomic_dir, check_output_dir
    from astromodal.data.splits import train_test_indices

    version = _check_version(version)
    inputs = [*inputs, *ds.meta.get("source_files", [])]
    check_output_dir(out_dir, inputs=inputs, overwrite=overwrite, verb="build astrospectra-mnist")  # before work
    settings = make_settings(settings)
    if settings.image_side * settings.image_side < settings.line_length:
        raise ConfigError("image_side too small for the mean-filtered vector")
    spectra_name = _pick(ds, spectra_name, ds.spectra, "spectra")
    target = target or _default_target(ds, version)
    t = ds.target(target)
    if t.kind != "class":
        raise BadValueError(f"target {target!r} is a regression target; AstroSpectra-MNIST needs class labels")
    names = t.labels()
    labels_all = _published_labels(names, version)
    keep = np.flatnonzero(labels_all > 0)
    dropped = {str(k): int(v) for k, v in zip(*np.unique(names[labels_all == 0], return_counts=True), strict=True)}
    if len(keep) == 0:
        raise BadValueError(f"no object of target {target!r} belongs to the {version} classes "
                            f"{list(_class_names(version))}; found classes {sorted(set(names.tolist()))}")
    sub = ds.subset(keep)
    labels = labels_all[keep]
    line = line_representation(sub, spectra_name, settings)
    ids = sub.ids.read().astype(str)
    images = to_image(line, settings.image_side, settings.pad_value, ids=ids)
    train, test = train_test_indices(len(sub), test_fraction, labels, seed)

    from PIL import Image

    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    with atomic_dir(out_dir, overwrite=overwrite, inputs=inputs, verb="build astrospectra-mnist") as tmp:
        arrays: dict[str, np.ndarray] = {}
        for split, rows in (("train", train), ("test", test)):
            folder = tmp / f"{split}_images{version}"
            folder.mkdir()
            files = np.asarray([f"{split}_{i:06d}.png" for i in range(len(rows))])
            for fname, img in zip(files, images[rows], strict=True):
                Image.fromarray(np.ascontiguousarray(img)).save(folder / fname)
            csv = "filename,label\n" + "".join(f"{f},{lab}\n" for f, lab in zip(files, labels[rows], strict=True))
            (tmp / f"{split}_labels{version}.csv").write_text(csv)
            arrays.update({f"{split}_line": line[rows].astype(np.float32), f"{split}_labels": labels[rows],
                           f"{split}_ids": ids[rows], f"{split}_files": files})
            counts[split] = {LABELS[version][k]: int((labels[rows] == k).sum()) for k in sorted(LABELS[version])}
        np.savez_compressed(tmp / f"line{version}.npz", **arrays)
        provenance = {
            "format": "AstroSpectra-MNIST",
            "version": version,
            "labels": {str(k): v for k, v in LABELS[version].items()},
            "spectra": spectra_name,
            "target": target,
            "settings": settings.model_dump(),
            "image_scaling": "grey = round(255 * v), v = min-max scaled mean-filtered flux; "
                             f"{settings.image_side ** 2 - settings.line_length} padding pixels of "
                             f"{settings.pad_value}",
            "source_files": list(ds.meta.get("source_files", [])),
            "source_meta": {k: v for k, v in ds.meta.items() if k != "source_files" and _jsonable(v)},
            "test_fraction": test_fraction,
            "split_seed": seed,
            "counts": counts,
            "n_objects_in": len(ds),
            "dropped_other_classes": dropped,
            "astromodal_version": __version__,
        }
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2))
    return out_dir


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False


# ------------------------------------------------------------------------------------------ reading
def _find_root(path: Path, version: str | None, split: str) -> tuple[Path, str]:
    """The folder that holds ``<split>_labels<v>.csv`` and its version."""
    if not path.is_dir():
        raise DataFormatError(f"{path}: not a folder (expected an AstroSpectra-MNIST folder)")
    versions = [version] if version else list(VERSIONS)
    found = [(path, v) for v in versions if (path / f"{split}_labels{v}.csv").is_file()]
    if not found:  # a parent holding AstroSpectra-MNIST-v1/ and -v2/
        found = [(path / f"AstroSpectra-MNIST-{v}", v) for v in versions
                 if (path / f"AstroSpectra-MNIST-{v}" / f"{split}_labels{v}.csv").is_file()]
    if not found:
        want = " or ".join(f"{split}_labels{v}.csv" for v in versions)
        raise DataFormatError(f"{path}: no {want} here (files: {sorted(p.name for p in path.iterdir())[:10]})")
    if len(found) > 1:
        raise DataFormatError(f"{path}: holds both v1 and v2; choose with version='v1' or 'v2'")
    return found[0]


def _read_csv(csv: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:
        raise DataFormatError(f"{csv}: not a readable CSV ({exc})") from None


def _existing(values: list[str], folder: Path, root: Path) -> list[Path | None]:
    out: list[Path | None] = []
    for v in values:
        v = v.strip()
        hit = None
        if v:
            for cand in (folder / v, root / v, folder / Path(v).name):
                if cand.is_file():
                    hit = cand
                    break
        out.append(hit)
    return out


def _as_int(values: list[str]) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in values])
    except ValueError:
        return None
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        return None
    return arr.astype(np.int64)


def _columns(csv: Path, folder: Path, root: Path, version: str) -> tuple[list[Path], np.ndarray]:
    """(image paths, labels) from a label CSV with any (filename, label) pair of columns."""
    import pandas as pd

    frame = _read_csv(csv)
    header = [str(c) for c in frame.columns]
    if len(header) >= 2 and any(p is not None for p in _existing(header, folder, root)):
        frame = pd.read_csv(csv, dtype=str, header=None, keep_default_na=False, skipinitialspace=True)
        frame.columns = [f"column {i + 1}" for i in range(frame.shape[1])]
    cols = [str(c) for c in frame.columns]
    allowed = sorted(LABELS[version])
    expected = (f"expected a column of image file names (in {folder.name}/) and a column of integer labels "
                f"{allowed} ({version}: {LABELS[version]})")
    if len(frame) == 0:
        raise DataFormatError(f"{csv}: no rows; {expected}")
    hits = {c: _existing(frame[c].tolist(), folder, root) for c in cols}
    found = {c: sum(p is not None for p in h) for c, h in hits.items()}
    file_col = max(cols, key=lambda c: found[c])
    if found[file_col] == 0:
        raise DataFormatError(f"{csv}: no column of existing image file names among columns {cols}; {expected}")
    paths = hits[file_col]
    ints = {c: _as_int(frame[c].tolist()) for c in cols if c != file_col}
    ints = {c: v for c, v in ints.items() if v is not None}
    if not ints:
        raise DataFormatError(f"{csv}: no column of integer labels among columns {cols} "
                              f"(file names in {file_col!r}); {expected}")
    valid = [c for c, v in ints.items() if np.isin(v, allowed).all()]
    preferred = [c for c in (valid or list(ints)) if re.search("label|class|target|y", c, re.I)]
    label_col = (preferred or valid or list(ints))[0]
    labels = ints[label_col]
    missing = [i for i, p in enumerate(paths) if p is None]
    if missing:
        i = missing[0]
        raise DataFormatError(f"{csv}: row {i + 1}: image file {frame[file_col].iloc[i]!r} (column {file_col!r}) "
                              f"not found in {folder}")
    bad = np.flatnonzero(~np.isin(labels, allowed))
    if len(bad):
        i = int(bad[0])
        raise BadValueError(f"{csv}: row {i + 1} ({paths[i].name}): label {labels[i]} in column {label_col!r} is not "
                            f"one of the {version} classes {LABELS[version]}")
    return [p for p in paths if p is not None], labels


def _load_png(path: Path, side: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            arr = np.asarray(img)
    except Exception as exc:  # PIL.UnidentifiedImageError, OSError for truncated files
        raise DataFormatError(f"{path}: not a readable PNG image ({type(exc).__name__}: {exc})") from None
    if mode not in ("L", "1"):
        raise DataFormatError(f"{path}: image mode {mode!r}; expected 8-bit grayscale ('L')")
    if size != (side, side):
        raise DataFormatError(f"{path}: image is {size[0]}x{size[1]}; expected {side}x{side}")
    return arr.astype(np.uint8) * (255 if mode == "1" else 1)


def read_astrospectra_mnist(
    path: str | Path, version: str | None = None, split: str = "train", side: int = 28
) -> Dataset:
    """One split of an AstroSpectra-MNIST folder -> Dataset.

    Images ``"mnist"``: (N, 1, 28, 28) float32 grey levels / 255 in [0, 1], band ``("spectrum",)``;
    target ``"class"`` (codes 0..2, names star/galaxy/qso for v1, F/G/K for v2); ids = file names
    without ``.png``. ``version=None`` detects it from the label CSV name. ``path`` may also be the
    parent folder holding ``AstroSpectra-MNIST-v1/`` (then give ``version``).
    """
    if split not in SPLITS:
        raise ConfigError(f"split must be 'train' or 'test', not {split!r}")
    if version is not None:
        _check_version(version)
    root, version = _find_root(Path(path), version, split)
    folder = root / f"{split}_images{version}"
    if not folder.is_dir():
        raise DataFormatError(f"{root}: image folder {folder.name}/ is missing")
    csv = root / f"{split}_labels{version}.csv"
    paths, labels = _columns(csv, folder, root, version)
    pixels = np.stack([_load_png(p, side) for p in paths]).astype(np.float32) / 255.0
    return Dataset(
        np.asarray([p.stem for p in paths]),
        images={"mnist": Images(pixels[:, None], ("spectrum",), pixel_scale=1.0, unit="grey level / 255")},
        targets={"class": Target(labels - 1, "class", _class_names(version))},
        meta={"source": str(root), "version": version, "split": split, "label_csv": str(csv)},
    )


def read_line_astrospectra(path: str | Path, version: str | None = None, split: str = "train") -> Dataset:
    """The LineAstroSpectra vectors written beside the PNGs (``line<v>.npz``) -> Dataset with spectra
    ``"line"`` (N, 721) on the mean-filter bin index (wavelength axis = bin number) and target ``"class"``.
    """
    root, version = _find_root(Path(path), version, split)
    npz = root / f"line{version}.npz"
    if not npz.is_file():
        raise DataFormatError(f"{root}: no {npz.name} (only folders written by astromodal have it)")
    from astromodal.data.dataset import Spectra

    with np.load(npz, allow_pickle=False) as data:
        line, labels, ids = data[f"{split}_line"], data[f"{split}_labels"], data[f"{split}_ids"]
    return Dataset(
        ids, spectra={"line": Spectra(line, np.arange(line.shape[1], dtype=float), unit="min-max scaled")},
        targets={"class": Target(labels - 1, "class", _class_names(version))},
        meta={"source": str(root), "version": version, "split": split},
    )


def _sniff_dir(path: Path) -> bool:
    return any((path / f"train_labels{v}.csv").is_file() for v in VERSIONS)


@register_reader("astrospectra_mnist", directory=True, sniff=_sniff_dir,
                 description="AstroSpectra-MNIST folder (train/test PNGs and label CSVs); split='train'|'test'")
def _reader(path: Path, version: str | None = None, split: str = "train") -> Dataset:
    return read_astrospectra_mnist(path, version=version, split=split)
