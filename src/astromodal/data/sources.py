"""Datasets named in an experiment config: one function per ``source`` kind.

A source is one decorated function of its options (:func:`source`; the names are in :data:`SOURCES`).
Each loader returns ``(dataset, test_dataset_or_None)``; a source with its own published test split
(AstroSpectra-MNIST, IDX, a table with ``test_path``) returns both and the benchmark keeps that split.
Relative paths in options are resolved against the config file's folder, and ``${ASTROMODAL_DATA}``
expands to the real-data folder (default ``../shared/data`` beside the working directory).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.dataset import Dataset
from astromodal.errors import ConfigError
from astromodal.registry import Registry

Loaded = tuple[Dataset, Dataset | None]
Loader = Callable[[dict[str, Any]], Loaded]
#: source kind -> loader; its metadata ``options`` are the option names it accepts (None: any)
SOURCES: Registry[Loader] = Registry("dataset source")


def data_dir() -> Path:
    """The real survey data folder: ``$ASTROMODAL_DATA`` or ``../shared/data``."""
    return Path(os.environ.get("ASTROMODAL_DATA", Path.cwd().parent / "shared" / "data"))


def resolve_path(value: str | Path, base: Path | None = None) -> Path:
    text = str(value).replace("${ASTROMODAL_DATA}", str(data_dir()))
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and base is not None and not any(c in text for c in "*?["):
        candidate = base / path
        path = candidate if candidate.exists() or not path.exists() else path
    return path


def source(name: str, *, options: tuple[str, ...] | list[str] | None = None) -> Callable[[Loader], Loader]:
    """Function decorator adding the dataset source ``name`` (a config's ``datasets.X.source``): a function
    of the options dict returning ``(dataset, test_dataset_or_None)``. ``options``, when given, are the
    only option names it accepts; :func:`load_source` refuses others in one line listing these."""
    return SOURCES.register(name, options=None if options is None else tuple(options))


def _need(options: dict[str, Any], key: str, kind: str) -> Any:
    if key not in options:
        raise ConfigError(f"dataset source {kind!r} needs option {key!r}")
    return options[key]


@source("simulate")
def _simulate(options: dict[str, Any]) -> Loaded:
    """``simulate_survey``'s arguments; ``layout: hisscube`` gives the survey in the HiSS-Cube ML cube's layout
    (blocks ``image_z0..3`` at S, S/2, S/4, S/8 px and ``spectrum_z0..3`` at 4620 .. 577 samples on the cube
    grid; :func:`astromodal.data.readers.hisscube.cube_dataset`), as ``source: hisscube`` reads a built cube."""
    from astromodal.data.simulate import simulate_survey

    options = dict(options)
    layout = options.pop("layout", "survey")
    if layout not in ("survey", "hisscube"):
        raise ConfigError(f"simulate option 'layout' must be survey or hisscube, got {layout!r}")
    ds = simulate_survey(**options)
    if layout == "hisscube":
        from astromodal.data.readers.hisscube import cube_dataset

        ds = cube_dataset(ds)
    return ds, None


@source("hdf5", options=("path",))
def _hdf5(options: dict[str, Any]) -> Loaded:
    return Dataset.load(_need(options, "path", "hdf5")), None


@source("hisscube", options=("path", "lazy"))
def _hisscube(options: dict[str, Any]) -> Loaded:
    """A HiSS-Cube ML cube (``astromodal build cube``): images ``image_z0`` .. ``image_z3`` (64 .. 8 px, with
    errors) and spectra ``spectrum_z0`` .. ``spectrum_z3`` (4620 .. 577 samples)."""
    from astromodal.data.readers.hisscube import read_cube

    return read_cube(_need(options, "path", "hisscube"), lazy=bool(options.get("lazy", False))), None


@source("mpajhu_sfr", options=("path", "gal_info", "totsfr", "target", "target_name", "flags", "drop_unmatched"))
def _mpajhu_sfr(options: dict[str, Any]) -> Loaded:
    """SDSS spectra joined to the MPA-JHU DR7 SFR catalogue on (PLATEID, MJD, FIBERID): study D's target
    (:func:`astromodal.data.readers.mpajhu.load_mpajhu_source`)."""
    from astromodal.data.readers.mpajhu import load_mpajhu_source

    return load_mpajhu_source(options)


@source("astrospectra_mnist", options=("path", "version"))
def _astrospectra(options: dict[str, Any]) -> Loaded:
    from astromodal.data.readers.astrospectra_mnist import read_astrospectra_mnist

    path = _need(options, "path", "astrospectra_mnist")
    version = options.get("version")
    return (
        read_astrospectra_mnist(path, version=version, split="train"),
        read_astrospectra_mnist(path, version=version, split="test"),
    )


@source("spectra_fits")
def _spectra_fits(options: dict[str, Any]) -> Loaded:
    from astromodal.data.readers import read

    opts = dict(options)
    path = opts.pop("path", None) or _need(options, "path", "spectra_fits")
    return read(path, **opts), None


#: the options of the ``table`` source (documented in experiments/README.md)
TABLE_OPTIONS = ("path", "test_path", "features", "label", "task", "target_name", "class_names", "label_prefix",
                 "id_column", "test_id_column", "ra", "dec", "rename", "test_rename", "dropna", "missing_values",
                 "units", "hdu", "colours", "absolute_magnitudes")


@source("table", options=TABLE_OPTIONS)
def _table(options: dict[str, Any]) -> Loaded:
    """The training table and, with ``test_path``, the test table read the same way; the test labels are
    coded with the training classes (a test class unseen in training is appended after them, for the
    runner to refuse or count as wrong: ``unseen_test_classes``)."""
    from astromodal.data.readers.tables import add_absolute_magnitudes, add_colours, read_table

    opts = dict(options)
    path = _need(opts, "path", "table")
    test_path = opts.pop("test_path", None)
    colours = opts.pop("colours", False)
    absolute = opts.pop("absolute_magnitudes", False)
    # the test file: its own renames / id column where given, else the training file's
    test_opts = {"rename": opts.pop("test_rename", opts.get("rename")),
                 "id_column": opts.pop("test_id_column", opts.get("id_column"))}
    opts.pop("path")
    steps: list[Callable[[Dataset], Dataset]] = []  # derived columns, added to the training and test tables alike
    if colours:
        steps.append(add_colours)
    if absolute:
        # true: from the "redshift" column with Planck18; a mapping: add_absolute_magnitudes' arguments
        kw = absolute if isinstance(absolute, dict) else {}
        allowed = [k for k in inspect.signature(add_absolute_magnitudes).parameters if k != "ds"]
        if set(kw) - set(allowed):
            raise ConfigError(f"table option absolute_magnitudes: unknown key(s) {sorted(set(kw) - set(allowed))}; "
                              f"allowed: {list(allowed)}")
        steps.append(lambda ds: add_absolute_magnitudes(ds, **kw))
    train = read_table(path, **opts)
    test = None
    if test_path:
        test = read_table(test_path, **{**opts, **test_opts, "class_names": None})
        tname = next(iter(train.targets), None)
        if tname is not None and train.targets[tname].kind == "class":
            test = test.with_targets({tname: test.targets[tname].recode(train.targets[tname].class_names,
                                                                       unseen="append")})
    for step in steps:
        train = step(train)
        test = step(test) if test is not None else None
    return train, test


@source("gaia_xp_npz")
def _gaia_npz(options: dict[str, Any]) -> Loaded:
    from astromodal.data.readers.gaia_xp import read_xp_continuous_npz

    opts = dict(options)
    path = opts.pop("path", None) or _need(options, "path", "gaia_xp_npz")
    return read_xp_continuous_npz(path, **opts), None


@source("gaia_xp_sampled")
def _gaia_sampled(options: dict[str, Any]) -> Loaded:
    from astromodal.data.readers.gaia_xp import read_xp_sampled

    opts = dict(options)
    path = opts.pop("path", None) or _need(options, "path", "gaia_xp_sampled")
    return read_xp_sampled(path, **opts), None


@source("idx", options=("images", "labels", "test_images", "test_labels", "class_names"))
def _idx(options: dict[str, Any]) -> Loaded:
    from astromodal.data.readers.idx import read_idx_dataset

    names = options.get("class_names")
    train = read_idx_dataset(_need(options, "images", "idx"), _need(options, "labels", "idx"), class_names=names)
    test = None
    if options.get("test_images"):
        test = read_idx_dataset(options["test_images"], _need(options, "test_labels", "idx"), class_names=names)
    return train, test


#: the options of the ``image_folder`` source (astromodal.data.readers.image_folder.read_image_folder)
IMAGE_FOLDER_OPTIONS = ("images", "labels", "id_column", "label_column", "class_names", "bands", "size", "crop", "limit",
                        "per_class", "seed", "missing", "name", "target", "pixel_scale")


@source("image_folder", options=IMAGE_FOLDER_OPTIONS)
def _image_folder(options: dict[str, Any]) -> Loaded:
    """Images named ``<id>.<ext>`` (a folder or a glob) with a label CSV, e.g. Galaxy Zoo 1."""
    from astromodal.data.readers.image_folder import read_image_folder

    opts = dict(options)
    images, labels = _need(opts, "images", "image_folder"), _need(opts, "labels", "image_folder")
    for key in ("images", "labels"):
        opts.pop(key)
    return read_image_folder(images, labels, **opts), None


@source("scene", options=("path", "csv", "file_column", "label_columns", "feature_columns", "size", "bands",
                          "name"))
def _scene(options: dict[str, Any]) -> Loaded:
    """The Scene layout (study D's preliminary experiment): a folder of video frames (``path``) and a CSV
    (``csv``: its name in the folder, default the one CSV there) of one row per frame: the file name
    (``file_column``), feature columns (``feature_columns``: shell patterns, default every numeric column)
    and label columns (``label_columns``, one class target each); frames resized to ``size``
    (:func:`astromodal.data.readers.scene.read_scene`)."""
    from astromodal.data.readers.scene import read_scene

    opts = dict(options)
    path = _need(opts, "path", "scene")
    opts.pop("path")
    return read_scene(path, **opts), None


_PATH_KEYS = ("path", "test_path", "images", "labels", "test_images", "test_labels", "gal_info", "totsfr")


def load_source(kind: str, options: dict[str, Any], base: Path | None = None, cuts: dict[str, Any] | None = None,
                name: str | None = None) -> Loaded:
    """Load the dataset(s) of one config entry; paths are resolved against ``base``. An unknown source, or
    an option the source does not accept, is one line naming it and the allowed ones. ``cuts`` (a dataset's
    quality cuts, :func:`apply_dataset_cuts`) are applied to the loaded training and test datasets; ``name``
    is the dataset's name in messages."""
    loader = SOURCES.get(kind)
    allowed = SOURCES.meta(kind).get("options")
    unknown = sorted(set(options) - set(allowed)) if allowed is not None else []
    if unknown:
        raise ConfigError(f"dataset source {kind!r}: unknown option(s) {unknown}; allowed: {list(allowed)}")
    opts = dict(options)
    for key in _PATH_KEYS:
        if key in opts and opts[key] is not None:
            opts[key] = str(resolve_path(opts[key], base))
    loaded = loader(opts)
    return apply_dataset_cuts(loaded, cuts, name or kind) if cuts else loaded


def apply_dataset_cuts(loaded: Loaded, cuts: dict[str, Any] | None, name: str) -> Loaded:
    """The loaded (train, test) datasets with only the rows passing the quality ``cuts``
    (:func:`astromodal.data.crossmatch.apply_quality_cuts`: parallax_over_error_min, pmra_error_max,
    pmdec_error_max, ruwe_max, drop_saturated); the counts kept at each cut go to each dataset's
    ``meta["selection"]`` (a list of ``{"cut": "parallax_over_error > 2", "kept": n}``, first
    ``{"cut": "input", ...}``). A cut whose column a dataset lacks is one ConfigError line naming the column
    and dataset ``name``."""
    from astromodal.data.crossmatch import apply_quality_cuts

    out = []
    for ds, split in zip(loaded, ("", " (test split)"), strict=True):
        if ds is None or not cuts:
            out.append(ds)
            continue
        where = f"dataset {name!r}{split}"
        mask, counts = apply_quality_cuts(ds.columns, cuts, where=where)
        if not mask.any():
            from astromodal.errors import BadValueError

            raise BadValueError(f"{where}: the quality cuts keep no object ("
                                + ", ".join(f"{c['cut']}: {c['kept']}" for c in counts) + ")")
        kept = ds.subset(np.flatnonzero(mask))
        kept.meta = {**kept.meta, "selection": counts}
        out.append(kept)
    return out[0], out[1]


def paths_missing(options: dict[str, Any], base: Path | None = None) -> list[str]:
    """The option paths that do not exist (globs count as present when they match)."""
    import glob

    missing = []
    for key in _PATH_KEYS:
        if options.get(key) is None:
            continue
        p = resolve_path(options[key], base)
        if not (p.exists() or glob.glob(str(p))):
            missing.append(str(p))
    return missing


def align_test_classes(train: Dataset, test: Dataset, target: str, unseen: str = "error",
                       keep: list[str] | None = None, where: str = "") -> Dataset:
    """``test`` with its ``target`` coded by class NAME with the training split's classes.

    ``keep``: only the test objects of these classes are kept (as ``keep_classes`` does to the training
    split). A test class the training split lacks is an error naming it, its count and ``where``
    (``unseen="error"``), or with ``unseen="count_wrong"`` stays as an extra class after the training
    ones, so its objects are scored as misclassified. Regression targets are returned unchanged.
    """
    from astromodal.errors import BadValueError

    t_train = train.target(target)
    if t_train.kind != "class":
        return test
    t = test.target(target)
    if t.kind != "class":
        raise ConfigError(f"{where}: target {target!r} is a class target in the training split but a "
                          "regression target in the test split")
    if keep:
        test = test.subset(np.flatnonzero(np.isin(t.labels(), keep)))
        t = test.target(target)
    if unseen not in ("error", "count_wrong"):
        raise ConfigError(f"unseen_test_classes must be 'error' or 'count_wrong', not {unseen!r}")
    try:
        recoded = t.recode(t_train.class_names, unseen="error" if unseen == "error" else "append", where=where)
    except BadValueError as exc:
        raise BadValueError(f"{exc} (set the dataset's unseen_test_classes: count_wrong to score them as "
                            "misclassified)") from None
    return test.with_targets({target: recoded})


def keep_classes(ds: Dataset, target: str, classes: list[str]) -> Dataset:
    """Only the objects of ``classes`` of ``target``, re-coded 0..K-1 in the given order."""
    from astromodal.data.dataset import Target

    t = ds.target(target)
    unknown = [c for c in classes if c not in t.class_names]
    if unknown:
        raise ConfigError(f"keep_classes: unknown class(es) {unknown} of target {target!r}; known {list(t.class_names)}")
    labels = t.labels()
    rows = np.flatnonzero(np.isin(labels, classes))
    sub = ds.subset(rows)
    return sub.with_targets({target: Target.from_labels(labels[rows], classes)})
