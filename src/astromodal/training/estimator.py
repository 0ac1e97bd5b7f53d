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

Regression estimators all have ``predict_mean_var(X) -> (mean, var)`` in the target's unit and
``gives_variance``: ``var`` is the predicted variance of a Gaussian head (``loss: gaussian_nll``), or
NaN for every object when the model predicts no uncertainty (scikit-learn regressors, a network
trained with the MSE loss): an unknown uncertainty is never reported as zero.

:func:`make_estimator` picks the kind from the registry family; :func:`load_estimator` reads any saved
estimator folder (single model or fold ensemble).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from astromodal.atomic import atomic_path, write_json
from astromodal.errors import BadValueError, ConfigError, DataFormatError
from astromodal.models.registry import build_model, count_parameters, get_model
from astromodal.training.losses import gaussian_variance
from astromodal.training.trainer import Trainer, TrainerConfig, TrainResult

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
    if not path.is_file():
        raise DataFormatError(f"{path}: not found (not a saved astromodal model folder?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None


def _n_rows(X: Any) -> int:
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
class SklearnEstimator:
    """A registered classical model behind a StandardScaler, on the flattened inputs."""

    kind = "sklearn"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None, task: str = "classification"):
        self.model_name = model_name
        self.options = dict(options or {})
        self.task = _check_task(task)
        self.classes_: np.ndarray | None = None
        self.layout: list[tuple[str, list[int]]] | None = None
        self.pipeline: Any = None
        self.history: list[dict[str, Any]] | None = None
        self.n_parameters = None

    def fit(self, X: Any, y: np.ndarray, X_val: Any = None, y_val: np.ndarray | None = None) -> SklearnEstimator:
        """Fit scaler + model on the training objects (a validation set, if given, is not needed)."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        self.layout = feature_layout(X)
        features = flatten_features(X)
        y = np.asarray(y)
        if len(y) != len(features):
            raise BadValueError(f"{len(features)} objects but {len(y)} target values")
        model = build_model(self.model_name, **self.options)
        self.pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
        self.pipeline.fit(features, y)
        if self.task == "classification":
            self.classes_ = np.asarray(self.pipeline.classes_)
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

    #: scikit-learn regressors predict no uncertainty
    gives_variance = False

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Regression prediction and its variance: NaN for every object (the model gives no uncertainty)."""
        if self.task != "regression":
            raise NotImplementedError("predict_mean_var is for regression")
        mean = np.asarray(self.predict(X), dtype=np.float64).reshape(-1)
        return mean, np.full_like(mean, np.nan)

    def save(self, folder: str | Path) -> Path:
        """``model.json`` + ``model.joblib`` (a pickle: a trusted local artefact, see the module text)."""
        import joblib

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._fitted()
        with atomic_path(folder / "model.joblib") as tmp:
            joblib.dump(self.pipeline, tmp)
        write_json(folder / "model.json", {
            "kind": self.kind,
            "model_name": self.model_name,
            "options": _jsonable(self.options),
            "task": self.task,
            "classes": None if self.classes_ is None else _jsonable(self.classes_),
            "feature_layout": self.layout,
            "weights": "model.joblib",
            "trusted_pickle": True,
        })
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> SklearnEstimator:
        """Read a saved folder; the joblib pickle is only opened with ``trust=True``."""
        import joblib

        folder = Path(folder)
        meta = read_json(folder / "model.json")
        if meta.get("kind") != cls.kind:
            raise DataFormatError(f"{folder / 'model.json'}: not a scikit-learn model (kind {meta.get('kind')!r})")
        if not trust:
            raise ConfigError(
                f"{folder / 'model.joblib'} is a pickle of a scikit-learn model; unpickling can run arbitrary code. "
                "Load it only if you made it yourself, with trust=True (command line: --trust)"
            )
        est = cls(meta["model_name"], meta.get("options") or {}, meta["task"])
        est.pipeline = joblib.load(folder / meta.get("weights", "model.joblib"))
        est.layout = [(k, list(s)) for k, s in meta["feature_layout"]]
        est.classes_ = None if meta.get("classes") is None else np.asarray(meta["classes"])
        return est


# ---------------------------------------------------------------------- torch
class TorchEstimator:
    """A registered neural model trained by :class:`Trainer`, with input standardisation."""

    kind = "torch"

    def __init__(self, model_name: str, model_options: dict[str, Any] | None = None,
                 trainer: TrainerConfig | dict[str, Any] | None = None, task: str = "classification",
                 normalise: tuple[str, ...] = ("columns", "context")):
        self.model_name = model_name
        self.model_options = dict(model_options or {})
        if trainer is None or isinstance(trainer, dict):
            trainer = TrainerConfig.from_options(trainer)
        self.trainer = trainer
        self.task = _check_task(task)
        self.normalise = tuple(normalise)
        self.classes_: np.ndarray | None = None
        self.model: torch.nn.Module | None = None
        self.input_shapes: dict[str, list[int]] = {}
        self.n_outputs: int = 0
        self.norm: dict[str, dict[str, list[float]]] = {}
        #: regression: mean and standard deviation of the training targets (the network learns (y - mean) / std)
        self.target_norm: dict[str, float] = {"mean": 0.0, "std": 1.0}
        self.result: TrainResult | None = None

    # ---- building
    @property
    def history(self) -> list[dict[str, Any]] | None:
        return None if self.result is None else self.result.history

    @property
    def n_parameters(self) -> int | None:
        return None if self.model is None else count_parameters(self.model)

    def _model_inputs(self) -> tuple[str, ...]:
        """The input names the model reads (its option ``inputs``, else its class attribute)."""
        return get_model(self.model_name).declared_inputs(self.model_options) or ("columns",)

    def _as_dict(self, X: Any) -> dict[str, np.ndarray]:
        if isinstance(X, dict):
            return X
        return {self._model_inputs()[0]: np.asarray(X)}

    def _build(self) -> torch.nn.Module:
        spec = get_model(self.model_name)
        if spec.family != "neural":
            raise ConfigError(f"model {self.model_name!r} is a {spec.family} model, not a neural one")
        main = self._model_inputs()[0]
        kwargs: dict[str, Any] = {"input_shape": tuple(self.input_shapes[main]), "n_outputs": self.n_outputs}
        try:
            params = inspect.signature(spec.factory).parameters
        except (TypeError, ValueError):  # pragma: no cover
            params = {}
        if "input_shapes" in params:
            kwargs["input_shapes"] = {k: tuple(v) for k, v in self.input_shapes.items()}
        return spec.build(**kwargs, **self.model_options)

    def _tensors(self, X: Any) -> dict[str, torch.Tensor]:
        X = self._as_dict(X)
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
                a = (a - np.asarray(self.norm[k]["mean"], np.float32)) / np.asarray(self.norm[k]["std"], np.float32)
            out[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        return out

    def _target(self, y: np.ndarray) -> torch.Tensor:
        y = np.asarray(y)
        if self.task == "classification":
            return torch.from_numpy(_encode_classes(y, self.classes_))
        scaled = (y.astype(np.float64).reshape(len(y)) - self.target_norm["mean"]) / self.target_norm["std"]
        return torch.from_numpy(scaled.astype(np.float32))

    # ---- fit / predict
    def fit(self, X: Any, y: np.ndarray, X_val: Any = None, y_val: np.ndarray | None = None) -> TorchEstimator:
        """Infer shapes and outputs, fit the standardisation on (X, y) only, build the model and train it."""
        X = self._as_dict(X)
        y = np.asarray(y)
        if len(y) != _n_rows(X):
            raise BadValueError(f"{_n_rows(X)} objects but {len(y)} target values")
        keys = self._model_inputs()
        self.input_shapes = {k: list(np.shape(X[k])[1:]) for k in keys if k in X}
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
        self.norm = {}
        for k in self.normalise:
            if k in X and k in keys:
                a = np.asarray(X[k], dtype=np.float64)
                mean, std = a.mean(axis=0), a.std(axis=0)
                std = np.where(std > 0, std, 1.0)
                self.norm[k] = {"mean": mean.tolist(), "std": std.tolist()}
        x_tr, y_tr = self._tensors(X), self._target(y)
        x_va = y_va = None
        if X_val is not None:
            if y_val is None:
                raise BadValueError("X_val given without y_val")
            x_va, y_va = self._tensors(X_val), self._target(y_val)
        torch.manual_seed(self.trainer.seed)  # the initial weights
        self.model = self._build()
        self.result = Trainer(self.trainer).fit(self.model, x_tr, y_tr, x_va, y_va)
        return self

    def _fitted(self) -> torch.nn.Module:
        if self.model is None:
            raise ConfigError(f"model {self.model_name!r} is not fitted yet: call fit first")
        return self.model

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw outputs (N, n_outputs): logits, or for regression the network's own outputs in standardised
        target units (mean, and a Gaussian head's raw variance); use predict_mean_var for the target's unit."""
        model = self._fitted()
        return Trainer(self.trainer).predict(model, self._tensors(X)).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, K): sigmoid of a single logit as [1 - p, p], else softmax."""
        if self.task != "classification":
            raise NotImplementedError("predict_proba is for classification")
        out = torch.from_numpy(self.decision_function(X)).double()
        if out.shape[1] == 1:
            return torch.stack([torch.sigmoid(-out[:, 0]), torch.sigmoid(out[:, 0])], dim=1).numpy()
        return torch.softmax(out, dim=1).numpy()

    @property
    def gives_variance(self) -> bool:
        """True for a regression network with a Gaussian head (mean and variance outputs)."""
        return self.task == "regression" and self.n_outputs >= 2

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Regression mean and variance per object in the target's unit (the training standardisation
        undone); the variance is NaN for a network without a variance head (MSE loss)."""
        if self.task != "regression":
            raise NotImplementedError("predict_mean_var is for regression")
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
        """``model.pt`` (state_dict) + ``model.json`` (everything needed to rebuild the model)."""
        model = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "model.pt") as tmp:
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
        write_json(folder / "model.json", {
            "kind": self.kind,
            "model_name": self.model_name,
            "options": _jsonable(self.model_options),
            "task": self.task,
            "input_shapes": self.input_shapes,
            "n_outputs": self.n_outputs,
            "classes": None if self.classes_ is None else _jsonable(self.classes_),
            "normalise": list(self.normalise),
            "normalisation": self.norm,
            "target_normalisation": self.target_norm if self.task == "regression" else None,
            "trainer": self.trainer.model_dump(mode="json"),
            "loss": None if self.result is None else self.result.loss,
            "weights": "model.pt",
        })
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> TorchEstimator:
        """Rebuild from ``model.json`` and read the weights with ``weights_only=True`` (``trust`` unused)."""
        folder = Path(folder)
        meta = read_json(folder / "model.json")
        if meta.get("kind") != cls.kind:
            raise DataFormatError(f"{folder / 'model.json'}: not a neural model (kind {meta.get('kind')!r})")
        trainer = {**meta["trainer"], "device": "auto", "progress": False, "checkpoint_dir": None}
        est = cls(meta["model_name"], meta.get("options") or {}, TrainerConfig.from_options(trainer),
                  meta["task"], tuple(meta.get("normalise", ())))
        est.input_shapes = {k: list(v) for k, v in meta["input_shapes"].items()}
        est.n_outputs = int(meta["n_outputs"])
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


# ---------------------------------------------------------------------- factories
def make_estimator(model_name: str, options: dict[str, Any] | None = None,
                   trainer: TrainerConfig | dict[str, Any] | None = None,
                   task: str = "classification",
                   standardise: tuple[str, ...] | list[str] | None = None) -> SklearnEstimator | TorchEstimator:
    """An unfitted estimator for registered model ``model_name`` (the registry family decides the kind).

    ``standardise`` (neural models): the inputs standardised with training statistics (default
    columns and context); classical models always standardise every feature.
    """
    spec = get_model(model_name)
    check_model_task(model_name, _check_task(task))
    if spec.family == "classical":
        return SklearnEstimator(model_name, options, task=task)
    if standardise is None:
        return TorchEstimator(model_name, options, trainer=trainer, task=task)
    return TorchEstimator(model_name, options, trainer=trainer, task=task, normalise=tuple(standardise))


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


def load_estimator(folder: str | Path, trust: bool = False) -> Any:
    """Read any saved estimator folder: a fold ensemble (``ensemble.json``) or one model (``model.json``)."""
    folder = Path(folder)
    if (folder / "ensemble.json").is_file():
        from astromodal.training.ensemble import EnsembleEstimator

        return EnsembleEstimator.load(folder, trust=trust)
    meta = read_json(folder / "model.json")
    kinds = {"sklearn": SklearnEstimator, "torch": TorchEstimator}
    if meta.get("kind") not in kinds:
        raise DataFormatError(f"{folder / 'model.json'}: unknown model kind {meta.get('kind')!r}")
    return kinds[meta["kind"]].load(folder, trust=trust)
