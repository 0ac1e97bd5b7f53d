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
  tool-written folder (checked again just before the swap, and once more after moving it aside); of the
  old folder only the entries its marker lists are deleted, so nothing astromodal did not write is.
* The marker's ``entries`` list is what makes a folder replaceable: a marker without it (a run that
  stopped before recording what it wrote) makes every entry count as the user's, so ``--overwrite``
  refuses that folder. A long run that writes into its folder in place records its entries *before*
  creating them with :func:`claim_entries`, so an interrupted run can still be replaced.
* A symbolic link as ``out`` is written through: the output goes where the link points and the link
  stays; a dangling link or a loop of links is refused before any work.
"""

from __future__ import annotations

import errno
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


def _renamed_error(exc: OSError, tmp: Path, real: Path) -> OSError | None:
    """``exc`` with the temporary path it names replaced by the real one (None when it names another)."""
    name = exc.filename
    if not isinstance(name, (str, os.PathLike)):
        return None
    name = Path(name)
    if name != tmp and tmp not in name.parents:
        return None
    where = real / name.relative_to(tmp) if name != tmp else real
    return OSError(exc.errno, f"{exc.strerror or exc} (nothing was written)", str(where))


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created (deepest first) for :func:`_unmake`."""
    missing = [d for d in (folder, *folder.parents) if not os.path.lexists(d)]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _unmake(created: list[Path]) -> None:
    """Remove the folders :func:`_make_parents` created, while they are empty (a failed write leaves none)."""
    for d in created:
        try:
            d.rmdir()
        except OSError:
            return


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells one version of the file ``path`` from another (None when there is none)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    What was at ``path`` when the block began is what gets replaced: a file that appears there, or one
    that is replaced or changed, while the block runs (another program, a user saving a file) is left as
    it is and the write fails with :class:`FileExistsError` naming ``path``. A symbolic link ``path`` is
    written through (its target is replaced, the link stays). An error of the file system names
    ``path``, not the temporary file (which is removed)."""
    path = Path(path)
    if path.is_symlink():
        path = _resolve(path)
    created = _make_parents(path.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _unmake(created)
        raise OSError(exc.errno, f"{exc.strerror or exc} (cannot create a file in {path.parent})", str(path)) from None
    os.close(fd)
    tmp = Path(name)
    before = _identity(path)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
        _publish(tmp, path, before)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _unmake(created)
        better = _renamed_error(exc, tmp, path) if isinstance(exc, OSError) else None
        if better is not None:
            raise better from exc
        raise


def _publish(tmp: Path, path: Path, before: tuple[int, int, int, int] | None) -> None:
    """Move the finished ``tmp`` to ``path``, replacing only the version of ``path`` seen at the start."""
    changed = FileExistsError(errno.EEXIST, "it appeared or changed while astromodal was writing it; it was left "
                                            "as it is and nothing was written", str(path))
    if before is None:  # a new file: a hard link never replaces what appeared meanwhile
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise changed from None
        except OSError:  # a file system without hard links
            if os.path.lexists(path):
                raise changed from None
            os.replace(tmp, path)
            return
        tmp.unlink()
        return
    if _identity(path) != before:
        raise changed
    os.replace(tmp, path)


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
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
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
    """Write :data:`MARKER` into ``folder`` (which must exist) and return its path.

    ``entries`` are the names in ``folder`` the tool wrote; without them (``None``) no entry of the folder
    counts as the tool's, so ``--overwrite`` refuses the folder while it holds anything (see
    :func:`claim_entries` for a run that writes in place)."""
    return write_json(Path(folder) / MARKER, marker_content(verb, entries))


def recorded_entries(info: dict[str, Any] | None) -> list[str] | None:
    """The entries a marker's content lists (None when it lists none: an unfinished or unreadable marker)."""
    entries = (info or {}).get("entries")
    return [str(n) for n in entries] if isinstance(entries, list) else None


def claim_entries(folder: str | os.PathLike[str], verb: str, names: Any) -> Path:
    """Add ``names`` to the entries ``folder``'s marker lists (writing the marker of ``verb``), *before*
    the tool creates them.

    A run that writes into its output folder in place (the benchmark runner) calls this before it creates
    each top-level entry, so that when it is interrupted the marker still lists everything it wrote:
    ``--overwrite`` can then replace the folder, while a file a user adds never counts as the tool's.
    """
    folder = Path(folder)
    have = recorded_entries(read_marker(folder)) or []
    return write_marker(folder, verb, sorted(set(have) | {str(n) for n in names}))


#: the root ``format`` attributes of the HDF5 files astromodal writes (a Dataset, a HiSS-Cube ML cube)
TOOL_HDF5_FORMATS = ("astromodal-dataset", "astromodal-hisscube")


def is_tool_written(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` was written by astromodal.

    A folder: it holds :data:`MARKER`. An ``.h5``/``.hdf5`` file: its root attribute ``format`` is one of
    :data:`TOOL_HDF5_FORMATS`. A ``.parquet`` file: its Arrow schema metadata has the key ``b"astromodal"``.
    Anything else (or anything unreadable) is False.
    """
    path = Path(path)
    if path.is_dir():
        return (path / MARKER).is_file()
    if not path.is_file():
        return False
    suffix = path.suffix.lower()
    try:  # by content first: an astromodal file named otherwise (survey.hdf, pred.out) is still its own
        with open(path, "rb") as fh:
            magic = fh.read(8)
    except OSError:
        return False
    if magic == _HDF5_MAGIC:
        suffix = ".h5"
    elif magic[:4] == b"PAR1":
        suffix = ".parquet"
    if suffix in _HDF5_SUFFIXES:
        try:
            import h5py

            with h5py.File(path, "r") as f:
                fmt = f.attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode("utf-8", "replace")
            return fmt in TOOL_HDF5_FORMATS
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
    """``path`` with its links followed (a loop of links: the absolute path as it is)."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError on a loop of links
        return Path(path).expanduser().absolute()


def _real_out(out: Path) -> Path:
    """Where ``--out`` really is (its links followed); a loop of links or a dangling link is refused."""
    try:
        res = out.resolve()
    except (RuntimeError, OSError):
        raise ConfigError(f"--out {out} is a loop of symbolic links; choose another --out") from None
    if out.is_symlink() and not res.exists():
        raise ConfigError(f"--out {out} is a symbolic link to {os.readlink(out)}, which does not exist; create "
                          "it first or choose another --out")
    return res


def _check_writable(out: Path, folder: Path) -> None:
    """astromodal must be able to create (and rename) entries in ``folder``, checked before any work."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write in {folder} (permission denied or a read-only file "
                          "system); choose another --out")


def _is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def _few(names: list[str], n: int = 3) -> str:
    shown = ", ".join(sorted(names)[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def _foreign_entries(folder: Path, info: dict[str, Any] | None) -> list[str]:
    """Entries of ``folder`` astromodal did not write: those its marker does not list (all of them when it
    has no marker, or a marker without an ``entries`` list: a run that stopped before recording what it
    wrote, so nothing there is known to be the tool's)."""
    names = [p.name for p in folder.iterdir() if p.name != MARKER]
    recorded = recorded_entries(info)
    if recorded is None:
        return names
    known = set(recorded)
    return [n for n in names if n not in known]


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
      :data:`MARKER` (astromodal did not write it; the message names a few of its entries), a dangling
      symbolic link or a loop of links, and a place astromodal cannot write in;
    * a tool-written folder is accepted with ``overwrite=True``; with ``resume=True`` a tool-written
      folder of the same ``verb`` is accepted to be reused in place; otherwise it is refused with
      "OUT was written by astromodal VERB; pass --overwrite to replace it";
    * with ``overwrite``, a tool-written folder that also holds entries its marker does not list (a
      user's file, or anything at all when the marker lists no entries) is refused, naming them.

    Raises :class:`~astromodal.errors.ConfigError`.
    """
    out = Path(out).expanduser()
    res = _real_out(out)
    if res.exists() and not res.is_dir():
        raise ConfigError(f"--out {out} is a file; a folder is expected here: choose another --out")
    _always_refused(out, res, inputs, "an output folder")
    if not res.exists():
        _check_writable(out, _check_parent(out, res))
        return out
    try:
        entries = list(res.iterdir())
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be read ({exc.strerror or exc}); choose another --out") from None
    if not entries:
        _check_writable(out, res.parent)
        return out
    info = read_marker(res)
    if info is None:
        raise ConfigError(f"--out {out} holds files astromodal did not write ({_few([p.name for p in entries])}); "
                          "astromodal never replaces them: choose another --out (a new or empty folder)")
    written_by = str(info.get("verb") or "?")
    if resume and (not verb or written_by == verb):
        _check_writable(out, res)  # the run writes into the folder in place
        return out
    if not overwrite:
        raise ConfigError(f"{out} was written by astromodal {written_by}; pass --overwrite to replace it "
                          "(or choose another --out)")
    foreign = _foreign_entries(res, info)
    if foreign and recorded_entries(info) is None:
        raise ConfigError(f"--out {out} was left by an astromodal {written_by} run that did not record what it "
                          f"wrote, so its files cannot be told from yours ({_few(foreign)}); astromodal never "
                          "deletes them: resume that run, or move the folder away yourself")
    if foreign:
        raise ConfigError(f"--out {out} was written by astromodal {written_by} but now also holds files it did not "
                          f"write ({_few(foreign)}); move them away or choose another --out")
    _check_writable(out, res.parent)
    _check_writable(out, res)
    return out


def _check_parent(out: Path, res: Path) -> Path:
    """The nearest existing ancestor of ``res`` must be a folder; it is returned."""
    for parent in res.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
            return parent
    return Path(res.anchor)  # pragma: no cover - the root always exists


def check_output_file(
    out: str | os.PathLike[str],
    *,
    inputs: tuple[Any, ...] | list[Any] = (),
    overwrite: bool = False,
) -> Path:
    """Check that the file ``out`` may be (re)written; call it before any work. Returns ``out`` as a Path.

    ``out`` an existing folder, or under a path that is a file, is an error; ``out`` that is one of
    ``inputs`` is always refused; an existing file is replaced only when astromodal wrote it
    (:func:`is_tool_written`) and ``overwrite=True``; a file astromodal did not write is always refused, and
    so are a dangling symbolic link, a loop of links and a folder astromodal cannot write in.
    Raises :class:`~astromodal.errors.ConfigError`.
    """
    out = Path(out).expanduser()
    res = _real_out(out)
    if res.is_dir():
        raise ConfigError(f"--out {out} is a folder; a file is expected here: choose another --out")
    for inp in inputs:
        if inp is not None and _resolve(inp) == res:
            raise ConfigError(f"--out {out} is the input {inp}; writing it would destroy the input: "
                              "choose another --out")
    _check_writable(out, _check_parent(out, res))
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
    only if it is empty or tool-written (checked again just before the swap and after moving it aside; a
    folder without the marker is never deleted, and of the old folder only the entries its marker lists
    are). On any error or interrupt the temporary folder is removed and an existing ``out`` is left as
    it was, so no half-written output is left behind. A symbolic link ``out`` is written through.
    """
    out = check_output_dir(out, inputs=inputs, overwrite=overwrite, verb=verb)
    dest = _real_out(out)
    created: list[Path] = []
    try:
        created = _make_parents(dest.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    except OSError as exc:
        _unmake(created)
        raise ConfigError(f"--out {out}: cannot create a folder in {dest.parent} ({exc.strerror or exc}); "
                          "choose another --out") from None
    try:
        write_marker(tmp, verb)
        yield tmp
        write_marker(tmp, verb, [p.name for p in tmp.iterdir() if p.name != MARKER])
        os.chmod(tmp, 0o777 & ~_UMASK)
        _swap_into_place(tmp, out, dest, overwrite=overwrite, inputs=inputs, verb=verb)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _unmake(created)
        better = _renamed_error(exc, tmp, out) if isinstance(exc, OSError) else None
        if better is not None:
            raise better from exc
        raise


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _swap_into_place(tmp: Path, out: Path, dest: Path, *, overwrite: bool, inputs: Any, verb: str) -> None:
    """Rename ``tmp`` to ``dest`` (``out`` with its links followed).

    A missing or empty ``dest`` is replaced in one rename (which never replaces a non-empty folder). An
    existing folder is re-checked, moved aside, checked once more (a file that arrived in between is
    found and the folder put back), and replaced; then only the entries its marker lists are deleted.
    """
    if not os.path.lexists(dest) or _is_empty_dir(dest):
        try:
            os.rename(tmp, dest)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise ConfigError(f"--out {out}: cannot move the finished output into place "
                                  f"({exc.strerror or exc}); nothing was changed") from None
            # something appeared at --out meanwhile: the full check below decides
    check_output_dir(out, inputs=inputs, overwrite=overwrite, verb=verb)
    dest = _real_out(out)
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
    old.rmdir()
    info: dict[str, Any] | None = None
    try:
        os.rename(dest, old)
        info = read_marker(old)
        foreign = _foreign_entries(old, info)  # what arrived between the check and the move
        if foreign:
            raise ConfigError(f"--out {out} now holds files astromodal did not write ({_few(foreign)}); it is "
                              "left as it was")
        os.rename(tmp, dest)
    except BaseException:
        # an error or an interrupt (Ctrl-C) at any step: the old output is put back, or, when the new one
        # is already in place, the old one is removed as on success
        if os.path.lexists(old):
            if not os.path.lexists(dest):
                os.rename(old, dest)
            elif not os.path.lexists(tmp):
                _remove_old(old, info if info is not None else read_marker(old), out)
        raise
    _remove_old(old, info, out)


def _remove_old(old: Path, info: dict[str, Any] | None, out: Path) -> None:
    """Delete the replaced output ``old``: only the entries its marker lists, then the marker and the
    folder; whatever else is there (or cannot be deleted) is kept, with a warning naming the folder."""
    recorded = set(recorded_entries(info) or [])
    for entry in old.iterdir():
        if entry.name in recorded:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except OSError:
                    pass
    left = [p.name for p in old.iterdir() if p.name != MARKER]
    if not left:
        try:
            (old / MARKER).unlink(missing_ok=True)
            old.rmdir()
            return
        except OSError:
            pass
    print(f"warning: the replaced {out} was kept as {old}: it still holds {_few(left) or 'its marker'} "
          "(astromodal deletes only what it wrote)", file=sys.stderr)
