"""One estimator front for scikit-learn and neural models, so that a benchmark treats them alike.

Every estimator has ``fit(X, y, X_val=None, y_val=None) -> self``, ``predict(X)``, ``predict_proba(X)``
(``(N, K)``, two columns for a binary task), ``save(folder)``, ``load(folder)`` and the attributes
``task`` ("classification" or "regression") and ``classes_`` (the class codes seen in training, in
the order of the probability columns). ``X`` is an array or a dict of arrays keyed by model input name
("spectrum" ``(N, L)``, "image" ``(N, C, H, W)``, "context" ``(N, 2)``, "columns" ``(N, F)``).

* :class:`SklearnEstimator` flattens the inputs side by side into one matrix and fits a scikit-learn
  ``Pipeline(StandardScaler, model)``; the scaler sees the training data only. It is saved as
  ``model.json`` + ``model.joblib``. A joblib file is a pickle, and unpickling a file can run any code:
  it is a *trusted local artefact* (``"trusted_pickle": true`` in ``model.json``), and loading it needs
  ``trust=True`` (``--trust`` on the command line), which you should give only for files you made.
* :class:`TorchEstimator` builds a registered neural model from the input shapes seen at fit time,
  standardises the "columns" and "context" inputs (mean and standard deviation of the training
  objects), trains it with :class:`~astromodal.training.trainer.Trainer`, and turns logits into
  probabilities (sigmoid for one output, softmax otherwise). It is saved as ``model.pt`` (a plain
  ``state_dict``, read with ``weights_only=True``: nothing is unpickled) + ``model.json``.
  A regression target is standardised too: the network learns ``y' = (y - mean) / std`` with the mean
  and standard deviation of the TRAINING targets, and every prediction is turned back into the
  target's unit (mean ``mu = mu' std + mean``, Gaussian-head variance ``var = var' std^2``). The two
  numbers are saved in ``model.json`` (``target_normalisation``); folders saved before it existed load
  as mean 0, std 1. The training history's losses are in the standardised units.

Several targets (heads): ``fit(X, {target: y})`` (or ``heads={target: spec}`` at construction, spec as
:func:`~astromodal.training.heads.make_head`). Every estimator answers ``predict_heads(X) -> {head:
Categorical | Gaussian}`` and ``head_names`` (the first is the primary head; a single target is named
by ``target_name``, default ``"target"``); ``predict``, ``predict_proba``, ``predict_mean_var``, ``task``
and ``classes_`` read the primary head. A row whose target is NaN (regression) or -1 / missing (class)
counts for nothing in that head: a network's head loss skips it, a scikit-learn head's pipeline is
fitted without it. A network with several heads is built with ``n_outputs={head: n}`` and returns a
dict; its heads' states (classes, target mean / std) are saved in ``model.json`` under ``heads``
(folders without that key are single-target folders and load as before). Inputs named in
``normalise`` are standardised with training statistics: a 2-D ``(N, F)`` input per feature, an
``(N, C, ...)`` input (cutouts, multi-channel spectra) per band. A network trained by an objective
without targets (``objective="contrastive"``: ``fit(X)``) gives its embeddings by
``transform(X) -> {output: Embedding}``.

Regression estimators all have ``predict_mean_var(X) -> (mean, var)`` in the target's unit and
``gives_variance``: ``var`` is the predicted variance of a Gaussian head (``loss: gaussian_nll``), or
NaN for every object when the model predicts no uncertainty (scikit-learn regressors, a network
trained with the MSE loss): an unknown uncertainty is never reported as zero.

:func:`make_estimator` picks the kind from the registry family; :func:`load_estimator` reads any saved
estimator folder (single model or fold ensemble).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from astromodal.atomic import atomic_path, write_json
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.models.registry import build_model, count_parameters, get_model
from astromodal.training.batches import BatchSource, stream_statistics

if TYPE_CHECKING:  # torch and the trainer are imported where a neural model needs them: a scikit-learn
    # model loads and predicts without torch
    import torch

    from astromodal.training.trainer import TrainerConfig, TrainResult

TASKS = ("classification", "regression")
#: the order in which dict inputs are laid side by side for classical models
FLATTEN_ORDER = ("spectrum", "image", "columns", "context")


@runtime_checkable
class Estimator(Protocol):
    """What the benchmark needs of any model, classical or neural."""

    task: str
    classes_: np.ndarray | None

    def fit(self, X: Any, y: np.ndarray, X_val: Any = None, y_val: np.ndarray | None = None) -> Estimator: ...

    def predict(self, X: Any) -> np.ndarray: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...

    def save(self, folder: str | Path) -> Path: ...


# ---------------------------------------------------------------------- helpers
def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"task must be 'classification' or 'regression', not {task!r}")
    return task


def read_json(path: Path) -> dict[str, Any]:
    """A saved model's JSON file (:func:`astromodal.atomic.read_json`, one line naming the path on error)."""
    from astromodal.atomic import read_json as _read

    return _read(path, hint="not a saved astromodal model folder?")


def read_meta(folder: Path, name: str, kind: str, what: str) -> dict[str, Any]:
    """The saved description ``folder / name`` of an estimator of ``kind`` (every estimator's ``load``); another
    kind is one :class:`DataFormatError` line: ``<path>: not <what> (kind ...)``."""
    meta = read_json(folder / name)
    if meta.get("kind") != kind:
        raise DataFormatError(f"{folder / name}: not {what} (kind {meta.get('kind')!r})")
    return meta


def _n_rows(X: Any) -> int:
    if isinstance(X, BatchSource):
        return len(X)
    if isinstance(X, dict):
        if not X:
            raise BadValueError("no inputs given (empty dict)")
        lengths = {k: len(v) for k, v in X.items()}
        if len(set(lengths.values())) != 1:
            raise BadValueError(f"inputs have different numbers of rows: {lengths}")
        return next(iter(lengths.values()))
    return len(X)


def feature_layout(X: Any) -> list[tuple[str, list[int]]]:
    """[(input name, per-object shape)] in the order the inputs are flattened."""
    if not isinstance(X, dict):
        return [("X", list(np.shape(X)[1:]))]
    keys = [k for k in FLATTEN_ORDER if k in X] + sorted(k for k in X if k not in FLATTEN_ORDER)
    return [(k, list(np.shape(X[k])[1:])) for k in keys]


def flatten_features(X: Any, layout: list[tuple[str, list[int]]] | None = None) -> np.ndarray:
    """All inputs side by side as one (N, features) float matrix, checked against a stored layout."""
    got = feature_layout(X)
    if layout is not None:
        want = [(k, list(s)) for k, s in layout]
        if got != want:
            raise BadValueError(f"inputs {got} do not match those the model was trained on {want}")
    if not isinstance(X, dict):
        a = np.asarray(X)
        return a.reshape(len(a), int(np.prod(a.shape[1:])))
    return np.concatenate([np.asarray(X[k]).reshape(len(X[k]), int(np.prod(s))) for k, s in got], axis=1)


def _encode_classes(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    bad = classes[codes] != y
    if bad.any():
        raise BadValueError(f"labels {sorted(set(np.asarray(y)[bad].tolist()))[:5]} were not seen in training "
                            f"(known classes {classes.tolist()})")
    return codes.astype(np.int64)


def _codes_of_pairs(pairs: list[list[Any]], classes: np.ndarray | None) -> list[list[Any]]:
    """``augment_flip_swap`` label pairs as indices into ``classes`` (matched by value or by text); as given
    when there are no classes (the trainer then says there is no class head)."""
    if classes is None:
        return pairs
    names = [str(c) for c in np.asarray(classes).tolist()]
    for label in (x for pair in pairs for x in pair):
        if str(label) not in names:
            raise ConfigError(f"augment_flip_swap: label {label!r} is not a class of the target (classes {names})")
    return [[names.index(str(a)), names.index(str(b))] for a, b in pairs]


def _target_statistics(y: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of a regression target (std 1 for a constant target)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        raise BadValueError("regression needs at least one training target value")
    if not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise BadValueError(f"the regression target has a non-finite value ({y[row]}) at training row {row}")
    mean, std = float(y.mean()), float(y.std())
    return {"mean": mean, "std": std if std > 0 else 1.0}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------------- scikit-learn
def spec_task(spec: Any, y: Any, regression: bool = False) -> str:
    """The task of a head spec: from its kind (or a loss naming one), else regression when ``regression``
    (the primary head of an estimator made for a regression task), else the target's type (class
    labels: classification; real values: regression)."""
    from astromodal.training.heads import _LOSS_KIND

    spec = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
    kind = spec.get("kind") or _LOSS_KIND.get(spec.get("loss"))
    if kind:
        return head_task(kind)
    if regression:
        return "regression"
    return "classification" if _is_class_like(np.asarray(y)) else "regression"


def valid_rows(y: Any, task: str) -> np.ndarray:
    """Rows that have a target: class labels not -1 / NaN / None / "", real values not NaN."""
    from astromodal.training.heads import _class_missing

    y = np.asarray(y)
    if task == "classification":
        return ~_class_missing(y.reshape(len(y)))
    return ~np.isnan(y.astype(np.float64).reshape(len(y)))


class SklearnEstimator:
    """A registered classical model behind a StandardScaler, on the flattened inputs.

    With several targets (``y`` a dict ``{target: array}`` or ``heads`` given) one ``Pipeline`` is fitted per
    head, each on the rows where its target is valid (NaN regression value / -1 class code: left out);
    a head's task comes from its spec kind (categorical, binary: classification; gaussian, point:
    regression), else from the target's type. A head spec's ``weight``, ``class_weight`` and ``loss`` are
    for neural models: a classical model is set through its own options. Single-head conveniences
    (``predict``, ``predict_proba``, ``classes_``, ``task``) read the first head.
    """

    kind = "sklearn"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None, task: str = "classification",
                 heads: dict[str, Any] | None = None, target_name: str | None = None):
        self.model_name = model_name
        self.options = dict(options or {})
        self.task = _check_task(task)
        self.head_specs: dict[str, Any] = _head_specs(heads)
        self.target_name = str(target_name or next(iter(self.head_specs), "target"))
        self.classes_: np.ndarray | None = None
        self.layout: list[tuple[str, list[int]]] | None = None
        self.pipeline: Any = None
        #: several targets: one fitted pipeline and task per head (empty for the single target)
        self.pipelines: dict[str, Any] = {}
        self.tasks: dict[str, str] = {}
        self.history: list[dict[str, Any]] | None = None
        self.n_parameters = None

    @property
    def head_names(self) -> list[str]:
        return list(self.pipelines) or list(self.head_specs) or [self.target_name]

    @property
    def head_tasks(self) -> dict[str, str]:
        return dict(self.tasks) if self.tasks else {n: self.task for n in self.head_names}

    @property
    def head_classes(self) -> dict[str, np.ndarray | None]:
        if self.pipelines:
            return {n: (np.asarray(p.classes_) if self.tasks[n] == "classification" else None)
                    for n, p in self.pipelines.items()}
        return {n: self.classes_ for n in self.head_names}

    def fit(self, X: Any, y: Any, X_val: Any = None, y_val: Any = None) -> SklearnEstimator:
        """Fit scaler + model on the training objects (a validation set, if given, is not needed)."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        self.layout = feature_layout(X)
        features = flatten_features(X)
        if isinstance(y, dict) or self.head_specs:
            return self._fit_heads(features, y)
        y = np.asarray(y)
        if len(y) != len(features):
            raise BadValueError(f"{len(features)} objects but {len(y)} target values")
        model = build_model(self.model_name, **self.options)
        self.pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
        self.pipeline.fit(features, y)
        if self.task == "classification":
            self.classes_ = np.asarray(self.pipeline.classes_)
        return self

    def _fit_heads(self, features: np.ndarray, y: Any) -> SklearnEstimator:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        names = list(self.head_specs) or list(y)
        ys = target_dict(y, names)
        self.pipelines, self.tasks = {}, {}
        for name, v in ys.items():
            if len(v) != len(features):
                raise BadValueError(f"{len(features)} objects but {len(v)} values of target {name!r}")
            task = spec_task(self.head_specs.get(name), v, name == names[0] and self.task == "regression")
            check_model_task(self.model_name, task, name)
            ok = valid_rows(v, task)
            if not ok.any():
                raise BadValueError(f"target {name!r}: no training object has a value")
            pipe = Pipeline([("scale", StandardScaler()), ("model", build_model(self.model_name, **self.options))])
            target = v[ok] if task == "classification" else v[ok].astype(np.float64)
            try:
                pipe.fit(features[ok], target)
            except ValueError as exc:
                raise BadValueError(f"target {name!r}: model {self.model_name!r} cannot be fitted ({exc})") from None
            self.pipelines[name], self.tasks[name] = pipe, task
        first = names[0]
        self.pipeline, self.task, self.target_name = self.pipelines[first], self.tasks[first], first
        self.classes_ = np.asarray(self.pipeline.classes_) if self.task == "classification" else None
        return self

    def _fitted(self) -> Any:
        if self.pipeline is None:
            raise ConfigError(f"model {self.model_name!r} is not fitted yet: call fit first")
        return self.pipeline

    def predict(self, X: Any) -> np.ndarray:
        features = flatten_features(X, self.layout)
        if len(features) == 0:  # scikit-learn refuses empty input; an empty catalogue chunk gives nothing
            return np.empty(0, dtype=self.classes_.dtype if self.classes_ is not None else np.float64)
        return np.asarray(self._fitted().predict(features))

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise NotImplementedError("predict_proba is for classification")
        pipe = self._fitted()
        if not hasattr(pipe, "predict_proba"):
            raise NotImplementedError(f"model {self.model_name!r} gives no class probabilities")
        features = flatten_features(X, self.layout)
        if len(features) == 0:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(pipe.predict_proba(features))

    def predict_heads(self, X: Any) -> dict[str, Any]:
        """``{head: Categorical | Gaussian}``: class probabilities (one-hot labels for a model without
        them), or a regression mean with NaN variance (no uncertainty predicted)."""
        from astromodal.training.predictions import Categorical, Gaussian, legacy_predict_heads

        if not self.pipelines:
            return legacy_predict_heads(self, X, self.target_name)
        features = flatten_features(X, self.layout)
        out: dict[str, Any] = {}
        for name, pipe in self.pipelines.items():
            if self.tasks[name] == "classification":
                classes = np.asarray(pipe.classes_)
                if len(features) == 0:
                    proba = np.zeros((0, len(classes)))
                elif hasattr(pipe, "predict_proba"):
                    proba = np.asarray(pipe.predict_proba(features), dtype=np.float64)
                else:
                    proba = (np.asarray(pipe.predict(features))[:, None] == classes[None, :]).astype(np.float64)
                out[name] = Categorical(proba, classes)
            else:
                mean = np.asarray(pipe.predict(features), dtype=np.float64) if len(features) else np.zeros(0)
                out[name] = Gaussian.point(mean)
        return out

    #: scikit-learn regressors predict no uncertainty
    gives_variance = False

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Regression prediction and its variance: NaN for every object (the model gives no uncertainty)."""
        if self.task != "regression":
            raise NotImplementedError("predict_mean_var is for regression")
        mean = np.asarray(self.predict(X), dtype=np.float64).reshape(-1)
        return mean, np.full_like(mean, np.nan)

    def save(self, folder: str | Path) -> Path:
        """``model.json`` + ``model.joblib`` (a pickle: a trusted local artefact, see the module text; with
        several heads it holds ``{head: pipeline}``)."""
        import joblib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._fitted()
        with atomic_path(folder / "model.joblib") as tmp:
            joblib.dump(self.pipelines if self.pipelines else self.pipeline, tmp)
        meta = {
            "kind": self.kind,
            "model_name": self.model_name,
            "options": _jsonable(self.options),
            "task": self.task,
            "classes": None if self.classes_ is None else _jsonable(self.classes_),
            "feature_layout": self.layout,
            "weights": "model.joblib",
            "trusted_pickle": True,
            "target_name": self.target_name,
        }
        if self.pipelines:
            meta["heads"] = [{"name": n, "task": self.tasks[n], "spec": _jsonable(self.head_specs.get(n, {}))}
                             for n in self.pipelines]
        write_json(folder / "model.json", meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> SklearnEstimator:
        """Read a saved folder; the joblib pickle is only opened with ``trust=True``."""
        import joblib

        folder = Path(folder)
        meta = read_meta(folder, "model.json", cls.kind, "a scikit-learn model")
        if not trust:
            raise ConfigError(
                f"{folder / 'model.joblib'} is a pickle of a scikit-learn model; unpickling can run arbitrary code. "
                "Load it only if you made it yourself, with trust=True (command line: --trust)"
            )
        heads = meta.get("heads") or []
        est = cls(meta["model_name"], meta.get("options") or {}, meta["task"],
                  heads={h["name"]: h.get("spec") or {} for h in heads} or None, target_name=meta.get("target_name"))
        stored = joblib.load(folder / meta.get("weights", "model.joblib"))
        if heads:
            if not isinstance(stored, dict) or list(stored) != [h["name"] for h in heads]:
                raise DataFormatError(f"{folder / 'model.joblib'}: does not hold the pipelines of heads "
                                      f"{[h['name'] for h in heads]}")
            est.pipelines, est.tasks = dict(stored), {h["name"]: h["task"] for h in heads}
            est.pipeline = est.pipelines[heads[0]["name"]]
        else:
            est.pipeline = stored
        est.layout = [(k, list(s)) for k, s in meta["feature_layout"]]
        est.classes_ = None if meta.get("classes") is None else np.asarray(meta["classes"])
        return est


# ---------------------------------------------------------------------- torch
def input_statistics(a: Any) -> dict[str, Any]:
    """Training mean and standard deviation of one named input (std 1 where it is 0): per feature for a
    ``(N, F)`` input (today's rule), per band (channel, axis 1) for an ``(N, C, ...)`` input (cutouts,
    multi-channel spectra), computed band by band in float64."""
    if np.ndim(a) >= 3:
        n_bands = int(np.shape(a)[1])
        mean, std = np.empty(n_bands), np.empty(n_bands)
        for b in range(n_bands):
            band = np.asarray(a[:, b], dtype=np.float64)
            mean[b], std[b] = band.mean(), band.std()
        return {"mean": mean.tolist(), "std": np.where(std > 0, std, 1.0).tolist(), "per": "band"}
    a = np.asarray(a, dtype=np.float64)
    mean, std = a.mean(axis=0), a.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return {"mean": mean.tolist(), "std": std.tolist()}


def standardise_input(a: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """``(a - mean) / std`` in float32 with the statistics of :func:`input_statistics` (per-band ones
    broadcast over the pixels; per-pixel ones of older folders as they are)."""
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    if a.ndim >= 3 and mean.ndim == 1:
        shape = (1, -1) + (1,) * (a.ndim - 2)
        mean, std = mean.reshape(shape), std.reshape(shape)
    return (a - mean) / std


def _input_shapes(X: Any, keys: tuple[str, ...]) -> dict[str, list[int]]:
    """Per-object shape of each model input present in ``X`` (arrays or a batch source)."""
    shapes = X.shapes() if isinstance(X, BatchSource) else {k: np.shape(X[k])[1:] for k in keys if k in X}
    return {k: list(shapes[k]) for k in keys if k in shapes}


class _Standardise:
    """A streamed input's transform: float32, then the training standardisation (if any)."""

    def __init__(self, stats: dict[str, Any] | None):
        self.stats = stats

    def __call__(self, a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float32)
        return np.ascontiguousarray(standardise_input(a, self.stats) if self.stats else a, dtype=np.float32)


def head_task(kind: str) -> str:
    """"classification" or "regression" for a registered head kind."""
    from astromodal.training.heads import HEADS

    return HEADS.get(kind).task


def _is_class_like(y: np.ndarray) -> bool:
    return np.asarray(y).dtype.kind in "biuUSO"


def target_dict(y: Any, names: list[str], what: str = "target") -> dict[str, np.ndarray]:
    """``y`` as ``{head: array}`` for the heads ``names``: a dict must hold every head (and nothing else); a
    plain array is the target of a single head."""
    if isinstance(y, dict):
        missing = [n for n in names if n not in y]
        extra = [k for k in y if k not in names]
        if missing or extra:
            raise BadValueError(f"the {what}s {sorted(y)} do not match the heads {names}"
                                + (f" (missing {missing})" if missing else f" (no head for {extra})"))
        return {n: np.asarray(y[n]) for n in names}
    if len(names) != 1:
        raise BadValueError(f"one {what} array for the heads {names}: give a dict {{head: values}}")
    return {names[0]: np.asarray(y)}


class TorchEstimator:
    """A registered neural model trained by :class:`Trainer`, with input standardisation.

    Three modes, chosen at ``fit``:

    * legacy (``y`` an array and no ``heads``): today's single target, numbers unchanged;
    * heads (``y`` a dict ``{target: array}``, or ``heads`` given): one :class:`~astromodal.training.heads.Head`
      per target (spec ``{kind, weight, class_weight, loss}``; a spec without a kind takes today's default
      for the target's type), fitted on the targets given to ``fit``, trained through an
      :class:`~astromodal.training.objectives.Objective`; rows where a target is NaN / -1 contribute
      nothing to that head's loss. The model is built with ``n_outputs={head: n}`` for several heads;
    * embedding (``objective`` given, e.g. ``"contrastive"`` or ``{"kind": "contrastive", "pair": [a, b]}``):
      ``fit(X)`` without targets; :meth:`transform` reads the embeddings.
    """

    kind = "torch"

    def __init__(self, model_name: str, model_options: dict[str, Any] | None = None,
                 trainer: TrainerConfig | dict[str, Any] | None = None, task: str = "classification",
                 normalise: tuple[str, ...] = ("columns", "context"), heads: dict[str, Any] | None = None,
                 target_name: str | None = None, objective: str | dict[str, Any] | None = None):
        from astromodal.training.trainer import TrainerConfig

        self.model_name = model_name
        self.model_options = dict(model_options or {})
        if trainer is None or isinstance(trainer, dict):
            trainer = TrainerConfig.from_options(trainer)
        self.trainer = trainer
        self.objective_spec = _objective_spec(objective)
        self.task = "embedding" if self.objective_spec else _check_task(task)
        self.normalise = tuple(normalise)
        self.head_specs: dict[str, Any] = _head_specs(heads)
        self.target_name = str(target_name or next(iter(self.head_specs), "target"))
        self.classes_: np.ndarray | None = None
        self.model: torch.nn.Module | None = None
        self.input_shapes: dict[str, list[int]] = {}
        self.n_outputs: int | dict[str, int] | None = 0
        self.norm: dict[str, dict[str, list[float]]] = {}
        #: regression: mean and standard deviation of the training targets (the network learns (y - mean) / std)
        self.target_norm: dict[str, float] = {"mean": 0.0, "std": 1.0}
        #: the fitted heads (heads mode; empty for the legacy single target)
        self.heads: dict[str, Any] = {}
        self.result: TrainResult | None = None

    # ---- building
    @property
    def history(self) -> list[dict[str, Any]] | None:
        return None if self.result is None else self.result.history

    @property
    def n_parameters(self) -> int | None:
        return None if self.model is None else count_parameters(self.model)

    @property
    def head_names(self) -> list[str]:
        """The heads predicted, the primary (first) one first."""
        if self.heads:
            return list(self.heads)
        if self.task == "embedding":
            return []
        return list(self.head_specs) or [self.target_name]

    @property
    def head_tasks(self) -> dict[str, str]:
        """``{head: "classification" | "regression"}`` (fitted heads, else the single task)."""
        if self.heads:
            return {n: h.task for n, h in self.heads.items()}
        return {n: self.task for n in self.head_names}

    @property
    def head_classes(self) -> dict[str, np.ndarray | None]:
        """The class codes of each class head (None for regression heads)."""
        if self.heads:
            return {n: getattr(h, "classes_", None) for n, h in self.heads.items()}
        return {n: self.classes_ for n in self.head_names}

    def _model_inputs(self) -> tuple[str, ...]:
        """The input names the model reads (its option ``inputs``, else its class attribute)."""
        return get_model(self.model_name).declared_inputs(self.model_options) or ("columns",)

    def input_names(self) -> tuple[str, ...] | None:
        """The named inputs the network reads (None: one unnamed input). A representation may hold more
        (``mmscnet`` with ``numeric: none`` reads the images only): ``astromodal predict`` builds these."""
        return get_model(self.model_name).declared_inputs(self.model_options)

    def _as_dict(self, X: Any) -> dict[str, np.ndarray]:
        if isinstance(X, (dict, BatchSource)):
            return X
        return {self._model_inputs()[0]: np.asarray(X)}

    def _build(self) -> torch.nn.Module:
        spec = get_model(self.model_name)
        if spec.family != "neural":
            raise ConfigError(f"model {self.model_name!r} is a {spec.family} model, not a neural one")
        main = self._model_inputs()[0]
        kwargs: dict[str, Any] = {"input_shape": tuple(self.input_shapes[main])}
        if self.n_outputs is not None:
            kwargs["n_outputs"] = self.n_outputs
        if "input_shapes" in inspect.signature(spec.factory).parameters:  # fusion models: every input's shape
            kwargs["input_shapes"] = {k: tuple(v) for k, v in self.input_shapes.items()}
        return spec.build(**kwargs, **self.model_options)

    def _tensors(self, X: Any) -> dict[str, torch.Tensor] | BatchSource:
        import torch

        X = self._as_dict(X)
        if isinstance(X, BatchSource):  # streamed (trainer data: stream): standardised batch by batch
            return self._stream(X)
        keys = self._model_inputs()
        missing = [k for k in keys if k not in X]
        if missing:
            raise BadValueError(f"model {self.model_name!r} needs input(s) {missing}; given {sorted(X)}")
        out = {}
        for k in keys:
            a = np.asarray(X[k], dtype=np.float32)
            if self.input_shapes and list(a.shape[1:]) != list(self.input_shapes[k]):
                raise BadValueError(f"input {k!r} has shape {list(a.shape[1:])} per object but the model was "
                                    f"trained on {self.input_shapes[k]}")
            if k in self.norm:
                a = standardise_input(a, self.norm[k])
            out[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return out

    def _target(self, y: np.ndarray) -> torch.Tensor:
        import torch

        y = np.asarray(y)
        if self.task == "classification":
            return torch.from_numpy(_encode_classes(y, self.classes_))
        scaled = (y.astype(np.float64).reshape(len(y)) - self.target_norm["mean"]) / self.target_norm["std"]
        return torch.from_numpy(scaled.astype(np.float32))

    def _make_head(self, name: str, spec: Any, y: np.ndarray, primary: bool = False) -> Any:
        """The head of target ``name``: its spec, or for a spec without a kind today's default for the
        target's type (class labels: binary / categorical; real values, or the ``primary`` head of a
        regression estimator: gaussian with ``loss: gaussian_nll``, else point); class heads inherit the
        trainer's ``class_weight`` unless set."""
        from astromodal.training.heads import _LOSS_KIND, default_head, make_head

        spec = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
        if "kind" not in spec and spec.get("loss") not in _LOSS_KIND and primary and self.task == "regression":
            spec["kind"] = "gaussian" if self.trainer.loss == "gaussian_nll" else "point"
        if "kind" not in spec and spec.get("loss") not in _LOSS_KIND:
            loss = self.trainer.loss
            suits = loss in (("auto", "bce_logits", "cross_entropy") if _is_class_like(y) else ("auto", "gaussian_nll", "mse"))
            spec["kind"] = default_head(name, y, loss if suits else "auto").kind
        kind = spec.get("kind") or _LOSS_KIND[spec["loss"]]
        if head_task(kind) == "classification" and "class_weight" not in spec and self.trainer.class_weight:
            spec["class_weight"] = self.trainer.class_weight
        return make_head(name, spec)

    def _stream(self, X: BatchSource) -> BatchSource:
        keys = self._model_inputs()
        src = X.select(keys)
        for k, shape in src.shapes().items():
            if self.input_shapes and list(shape) != list(self.input_shapes[k]):
                raise BadValueError(f"input {k!r} has shape {list(shape)} per object but the model was "
                                    f"trained on {self.input_shapes[k]}")
        return src.with_transforms({k: _Standardise(self.norm.get(k)) for k in keys})

    def _fit_statistics(self, X: dict[str, Any]) -> None:
        """Input shapes, and the standardisation of every input named in ``normalise`` (training data only)."""
        keys = self._model_inputs()
        self.input_shapes = _input_shapes(X, keys)
        self.norm = {}
        names = [k for k in self.normalise if k in X and k in keys]
        if isinstance(X, BatchSource):  # block by block in float64, equal to input_statistics
            self.norm = stream_statistics(X, names, self.trainer.stream_block, self.trainer.stream_buffer)
            return
        for k in names:
            self.norm[k] = input_statistics(X[k])

    # ---- fit / predict
    def fit(self, X: Any, y: Any = None, X_val: Any = None, y_val: Any = None, *, force_augment: Any = None,
            groups: Any = None) -> TorchEstimator:
        """Infer shapes and outputs, fit the standardisation (and heads) on (X, y) only, build the model and
        train it. ``y``: an array (one target), a dict ``{target: array}`` (one head each), or None with an
        ``objective`` (embedding training). ``force_augment`` / ``groups`` (per row) are passed to
        :meth:`Trainer.fit <astromodal.training.trainer.Trainer.fit>` (a resample member's drawn duplicates)."""
        import torch

        from astromodal.training.trainer import Trainer

        X = self._as_dict(X)
        self._rows_kw = {"force_augment": force_augment, "groups": groups}
        if self.objective_spec:
            return self._fit_embedding(X, y, X_val)
        if y is None:
            raise BadValueError(f"model {self.model_name!r}: fit needs targets (or an objective such as 'contrastive')")
        if isinstance(y, dict) or self.head_specs:
            return self._fit_heads(X, y, X_val, y_val)
        y = np.asarray(y)
        if len(y) != _n_rows(X):
            raise BadValueError(f"{_n_rows(X)} objects but {len(y)} target values")
        keys = self._model_inputs()
        self.input_shapes = _input_shapes(X, keys)
        if self.task == "classification":
            self.classes_ = np.unique(y)
            k = len(self.classes_)
            if k < 2:
                raise BadValueError(f"classification needs at least 2 classes in the training target, got {k}")
            binary_logit = k == 2 and self.trainer.loss in ("auto", "bce_logits")
            self.n_outputs = 1 if binary_logit else k
        else:
            self.n_outputs = 2 if self.trainer.loss == "gaussian_nll" else 1
            self.target_norm = _target_statistics(y)
        self._fit_statistics(X)
        x_tr, y_tr = self._tensors(X), self._target(y)
        x_va = y_va = None
        if X_val is not None:
            if y_val is None:
                raise BadValueError("X_val given without y_val")
            x_va, y_va = self._tensors(X_val), self._target(y_val)
        torch.manual_seed(self.trainer.seed)  # the initial weights
        self.model = self._build()
        trainer = self.trainer
        if trainer.augment_flip_swap:  # labels as given -> the class codes the trainer sees
            trainer = trainer.model_copy(update={"augment_flip_swap": _codes_of_pairs(trainer.augment_flip_swap,
                                                                                       self.classes_)})
        self.result = Trainer(trainer).fit(self.model, x_tr, y_tr, x_va, y_va, **self._rows_kw)
        return self

    def _fit_heads(self, X: dict[str, Any], y: Any, X_val: Any, y_val: Any) -> TorchEstimator:
        import torch

        from astromodal.training.objectives import Objective
        from astromodal.training.trainer import Trainer

        names = list(self.head_specs) or list(y)
        ys = target_dict(y, names)
        n = _n_rows(X)
        for name, v in ys.items():
            if len(v) != n:
                raise BadValueError(f"{n} objects but {len(v)} values of target {name!r}")
        self.heads = {name: self._make_head(name, self.head_specs.get(name), v, name == names[0]).fit_target(v)
                      for name, v in ys.items()}
        first = self.heads[names[0]]
        self.task, self.target_name = first.task, names[0]
        self.classes_ = getattr(first, "classes_", None) if first.task == "classification" else None
        self.n_outputs = first.n_outputs if len(names) == 1 else {k: h.n_outputs for k, h in self.heads.items()}
        self._fit_statistics(X)
        x_va = y_va = None
        if X_val is not None:
            if y_val is None:
                raise BadValueError("X_val given without y_val")
            x_va, y_va = self._tensors(X_val), target_dict(y_val, names, "validation target")
        torch.manual_seed(self.trainer.seed)  # the initial weights
        self.model = self._build()
        objective = Objective(list(self.heads.values()))
        self.result = Trainer(self.trainer).fit(self.model, self._tensors(X), ys, x_va, y_va, objective=objective,
                                                **self._rows_kw)
        return self

    def _fit_embedding(self, X: dict[str, Any], y: Any, X_val: Any) -> TorchEstimator:
        import torch

        from astromodal.training.objectives import make_objective
        from astromodal.training.trainer import Trainer

        if y is not None:
            raise BadValueError(f"objective {self.objective_spec['kind']!r} trains without targets: call fit(X)")
        options = {k: v for k, v in self.objective_spec.items() if k != "kind"}
        inputs = self._model_inputs()
        if self.objective_spec["kind"] == "contrastive" and "pair" not in options and len(inputs) == 2:
            options["pair"] = list(inputs)  # a two-encoder model returns one embedding per input
        objective = make_objective(self.objective_spec["kind"], **options)
        self.n_outputs = None
        self._fit_statistics(X)
        x_va = None if X_val is None else self._tensors(X_val)
        torch.manual_seed(self.trainer.seed)
        self.model = self._build()
        self.result = Trainer(self.trainer).fit(self.model, self._tensors(X), None, x_va, None, objective=objective,
                                                **self._rows_kw)
        return self

    def _fitted(self) -> torch.nn.Module:
        if self.model is None:
            raise ConfigError(f"model {self.model_name!r} is not fitted yet: call fit first")
        return self.model

    def _outputs(self, X: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        from astromodal.training.trainer import Trainer

        return Trainer(self.trainer).predict(self._fitted(), self._tensors(X))

    def _head_output(self, out: Any, name: str) -> np.ndarray:
        if isinstance(out, dict):
            return out[name].numpy()
        return out.numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw outputs (N, n_outputs) of the first head: logits, or for regression the network's own outputs
        in standardised target units (mean, and a Gaussian head's raw variance); use predict_mean_var for
        the target's unit."""
        return self._head_output(self._outputs(X), self.head_names[0])

    def predict_heads(self, X: Any) -> dict[str, Any]:
        """``{head: Categorical | Gaussian}`` in the targets' own units (the legacy single target under
        ``target_name``)."""
        if self.task == "embedding":
            raise ConfigError(f"model {self.model_name!r} was trained for embeddings, not heads: use transform")
        if not self.heads:
            from astromodal.training.predictions import legacy_predict_heads

            return legacy_predict_heads(self, X, self.target_name)
        out = self._outputs(X)
        return {name: head.decode(self._head_output(out, name)) for name, head in self.heads.items()}

    def _first(self, X: Any) -> Any:
        name = self.head_names[0]
        return self.heads[name].decode(self.decision_function(X))

    def transform(self, X: Any) -> dict[str, Any]:
        """``{output: Embedding}`` of the model's outputs that are not heads (a contrastive pair: one
        embedding per encoder; a single-tensor model: ``{"embedding": ...}``)."""
        from astromodal.training.predictions import Embedding

        out = self._outputs(X)
        if not isinstance(out, dict):
            if self.task != "embedding":
                raise ConfigError(f"model {self.model_name!r} returns its head output only: no embedding to read")
            return {"embedding": Embedding(out.numpy())}
        embeddings = {k: Embedding(v.numpy().reshape(len(v), -1)) for k, v in out.items() if k not in self.heads}
        if not embeddings:
            raise ConfigError(f"model {self.model_name!r} returns only its heads {list(out)}: no embedding to read")
        return embeddings

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, K): sigmoid of a single logit as [1 - p, p], else softmax."""
        import torch

        if self.task != "classification":
            raise NotImplementedError("predict_proba is for classification")
        if self.heads:
            return self._first(X).proba
        out = torch.from_numpy(self.decision_function(X)).double()
        if out.shape[1] == 1:
            return torch.stack([torch.sigmoid(-out[:, 0]), torch.sigmoid(out[:, 0])], dim=1).numpy()
        return torch.softmax(out, dim=1).numpy()

    @property
    def gives_variance(self) -> bool:
        """True for a regression network with a Gaussian head (mean and variance outputs)."""
        if self.heads:
            return self.task == "regression" and self.heads[self.head_names[0]].kind == "gaussian"
        return self.task == "regression" and isinstance(self.n_outputs, int) and self.n_outputs >= 2

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Regression mean and variance per object in the target's unit (the training standardisation
        undone); the variance is NaN for a network without a variance head (MSE loss)."""
        import torch

        from astromodal.training.losses import gaussian_variance

        if self.task != "regression":
            raise NotImplementedError("predict_mean_var is for regression")
        if self.heads:
            g = self._first(X)
            return g.mean, g.var
        out = torch.from_numpy(self.decision_function(X))
        shift, scale = float(self.target_norm["mean"]), float(self.target_norm["std"])
        mean = out[:, 0].numpy().astype(np.float64) * scale + shift
        if out.shape[1] >= 2:
            return mean, gaussian_variance(out[:, 1]).numpy().astype(np.float64) * scale**2
        return mean, np.full_like(mean, np.nan)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classes_ of the most probable class), or the regression mean."""
        if self.task == "classification":
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self.predict_mean_var(X)[0]

    # ---- persistence
    def save(self, folder: str | Path) -> Path:
        """``model.pt`` (state_dict) + ``model.json`` (everything needed to rebuild the model; the heads'
        states, classes and target mean / std, under ``heads``)."""
        import torch

        model = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        meta = {
            "kind": self.kind,
            "model_name": self.model_name,
            "options": _jsonable(self.model_options),
            "task": self.task,
            "input_shapes": self.input_shapes,
            "n_outputs": self.n_outputs,
            "classes": None if self.classes_ is None else _jsonable(self.classes_),
            "normalise": list(self.normalise),
            "normalisation": self.norm,
            "target_normalisation": self.target_norm if self.task == "regression" and not self.heads else None,
            "trainer": self.trainer.model_dump(mode="json"),
            "loss": None if self.result is None else self.result.loss,
            "weights": "model.pt",
            "target_name": self.target_name,
        }
        if self.heads:
            meta["heads"] = [_jsonable(h.state()) for h in self.heads.values()]
        if self.objective_spec:
            meta["objective"] = _jsonable(self.objective_spec)
        write_json(folder / "model.json", meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> TorchEstimator:
        """Rebuild from ``model.json`` and read the weights with ``weights_only=True`` (``trust`` unused)."""
        import torch

        from astromodal.training.heads import Head
        from astromodal.training.trainer import TrainerConfig

        folder = Path(folder)
        meta = read_meta(folder, "model.json", cls.kind, "a neural model")
        trainer = {**meta["trainer"], "device": "auto", "progress": False, "checkpoint_dir": None}
        heads = [Head.from_state(d) for d in meta.get("heads") or []]
        est = cls(meta["model_name"], meta.get("options") or {}, TrainerConfig.from_options(trainer),
                  "classification" if meta["task"] == "embedding" else meta["task"], tuple(meta.get("normalise", ())),
                  heads={h.name: h.state() for h in heads} or None, target_name=meta.get("target_name"),
                  objective=meta.get("objective"))
        est.heads = {h.name: h for h in heads}
        est.input_shapes = {k: list(v) for k, v in meta["input_shapes"].items()}
        n_out = meta.get("n_outputs")
        est.n_outputs = {k: int(v) for k, v in n_out.items()} if isinstance(n_out, dict) else (
            None if n_out is None else int(n_out))
        est.classes_ = None if meta.get("classes") is None else np.asarray(meta["classes"])
        est.norm = meta.get("normalisation") or {}
        # folders saved before targets were standardised: the network predicts the target itself
        tn = meta.get("target_normalisation") or {}
        est.target_norm = {"mean": float(tn.get("mean", 0.0)), "std": float(tn.get("std", 1.0))}
        model = est._build()
        try:
            state = torch.load(folder / meta.get("weights", "model.pt"), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except FileNotFoundError:
            raise DataFormatError(f"{folder / 'model.pt'}: weights file missing") from None
        except RuntimeError as exc:
            raise DataFormatError(f"{folder / 'model.pt'}: weights do not fit model {meta['model_name']!r} ({exc})") from None
        model.eval()
        est.model = model
        return est


def _head_specs(heads: Any) -> dict[str, Any]:
    """``heads`` as an ordered ``{target: spec}`` (a list of names: default specs)."""
    if heads is None:
        return {}
    if isinstance(heads, str):
        raise ConfigError(f"heads must map target names to head specs, not {heads!r}")
    if not isinstance(heads, dict):
        heads = {str(h): {} for h in heads}
    if not heads:
        raise ConfigError("heads: at least one head is needed")
    return {str(k): ({} if v is None else v) for k, v in heads.items()}


def _objective_spec(objective: Any) -> dict[str, Any] | None:
    """A training objective without targets (``"contrastive"`` or ``{"kind": "contrastive", ...}``); None for
    the supervised heads."""
    if objective is None or objective == "supervised":
        return None
    spec = {"kind": objective} if isinstance(objective, str) else dict(objective)
    if spec.get("kind") in (None, "supervised"):
        if spec.get("kind") is None:
            raise ConfigError(f"objective {objective!r}: no 'kind' (e.g. 'contrastive')")
        return None
    from astromodal.training.objectives import OBJECTIVES

    OBJECTIVES.get(spec["kind"])  # an unknown kind is one line listing the registered ones
    return spec


# ---------------------------------------------------------------------- factories
def make_estimator(model_name: str, options: dict[str, Any] | None = None,
                   trainer: TrainerConfig | dict[str, Any] | None = None,
                   task: str = "classification",
                   standardise: tuple[str, ...] | list[str] | None = None,
                   heads: dict[str, Any] | None = None, target_name: str | None = None,
                   objective: str | dict[str, Any] | None = None) -> SklearnEstimator | TorchEstimator:
    """An unfitted estimator for registered model ``model_name`` (the registry family decides the kind).

    ``standardise`` (neural models): the inputs standardised with training statistics (default
    columns and context; 2-D inputs per feature, image / multi-channel inputs per band); classical
    models always standardise every feature. ``heads``: an ordered ``{target: spec}`` (spec as
    :func:`~astromodal.training.heads.make_head`, ``{}`` for the default of the target's type), for
    ``fit(X, {target: y})``; ``target_name``: the head name of a single target (default the first head,
    else ``"target"``); ``objective`` (neural models): a training objective without targets, e.g.
    ``"contrastive"`` (then ``fit(X)`` and ``transform(X)``; ``task`` is ``"embedding"``).
    """
    spec = get_model(model_name)
    if objective is not None and _objective_spec(objective) is not None:
        if spec.family == "classical":
            raise ConfigError(f"model {model_name!r} is a classical model: an objective is for neural models")
        check_model_task(model_name, "embedding")
        normalise = ("columns", "context") if standardise is None else tuple(standardise)
        return TorchEstimator(model_name, options, trainer=trainer, normalise=normalise, objective=objective)
    check_model_task(model_name, _check_task(task))
    if spec.family == "classical":
        return SklearnEstimator(model_name, options, task=task, heads=heads, target_name=target_name)
    if standardise is None:
        return TorchEstimator(model_name, options, trainer=trainer, task=task, heads=heads, target_name=target_name)
    return TorchEstimator(model_name, options, trainer=trainer, task=task, normalise=tuple(standardise),
                          heads=heads, target_name=target_name)


def check_model_task(model_name: str, task: str, target: str | None = None) -> None:
    """A model registered for other tasks than ``task`` is a :class:`ConfigError` naming the registered
    model to use instead (``random_forest`` on a regression target: use ``random_forest_regressor``)."""
    from astromodal.models.registry import suggest_models

    spec = get_model(model_name)
    if task in spec.tasks:
        return
    what = f"target {target!r} is a {task} target" if target else f"the task is {task}"
    alt = suggest_models(model_name, task)
    hint = ("; use " + " or ".join(repr(a) for a in alt)) if alt else \
        f"; no registered {spec.family} {spec.modality} model does {task}"
    raise ConfigError(f"model {model_name!r} does {'/'.join(spec.tasks)} only, but {what}{hint}")


#: constructor arguments of neural models that the estimator sets itself (from the data)
_SET_BY_ESTIMATOR = ("input_shape", "n_outputs", "input_shapes")


def check_model_options(model_name: str, options: dict[str, Any] | None, where: str | None = None) -> None:
    """Options that model ``model_name``'s constructor does not accept are a one-line :class:`ConfigError`
    naming the option, the model and the allowed options (checked without data: a classical model is
    built, a neural one's signature is read)."""
    spec = get_model(model_name)
    options = dict(options or {})
    where = where or f"model {model_name!r}"
    try:
        params = inspect.signature(spec.factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin factory: nothing to check
        return
    named = [p for p, v in params.items() if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and p != "self"]
    if spec.family == "neural":
        allowed = sorted(p for p in named if p not in _SET_BY_ESTIMATOR)
        fixed = sorted(set(options) & set(_SET_BY_ESTIMATOR))
        if fixed:
            raise ConfigError(f"{where}: option(s) {fixed} of {model_name!r} are set from the data; allowed options: "
                              f"{', '.join(allowed) or '(none)'}")
        if any(v.kind == v.VAR_KEYWORD for v in params.values()):
            return
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(repr(u) for u in unknown)}; "
                              f"allowed options: {', '.join(allowed) or '(none)'}")
        return
    if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
        unknown = sorted(set(options) - set(named))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(repr(u) for u in unknown)}; "
                              f"allowed options: {', '.join(sorted(named)) or '(none)'}")
    try:  # scikit-learn constructors are cheap and check their own arguments (see models.classical)
        spec.build(**options)
    except ConfigError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith(f"model {model_name!r}") else f"{where}: {text}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: invalid options for model {model_name!r}: {exc}") from None


def use_device(estimator: Any, device: str) -> int:
    """Run every neural network inside ``estimator`` (one model, a fold or resample ensemble's members, a
    probe's encoder and probe) on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``) from now on;
    the number of neural networks it holds (0 for a scikit-learn model, which runs on the CPU whatever is
    asked). Validated as the trainer validates it; a device that does not exist is refused when used."""
    if isinstance(estimator, TorchEstimator):
        estimator.trainer = estimator.trainer.model_copy(update={"device": device})
        return 1
    inner = list(getattr(estimator, "members", None) or [])
    inner += [getattr(estimator, name) for name in ("encoder", "probe") if getattr(estimator, name, None) is not None]
    return sum(use_device(m, device) for m in inner)


def load_estimator(folder: str | Path, trust: bool = False) -> Any:
    """Read any saved estimator folder: a fold ensemble (``ensemble.json``), a probe on frozen embeddings
    (``probe.json``) or one model (``model.json``)."""
    folder = Path(folder)
    if (folder / "ensemble.json").is_file():
        from astromodal.training.ensemble import EnsembleEstimator

        return EnsembleEstimator.load(folder, trust=trust)
    if (folder / "probe.json").is_file():
        from astromodal.training.probe import ProbeEstimator

        return ProbeEstimator.load(folder, trust=trust)
    meta = read_json(folder / "model.json")
    kinds = {"sklearn": SklearnEstimator, "torch": TorchEstimator}
    if meta.get("kind") not in kinds:
        raise DataFormatError(f"{folder / 'model.json'}: unknown model kind {meta.get('kind')!r}")
    return kinds[meta["kind"]].load(folder, trust=trust)
