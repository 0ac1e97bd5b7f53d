"""Readers: survey files -> :class:`~astromodal.data.dataset.Dataset`, chosen by name or by file type.

Each reader registers itself with :func:`register_reader`; :func:`read` takes a file, a folder or a glob
and picks the reader from the file names (``suffixes``) and, where several readers share a suffix
(LAMOST and SDSS spectra are both ``.fits``), from a look inside the first file (``sniff``)::

    from astromodal.data.readers import read, list_readers
    ds = read("../shared/data/lamost-dr1-sample/SampleFits")        # 176 LAMOST spectra -> one Dataset
    ds = read("spectra/spec-*.fits", reader="sdss", grid_size=3601)  # options go to the reader

A reader is a function. With ``many=True`` it takes a list of files and returns one Dataset (spectra
of many files on one grid); otherwise it takes one path. With ``directory=True`` it reads a whole folder
layout (AstroSpectra-MNIST) and ``sniff`` decides whether a folder is its kind.
"""

from __future__ import annotations

import glob as _glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astromodal.errors import DataFormatError
from astromodal.registry import Registry

if TYPE_CHECKING:
    from astromodal.data.dataset import Dataset


@dataclass(frozen=True)
class ReaderSpec:
    """What the registry knows about one reader."""

    name: str
    function: Callable[..., Any]
    suffixes: tuple[str, ...] = ()
    description: str = ""
    sniff: Callable[[Path], bool] | None = None
    many: bool = False  # function takes a list of files and returns one Dataset
    directory: bool = False  # function reads a folder layout

    def matches(self, path: Path) -> bool:
        name = path.name.lower()
        return any(name.endswith(s) for s in self.suffixes)


# Modules whose import registers readers. A new reader module is added here once.
_READER_MODULES = (
    "astromodal.data.readers.lamost",
    "astromodal.data.readers.sdss",
    "astromodal.data.readers.astrospectra_mnist",
    "astromodal.data.readers.idx",
    "astromodal.data.readers.gaia_xp",
    "astromodal.data.readers.tables",
    "astromodal.data.readers.als",
    "astromodal.data.readers.image_folder",
    "astromodal.data.readers.hisscube",
)

#: reader name -> :class:`ReaderSpec` (the reader modules are imported on the first lookup)
READERS: Registry[ReaderSpec] = Registry("reader", modules=_READER_MODULES)


def register_reader(
    name: str,
    *,
    suffixes: tuple[str, ...] | list[str] = (),
    description: str = "",
    sniff: Callable[[Path], bool] | None = None,
    many: bool = False,
    directory: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Function decorator adding a reader under ``name``.

    ``suffixes`` are lower-case file-name endings (``".fits"``, ``".fits.gz"``, ``".csv"``); ``sniff(path)``
    returns True when a file (or, for ``directory`` readers, a folder) is of this reader's kind.
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        READERS.add(name, ReaderSpec(name, fn, tuple(s.lower() for s in suffixes), doc, sniff, many, directory))
        return fn

    return decorator


def list_readers() -> list[ReaderSpec]:
    """Every registered reader, sorted by name."""
    return READERS.values()


def get_reader(name: str) -> ReaderSpec:
    """The reader called ``name``; an unknown name is an error listing the known ones."""
    return READERS.get(name)


def _expand(path_or_glob: str | Path) -> tuple[Path | None, list[Path]]:
    """(folder or None, files): a folder's files (recursively), a glob's matches, or the one file."""
    text = str(path_or_glob)
    path = Path(text).expanduser()
    if path.is_dir():
        return path, sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if any(c in text for c in "*?["):
        matches = sorted(Path(p) for p in _glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not matches:
            raise DataFormatError(f"{text}: the pattern matches no file")
        return None, matches
    if not path.exists():
        raise DataFormatError(f"{path}: no such file or folder")
    return None, [path]


def _safe_sniff(spec: ReaderSpec, path: Path) -> bool:
    if spec.sniff is None:
        return True
    try:
        return bool(spec.sniff(path))
    except Exception:  # a sniff never decides by crashing
        return False


def _choose(folder: Path | None, files: list[Path]) -> tuple[ReaderSpec, list[Path]]:
    specs = list_readers()
    if folder is not None:
        for spec in specs:
            if spec.directory and _safe_sniff(spec, folder):
                return spec, [folder]
    for probe in files:
        candidates = [s for s in specs if not s.directory and s.matches(probe)]
        if not candidates:
            continue
        chosen = [s for s in candidates if _safe_sniff(s, probe)] if len(candidates) > 1 else candidates
        if not chosen:
            raise DataFormatError(
                f"{probe}: not recognised by any of the readers for its type ({[s.name for s in candidates]})"
            )
        spec = chosen[0]
        return spec, [f for f in files if spec.matches(f)]
    where = folder if folder is not None else (files[0] if len(files) == 1 else f"{len(files)} files")
    known = sorted({s for r in specs for s in r.suffixes})
    raise DataFormatError(f"{where}: no file of a known type (readers know {known}); name a reader with reader=...")


def choose_reader(path_or_glob: str | Path, reader: str | None = None) -> ReaderSpec:
    """The reader :func:`read` uses for ``path_or_glob``: the one named ``reader`` (an unknown name is an
    error listing the known ones), else the one chosen from the file names and contents."""
    if reader is not None:
        return get_reader(reader)
    folder, files = _expand(path_or_glob)
    if not files:
        raise DataFormatError(f"{path_or_glob}: the folder holds no file")
    return _choose(folder, files)[0]


def read(path_or_glob: str | Path, reader: str | None = None, **options: Any) -> Dataset:
    """Read a file, a folder (searched recursively) or a glob into one Dataset.

    ``reader`` forces a reader by name (see :func:`list_readers`); otherwise it is chosen from the file
    names and contents. ``options`` go to the reader. An empty folder or a glob matching nothing is a
    :class:`DataFormatError` naming it.
    """
    folder, files = _expand(path_or_glob)
    if reader is not None:
        spec = get_reader(reader)
        if spec.directory:
            if folder is None:
                raise DataFormatError(f"{path_or_glob}: reader {reader!r} reads a folder")
            files = [folder]
        else:
            matching = [f for f in files if spec.matches(f)] if spec.suffixes else files
            files = matching or files
    else:
        if not files:
            raise DataFormatError(f"{path_or_glob}: the folder holds no file")
        spec, files = _choose(folder, files)
    if not files:
        raise DataFormatError(f"{path_or_glob}: no file for reader {spec.name!r}")
    if spec.many:
        return spec.function(files, **options)
    if len(files) > 1:
        raise DataFormatError(
            f"{path_or_glob}: reader {spec.name!r} reads one file at a time, but {len(files)} files match "
            f"(first {files[0]}, {files[1]})"
        )
    return spec.function(files[0], **options)


__all__ = ["READERS", "ReaderSpec", "choose_reader", "get_reader", "list_readers", "read", "register_reader"]
