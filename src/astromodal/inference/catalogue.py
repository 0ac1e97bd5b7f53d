"""Apply a trained model (or fold ensemble) to a catalogue, in chunks, resumably.

A *model folder* is what ``astromodal benchmark`` writes for each cell when ``save_models`` is on
(``MODEL_DIR/model.json`` + ``model.pt``, or ``ensemble.json`` with member folders), plus
``predictor.json``: the representation that turns a dataset into the model's inputs (every named input:
cutout / RGB / spectrum views and column groups, rebuilt from the catalogue exactly as in training), the
primary target and its class names, and ``heads``: every head (name, kind ``categorical`` | ``gaussian`` |
``point``, task, class names, unit; a folder of an older astromodal, without ``heads``, gets them from its
estimator). A regression target's standardisation lives in the estimator, so predictions come back in
the target's unit. Nothing is unpickled for neural models (weights load with ``weights_only=True``).

Columns (:func:`prediction_columns`): a one-head model writes what it always wrote (``prob_<class>`` and
``label``; ``<target>`` and ``<target>_sigma``); a model with several heads, or any with ``layout="heads"``,
writes every head: ``<head>`` (the class label) and ``prob_<class>`` (``prob_<head>_<class>`` with two or
more class heads); ``<head>`` and ``<head>_err`` (the square root of the predicted variance; an ensemble's
is MESCR Eq. 1 over its members) for a Gaussian head; ``<head>`` for a point head; and for an ensemble
``<head>_sigma_net`` (the standard deviation of the member means) for each regression head (a single
model has no such column: it has no members to disagree). ``rename`` gives any output column another
name (MESCR's Table A2: ``id=objid``, ``spectral_type=spectral_class``, ``radius_sigma_net=sigma_net``);
two columns with one name are an error before any work.

The catalogue is read lazily where the format allows (astromodal HDF5) and processed ``chunk_size``
objects at a time. Each finished chunk is written to ``OUT.parts/part-NNNNN.parquet``; the final
Parquet file is assembled and renamed into place at the end, so an interrupted job never leaves a
half-written output. ``OUT.parts/fingerprint.json`` records what the chunks were made from (the model
folder's digest, the catalogue's path, size, modification time and row count (an in-memory Dataset: a
digest of all its values, :func:`dataset_digest`), the chunk size and every option that changes the
output): a re-run with the same fingerprint resumes where it stopped, any other re-run is refused
(``restart=True`` / ``--restart`` discards the old chunks), so a finished file never mixes two runs and
has exactly one row per input object, in input order. Only the fingerprint and the chunk files of the
recorded and the current chunk plan are astromodal's: any other file in ``OUT.parts/`` (even one named
``part-extra.parquet``) is refused with one line and never deleted.

Object ids are written as int64 or text, never floats: from ``id_column`` when given, else the
dataset's ids (for a table catalogue the table reader takes the first of
:data:`~astromodal.data.readers.tables.ID_COLUMNS` present, else the row number). Columns asked for
with ``keep`` keep their own dtype (text and 64-bit integers included: for a table catalogue they are
read from the raw table). Sky positions come from ``ra_column``/``dec_column``, else the dataset's
(for a table, the first of the reader's ``RA_COLUMNS``/``DEC_COLUMNS`` present: ``ra``, ``ra_gaia``,
``RA_ICRS``, ``RAJ2000``, ...); when a catalogue has no positions at all, ``ra``/``dec`` are left out
of the output (with a warning), never written as NaN.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from astromodal.atomic import (
    atomic_dir,
    atomic_path,
    check_output_dir,
    check_output_file,
    read_json,
    write_json,
)
from astromodal.data.dataset import Dataset
from astromodal.data.ids import as_int_ids
from astromodal.errors import AstromodalError, BadValueError, ConfigError, DataFormatError
from astromodal.experiments import RepresentationConfig
from astromodal.transforms.representations import build_inputs, flatten_inputs

#: catalogue columns copied to the output when present
PASS_THROUGH = ("l", "b", "parallax", "parallax_error", "parallax_over_error", "distance", "pmra", "pmdec")

#: the fingerprint file of a parts folder, and its layout version
FINGERPRINT = "fingerprint.json"
_FINGERPRINT_VERSION = 1


#: what a head's columns look like: class label + probabilities, mean + 1-sigma, mean alone
HEAD_KINDS = ("categorical", "gaussian", "point")


@dataclass(frozen=True)
class HeadInfo:
    """One head of a saved model as ``predictor.json`` records it.

    ``kind``: ``categorical`` (class label and probabilities; a binary head too), ``gaussian`` (mean and
    variance) or ``point`` (a regression value without uncertainty). ``class_names``: a class head's
    names, indexed by the class codes the model predicts. ``unit``: a regression target's unit (text, may
    be empty). A regression target's standardisation is part of the estimator itself (its heads or
    ``target_norm``), so every prediction comes back in ``unit``.
    """

    name: str
    kind: str
    task: str
    class_names: tuple[str, ...] = ()
    unit: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "task": self.task, "class_names": list(self.class_names),
                "unit": self.unit}

    @classmethod
    def from_json(cls, d: Any) -> HeadInfo:
        if not isinstance(d, dict):
            raise TypeError("a head is not a JSON object")
        head = cls(str(d["name"]), str(d["kind"]), str(d["task"]), tuple(str(c) for c in d.get("class_names") or ()),
                   str(d.get("unit") or ""))
        if head.kind not in HEAD_KINDS:
            raise ValueError(f"head {head.name!r}: unknown kind {head.kind!r} (known: {', '.join(HEAD_KINDS)})")
        if head.task not in ("classification", "regression") or (head.task == "classification") != (
                head.kind == "categorical"):
            raise ValueError(f"head {head.name!r}: task {head.task!r} does not fit kind {head.kind!r}")
        return head


@dataclass
class Predictor:
    """A loaded model with the representation, heads and classes it was trained with.

    ``target``/``task``/``class_names`` describe the primary (first) head, as every astromodal version
    wrote them; ``heads`` lists every head (first = primary; an older ``predictor.json`` without a
    ``heads`` list gives them from the estimator).
    """

    estimator: Any
    representation: RepresentationConfig
    target: str
    task: str
    class_names: list[str]
    family: str
    input_shapes: dict[str, list[int]]
    #: the table preparation recorded at training time (renames, derived columns, class mapping), replayed
    #: on a raw table catalogue; None for models trained on other data
    preparation: dict[str, Any] | None = None
    heads: list[HeadInfo] = field(default_factory=list)
    #: False when ``predictor.json`` lists no heads (an older astromodal): :attr:`heads` come from the estimator
    described: bool = True
    #: ``{head: Recalibrator}`` fitted at training time on held-out training rows (``protocol.recalibrate``):
    #: a temperature for a class head, a variance scale for a Gaussian head; empty for a model without one
    recalibration: dict[str, Any] = field(default_factory=dict)
    #: apply :attr:`recalibration` to what the ``predict_*`` methods return (False: the raw model outputs)
    recalibrate: bool = True

    def __post_init__(self) -> None:
        if not self.heads:
            self.described = False
            self.heads = _heads_from_estimator(self.estimator, self.target, self.task, self.class_names)

    @property
    def ensemble(self) -> bool:
        """True for an ensemble of members (its regression heads also give ``sigma_net``)."""
        return bool(getattr(self.estimator, "members", None))

    def read_inputs(self) -> tuple[str, ...] | None:
        """The representation's input names the model reads (None: all of them). A view the model never
        reads (a numeric input of an image-only variant) is not built, so a catalogue need not have it."""
        names = getattr(self.estimator, "input_names", None)
        names = names() if callable(names) else None
        views = list(self.representation.views())
        if not names or not set(names) <= set(views) or set(names) == set(views):
            return None
        return tuple(v for v in views if v in names)

    def inputs(self, ds: Dataset) -> Any:
        read = self.read_inputs()
        if read is None:
            X = build_inputs(ds, self.representation)
        else:
            views = self.representation.views()
            X = ds.inputs({k: views[k] for k in read})
        for key, shape in self.input_shapes.items():
            if key in X and list(X[key].shape[1:]) != list(shape):
                raise BadValueError(
                    f"input {key!r} has shape {list(X[key].shape[1:])} per object but the model was trained on "
                    f"{list(shape)} (spectrum length / image size must match the training data)"
                )
        return flatten_inputs(X) if self.family == "classical" else X

    def recalibrator(self, head: str) -> Any:
        """The recalibrator applied to ``head`` (None: raw outputs, no recalibration or ``recalibrate`` off)."""
        return self.recalibration.get(head) if self.recalibrate else None

    def threshold(self) -> float | None:
        """The primary class head's binary decision threshold on the probabilities :meth:`predict_proba`
        returns (a tuned threshold moved with the temperature, so decisions do not change)."""
        t = getattr(self.estimator, "threshold", None)
        rec = self.recalibrator(self.target)
        return rec.threshold(t) if rec is not None and t is not None else t

    def predict_proba(self, ds: Dataset) -> np.ndarray:
        proba = np.asarray(self.estimator.predict_proba(self.inputs(ds)))
        rec = self.recalibrator(self.target)
        return proba if rec is None else _temperature(rec, proba)

    def predict(self, ds: Dataset) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.inputs(ds)))

    def predict_heads(self, ds: Dataset) -> dict[str, Any]:
        """``{head: Categorical | Gaussian}`` for every head of :attr:`heads`, in the targets' units, each
        recalibrated when the model carries a recalibration for it (and :attr:`recalibrate` is on)."""
        from astromodal.evaluation.protocols import predict_heads
        from astromodal.training.predictions import Categorical

        got = predict_heads(self.estimator, self.inputs(ds), [h.name for h in self.heads])
        for name, p in got.items():
            rec = self.recalibrator(name)
            if rec is None:
                continue
            if getattr(p, "kind", None) == "categorical":
                t = None if p.threshold is None else rec.threshold(p.threshold)
                got[name] = Categorical(_temperature(rec, p.proba), p.classes, t)
            else:
                got[name] = rec.transform(p)
        return got

    @property
    def gives_sigma(self) -> bool:
        """True for a regression model with a Gaussian head (or an ensemble of them): ``predict`` writes
        ``<target>_sigma``."""
        return self.task == "regression" and _gives_variance(self.estimator)

    def predict_mean_sigma(self, ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Regression mean and 1-sigma uncertainty (square root of the predicted variance), float64."""
        mean, var = self.estimator.predict_mean_var(self.inputs(ds))
        if var is None:
            raise BadValueError(f"model {type(self.estimator).__name__} gives no variance for a sigma column")
        mean = np.asarray(mean, dtype=np.float64).reshape(len(ds), -1)[:, 0]
        var = np.asarray(var, dtype=np.float64).reshape(len(ds), -1)[:, 0]
        rec = self.recalibrator(self.target)
        if rec is not None:
            var = rec.apply(var)
        return mean, np.sqrt(np.clip(var, 0.0, None))


def _temperature(rec: Any, proba: Any) -> np.ndarray:
    """Temperature-scaled probabilities; a row that is not finite (an object the model could not
    classify) stays as it was (NaN), never a made-up distribution."""
    proba = np.asarray(proba, dtype=np.float64)
    out = proba.copy()
    ok = np.isfinite(proba).all(axis=1) & (proba >= 0).all(axis=1)
    if ok.any():
        out[ok] = rec.apply(proba[ok])
    return out


def _gives_variance(estimator: Any) -> bool:
    """A Gaussian head (``gaussian_nll`` loss) in the estimator or in any member of an ensemble."""
    if not hasattr(estimator, "predict_mean_var"):
        return False
    flag = getattr(estimator, "gives_variance", None)
    if isinstance(flag, bool):
        return flag
    members = getattr(estimator, "members", None)
    if members:
        return any(_gives_variance(m) for m in members)
    return getattr(getattr(estimator, "trainer", None), "loss", None) == "gaussian_nll"


def _regression_kind(estimator: Any, name: str, primary: bool) -> str:
    """``gaussian`` when the estimator predicts a variance for regression head ``name`` (every member of an
    ensemble does), else ``point``."""
    members = getattr(estimator, "members", None)
    if members:
        return "gaussian" if all(_regression_kind(m, name, primary) == "gaussian" for m in members) else "point"
    probe = getattr(estimator, "probe", None)
    if probe is not None and getattr(estimator, "kind", None) == "probe":
        return _regression_kind(probe, name, primary)
    heads = getattr(estimator, "heads", None)
    if isinstance(heads, dict) and heads:
        head = heads.get(name) if name in heads else (next(iter(heads.values())) if primary else None)
        return "gaussian" if getattr(head, "kind", None) == "gaussian" else "point"
    return "gaussian" if primary and _gives_variance(estimator) else "point"


def _heads_from_estimator(estimator: Any, target: str, task: str, class_names: list[str],
                          described: dict[str, dict[str, Any]] | None = None) -> list[HeadInfo]:
    """Every head of ``estimator`` (primary first): its kind from the estimator, its task, class names
    and unit from ``described`` (``{head: {"task", "class_names", "unit"}}``, the training data's targets),
    else the primary ``target``/``task``/``class_names`` (an older ``predictor.json``; another class head
    is then named by its class codes)."""
    names = [str(n) for n in (getattr(estimator, "head_names", None) or [])] or [target]
    tasks = dict(getattr(estimator, "head_tasks", None) or {})
    codes = dict(getattr(estimator, "head_classes", None) or {})
    described = dict(described or {})
    if len(names) == 1 and names[0] != target and (not described or target in described):
        names = [target]  # one unnamed head (a legacy single target): the target's name
        tasks, codes = {target: task}, {target: codes.get(next(iter(codes), None))}
    heads = []
    for i, name in enumerate(names):
        about = described.get(name, {})
        head_task = str(about.get("task") or tasks.get(name) or (task if i == 0 else "regression"))
        if head_task == "classification":
            known = about.get("class_names") or (class_names if i == 0 else None)
            if known is None:
                known = [str(c) for c in np.asarray(codes.get(name) if codes.get(name) is not None else [])]
            heads.append(HeadInfo(name, "categorical", head_task, tuple(str(c) for c in known),
                                  str(about.get("unit") or "")))
        else:
            heads.append(HeadInfo(name, _regression_kind(estimator, name, i == 0), "regression", (),
                                  str(about.get("unit") or "")))
    return heads


def save_predictor(model_dir: Path, estimator: Any, representation: RepresentationConfig, target: str, task: str,
                   class_names: list[str], family: str, input_shapes: dict[str, Any],
                   preparation: dict[str, Any] | None = None,
                   heads: dict[str, dict[str, Any]] | None = None,
                   recalibration: dict[str, dict[str, Any]] | None = None) -> Path:
    """Save an estimator with what :func:`load_predictor` needs to apply it to new catalogues.

    ``target``/``task``/``class_names``: the primary head (as every version wrote them). ``heads``: every
    head's target as ``{name: {"task": "classification" | "regression", "class_names": [...], "unit": str}}``
    in head order (default: the primary alone); ``predictor.json`` records each head under ``"heads"``
    (name, kind ``categorical`` | ``gaussian`` | ``point`` read from the estimator, task, class names,
    unit). ``preparation``: the table preparation recipe of the training data
    (``Dataset.meta["preparation"]``), stored under ``"preparation"`` and replayed on raw table catalogues.
    ``recalibration``: ``{head: recalibrator state}`` (``Recalibrator.to_json``: method, parameter, ...)
    fitted on held-out training rows, stored under ``"recalibration"`` and applied by ``predict``.
    """
    model_dir = Path(model_dir)
    described = heads if heads is not None else {target: {"task": task, "class_names": list(class_names)}}
    infos = _heads_from_estimator(estimator, target, task, list(class_names), described)
    estimator.save(model_dir)
    meta = {
        "representation": representation.model_dump(),
        "target": target,
        "task": task,
        "class_names": list(class_names),
        "family": family,
        "input_shapes": {k: list(v) for k, v in input_shapes.items()},
        "heads": [h.as_json() for h in infos],
    }
    if preparation is not None:
        meta["preparation"] = preparation
    if recalibration:
        known = {h.name: h.kind for h in infos}
        for name in recalibration:
            if name not in known:
                raise BadValueError(f"recalibration of {name!r}: not a head of this model ({list(known)})")
        meta["recalibration"] = {name: dict(state) for name, state in recalibration.items()}
    write_json(model_dir / "predictor.json", meta)
    return model_dir


def load_predictor(model_dir: str | Path, trust: bool = False, device: str | None = None) -> Predictor:
    """Load a model folder written by :func:`save_predictor` (``trust`` allows scikit-learn pickles); a
    folder of an older astromodal (no ``heads`` list) gets its heads from the estimator. ``device``: where its
    neural networks run (``auto``, the default: a CUDA or MPS device when one exists; ``cpu``, ``cuda``,
    ``cuda:N``, ``mps``); a device that does not exist, or a GPU asked for a scikit-learn model (which runs on
    the CPU), is one error line."""
    if device is not None:
        check_device(device)
    model_dir = Path(model_dir)
    meta_path = model_dir / "predictor.json"
    if not meta_path.is_file():
        raise DataFormatError(f"{model_dir}: not an astromodal model folder (no predictor.json)")
    meta = read_json(meta_path)  # one line naming the file: unreadable, not JSON, not a JSON object
    try:
        representation = RepresentationConfig(**meta["representation"])
        preparation = meta.get("preparation")
        if preparation is not None and not isinstance(preparation, dict):
            raise TypeError("'preparation' is not a JSON object")
        fields = (str(meta["target"]), str(meta["task"]), [str(c) for c in meta["class_names"]], str(meta["family"]),
                  {str(k): list(v) for k, v in (meta.get("input_shapes") or {}).items()})
        recorded = meta.get("heads")
        if recorded is not None and (not isinstance(recorded, list) or not recorded):
            raise TypeError("'heads' is not a list of heads")
        heads = [HeadInfo.from_json(h) for h in recorded or []]
        if heads and (heads[0].name != fields[0] or len({h.name for h in heads}) != len(heads)):
            raise ValueError(f"'heads' {[h.name for h in heads]} must be distinct and start with the target "
                             f"{fields[0]!r}")
        recalibration = _read_recalibration(meta.get("recalibration"), heads)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        what = f"missing key {exc}" if isinstance(exc, KeyError) else _first_line(exc)
        raise DataFormatError(f"{meta_path}: damaged predictor description ({what})") from None
    from astromodal.training.estimator import load_estimator

    try:
        with warnings.catch_warnings():  # torch warns before refusing a pickle it will not load
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")
            estimator = load_estimator(model_dir, trust=trust)
    except AstromodalError:
        raise
    except OSError as exc:
        if exc.filename is None:
            raise DataFormatError(f"{_damaged_file(model_dir)}: damaged model file ({_first_line(exc)})") from None
        raise DataFormatError(f"{exc.filename}: cannot be read ({exc.strerror or _first_line(exc)})") from None
    except Exception as exc:  # a tampered model file: torch/joblib/zip/JSON errors of every kind, never a traceback
        import pickle

        why = ("not a plain file of weights: loading it would run pickled code, which astromodal refuses"
               if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc)
               else f"{type(exc).__name__}: {_first_line(exc)}")
        raise DataFormatError(f"{_damaged_file(model_dir)}: damaged model file ({why})") from None
    if device is not None:
        from astromodal.training.estimator import use_device

        if use_device(estimator, device) == 0 and device not in ("auto", "cpu"):
            raise ConfigError(f"--device {device}: {model_dir} holds no neural network (a scikit-learn model runs "
                              "on the CPU): leave --device out")
        if device not in ("auto", "cpu"):
            from astromodal.training.trainer import resolve_device

            resolve_device(device)  # a GPU that is not there: one line before any work
    return Predictor(estimator, representation, *fields, preparation=preparation, heads=heads,
                     recalibration=recalibration)


#: what ``--device`` accepts (the trainer's own rule)
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"


def check_device(device: str) -> str:
    """``device`` if it names a device kind astromodal knows, else one error line (no torch import)."""
    import re

    if not re.fullmatch(DEVICE_PATTERN, str(device)):
        raise ConfigError(f"--device {device!r}: must be auto, cpu, mps, cuda or cuda:N")
    return str(device)


def _read_recalibration(recorded: Any, heads: list[HeadInfo]) -> dict[str, Any]:
    """``predictor.json``'s ``"recalibration"`` as ``{head: Recalibrator}``: each a head of the model and the
    recalibrator of its kind (a temperature for a class head, a variance scale for a Gaussian one);
    anything else raises ``ValueError`` / ``TypeError`` (a damaged description)."""
    if recorded is None:
        return {}
    if not isinstance(recorded, dict):
        raise TypeError("'recalibration' is not a JSON object")
    from astromodal.evaluation.calibration import Recalibrator

    kinds = {h.name: h.kind for h in heads}
    out = {}
    for name, state in recorded.items():
        if not isinstance(state, dict):
            raise TypeError(f"recalibration of {name!r} is not a JSON object")
        if name not in kinds:
            raise ValueError(f"recalibration of {name!r}, which is not one of the heads {list(kinds)}")
        try:
            rec = Recalibrator.from_json(state)
        except (BadValueError, KeyError) as exc:
            raise ValueError(f"recalibration of {name!r}: {exc}") from None
        if rec.kind != kinds[name]:
            raise ValueError(f"recalibration of {name!r}: a {rec.method} does not apply to a {kinds[name]} head")
        out[str(name)] = rec
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _damaged_file(model_dir: Path) -> Path:
    """The first file of a model folder that does not load on its own (JSON or weights), else the folder."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    for f in files:
        if f.suffix == ".json":
            try:
                meta = json.loads(f.read_text())
                if not isinstance(meta, dict):
                    return f
            except (ValueError, UnicodeDecodeError, OSError):
                return f
    for f in files:
        if f.suffix == ".pt":
            try:
                import torch

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    state = torch.load(f, map_location="cpu", weights_only=True)
                if not isinstance(state, dict):
                    return f
            except Exception:
                return f
    for f in files:
        if f.name == "model.json":
            return f
    return model_dir


def open_catalogue(path: str | Path, reader: str | None = None, preparation: dict[str, Any] | None = None,
                   table_options: dict[str, Any] | None = None, **options: Any) -> Dataset:
    """A catalogue as a Dataset: astromodal HDF5 (lazy) or any format a registered reader knows.

    ``reader`` forces a reader by name; an unknown name is an error listing the known ones, whatever the
    file type. ``preparation``: a model's recorded table preparation, replayed on a table file (renames,
    derived columns such as colours, class mapping), so a raw catalogue gets the columns the model needs.
    ``table_options`` go to the table reader only (``id_column``, ``ra``, ``dec``); ``options`` to any reader.
    """
    return _open_catalogue(Path(path), reader, preparation, table_options, options)[0]


def _open_catalogue(path: Path, reader: str | None, preparation: dict[str, Any] | None,
                    table_options: dict[str, Any] | None, options: dict[str, Any], chosen: str | None = None
                    ) -> tuple[Dataset, pd.DataFrame | None, bool]:
    """:func:`open_catalogue`, with the raw table it read (a table file, else None) and whether the
    catalogue is a table: the file is read once and its reader chosen once (``chosen``: the name
    :func:`_reader_name` gave, when the caller has chosen already)."""
    chosen = chosen or _reader_name(path, reader)
    if chosen == "hdf5":
        return Dataset.load(path), None, False
    from astromodal.data.readers import read

    if chosen != "table":
        return read(path, reader=reader, **options), None, False
    options = {**options, **(table_options or {})}
    if not path.is_file():  # a glob or folder of tables: the reader finds the file
        return read(path, reader=reader, **options), None, True
    from astromodal.data.readers.tables import load_frame, read_table

    # the table HDU the model's preparation read (a FITS file may hold several tables)
    hdu = options.pop("hdu", (preparation or {}).get("hdu", 1))
    frame = load_frame(path, hdu=hdu)
    if preparation:
        from astromodal.data.preparation import replay_preparation

        # never drop a row, whatever training did: the output has one row per input object
        ds = replay_preparation(preparation, frame, source_name=str(path), **{**options, "dropna": False})
    else:
        ds = read_table(frame, source_name=str(path), hdu=hdu, **options)
    return ds, frame, True


def _reader_name(path: Path, reader: str | None) -> str:
    """``hdf5`` for an astromodal HDF5 file, else the name of the reader that reads ``path`` (chosen once)."""
    if _is_hdf5(path, reader):
        return "hdf5"
    from astromodal.data.readers import choose_reader

    return choose_reader(path, reader).name


def _is_hdf5(path: Path, reader: str | None) -> bool:
    if reader is not None:
        from astromodal.data.readers import get_reader

        get_reader(reader)  # an unknown name is an error for every input
        return False
    return path.suffix.lower() in (".h5", ".hdf5")


def predict_catalogue(
    model_dir: str | Path,
    catalogue: str | Path | Dataset,
    out: str | Path,
    chunk_size: int = 50_000,
    reader: str | None = None,
    trust: bool = False,
    progress: Any = None,
    keep: tuple[str, ...] | list[str] = (),
    id_column: str | None = None,
    ra_column: str | None = None,
    dec_column: str | None = None,
    overwrite: bool = False,
    restart: bool = False,
    log: Callable[[str], None] | None = None,
    rename: dict[str, str] | None = None,
    layout: str = "auto",
    recalibrate: bool = True,
    linear: dict[str, str] | None = None,
    scheduler: str = "sequential",
    workers: int | None = None,
    out_format: str = "file",
    device: str | None = None,
) -> Path:
    """Predict every object of ``catalogue`` and write ``out`` (Parquet): ids, positions, every head's predictions.

    The prediction columns (``layout``, see :func:`prediction_columns`): a one-head model writes what it
    always wrote (classification: ``prob_<class>`` per class and ``label``; regression: ``<target>`` and,
    for a Gaussian head, ``<target>_sigma``); a model with several heads (or any model with
    ``layout="heads"``) writes each head: a class head ``<head>`` (the label) and ``prob_<class>`` (with two
    or more class heads ``prob_<head>_<class>``), a Gaussian head ``<head>`` and ``<head>_err`` (the
    square root of the predicted variance: for an ensemble MESCR Eq. 1 over the members), a point head
    ``<head>``; an ensemble adds ``<head>_sigma_net`` (the standard deviation of the member means) to each
    regression head. ``keep``: more catalogue columns or targets to copy, each with its own dtype (e.g. a
    simulated survey's true ``massive`` class and ``association_id``); a name with ``*``/``?``/``[`` keeps
    every column it matches (``psfMag_*``); a head's own target is written as ``true_<head>``; an unknown
    name is an error listing the known ones. ``rename``: ``{column: new name}`` for any output column
    (``{"id": "objid", "class": "spectral_class", "radius_sigma_net": "sigma_net"}``); a name is looked up
    among astromodal's own columns first, then the kept ones; two columns with one name (``keep=["ra"]``
    beside the positions, a rename onto a taken name) are one error line, before any work.
    ``id_column``, ``ra_column``/``dec_column``: where ids and positions come from (see the module text).
    ``out`` is checked before any work: an existing file is replaced only when astromodal wrote it and
    ``overwrite`` is given. ``restart`` discards the finished chunks of an earlier run in ``OUT.parts/``;
    without it they are reused only when their fingerprint (which includes the output columns: heads,
    layout and renames) matches this run. ``log``: where messages go (default: standard error).
    ``recalibrate``: a model trained with ``protocol.recalibrate`` carries a temperature (class heads) and a
    variance scale (Gaussian heads) fitted on held-out training rows; they are applied (said on the log, and
    recorded in the file's metadata) unless ``recalibrate`` is False (the raw outputs). Labels and means are
    the same either way; probabilities and ``_err`` / ``_sigma`` columns change. ``linear`` ``{head: name}``:
    a regression head in dex also written as the linear quantity (:func:`prediction_columns`; the per-head
    layout).

    ``scheduler``: ``sequential`` (default: the chunks one after another in this process), or a Dask
    scheduler (:mod:`astromodal.inference.dask_driver`): ``threads``, ``processes``, ``local`` (a
    ``distributed`` LocalCluster on this machine) or ``tcp://host:port`` (a running Dask scheduler);
    ``workers``: how many threads / processes / local workers (default: one per core). Every driver writes
    the same fingerprinted parts, so a run of one resumes a run of another. A HATS catalogue (a folder
    with ``properties``/``hats.properties``/``collection.properties``, or ``reader="hats"``) is read with
    LSDB, one chunk per HATS partition (``chunk_size`` does not split them). ``out_format``: ``file`` (one
    Parquet file), ``dataset`` (a folder: one Parquet file per chunk, ``_common_metadata``, astromodal's
    marker) or ``hats`` (a HATS catalogue written with LSDB, for cross-matching at scale).
    ``device``: where a neural model runs (:func:`load_predictor`; every Dask worker uses the same); it is not
    part of the fingerprint (the outputs agree to float32 rounding across devices).
    """
    if chunk_size < 1:
        raise ConfigError(f"--chunk-size must be positive (got {chunk_size})")
    if (ra_column is None) != (dec_column is None):
        raise ConfigError("--ra-column and --dec-column go together: give both (or neither, to detect them)")
    if layout not in LAYOUTS:
        raise ConfigError(f"--layout {layout!r}: unknown; known: {', '.join(LAYOUTS)}")
    if out_format not in OUT_FORMATS:
        raise ConfigError(f"--out-format {out_format!r}: unknown; known: {', '.join(OUT_FORMATS)}")
    from astromodal.inference.dask_driver import check_reachable, check_scheduler  # they import no Dask

    scheduler = check_scheduler(scheduler, workers)
    rename = _check_rename(rename)
    say = log if log is not None else (lambda text: print(text, file=sys.stderr))
    if reader is not None and reader != "hats":
        from astromodal.data.readers import get_reader

        get_reader(reader)
    out = Path(out)
    inputs = (model_dir,) if isinstance(catalogue, Dataset) else (catalogue, model_dir)
    _check_out(out, out_format, inputs, overwrite)
    parts = out.with_name(out.name + ".parts")
    if parts.exists() and not parts.is_dir():
        raise ConfigError(f"{parts} is a file, not astromodal's folder of finished chunks: move it away "
                          "or choose another --out")
    check_reachable(scheduler)  # a tcp:// scheduler that does not answer: one line before any work
    predictor = load_predictor(model_dir, trust=trust, device=device)
    predictor.recalibrate = bool(recalibrate)
    applied = {name: rec.to_json() for name, rec in predictor.recalibration.items()} if recalibrate else {}
    if applied:
        say("recalibrated: " + ", ".join(f"{name} ({state['method']} {state['parameter']:.4g})"
                                         for name, state in applied.items())
            + " as fitted on held-out training rows (--no-recalibrate for the raw outputs)")
    linear = check_linear(predictor, linear)
    per_head = layout == "heads" or len(predictor.heads) > 1 or bool(linear)
    frame = None
    stream: _TableStream | None = None
    hats: _HatsSource | None = None
    chosen = None
    if isinstance(catalogue, Dataset):
        ds, is_table, where = catalogue, False, "the dataset"
    else:
        given = {"id_column": id_column, "ra": ra_column, "dec": dec_column}
        given = {k: v for k, v in given.items() if v is not None}
        where, path = str(catalogue), Path(catalogue)
        chosen = "hats" if reader == "hats" or (reader is None and is_hats(path)) else _reader_name(path, reader)
        if chosen == "hats":
            hats = _HatsSource.open(path, predictor, given, tuple(keep), where)
            say(f"HATS catalogue: {hats.n} objects in {len(hats.bounds)} partitions, one chunk each")
        else:
            stream = _TableStream.open(path, chosen, predictor, chunk_size, given, tuple(keep), where)
            if stream is None:
                ds, frame, is_table = _open_catalogue(path, reader, predictor.preparation, given, {}, chosen=chosen)
    if hats is not None:
        n, first = hats.n, hats.first
    elif stream is None:
        # a table reader has used --id-column/--ra-column/--dec-column already
        side = _side_columns(predictor, ds, where, tuple(keep), frame,
                             *((None, None, None) if is_table else (id_column, ra_column, dec_column)))
        del frame  # the kept columns are copied: the raw table is not held while predicting
        n, first = len(ds), Partition(ds, side)
    else:
        n, first = stream.n, stream.first
    if first.side.warning:
        say(f"warning: {first.side.warning}")
    plan = _column_plan(predictor, per_head, first.side, [c for c in PASS_THROUGH if c in first.dataset.columns],
                        rename, linear)
    positions = "ra" in {kind for kind, _ in plan.sources}
    if out_format == "hats" and not positions:
        raise ConfigError(f"--out-format hats: {where} gives no sky positions, and a HATS catalogue is partitioned "
                          "by them: name them with --ra-column/--dec-column, or choose --out-format file")
    for source in (stream, hats):
        if source is not None:
            source.positions = positions
    if per_head and not predictor.described:
        coded = [h.name for h in predictor.heads[1:] if h.kind == "categorical"]
        if coded:
            say(f"warning: {model_dir}/predictor.json (an older astromodal) names the classes of the primary head "
                f"only: head(s) {coded} are written with their class codes as labels")
    options: dict[str, Any] = {"keep": list(keep), "id_column": id_column, "positions": [ra_column, dec_column]}
    if per_head or rename:  # a one-head run without renames keeps the fingerprint it always had
        options["columns"] = plan.names
    if predictor.recalibration:  # a model without one keeps the fingerprint it always had
        options["recalibrate"] = bool(recalibrate)
    if hats is not None:  # one chunk per HATS partition, in the catalogue's pixel order
        bounds = hats.bounds
        options["chunks"] = len(bounds)
        fingerprint = _fingerprint(model_dir, catalogue, n, None, "hats", options)
    else:
        bounds = [(start, min(n, start + chunk_size)) for start in range(0, n, chunk_size)]
        fingerprint = _fingerprint(model_dir, catalogue, n, chunk_size, reader, options)
    created = _open_parts(parts, fingerprint, restart)
    files = [parts / _part_name(i) for i in range(len(bounds))]
    done = [f.exists() for f in files]
    for i, f in enumerate(files):
        if done[i]:
            _check_part(f, bounds[i][1] - bounds[i][0])
    if any(done):
        say(f"resuming: {sum(done)} of {len(bounds)} chunks done ({parts})")
    # each pending chunk as a task a worker can load on its own (the model is never part of it)
    if hats is not None:
        tasks = {i: hats.task(i) for i in range(len(bounds)) if not done[i]}
    elif stream is not None:
        tasks = {i: stream.task(i) for i in range(len(bounds)) if not done[i]}
    elif scheduler == "sequential":  # the rows of the dataset open here, with the whole catalogue's side columns
        tasks = {i: _RowsChunk(ds, side, i, a, b) for i, (a, b) in enumerate(bounds) if not done[i]}
    elif chosen == "hdf5":  # a worker opens the file itself (lazily) and reads its rows
        tasks = {i: _HDF5Chunk(str(Path(catalogue).resolve()), i, a, b, _slice_side(side, a, b))
                 for i, (a, b) in enumerate(bounds) if not done[i]}
    else:  # an in-memory dataset: each task carries its own rows
        tasks = {i: _GivenChunk(Partition(ds.subset(np.arange(a, b)), _slice_side(side, a, b), 0, i, a))
                 for i, (a, b) in enumerate(bounds) if not done[i]}
    task = progress.add_task(f"predict {out.name}", total=n) if progress is not None else None
    schema = pq.read_schema(files[done.index(True)]) if any(done) else None
    try:
        if scheduler == "sequential":
            if stream is not None and tasks:  # read the table once, from its first pending chunk on
                chunks: Any = stream.partitions(done)
            else:  # a HATS catalogue's first partition is read already
                chunks = (hats.first if hats is not None and i == 0 and hats.first is not None
                          else tasks[i].load(predictor) for i in sorted(tasks))
            del first
            todo = iter(chunks)
            for i, (start, stop) in enumerate(bounds):
                if not done[i]:
                    chunk = next(todo)
                    table = _conform(predict_partition(predictor, chunk, plan), schema, files, i)
                    schema = schema or table.schema
                    write_part(files[i], table)
                    del chunk, table
                if progress is not None:
                    progress.update(task, advance=stop - start)
        else:
            from astromodal.inference.dask_driver import Job, run_tasks

            del first
            if progress is not None:
                progress.update(task, advance=sum(b - a for (a, b), d in zip(bounds, done, strict=True) if d))
            job = Job(str(Path(model_dir).resolve()), fingerprint["model"]["sha256"], bool(trust), bool(recalibrate),
                      plan, str(parts.resolve()), device)
            run_tasks(job, tasks, scheduler, workers, schema, predictor=predictor,
                      advance=None if progress is None else (lambda rows: progress.update(task, advance=rows)), say=say)
        _unify_parts(files)
    except BaseException:
        if created and not any(f.exists() for f in files):  # nothing finished: leave nothing behind
            _remove_parts(parts, _plans(fingerprint))
        raise
    info = {"tool": "astromodal", "verb": "predict", "version": _version(), "model": str(model_dir),
            "catalogue": "(in-memory dataset)" if isinstance(catalogue, Dataset) else str(catalogue),
            "rows": n, "fingerprint": fingerprint, "heads": plan.head_columns(predictor),
            **({"recalibration": applied} if applied else {})}
    # checked again: an output a user put at OUT while the chunks ran is never replaced (the parts stay)
    _check_out(out, out_format, inputs, overwrite)
    if out_format == "file":
        _write_file(out, files, bounds, info, predictor, plan, None if files else (ds, side))
    elif out_format == "dataset":
        _write_dataset(out, files, bounds, info, inputs, overwrite)
    else:
        names = dict(zip(plan.sources, plan.names, strict=True))
        _write_hats(out, files, bounds, info, inputs, overwrite, names[("ra", None)], names[("dec", None)], hats)
    left = _remove_parts(parts, _plans(fingerprint))
    if left:
        say(f"warning: {parts} is left in place: it holds files astromodal did not write ({', '.join(left[:3])})")
    return out


#: what ``predict`` writes at OUT: one Parquet file, a Parquet dataset folder (one file per partition), or a
#: HATS catalogue (sky-partitioned Parquet, read with ``lsdb.read_hats``)
OUT_FORMATS = ("file", "dataset", "hats")


def _check_out(out: Path, out_format: str, inputs: tuple[Any, ...], overwrite: bool) -> None:
    """The output rule, before any work and again before the output is written: a file for ``file``, a folder
    (astromodal's, by its marker) for ``dataset`` and ``hats``."""
    if out_format == "file":
        check_output_file(out, inputs=inputs, overwrite=overwrite)
    else:
        check_output_dir(out, inputs=inputs, overwrite=overwrite, verb="predict")


def write_part(path: Path, table: pa.Table) -> None:
    """Write one finished chunk, atomically (a killed run never leaves half a part)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **_PART_OPTIONS)


def _unify_parts(files: list[Path]) -> None:
    """Every part with the column types of chunk 0's (the first chunk decides them, as in the sequential
    driver): a part of a Dask run (whose chunks run at once, each with its table's own types) or of a resumed
    run whose types differ is cast to them and written again, atomically; a cast that would change a value is
    one :class:`DataFormatError` line naming the chunk (see :func:`_conform`). Reads only the parts' footers
    when they agree."""
    schema = pq.read_schema(files[0]) if files else None
    for i, f in enumerate(files[1:], start=1):
        if not pq.read_schema(f).equals(schema, check_metadata=False):
            write_part(f, _conform(pq.read_table(f), schema, files, i))


def _plans(fingerprint: dict[str, Any]) -> tuple[int, ...]:
    return (_plan_size(fingerprint),)


def _checked_parts(files: list[Path], bounds: list[tuple[int, int]]) -> Any:
    """Each part's table, checked against the chunk plan (rows) and the first part (columns)."""
    schema = None
    for f, (a, b) in zip(files, bounds, strict=True):
        table = pq.read_table(f)
        _check_rows(f, table.num_rows, b - a)
        schema = schema or table.schema
        if not table.schema.equals(schema, check_metadata=False):
            raise DataFormatError(f"{f}: its columns differ from those of {files[0]}; rerun with "
                                  "--restart to predict every chunk afresh")
        yield table


def _write_file(out: Path, files: list[Path], bounds: list[tuple[int, int]], info: dict[str, Any],
                predictor: Predictor, plan: _Plan, empty: tuple[Dataset, _Side] | None) -> None:
    with atomic_path(out) as tmp_out:
        if files:
            schema = pq.read_schema(files[0]).with_metadata({b"astromodal": json.dumps(info).encode()})
            with pq.ParquetWriter(tmp_out, schema, use_dictionary=_text_columns(schema)) as writer:
                for table in _checked_parts(files, bounds):
                    writer.write_table(table)
        else:  # no objects (never streamed: a catalogue within one chunk is read whole)
            ds, side = empty
            try:
                table = _chunk_table(predictor, plan, ds.subset(np.arange(0)), side, 0)
            except Exception:  # a model that refuses an empty input: the id column alone
                table = pa.table({plan.names[0]: side.ids.slice(0, 0)})
            pq.write_table(table.replace_schema_metadata({b"astromodal": json.dumps(info).encode()}), tmp_out)


def _write_dataset(out: Path, files: list[Path], bounds: list[tuple[int, int]], info: dict[str, Any],
                   inputs: tuple[Any, ...], overwrite: bool) -> None:
    """OUT as a Parquet dataset folder: the parts as they are (``part-NNNNN.parquet``, in catalogue order), a
    ``_common_metadata`` file with the schema and the run's metadata, and astromodal's marker; built under a
    temporary name and moved into place whole (:func:`~astromodal.atomic.atomic_dir`). Readers of a Parquet
    dataset (pyarrow, pandas, Dask, Spark) skip the files whose names start with ``_`` or ``.``."""
    import os
    import shutil

    for _ in _checked_parts(files, bounds):
        pass
    with atomic_dir(out, overwrite=overwrite, inputs=inputs, verb="predict") as tmp:
        for f in files:
            try:
                os.link(f, tmp / f.name)  # the part itself, no copy (the parts folder is removed after)
            except OSError:
                shutil.copyfile(f, tmp / f.name)
        schema = (pq.read_schema(files[0]) if files else pa.schema([]))
        pq.write_metadata(schema.with_metadata({b"astromodal": json.dumps(info).encode()}), tmp / "_common_metadata")


def _write_hats(out: Path, files: list[Path], bounds: list[tuple[int, int]], info: dict[str, Any],
                inputs: tuple[Any, ...], overwrite: bool, ra: str, dec: str, source: _HatsSource | None = None) -> None:
    """OUT as a HATS catalogue (HEALPix-partitioned Parquet with its ``properties``, ``partition_info.csv`` and
    ``dataset/``, written by LSDB's ``to_hats``), so that the predictions can be cross-matched at scale with
    LSDB; ids keep their type (int64 or text). The folder follows the output rule (astromodal's marker, built
    under a temporary name; ``astromodal.json`` holds the run's metadata).

    From a HATS catalogue whose position columns keep their names, the output has the input's partitions:
    each part is its partition's predictions, given the partition's spatial index (``lsdb`` ``map_partitions``),
    so no more than a partition is in memory at once. Otherwise (a file catalogue, renamed positions) the
    predictions are partitioned afresh with ``lsdb.from_dataframe``, which holds them in memory once (about
    8 bytes a value: 10 million rows of 10 columns, 0.8 GB)."""
    try:
        import lsdb
    except ImportError:
        raise ConfigError("--out-format hats needs lsdb (pip install lsdb), which is not installed") from None
    if not files or sum(b - a for a, b in bounds) == 0:
        raise ConfigError(f"--out-format hats: no objects to write ({out}); a HATS catalogue cannot be empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        catalog = None
        if source is not None:
            base = _hats_catalog(source.path)
            about = base.hc_structure.catalog_info
            if (about.ra_column, about.dec_column) == (ra, dec):
                for _ in _checked_parts(files, bounds):  # every part checked before anything is written
                    pass
                by_pixel = {pixel: str(f) for pixel, f in zip(source.pixels, files, strict=True)}
                meta = pq.read_schema(files[0]).empty_table().to_pandas(types_mapper=pd.ArrowDtype)
                meta.index = pd.Index([], dtype=pd.ArrowDtype(pa.int64()), name=_HATS_INDEX)
                positions = lsdb.read_hats(source.path, columns=[about.ra_column])
                from functools import partial

                catalog = positions.map_partitions(partial(_hats_part, by_pixel), include_pixel=True, meta=meta)
        if catalog is None:
            frame = pa.concat_tables(list(_checked_parts(files, bounds))).to_pandas(types_mapper=pd.ArrowDtype)
            catalog = lsdb.from_dataframe(frame, ra_column=ra, dec_column=dec, catalog_name=out.name,
                                           margin_threshold=None)  # no margin cache: a plain catalogue
            del frame
        with atomic_dir(out, overwrite=overwrite, inputs=inputs, verb="predict") as tmp:
            build = tmp / "catalog"
            catalog.to_hats(build, catalog_name=out.name, as_collection=False, progress_bar=False)
            for entry in build.iterdir():
                entry.rename(tmp / entry.name)
            build.rmdir()
            (tmp / "astromodal.json").write_text(json.dumps(info))


def _hats_part(by_pixel: dict[tuple[int, int], str], frame: pd.DataFrame, pixel: Any) -> pd.DataFrame:
    """The predictions of one HATS partition (its part file), indexed by the partition's spatial index: the
    rows are the partition's, in its order."""
    part = pq.read_table(by_pixel[(int(pixel.order), int(pixel.pixel))]).to_pandas(types_mapper=pd.ArrowDtype)
    if len(part) != len(frame):
        raise DataFormatError(f"HATS partition {pixel}: {len(part)} predicted rows for {len(frame)} objects; rerun "
                              "with --restart")
    part.index = frame.index
    return part


#: how a part file is written: it is read once, by the final assembly, so it is stored plainly (no compression,
#: dictionary or statistics: writing it costs a third of the default)
_PART_OPTIONS: dict[str, Any] = {"compression": "none", "use_dictionary": False, "write_statistics": False}


def _text_columns(schema: pa.Schema) -> list[str]:
    """The columns the final file dictionary-encodes: text (labels, names), whose values repeat; ids, positions
    and probabilities are nearly all distinct, and trying a dictionary on them costs half the writing time."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _version() -> str:
    from astromodal import __version__

    return __version__


# ---------------------------------------------------------------------- ids, positions, kept columns
@dataclass
class _Side:
    """What is copied beside the predictions, for the whole catalogue (sliced per chunk)."""

    ids: pa.Array
    ra: np.ndarray | None
    dec: np.ndarray | None
    kept: dict[str, pa.Array]  # output name -> values
    warning: str | None = None
    kept_from: dict[str, str] = field(default_factory=dict)  # output name -> the --keep name it came from


@dataclass
class Partition:
    """Rows of a catalogue with what is copied beside their predictions: the unit of work of a driver.

    ``dataset``: the rows' model inputs; ``side``: ids, positions and kept columns, either the rows' own
    (``offset`` 0: a streamed table chunk) or the whole catalogue's, from which the rows are
    ``side[offset:offset + len(dataset)]``; ``index``: the partition's number (its part file
    ``part-<index>.parquet``); ``start``: its first row in the catalogue.
    """

    dataset: Dataset
    side: _Side
    offset: int = 0
    index: int = 0
    start: int = 0


def predict_partition(predictor: Predictor, chunk: Partition, plan: _Plan | None = None) -> pa.Table:
    """The output rows of one partition: ids, positions, copied columns and every prediction column.

    The one function every driver maps over partitions (today: the sequential, resumable driver of
    :func:`predict_catalogue`): it depends on nothing but its arguments, so a worker that holds a loaded
    ``predictor`` can run it on any partition. ``plan``: the run's output columns (renames, layout, kept
    columns; default: the model's own columns for this partition, as ``predict`` writes them without
    options). One row per row of ``chunk.dataset``, in order.
    """
    if plan is None:
        plan = _column_plan(predictor, len(predictor.heads) > 1, chunk.side,
                            [c for c in PASS_THROUGH if c in chunk.dataset.columns], {})
    return _chunk_table(predictor, plan, chunk.dataset, chunk.side, chunk.offset)


def _conform(table: pa.Table, schema: pa.Schema | None, files: Any, i: int) -> pa.Table:
    """``table`` with the column types of the run's first part (``schema``; None: this is the first).

    A streamed CSV chunk infers its types on its own rows: a kept column of integers with a gap reads as
    floats, one without any value as nulls; such a chunk is cast to the first part's types (a safe cast:
    no value changes). Columns that cannot be cast (integer ids in one chunk, text in another) are one
    :class:`DataFormatError` line naming the chunk and the columns.
    """
    if schema is None or table.schema.equals(schema, check_metadata=False):
        return table
    if table.schema.names != schema.names:
        raise DataFormatError(f"{files[i]}: chunk {i} gives the columns {table.schema.names} where the first chunk "
                              f"gave {schema.names}")
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        bad = [f"{a.name} ({a.type} here, {b.type} before)" for a, b in zip(table.schema, schema, strict=True)
               if a.type != b.type]
        raise DataFormatError(f"{files[i]}: the columns of chunk {i} have other types than those of the first chunk: "
                              f"{', '.join(bad)}; name the id column with --id-column, or use a Parquet or FITS "
                              "catalogue, whose column types are fixed") from None


@dataclass
class _TableStream:
    """A table file (CSV, Parquet, FITS) read ``chunk_size`` rows at a time, each chunk prepared as the whole
    table would be (the model's recorded preparation, or the table reader) into a :class:`Partition`.

    ``first``: partition 0, read at the start to lay out the output columns. Object ids are those the
    reader gives; where it gives row numbers (no id column) they count from the catalogue's first row, not
    the chunk's. ``positions``: the output has ra/dec (decided on the first chunk): a later chunk without
    any position gets NaN rather than a missing column.
    """

    path: Path
    n: int
    chunk_size: int
    hdu: int | str
    predictor: Predictor
    table_options: dict[str, Any]
    keep: tuple[str, ...]
    where: str
    row_numbers: bool
    first: Partition | None = None
    positions: bool = True

    @classmethod
    def open(cls, path: Path, chosen: str, predictor: Predictor, chunk_size: int, table_options: dict[str, Any],
             keep: tuple[str, ...], where: str) -> _TableStream | None:
        """The stream over ``path``, or None when it is not one table file of a streamed format or it holds
        no more than ``chunk_size`` rows (then it is read whole, one chunk either way)."""
        from astromodal.data.readers import tables

        if chosen != "table" or not path.is_file() or tables.table_format(path) not in tables.STREAMED_FORMATS:
            return None
        hdu = (predictor.preparation or {}).get("hdu", 1)
        n = tables.count_rows(path, hdu=hdu)
        if n <= chunk_size:
            return None
        frames = tables.iter_frames(path, chunk_size, hdu=hdu)
        head = next(iter(frames))
        frames.close()
        stream = cls(path, n, chunk_size, hdu, predictor, dict(table_options), keep, where,
                     _row_numbers(head, predictor.preparation, table_options.get("id_column")))
        stream.first = stream._partition(head, 0)
        return stream

    def _partition(self, frame: pd.DataFrame, i: int) -> Partition:
        return _frame_partition(self.predictor, frame, i, i * self.chunk_size, self.where, self.table_options,
                                self.keep, self.row_numbers, self.positions, self.hdu)

    def task(self, i: int) -> _StreamChunk:
        """Chunk ``i`` as a task a worker reads itself (the stream without its model)."""
        from dataclasses import replace

        return _StreamChunk(replace(self, predictor=None, first=None), i)

    def partitions(self, done: list[bool]) -> Any:
        """The partitions of the chunks not ``done``, in order, read from the first of them on."""
        todo = [i for i, d in enumerate(done) if not d]
        if not todo:
            return
        at = todo[0]
        if at == 0 and self.first is not None:
            first, self.first = self.first, None
            yield first
            at = 1
        self.first = None
        from astromodal.data.readers import tables

        for i, frame in enumerate(tables.iter_frames(self.path, self.chunk_size, hdu=self.hdu,
                                                     start=at * self.chunk_size), start=at):
            if not done[i]:
                yield self._partition(frame, i)


def _frame_partition(predictor: Predictor, frame: pd.DataFrame, i: int, start: int, where: str,
                     table_options: dict[str, Any], keep: tuple[str, ...], row_numbers: bool, positions: bool,
                     hdu: int | str = 1) -> Partition:
    """Partition ``i`` (first row ``start`` of the catalogue) from its raw table rows ``frame``, prepared as the
    whole table would be: the model's recorded preparation, or the table reader."""
    from astromodal.data.readers.tables import read_table

    try:
        if predictor.preparation:
            from astromodal.data.preparation import replay_preparation

            # never drop a row, whatever training did: the output has one row per input object
            ds = replay_preparation(predictor.preparation, frame, source_name=where,
                                    **{**table_options, "dropna": False})
        else:
            ds = read_table(frame, source_name=where, hdu=hdu, **table_options)
        side = _side_columns(predictor, ds, where, keep, frame, None, None, None)
    except (BadValueError, DataFormatError) as exc:
        raise type(exc)(f"{exc} (in the chunk of rows {start}..{start + len(frame) - 1}: its row numbers "
                        "count from the chunk's first row)") from None
    if row_numbers:
        side.ids = pa.array(np.arange(start, start + len(ds), dtype=np.int64))
    if positions and side.ra is None:
        side.ra = side.dec = np.full(len(ds), np.nan)
    return Partition(ds, side, 0, i, start)


def _slice_side(side: _Side, start: int, stop: int) -> _Side:
    """The side columns of rows ``start:stop`` alone (a task carries its own rows, not the catalogue's)."""
    n = stop - start
    return _Side(side.ids.slice(start, n), None if side.ra is None else side.ra[start:stop].copy(),
                 None if side.dec is None else side.dec[start:stop].copy(),
                 {k: v.slice(start, n) for k, v in side.kept.items()}, side.warning, dict(side.kept_from))


# ---------------------------------------------------------------------- chunks as tasks a worker loads itself
# Each is small and picklable (no model: a worker holds its own, see astromodal.inference.dask_driver), and
# ``load(predictor)`` gives the same Partition the sequential driver predicts.
@dataclass
class _GivenChunk:
    """A partition built already (an in-memory dataset's rows)."""

    partition: Partition

    @property
    def index(self) -> int:
        return self.partition.index

    def load(self, predictor: Predictor) -> Partition:
        return self.partition


@dataclass
class _RowsChunk:
    """Rows ``start:stop`` of a dataset open in this process, with the whole catalogue's side columns (the
    sequential driver: nothing is copied until the chunk is loaded)."""

    dataset: Dataset
    side: _Side
    index: int
    start: int
    stop: int

    def load(self, predictor: Predictor) -> Partition:
        return Partition(self.dataset.subset(np.arange(self.start, self.stop)), self.side, self.start, self.index,
                         self.start)


@dataclass
class _HDF5Chunk:
    """Rows ``start:stop`` of an astromodal HDF5 file, opened lazily by the worker; ``side``: their ids,
    positions and kept columns."""

    path: str
    index: int
    start: int
    stop: int
    side: _Side

    def load(self, predictor: Predictor) -> Partition:
        ds = Dataset.load(self.path)
        return Partition(ds.subset(np.arange(self.start, self.stop)), self.side, 0, self.index, self.start)


@dataclass
class _StreamChunk:
    """Chunk ``index`` of a streamed table file (``stream`` without its model), read by the worker."""

    stream: Any
    index: int

    def load(self, predictor: Predictor) -> Partition:
        from astromodal.data.readers import tables

        s = self.stream
        frames = tables.iter_frames(s.path, s.chunk_size, hdu=s.hdu, start=self.index * s.chunk_size)
        try:
            frame = next(iter(frames))
        finally:
            frames.close()
        return _frame_partition(predictor, frame, self.index, self.index * s.chunk_size, s.where, s.table_options,
                                s.keep, s.row_numbers, s.positions, s.hdu)


#: the files that mark a folder as a HATS catalogue (or a collection of them)
HATS_FILES = ("properties", "hats.properties", "collection.properties")


def is_hats(path: Path) -> bool:
    """``path`` is a HATS catalogue folder (or a HATS collection): it holds one of :data:`HATS_FILES`."""
    return path.is_dir() and any((path / name).is_file() for name in HATS_FILES)


_HATS_INDEX = "_healpix_29"  # the spatial index column HATS adds to every catalogue


@dataclass
class _HatsSource:
    """A HATS catalogue read with LSDB (``lsdb.read_hats``), one chunk per HATS partition in the catalogue's
    pixel order (``get_ordered_healpix_pixels``); row counts come from each partition's Parquet metadata, so
    the chunk plan is known before any row is read. Each partition's frame (its spatial index
    ``_healpix_29`` dropped, Arrow types as NumPy ones, as a Parquet table reads) is prepared as a table
    chunk."""

    path: str
    pixels: list[tuple[int, int]]
    bounds: list[tuple[int, int]]
    table_options: dict[str, Any]
    keep: tuple[str, ...]
    where: str
    row_numbers: bool = False
    positions: bool = True
    first: Partition | None = None

    @property
    def n(self) -> int:
        return self.bounds[-1][1] if self.bounds else 0

    @classmethod
    def open(cls, path: Path, predictor: Predictor, table_options: dict[str, Any], keep: tuple[str, ...],
             where: str) -> _HatsSource:
        catalog = _hats_catalog(str(path.resolve()))
        from hats.io import paths

        pixels = list(catalog.get_ordered_healpix_pixels())
        bounds, at = [], 0
        for p in pixels:
            rows = _pixel_rows(paths.pixel_catalog_file(catalog.hc_structure.catalog_base_dir, p))
            bounds.append((at, at + rows))
            at += rows
        if not pixels:
            raise DataFormatError(f"{where}: a HATS catalogue without partitions (no objects)")
        names = [c for c in catalog.hc_structure.original_schema.names if c != _HATS_INDEX]
        source = cls(str(path.resolve()), [(int(p.order), int(p.pixel)) for p in pixels], bounds,
                     dict(table_options), keep, where,
                     _row_numbers(pd.DataFrame(columns=names), predictor.preparation, table_options.get("id_column")))
        source.first = source.task(0).load(predictor)
        return source

    def task(self, i: int) -> _HatsChunk:
        """Partition ``i`` as a task (the source without its plan of partitions: a task stays small)."""
        from dataclasses import replace

        return _HatsChunk(replace(self, pixels=[], bounds=[], first=None), i, self.pixels[i], self.bounds[i])


@dataclass
class _HatsChunk:
    """HATS partition ``index`` (``pixel``: its order and pixel; ``rows``: its first and end row in the
    catalogue) of ``source``, read by the worker with LSDB."""

    source: _HatsSource
    index: int
    pixel: tuple[int, int]
    rows: tuple[int, int]

    def load(self, predictor: Predictor) -> Partition:
        s = self.source
        order, pixel = self.pixel
        part = _hats_catalog(s.path).get_partition(order, pixel)
        frame = part.to_delayed()[0].compute(scheduler="sync")  # this partition alone, in this worker
        frame = frame.reset_index(drop=frame.index.name == _HATS_INDEX)
        frame = frame.drop(columns=[c for c in frame.columns if c == _HATS_INDEX])
        frame = pa.Table.from_pandas(pd.DataFrame(frame), preserve_index=False).to_pandas()
        start, stop = self.rows
        if len(frame) != stop - start:
            raise DataFormatError(f"{s.where}: HATS partition (order {order}, pixel {pixel}) holds {len(frame)} rows "
                                  f"where its Parquet metadata says {stop - start}")
        return _frame_partition(predictor, frame, self.index, start, s.where, s.table_options, s.keep, s.row_numbers,
                                s.positions)


_HATS_CATALOGS: dict[str, Any] = {}


def _hats_catalog(path: str) -> Any:
    """``lsdb.read_hats(path)``, opened once per process (its metadata only: no rows are read)."""
    if path not in _HATS_CATALOGS:
        try:
            import lsdb
        except ImportError:
            raise ConfigError(f"{path} is a HATS catalogue: reading it needs lsdb (pip install lsdb), which is not "
                              "installed") from None

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _HATS_CATALOGS[path] = lsdb.read_hats(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{path}: not a readable HATS catalogue ({_first_line(exc)})") from None
    return _HATS_CATALOGS[path]


def _pixel_rows(path: Any) -> int:
    """Rows of one HATS partition, from its Parquet metadata (a file, or a folder of files)."""
    import pyarrow.dataset as pads

    p = Path(str(path))
    if p.is_file():
        return int(pq.read_metadata(p).num_rows)
    return int(pads.dataset(p, format="parquet").count_rows())


def _row_numbers(frame: pd.DataFrame, preparation: dict[str, Any] | None, id_column: str | None) -> bool:
    """True when the table reader gives row numbers as ids for a table with ``frame``'s columns: no
    ``--id-column``, no recorded id column of the model's preparation (after its renames) and none of
    :data:`~astromodal.data.readers.tables.ID_COLUMNS` present (the rule of
    :func:`~astromodal.data.readers.tables.read_table` and
    :func:`~astromodal.data.preparation.replay_preparation`)."""
    from astromodal.data.readers.tables import ID_COLUMNS, first_present

    if id_column is not None:
        return False
    names = [str(c) for c in frame.columns]
    lower = {c.lower() for c in names}
    for old, new in ((preparation or {}).get("rename") or {}).items():
        if str(old).lower() in lower:
            names.append(str(new))
    recorded = (preparation or {}).get("id_column")
    if recorded is not None and str(recorded).lower() in {c.lower() for c in names}:
        return False
    return first_present(pd.DataFrame(columns=names), ID_COLUMNS) is None


#: prediction column layouts: ``auto`` (a one-head model: its classic columns; several heads: per head), ``heads``
LAYOUTS = ("auto", "heads")


@dataclass(frozen=True)
class PredictionColumn:
    """One prediction column: its name (before ``rename``), its head and what it holds (``part``: ``label``,
    ``prob`` (``code``: the class's index into the head's class names), ``mean``, ``err`` (sqrt of the
    predicted variance), ``sigma`` (the one-head layout's ``<target>_sigma``, the same value),
    ``sigma_net`` (an ensemble's standard deviation of the member means), or for a head in dex given to
    ``linear`` ``lin_mean`` (``10**mean``), ``lin_err`` and ``lin_sigma_net`` (``ln(10) 10**mean`` times
    ``err`` / ``sigma_net``: first-order propagation))."""

    name: str
    head: str
    part: str
    code: int | None = None


def prediction_columns(predictor: Predictor, per_head: bool | None = None,
                       linear: dict[str, str] | None = None) -> list[PredictionColumn]:
    """The prediction columns ``predict_catalogue`` writes for ``predictor``, in output order.

    ``per_head`` (default: the model has several heads): True writes every head (class head: ``<head>``
    label, then ``prob_<class>``, or ``prob_<head>_<class>`` when the model has two or more class heads;
    Gaussian head: ``<head>``, ``<head>_err``; point head: ``<head>``; an ensemble adds
    ``<head>_sigma_net`` to each regression head); False the one-head columns every version wrote
    (``prob_<class>`` ..., ``label``; ``<target>`` and, with a variance, ``<target>_sigma``).
    ``linear`` ``{head: name}`` (per-head layout): after a regression head in dex (a log10 quantity), also
    ``<name>`` = 10**value, ``<name>_err`` and ``<name>_sigma_net`` (MESCR's Table A2 radius in Rsun from a
    ``log_radius`` head).
    """
    if per_head is None:
        per_head = len(predictor.heads) > 1
    if not per_head:
        t = predictor.target
        if predictor.task == "classification":
            return [*(PredictionColumn(f"prob_{c}", t, "prob", k) for k, c in enumerate(predictor.class_names)),
                    PredictionColumn("label", t, "label")]
        return [PredictionColumn(t, t, "mean"), *([PredictionColumn(f"{t}_sigma", t, "sigma")]
                                                  if predictor.gives_sigma else [])]
    n_class = sum(h.kind == "categorical" for h in predictor.heads)
    cols: list[PredictionColumn] = []
    for h in predictor.heads:
        cols.append(PredictionColumn(h.name, h.name, "label" if h.kind == "categorical" else "mean"))
        if h.kind == "categorical":
            prefix = "prob_" if n_class == 1 else f"prob_{h.name}_"
            cols += [PredictionColumn(f"{prefix}{c}", h.name, "prob", k) for k, c in enumerate(h.class_names)]
            continue
        if h.kind == "gaussian":
            cols.append(PredictionColumn(f"{h.name}_err", h.name, "err"))
        if predictor.ensemble:
            cols.append(PredictionColumn(f"{h.name}_sigma_net", h.name, "sigma_net"))
        if h.name in (linear or {}):
            name = linear[h.name]
            cols.append(PredictionColumn(name, h.name, "lin_mean"))
            if h.kind == "gaussian":
                cols.append(PredictionColumn(f"{name}_err", h.name, "lin_err"))
            if predictor.ensemble:
                cols.append(PredictionColumn(f"{name}_sigma_net", h.name, "lin_sigma_net"))
    return cols


def check_linear(predictor: Predictor, linear: dict[str, str] | None) -> dict[str, str]:
    """``--linear HEAD=NAME`` checked against the model: each a regression head (one ConfigError line
    otherwise, listing the regression heads)."""
    regression = [h.name for h in predictor.heads if h.task == "regression"]
    for head in linear or {}:
        if head not in regression:
            raise ConfigError(f"--linear {head}={linear[head]}: {head!r} is not a regression head of this model "
                              f"(its regression heads: {', '.join(regression) or 'none'})")
    return dict(linear or {})


@dataclass
class _Plan:
    """Every output column in order: where its values come from and its name after ``rename``."""

    sources: list[tuple[str, Any]]  # ("id" | "ra" | "dec" | "pass" | "pred" | "kept", key)
    names: list[str]
    predictions: list[PredictionColumn]
    per_head: bool

    def head_columns(self, predictor: Predictor) -> list[dict[str, Any]]:
        """Per head: name, kind, unit, class names and its output columns (for the file's metadata)."""
        final = {key: name for (kind, key), name in zip(self.sources, self.names, strict=True) if kind == "pred"}
        return [{**h.as_json(), "columns": [final[i] for i, c in enumerate(self.predictions) if c.head == h.name]}
                for h in predictor.heads]


def _check_rename(rename: dict[str, str] | None) -> dict[str, str]:
    out = {}
    for old, new in (rename or {}).items():
        old, new = str(old).strip(), str(new).strip()
        if not old or not new:
            raise ConfigError(f"--rename {old}={new}: give OLD=NEW, both names non-empty")
        out[old] = new
    return out


def parse_renames(items: list[str] | tuple[str, ...] | None, option: str = "--rename",
                  example: str = "class=spectral_class") -> dict[str, str]:
    """``["id=objid", "class=spectral_class"]`` -> ``{"id": "objid", ...}``; a malformed or repeated item is
    one :class:`ConfigError` line naming ``option``."""
    out: dict[str, str] = {}
    for item in items or ():
        old, sep, new = str(item).partition("=")
        if not sep or not old.strip() or not new.strip():
            raise ConfigError(f"{option} {item!r}: give OLD=NEW (e.g. {option} {example})")
        if old.strip() in out:
            raise ConfigError(f"{option} {old.strip()!r} given twice ({out[old.strip()]!r} and {new.strip()!r})")
        out[old.strip()] = new.strip()
    return out


def _column_plan(predictor: Predictor, per_head: bool, side: _Side, passthrough: list[str],
                 rename: dict[str, str], linear: dict[str, str] | None = None) -> _Plan:
    """The output columns, renamed; an unknown rename or two columns with one name: one ConfigError line."""
    predictions = prediction_columns(predictor, per_head, linear)
    entries: list[tuple[str, str, tuple[str, Any]]] = [("id", "the object ids", ("id", None))]
    if side.ra is not None and side.dec is not None:
        entries += [("ra", "the sky positions", ("ra", None)), ("dec", "the sky positions", ("dec", None))]
    entries += [(c, "a catalogue column always copied", ("pass", c)) for c in passthrough]
    entries += [(c.name, f"head {c.head!r}", ("pred", i)) for i, c in enumerate(predictions)]
    entries += [(name, f"--keep {side.kept_from[name]!r}", ("kept", name)) for name in side.kept]
    names = [base for base, _, _ in entries]
    for old, new in rename.items():
        at = next((i for i, (base, _, _) in enumerate(entries) if base == old), None)
        if at is None:
            raise ConfigError(f"--rename {old}={new}: the output has no column {old!r}; its columns: "
                              f"{', '.join(b for b, _, _ in entries)}")
        names[at] = new
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name not in seen:
            seen[name] = i
            continue
        (base_a, what_a, src_a), (base_b, what_b, src_b) = entries[seen[name]], entries[i]
        if src_b[0] == "kept" and src_a[0] != "kept" and base_a == base_b and names[seen[name]] == base_a:
            raise ConfigError(f"{what_b}: the output has its own column {name!r} ({what_a}); leave it out, or give "
                              f"the output's column another name with --rename {base_a}=NEW")
        raise ConfigError(f"two output columns would be named {name!r} ({what_a}; {what_b}): give one another "
                          "name with --rename OLD=NEW")
    return _Plan([src for _, _, src in entries], names, predictions, per_head)


def _as_ids(values: Any, where: str, name: str = "id") -> pa.Array:
    """Ids as int64 (integers, or floats holding exact integers: :func:`as_int_ids`) or text; never floats."""
    if isinstance(values, pd.Series):
        if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
            missing = values.isna().to_numpy()
            if missing.any():
                raise BadValueError(f"{where}: {name}: missing id at row {int(np.flatnonzero(missing)[0])}; ids must be "
                                    "integers or text without gaps: name another column with --id-column")
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind in "iubf":  # floats only when each holds an exact integer in its own float type
        ids = as_int_ids(arr, where, name, hint="; name another column with --id-column")
        return pa.array(ids, pa.uint64() if ids.dtype == np.uint64 else pa.int64())
    return pa.array([None if _missing(v) else (v.decode() if isinstance(v, bytes) else str(v)) for v in arr],
                    pa.string())


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT


def _as_column(values: Any) -> pa.Array:
    """Any column with its own dtype: numbers stay numbers (int64 stays int64), text stays text."""
    if isinstance(values, pd.Series):
        try:
            arr = pa.Array.from_pandas(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: as text
            return _as_ids(values.astype(object).to_numpy(), "the catalogue", "column")
        return arr.cast(pa.string()) if pa.types.is_large_string(arr.type) else arr
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return _as_ids(arr, "the catalogue", "column")
    return pa.array(arr)


def _lookup(frame: pd.DataFrame, name: str) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns}
    return name if name in frame.columns else lower.get(name.lower())


def _side_columns(predictor: Predictor, ds: Dataset, where: str, keep: tuple[str, ...], frame: pd.DataFrame | None,
                  id_column: str | None, ra_column: str | None, dec_column: str | None) -> _Side:
    """Ids, positions and kept columns for the whole catalogue (``where`` names it in messages).

    ``id_column``/``ra_column``/``dec_column`` name dataset columns (None for a table, whose reader has used
    them already); ``frame``: the raw table ``ds`` was read from, where kept columns are found first, with
    their own dtypes.
    """
    # ---- ids
    if id_column is not None:
        if id_column in ds.columns:
            values = ds.columns[id_column].values.read()
        elif id_column in ds.targets and ds.targets[id_column].kind == "regression":
            values = ds.targets[id_column].values.read()
        else:
            raise BadValueError(f"--id-column {id_column!r}: not a column of {where}; known: {list(ds.columns)}")
        ids = _as_ids(values, where, f"id column {id_column!r}")
    else:
        ids = _as_ids(ds.ids.read(), where, "id")
    # ---- positions
    warning = None
    if ra_column is not None and dec_column is not None:
        for name in (ra_column, dec_column):
            if name not in ds.columns:
                raise BadValueError(f"--ra-column/--dec-column {name!r}: not a column of {where}; "
                                    f"known: {list(ds.columns)}")
        ra, dec = (_degrees(ds.columns[c].values.read(), c, where) for c in (ra_column, dec_column))
    else:
        ra, dec = ds.ra.read().astype(np.float64), ds.dec.read().astype(np.float64)
        if len(ra) and np.isnan(ra).all() and np.isnan(dec).all():
            ra = dec = None
            warning = (f"{where} has no sky positions (no ra/dec, ra_gaia/dec_gaia, RA_ICRS/DE_ICRS, RAJ2000/DEJ2000, "
                       "... column): the output has no ra/dec columns; name them with --ra-column/--dec-column")
    # ---- kept columns
    if frame is not None and keep:
        if len(frame) != len(ds):
            raise DataFormatError(f"{where}: the reader kept {len(ds)} of the table's {len(frame)} rows, so the "
                                  "--keep columns cannot be matched to rows")
    known = list(dict.fromkeys([*(map(str, frame.columns) if frame is not None else ()), *ds.columns, *ds.targets]))
    heads = {h.name for h in predictor.heads}
    kept: dict[str, pa.Array] = {}
    kept_from: dict[str, str] = {}
    for name in _expand_keep(keep, known, where):
        values: Any = None
        if name in ds.targets:
            t = ds.targets[name]
            values = t.labels() if t.kind == "class" else t.values.read()
        elif frame is not None and _lookup(frame, name) is not None:
            values = frame[_lookup(frame, name)]
        elif name in ds.columns:
            values = ds.columns[name].values.read()
        else:
            raise BadValueError(f"--keep {name!r}: not a column or target of {where}; known: {known}")
        out_name = f"true_{name}" if name in heads else name  # the truth beside its prediction
        if out_name in kept:  # a catalogue column "true_<head>" kept beside the head's own truth
            raise ConfigError(f"--keep {name!r} and --keep {kept_from[out_name]!r} would both be written as "
                              f"{out_name!r}: keep one of them")
        kept[out_name] = _as_column(values)
        kept_from[out_name] = name
    return _Side(ids, ra, dec, kept, warning, kept_from)


def _expand_keep(keep: tuple[str, ...], known: list[str], where: str) -> list[str]:
    """``--keep`` names in order, each once; a name with ``*``, ``?`` or ``[`` stands for every known column
    it matches (case-sensitive, in the catalogue's order) and must match at least one."""
    from fnmatch import fnmatchcase

    out: list[str] = []
    for name in keep:
        if any(ch in name for ch in "*?["):
            matched = [k for k in known if fnmatchcase(k, name)]
            if not matched:
                raise BadValueError(f"--keep {name!r}: matches no column or target of {where}; known: {known}")
            out += matched
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def _degrees(values: Any, name: Any, where: str) -> np.ndarray:
    try:
        return pd.to_numeric(pd.Series(np.asarray(values)), errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise BadValueError(f"{where}: position column {name!r} holds non-numbers (degrees expected)") from None


def _chunk_table(predictor: Predictor, plan: _Plan, chunk: Dataset, side: _Side, start: int) -> pa.Table:
    n = len(chunk)
    preds = _prediction_arrays(predictor, plan, chunk)
    arrays: list[Any] = []
    for kind, key in plan.sources:
        if kind == "id":
            arrays.append(side.ids.slice(start, n))
        elif kind in ("ra", "dec"):
            arrays.append(pa.array((side.ra if kind == "ra" else side.dec)[start:start + n]))
        elif kind == "pass":
            arrays.append(pa.array(chunk.columns[key].values.read()))
        elif kind == "pred":
            arrays.append(preds[key])
        else:
            arrays.append(side.kept[key].slice(start, n))
    return pa.Table.from_arrays(arrays, names=plan.names)


def _prediction_arrays(predictor: Predictor, plan: _Plan, chunk: Dataset) -> list[pa.Array]:
    """The values of ``plan.predictions`` on ``chunk``, in that order: probabilities float32, labels text,
    means and uncertainties float64."""
    n = len(chunk)
    if not plan.per_head:  # the one-head columns, computed exactly as every version did
        got: dict[str, Any] = {}
        if predictor.task == "classification":
            proba = predictor.predict_proba(chunk)
            from astromodal.evaluation.metrics import decide

            labels = np.asarray(predictor.class_names, dtype=object)[decide(proba, predictor.threshold())]
            # no label (null) for an object whose probabilities are not numbers, never class 0 by argmax
            labels[~np.isfinite(np.asarray(proba, dtype=np.float64)).all(axis=1)] = None
            got["label"] = labels
            got.update({k: proba[:, k].astype(np.float32) for k in range(len(predictor.class_names))})
        elif predictor.gives_sigma:
            got["mean"], got["sigma"] = predictor.predict_mean_sigma(chunk)
        else:
            got["mean"] = np.asarray(predictor.predict(chunk), dtype=np.float64).reshape(n, -1)[:, 0]
        return [pa.array(got[c.code if c.part == "prob" else c.part], pa.string() if c.part == "label" else None)
                for c in plan.predictions]
    heads = {h.name: h for h in predictor.heads}
    per_head: dict[str, dict[str, Any]] = {}
    if n == 0:  # typed empty columns, without asking the model about no objects
        for h in predictor.heads:
            per_head[h.name] = {"label": [], "prob": np.zeros((0, len(h.class_names)), np.float32),
                                "mean": np.zeros(0), "err": np.zeros(0), "sigma_net": np.zeros(0)}
    else:
        for name, p in predictor.predict_heads(chunk).items():
            per_head[name] = _head_values(heads[name], p, n)
    out = []
    for c in plan.predictions:
        values = per_head[c.head]
        if c.part == "label":
            out.append(pa.array(values["label"], pa.string()))
        elif c.part == "prob":
            out.append(pa.array(values["prob"][:, c.code]))
        elif c.part.startswith("lin_"):
            out.append(pa.array(_linear(values, c.part[4:])))
        else:
            out.append(pa.array(np.asarray(values[c.part], dtype=np.float64)))
    return out


def _linear(values: dict[str, Any], part: str) -> np.ndarray:
    """A dex head's value as the linear quantity: ``10**mean``, or an uncertainty propagated to first order,
    ``ln(10) 10**mean sigma`` (``part`` ``mean``, ``err`` or ``sigma_net``)."""
    lin = 10.0 ** np.asarray(values["mean"], dtype=np.float64)
    return lin if part == "mean" else np.log(10.0) * lin * np.asarray(values[part], dtype=np.float64)


def _head_values(head: HeadInfo, p: Any, n: int) -> dict[str, Any]:
    """One head's prediction as column values: labels and probabilities over the head's class names
    (a class the model never predicts: probability 0), or the mean, the 1-sigma (sqrt of the variance,
    NaN where none is predicted) and an ensemble's sigma_net (NaN for a single model)."""
    kind = getattr(p, "kind", None)
    if head.kind == "categorical":
        if kind != "categorical":
            raise BadValueError(f"head {head.name!r}: the model gives a {kind} prediction where predictor.json records "
                                "a class head")
        where = np.array([_class_index(head, code) for code in np.asarray(p.classes).tolist()], dtype=np.int64)
        proba = np.zeros((n, len(head.class_names)), np.float32)
        proba[:, where] = np.asarray(p.proba, dtype=np.float32)
        # no label (null) for an object whose probabilities are not numbers, never class 0 by argmax
        known = np.isfinite(proba).all(axis=1)
        labels = [head.class_names[i] if ok else None for i, ok in zip(where[_decide_rows(p)], known, strict=True)]
        return {"label": labels, "prob": proba}
    if kind != "gaussian":
        raise BadValueError(f"head {head.name!r}: the model gives a {kind} prediction where predictor.json records "
                            f"a {head.kind} head")
    mean = np.asarray(p.mean, dtype=np.float64).reshape(n)
    var = np.asarray(p.var, dtype=np.float64).reshape(n)
    net = np.full(n, np.nan) if p.sigma_net is None else np.asarray(p.sigma_net, dtype=np.float64).reshape(n)
    return {"mean": mean, "err": np.sqrt(np.clip(var, 0.0, None)), "sigma_net": net}


def _decide_rows(p: Any) -> np.ndarray:
    """Row-wise class position of a Categorical (its binary ``threshold`` included), as indices into ``p.classes``."""
    from astromodal.training.predictions import decide

    return decide(p.proba, p.threshold)


def _class_index(head: HeadInfo, code: Any) -> int:
    """The index into ``head.class_names`` of a class code the model predicts."""
    if isinstance(code, (int, np.integer)) and 0 <= int(code) < len(head.class_names):
        return int(code)
    if isinstance(code, float) and code.is_integer() and 0 <= int(code) < len(head.class_names):
        return int(code)
    if str(code) in head.class_names:
        return head.class_names.index(str(code))
    raise BadValueError(f"head {head.name!r}: the model predicts class {code!r}, not one of its class names "
                        f"{list(head.class_names)}")


# ---------------------------------------------------------------------- the parts folder and its fingerprint
def _file_state(path: Path) -> dict[str, Any]:
    """Path, size and modification time of a catalogue file (totals for a folder or a glob's files)."""
    if path.is_dir() or not path.exists():
        import glob

        files = (sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                 else sorted(Path(f) for f in glob.glob(str(path), recursive=True) if Path(f).is_file()))
        stats = [f.stat() for f in files]
        return {"path": str(path.resolve() if path.exists() else path.absolute()), "files": len(files),
                "size": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


#: the files that make a saved model: descriptions and weights (other files in a model folder, such as
#: predictions written there, do not change its identity)
_MODEL_FILES = ("model.json", "ensemble.json", "predictor.json")
_WEIGHT_SUFFIXES = (".pt", ".joblib", ".pkl", ".safetensors", ".npz")


def model_digest(model_dir: str | Path) -> str:
    """SHA-256 over a model folder's descriptions and weight files, members included (names and contents;
    size and modification time for files over 256 MiB)."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    files = [p for p in model_dir.rglob("*")
             if p.is_file() and (p.name in _MODEL_FILES or p.suffix in _WEIGHT_SUFFIXES)
             and not any(q.name.endswith(".parts") for q in p.relative_to(model_dir).parents)]
    for f in sorted(files):
        h.update(str(f.relative_to(model_dir)).encode() + b"\0")
        st = f.stat()
        if st.st_size > 256 << 20:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def _fingerprint(model_dir: str | Path, catalogue: Any, n: int, chunk_size: int, reader: str | None,
                 options: dict[str, Any]) -> dict[str, Any]:
    """What the finished chunks are made from: equal fingerprints make the same output, row for row."""
    if isinstance(catalogue, Dataset):
        cat: dict[str, Any] = {"dataset": "in memory", "sha256": dataset_digest(catalogue)}
    else:
        cat = _file_state(Path(catalogue))
    cat["rows"] = n
    return {"version": _FINGERPRINT_VERSION, "model": {"path": str(Path(model_dir).resolve()),
                                                        "sha256": model_digest(model_dir)},
            "catalogue": cat, "chunk_size": chunk_size, "reader": reader, **options}


#: bytes of one block read at a time while digesting a dataset
_DIGEST_BLOCK = 16 << 20


def dataset_digest(ds: Dataset) -> str:
    """SHA-256 over every value of a dataset (ids, positions, spectra, images, columns, targets: names,
    dtypes, shapes, units, class names and the values), read ``_DIGEST_BLOCK`` bytes at a time, so two
    datasets with equal digests give the same predictions row for row."""
    from astromodal.data.arrays import as_view

    h = hashlib.sha256()

    def feed(name: str, values: Any, *about: Any) -> None:
        if values is None:
            h.update(f"{name}:none\0".encode())
            return
        view = as_view(values)
        h.update(json.dumps([name, view.dtype.str, list(view.shape), *map(str, about)]).encode() + b"\0")
        n = len(view)
        row_bytes = max(1, int(np.prod(view.shape[1:], dtype=np.int64)) * view.dtype.itemsize)
        step = max(1, _DIGEST_BLOCK // row_bytes)
        for start in range(0, n, step):
            block = np.ascontiguousarray(view.read(slice(start, min(n, start + step))))
            if block.dtype.kind == "O":  # text (or mixed) objects: their text, one per value
                h.update("\0".join(f"{type(v).__name__}:{v}" for v in block.ravel().tolist()).encode() + b"\0")
            else:
                h.update(block.tobytes())
        h.update(b"\1")

    feed("ids", ds.ids)
    feed("ra", ds.ra)
    feed("dec", ds.dec)
    for name, sp in ds.spectra.items():
        about = (sp.instrument, sp.unit)
        feed(f"spectra[{name}].flux", sp.flux, *about)
        feed(f"spectra[{name}].wavelength", sp.wavelength)
        feed(f"spectra[{name}].ivar", sp.ivar)
        feed(f"spectra[{name}].mask", sp.mask)
    for name, im in ds.images.items():
        feed(f"images[{name}]", im.pixels, list(im.bands), im.pixel_scale, im.unit)
    for name, col in ds.columns.items():
        feed(f"columns[{name}]", col.values, col.unit)
    for name, t in ds.targets.items():
        feed(f"targets[{name}]", t.values, t.kind, list(t.class_names), t.unit)
    return h.hexdigest()


_WHAT = {"version": "astromodal's chunk layout", "model": "the model", "catalogue": "the catalogue",
         "chunk_size": "--chunk-size", "reader": "--reader", "keep": "--keep", "id_column": "--id-column",
         "positions": "--ra-column/--dec-column", "columns": "the output columns (heads, --layout, --rename)"}


def _describe(key: str, value: Any) -> str:
    if key == "model" and isinstance(value, dict):
        return f"{value.get('path')} ({str(value.get('sha256'))[:12]})"
    if key == "catalogue" and isinstance(value, dict):
        digest = f" ({str(value['sha256'])[:12]})" if "sha256" in value else ""
        return f"{value.get('path', 'a dataset')}{digest}, {value.get('rows')} rows"
    return json.dumps(value)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for key in dict.fromkeys([*new, *old]):
        a, b = old.get(key), new.get(key)
        if key == "model" and isinstance(a, dict) and isinstance(b, dict):
            a, b = a.get("sha256"), b.get("sha256")  # a moved model folder is the same model
            if a == b:
                continue
            a, b = old.get(key), new.get(key)
        elif a == b:
            continue
        out.append(f"{_WHAT.get(key, key)}: {_describe(key, a)} there, {_describe(key, b)} now")
    return out


def _part_name(i: int) -> str:
    return f"part-{i:05d}.parquet"


def _plan_size(fingerprint: Any) -> int:
    """The number of chunks in the plan a fingerprint records (0 when it records none)."""
    if isinstance(fingerprint, dict) and isinstance(fingerprint.get("chunks"), int):  # a HATS catalogue's partitions
        return max(0, int(fingerprint["chunks"]))
    try:
        rows, size = int(fingerprint["catalogue"]["rows"]), int(fingerprint["chunk_size"])
    except (KeyError, TypeError, ValueError):
        return 0
    return -(-rows // size) if rows > 0 and size > 0 else 0


def _in_plan(name: str, plans: tuple[int, ...]) -> bool:
    """``name`` is the part file of a chunk of one of the chunk plans (given by their numbers of chunks)."""
    digits = name[len("part-"):-len(".parquet")]
    if not (name.startswith("part-") and name.endswith(".parquet") and digits.isdigit()):
        return False
    return name == _part_name(int(digits)) and any(int(digits) < n for n in plans)


def _ours(p: Path, plans: tuple[int, ...]) -> bool:
    """A file this tool writes in a parts folder: the fingerprint, a chunk of one of the chunk ``plans``
    (numbers of chunks), or a temporary of either (``.NAME.XXXXXXXX.tmp``, see :func:`atomic_path`)."""
    name = p.name
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:-len(".tmp")].rpartition(".")[0]
    return p.is_file() and (name == FINGERPRINT or _in_plan(name, plans))


def _remove_parts(parts: Path, plans: tuple[int, ...]) -> list[str]:
    """Delete a parts folder's own files (:func:`_ours`) and the folder; anything else in it is left (and
    the folder too). The names left."""
    if not parts.is_dir():
        return []
    left = []
    for p in parts.iterdir():
        if _ours(p, plans):
            p.unlink(missing_ok=True)
        else:
            left.append(p.name)
    try:
        parts.rmdir()
    except OSError:
        pass
    return sorted(left)


def _read_fingerprint(parts: Path) -> dict[str, Any] | None:
    try:
        old = json.loads((parts / FINGERPRINT).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return old if isinstance(old, dict) else None


def _open_parts(parts: Path, fingerprint: dict[str, Any], restart: bool) -> bool:
    """Create ``parts`` with ``fingerprint``, or check the one there; True when created by this call.

    Only the fingerprint, the chunks of this run's plan and of the plan the folder's own fingerprint records
    (and their temporaries) are astromodal's: any other file (``part-extra.parquet``, a chunk number beyond
    both plans) is refused, with or without ``restart``, and never deleted.
    """
    if parts.is_dir():
        entries = list(parts.iterdir())
        old = _read_fingerprint(parts)
        plans = (_plan_size(fingerprint), *((_plan_size(old),) if old is not None else ()))
        foreign = [p.name for p in entries if not _ours(p, plans)]
        if foreign:
            raise ConfigError(f"{parts} holds files astromodal did not write ({', '.join(sorted(foreign)[:3])}); "
                              "it is never emptied: move them away or choose another --out")
        if restart:
            _remove_parts(parts, plans)
        elif entries:
            if old is None:
                raise ConfigError(f"{parts} holds finished chunks without a readable fingerprint (an older astromodal "
                                  "or another run): rerun with --restart to discard them and start afresh")
            diff = _differences(old, fingerprint)
            if diff:
                raise ConfigError(f"{parts} holds finished chunks of another run ({'; '.join(diff)}): rerun with "
                                  "--restart to discard them and start afresh, or choose another --out")
            return False
    parts.mkdir(parents=True, exist_ok=True)
    write_json(parts / FINGERPRINT, fingerprint)
    return True


def _check_rows(f: Path, got: int, expected: int) -> None:
    if got != expected:
        raise DataFormatError(f"{f}: {got} rows where this run's chunk plan has {expected}; rerun with --restart "
                              "to predict every chunk afresh")


def _check_part(f: Path, expected: int) -> None:
    try:
        rows = pq.read_metadata(f).num_rows
    except (OSError, pa.ArrowException) as exc:
        raise DataFormatError(f"{f}: not a readable chunk ({_first_line(exc)}); rerun with --restart") from None
    _check_rows(f, rows, expected)
