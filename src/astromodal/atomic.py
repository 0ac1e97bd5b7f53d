"""Outputs that are never half-written: every file and folder appears whole or not at all.

Each writer builds its output under a temporary name beside the target and renames it into place
only when it is complete (``os.replace`` is atomic on one file system). On any error the temporary
file or folder is removed. Outputs get the ordinary permissions of the user's umask (temporary files
are created private, so the mode is set before the rename).

One output rule for every verb (never destroy what astromodal did not write):

* Every folder the tool writes holds a marker file, :data:`MARKER` (verb, astromodal version, UTC time,
  command line, and the entries it wrote). A folder "was written by astromodal" iff it holds the marker;
  an HDF5 dataset or a Parquet file is recognised by its own metadata (:func:`is_tool_written`).
* :func:`check_output_dir` / :func:`check_output_file` run *before any work*: a missing or empty folder
  is fine; ``/``, the home folder, the current folder, a folder that is or contains an input, and a
  folder or file astromodal did not write are always refused; a tool-written output is replaced only
  with ``overwrite=True``. Problems are :class:`~astromodal.errors.ConfigError` (one line, exit 1).
* :func:`atomic_dir` applies the check, builds the folder under a temporary name, and replaces only a
  tool-written folder (checked again just before the swap); nothing without the marker is ever deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.errors import ConfigError, DataFormatError

#: Name of the marker file written inside every output folder of astromodal.
MARKER = ".astromodal-output.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays become plain JSON)."""
    return write_text(path, json.dumps(obj, indent=2, default=_json_default))


def read_json(path: str | os.PathLike[str], hint: str = "", want_object: bool = True) -> Any:
    """The content of the JSON file ``path``; a missing or unreadable file, bad JSON, or (with
    ``want_object``) anything but a JSON object is one-line :class:`DataFormatError` naming the path
    (``hint`` is added to the not-found message, e.g. ``"not a saved astromodal model folder?"``)."""
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"{path}: a folder, not a JSON file")
    if not path.is_file():
        raise DataFormatError(f"{path}: not found" + (f" ({hint})" if hint else ""))
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DataFormatError(f"{path}: not valid JSON ({' '.join(str(exc).split())})") from None
    if want_object and not isinstance(obj, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(obj), "a number")
        raise DataFormatError(f"{path}: not a JSON object but {kind}")
    return obj


# ---------------------------------------------------------------------------------------------------
# The output rule
# ---------------------------------------------------------------------------------------------------

_HDF5_SUFFIXES = (".h5", ".hdf5")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The content of ``folder``'s :data:`MARKER` (``{}`` when unreadable), or None when it has none."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def marker_content(verb: str = "", entries: list[str] | None = None) -> dict[str, Any]:
    """What :data:`MARKER` records: tool, verb, version, UTC time, command line (and entries written)."""
    from datetime import datetime, timezone

    try:
        from astromodal import __version__ as version
    except ImportError:  # pragma: no cover
        version = "unknown"
    info: dict[str, Any] = {
        "tool": "astromodal",
        "verb": verb,
        "version": version,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": list(sys.argv),
    }
    if entries is not None:
        info["entries"] = sorted(entries)
    return info


def write_marker(folder: str | os.PathLike[str], verb: str = "", entries: list[str] | None = None) -> Path:
    """Write :data:`MARKER` into ``folder`` (which must exist) and return its path."""
    return write_json(Path(folder) / MARKER, marker_content(verb, entries))


def is_tool_written(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` was written by astromodal.

    A folder: it holds :data:`MARKER`. An ``.h5``/``.hdf5`` file: its root attribute ``format`` is
    ``"astromodal-dataset"``. A ``.parquet`` file: its Arrow schema metadata has the key ``b"astromodal"``.
    Anything else (or anything unreadable) is False.
    """
    path = Path(path)
    if path.is_dir():
        return (path / MARKER).is_file()
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix in _HDF5_SUFFIXES:
        try:
            import h5py

            with h5py.File(path, "r") as f:
                fmt = f.attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode("utf-8", "replace")
            return fmt == "astromodal-dataset"
        except Exception:
            return False
    if suffix in _PARQUET_SUFFIXES:
        try:
            import pyarrow.parquet as pq

            meta = pq.read_schema(path).metadata or {}
            return b"astromodal" in meta
        except Exception:
            return False
    return False


def _resolve(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def _few(names: list[str], n: int = 3) -> str:
    shown = ", ".join(sorted(names)[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _foreign_entries(folder: Path, info: dict[str, Any] | None) -> list[str]:
    """Entries of ``folder`` astromodal did not write (all when unmarked; those not recorded when marked)."""
    names = [p.name for p in folder.iterdir() if p.name != MARKER]
    if info is None:
        return names
    recorded = info.get("entries")
    if not isinstance(recorded, list):
        return []
    return [n for n in names if n not in set(map(str, recorded))]


def _always_refused(out: Path, res: Path, inputs: tuple[Any, ...] | list[Any], what: str) -> None:
    home = Path.home().resolve()
    cwd = Path.cwd().resolve()
    if res == Path(res.anchor):
        raise ConfigError(f"--out {out}: refusing to write {what} at the root folder /; choose another --out")
    if _is_within(home, res):
        raise ConfigError(f"--out {out}: refusing to replace the home folder {home} (or a folder holding it); "
                          "choose another --out")
    if _is_within(cwd, res):
        raise ConfigError(f"--out {out}: refusing to replace the current folder {cwd} (or a folder holding it); "
                          "choose another --out, e.g. a new subfolder")
    for inp in inputs:
        if inp is None:
            continue
        ir = _resolve(inp)
        if _is_within(ir, res):
            rel = "is" if ir == res else "contains"
            raise ConfigError(f"--out {out} {rel} the input {inp}; replacing it would delete the input: "
                              "choose another --out")


def check_output_dir(
    out: str | os.PathLike[str],
    *,
    inputs: tuple[Any, ...] | list[Any] = (),
    overwrite: bool = False,
    verb: str = "",
    resume: bool = False,
) -> Path:
    """Check that the folder ``out`` may be (re)written; call it before any work. Returns ``out`` as a Path.

    * a missing or empty folder is fine;
    * ``out`` an existing file is an error (a folder is expected);
    * always refused, even with ``overwrite``: ``/``, the home folder, the current folder (or a folder
      holding either), a folder that is or contains one of ``inputs``, and a non-empty folder without
      :data:`MARKER` (astromodal did not write it; the message names a few of its entries);
    * a tool-written folder is accepted with ``overwrite=True``; with ``resume=True`` a tool-written
      folder of the same ``verb`` is accepted to be reused in place; otherwise it is refused with
      "OUT was written by astromodal VERB; pass --overwrite to replace it".

    Raises :class:`~astromodal.errors.ConfigError`.
    """
    out = Path(out).expanduser()
    res = out.resolve()
    if res.exists() and not res.is_dir():
        raise ConfigError(f"--out {out} is a file; a folder is expected here: choose another --out")
    _always_refused(out, res, inputs, "an output folder")
    if not res.exists():
        if not res.parent.exists():
            _check_parent(out, res)
        return out
    try:
        entries = list(res.iterdir())
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be read ({exc.strerror or exc}); choose another --out") from None
    if not entries:
        return out
    info = read_marker(res)
    if info is None:
        raise ConfigError(f"--out {out} holds files astromodal did not write ({_few([p.name for p in entries])}); "
                          "astromodal never replaces them: choose another --out (a new or empty folder)")
    written_by = str(info.get("verb") or "?")
    if resume and (not verb or written_by == verb):
        return out
    if not overwrite:
        raise ConfigError(f"{out} was written by astromodal {written_by}; pass --overwrite to replace it "
                          "(or choose another --out)")
    foreign = _foreign_entries(res, info)
    if foreign:
        raise ConfigError(f"--out {out} was written by astromodal {written_by} but now also holds files it did not "
                          f"write ({_few(foreign)}); move them away or choose another --out")
    return out


def _check_parent(out: Path, res: Path) -> None:
    """The nearest existing ancestor of ``res`` must be a folder."""
    for parent in res.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
            return


def check_output_file(
    out: str | os.PathLike[str],
    *,
    inputs: tuple[Any, ...] | list[Any] = (),
    overwrite: bool = False,
) -> Path:
    """Check that the file ``out`` may be (re)written; call it before any work. Returns ``out`` as a Path.

    ``out`` an existing folder, or under a path that is a file, is an error; ``out`` that is one of
    ``inputs`` is always refused; an existing file is replaced only when astromodal wrote it
    (:func:`is_tool_written`) and ``overwrite=True``; a file astromodal did not write is always refused.
    Raises :class:`~astromodal.errors.ConfigError`.
    """
    out = Path(out).expanduser()
    res = out.resolve()
    if res.is_dir():
        raise ConfigError(f"--out {out} is a folder; a file is expected here: choose another --out")
    for inp in inputs:
        if inp is not None and _resolve(inp) == res:
            raise ConfigError(f"--out {out} is the input {inp}; writing it would destroy the input: "
                              "choose another --out")
    _check_parent(out, res)
    if res.exists() or res.is_symlink():
        if not is_tool_written(res):
            raise ConfigError(f"--out {out} already exists and was not written by astromodal; astromodal never "
                              "replaces it: choose another --out")
        if not overwrite:
            raise ConfigError(f"{out} was written by astromodal; pass --overwrite to replace it "
                              "(or choose another --out)")
    return out


@contextmanager
def atomic_dir(
    out: str | os.PathLike[str],
    overwrite: bool = False,
    inputs: tuple[Any, ...] | list[Any] = (),
    verb: str = "",
) -> Iterator[Path]:
    """Build an output folder under a temporary name and move it into place only on success.

    :func:`check_output_dir` is applied first (so a refused ``out`` fails before any work), the marker
    :data:`MARKER` is written into the temporary folder, and on success an existing ``out`` is replaced
    only if it is empty or tool-written (checked again just before the swap; a folder without the
    marker is never deleted). On any error the temporary folder is removed, so no half-written output
    is left behind.
    """
    out = check_output_dir(out, inputs=inputs, overwrite=overwrite, verb=verb)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write_marker(tmp, verb)
        yield tmp
        write_marker(tmp, verb, [p.name for p in tmp.iterdir() if p.name != MARKER])
        os.chmod(tmp, 0o777 & ~_UMASK)
        _swap_into_place(tmp, out, overwrite=overwrite, inputs=inputs, verb=verb)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, out: Path, *, overwrite: bool, inputs: Any, verb: str) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside (re-checked) and removed after."""
    if not (out.exists() or out.is_symlink()):
        os.replace(tmp, out)
        return
    check_output_dir(out, inputs=inputs, overwrite=overwrite, verb=verb)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
        os.replace(tmp, out)
        return
    if read_marker(out) is None:  # pragma: no cover - check_output_dir refuses this
        raise ConfigError(f"--out {out} was not written by astromodal; it is left untouched")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
