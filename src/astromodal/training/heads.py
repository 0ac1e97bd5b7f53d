"""Output heads: what one model output predicts, how its target is encoded, its loss and its decoding.

A head turns the targets of one column (``class``, ``radius``) into training tensors, scores a model
output against them and turns outputs back into a typed prediction in the target's own unit::

    head = make_head("radius", {"kind": "gaussian", "weight": 0.5})
    head.fit_target(y_train)            # TRAINING targets only: mean / std of the valid values
    y = head.encode(y_train)            # float32, standardised; NaN = no target for this object
    loss = head.loss(model_out, y)      # mean over the valid rows only (0, graph kept, when none is)
    pred = head.decode(out.numpy())     # Gaussian(mean, var) in the target's unit

Kinds (:data:`HEADS`; adding one is one decorated class, ``@register_head("name")``):

* ``categorical``: K logits, softmax cross-entropy; ``class_weight: balanced`` weighs class k by
  ``n / (K n_k)``; missing class = ``-1`` (or NaN / None / "");
* ``binary``: one logit, binary cross-entropy; ``balanced`` gives the positive class ``n_neg / n_pos``;
* ``gaussian``: (mean, raw variance), variance ``softplus(raw) + 1e-6``, Gaussian NLL; missing = NaN;
* ``point``: one value, ``loss: mse`` (default) or ``l1``; missing = NaN.

Regression targets are standardised inside the head (mean / std of the valid training values, std 1 for
a constant) unless ``standardise: false``; :meth:`Head.decode` undoes it (variance times ``std**2``).
Class targets are encoded as indices into ``classes_`` (the sorted class labels seen in training, or
the ``classes`` given). :func:`default_head` reproduces the trainer's single-target ``loss: auto``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.registry import Registry
from astromodal.training import losses as L
from astromodal.training.predictions import Categorical, Gaussian

__all__ = ["HEADS", "Head", "default_head", "make_head", "register_head"]

HEADS: Registry[type[Head]] = Registry("head kind")


def register_head(name: str) -> Any:
    """Class decorator: register a :class:`Head` subclass under ``name`` (its ``kind``)."""

    def decorator(cls: type[Head]) -> type[Head]:
        cls.kind = name
        return HEADS.add(name, cls)

    return decorator


def _numpy(y: Any) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    return np.asarray(y)


class Head:
    """One output of a model: target encoding, loss, accuracy and decoding (see the module text)."""

    kind: ClassVar[str] = ""
    task: ClassVar[str] = ""
    #: the ``loss`` values the kind accepts (the first is the default)
    losses: ClassVar[tuple[str, ...]] = ()
    #: spec keys beyond ``kind`` and ``weight``
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, weight: float = 1.0):
        self.name = str(name)
        try:
            self.weight = float(weight)
        except (TypeError, ValueError):
            raise ConfigError(f"head {self.name!r}: weight must be a number, not {weight!r}") from None
        if not np.isfinite(self.weight) or self.weight < 0:
            raise ConfigError(f"head {self.name!r}: weight must be a finite number >= 0, not {weight!r}")
        #: set by the trainer when every training and validation target is valid: the loss then skips
        #: the mask (exactly today's single-target arithmetic)
        self.complete = False
        self.fitted = False
        self._device_cache: dict[Any, torch.Tensor | None] = {}

    # ---- to be given by each kind
    @property
    def n_outputs(self) -> int:
        raise NotImplementedError

    def fit_target(self, y: Any) -> Head:
        raise NotImplementedError

    def encode(self, y: Any) -> torch.Tensor:
        raise NotImplementedError

    def valid(self, y: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the rows of an encoded target that have a value."""
        raise NotImplementedError

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(number correct, number valid) of a class head; None for a regression head."""
        return None

    def decode(self, out: np.ndarray) -> Categorical | Gaussian:
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        return {}

    def _fitted_state(self) -> dict[str, Any]:
        return {}

    def _load_fitted(self, d: dict[str, Any]) -> None:
        pass

    # ---- shared
    def _mask(self, y: torch.Tensor) -> torch.Tensor | None:
        return None if self.complete else self.valid(y)

    def _on(self, key: str, value: Any, device: torch.device) -> torch.Tensor | None:
        """A small constant tensor (class weights) cached per device."""
        if value is None:
            return None
        k = (key, str(device))
        if k not in self._device_cache:
            self._device_cache[k] = torch.as_tensor(value, dtype=torch.float32).to(device)
        return self._device_cache[k]

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError(f"head {self.name!r} is not fitted yet: call fit_target on the training targets")

    def state(self) -> dict[str, Any]:
        """JSON-ready description (kind, options and what fit_target learnt)."""
        d: dict[str, Any] = {"kind": self.kind, "name": self.name, "weight": self.weight, **self._options()}
        d["fitted"] = self.fitted
        if self.fitted:
            d.update(self._fitted_state())
        return d

    @staticmethod
    def from_state(d: dict[str, Any]) -> Head:
        """The head written by :meth:`state`."""
        cls = HEADS.get(d["kind"])
        head = cls(d["name"], weight=d.get("weight", 1.0), **{k: d[k] for k in cls.options if k in d})
        if d.get("fitted"):
            head._load_fitted(d)
            head.fitted = True
        return head

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self._options()}, weight={self.weight})"


# ---------------------------------------------------------------------- classification
def _class_missing(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "biu":
        return y == -1
    if y.dtype.kind == "f":
        return np.isnan(y) | (y == -1)
    if y.dtype.kind in "US":
        return y == y.dtype.type("")
    return np.array([v is None or v == "" or (isinstance(v, float) and np.isnan(v)) for v in y.reshape(-1)],
                    dtype=bool).reshape(y.shape)


class ClassHead(Head):
    """Shared part of the class heads: labels -> indices into ``classes_``, class weights."""

    task: ClassVar[str] = "classification"
    options: ClassVar[tuple[str, ...]] = ("class_weight", "classes", "loss")

    def __init__(self, name: str, weight: float = 1.0, class_weight: str | None = None,
                 classes: Any = None, loss: str | None = None):
        super().__init__(name, weight)
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"head {self.name!r}: class_weight must be null or 'balanced', not {class_weight!r}")
        if loss not in (None, *self.losses):
            raise ConfigError(f"head {self.name!r}: a {self.kind} head has loss {self.losses[0]!r}, not {loss!r}")
        self.class_weight = class_weight
        self.fixed_classes = None if classes is None else np.asarray(classes)
        self.classes_: np.ndarray | None = None
        self.weights_: np.ndarray | None = None  # class weights (categorical) or [pos_weight] (binary)

    def _options(self) -> dict[str, Any]:
        fixed = None if self.fixed_classes is None else self.fixed_classes.tolist()
        return {"class_weight": self.class_weight, "classes": fixed}

    def _fitted_state(self) -> dict[str, Any]:
        return {"classes_": self.classes_.tolist(),
                "weights_": None if self.weights_ is None else [float(w) for w in self.weights_]}

    def _load_fitted(self, d: dict[str, Any]) -> None:
        self.classes_ = np.asarray(d["classes_"])
        self.weights_ = None if d.get("weights_") is None else np.asarray(d["weights_"], dtype=np.float64)

    def fit_target(self, y: Any) -> Head:
        y = _numpy(y).reshape(-1)
        present = y[~_class_missing(y)]
        if self.fixed_classes is not None:
            self.classes_ = self.fixed_classes
        else:
            self.classes_ = np.unique(present)
            if len(self.classes_) < 2:
                raise BadValueError(f"head {self.name!r}: classification needs at least 2 classes in the "
                                    f"training target, got {len(self.classes_)}")
        self.fitted = True
        self._device_cache = {}
        codes = self._codes(present, "training")
        if self.class_weight == "balanced":
            try:
                self.weights_ = self._balanced(codes)
            except BadValueError as exc:
                raise BadValueError(f"head {self.name!r}: {exc}") from None
        else:
            self.weights_ = None
        return self

    def _balanced(self, codes: np.ndarray) -> np.ndarray:
        """The balanced class weights of training codes ``codes`` (subclasses)."""
        raise NotImplementedError

    def _predicted(self, out: torch.Tensor) -> torch.Tensor:
        """The predicted class index per row of the raw output (subclasses)."""
        raise NotImplementedError

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = y.reshape(-1)
        valid = y >= 0
        return ((self._predicted(out) == y) & valid).sum(), valid.sum()

    def _codes(self, y: np.ndarray, what: str) -> np.ndarray:
        classes = self.classes_
        order = np.argsort(classes, kind="stable")  # a given ``classes`` list need not be sorted
        codes = order[np.clip(np.searchsorted(classes, y, sorter=order), 0, len(classes) - 1)]
        bad = classes[codes] != y if len(y) else np.zeros(0, dtype=bool)
        if bad.any():
            raise BadValueError(f"head {self.name!r}: {what} labels {sorted(set(y[bad].tolist()))[:5]} are not "
                                f"among the known classes {classes.tolist()}")
        return codes.astype(np.int64)

    def encode(self, y: Any) -> torch.Tensor:
        """Indices into ``classes_`` (int64), ``-1`` where the label is missing."""
        self._check_fitted()
        y = _numpy(y).reshape(-1)
        missing = _class_missing(y)
        codes = np.full(len(y), -1, dtype=np.int64)
        codes[~missing] = self._codes(y[~missing], "target")
        return torch.from_numpy(codes)

    def valid(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(-1) >= 0


@register_head("categorical")
class CategoricalHead(ClassHead):
    """K logits, softmax cross-entropy (optionally class-balanced)."""

    losses: ClassVar[tuple[str, ...]] = ("cross_entropy",)

    @property
    def n_outputs(self) -> int:
        if self.classes_ is None and self.fixed_classes is None:
            self._check_fitted()
        return len(self.classes_ if self.classes_ is not None else self.fixed_classes)

    def _balanced(self, codes: np.ndarray) -> np.ndarray:
        return L.balanced_class_weights(codes, len(self.classes_))

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return L.cross_entropy(out, y, self._on("w", self.weights_, out.device), self._mask(y))

    def _predicted(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=1)

    def decode(self, out: np.ndarray) -> Categorical:
        self._check_fitted()
        proba = torch.softmax(torch.as_tensor(np.asarray(out)).double(), dim=1).numpy()
        return Categorical(proba, self.classes_)


@register_head("binary")
class BinaryHead(ClassHead):
    """One logit for the second of two classes, binary cross-entropy (balanced: ``n_neg / n_pos``)."""

    losses: ClassVar[tuple[str, ...]] = ("bce_logits",)

    @property
    def n_outputs(self) -> int:
        return 1

    def fit_target(self, y: Any) -> Head:
        super().fit_target(y)
        if len(self.classes_) != 2:
            raise BadValueError(f"head {self.name!r}: a binary head needs exactly 2 classes, "
                                f"the training target has {len(self.classes_)}")
        return self

    def _balanced(self, codes: np.ndarray) -> np.ndarray:
        return np.array([L.balanced_pos_weight(codes)])

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return L.bce_logits(out, y, self._on("w", self.weights_, out.device), self._mask(y))

    def _predicted(self, out: torch.Tensor) -> torch.Tensor:
        return (out.reshape(-1) > 0).long()

    def decode(self, out: np.ndarray) -> Categorical:
        self._check_fitted()
        logit = torch.as_tensor(np.asarray(out)).double().reshape(len(out), -1)[:, 0]
        proba = torch.stack([torch.sigmoid(-logit), torch.sigmoid(logit)], dim=1).numpy()
        return Categorical(proba, self.classes_)


# ---------------------------------------------------------------------- regression
class RegressionHead(Head):
    """Shared part of the regression heads: standardisation of the valid (non-NaN) training values."""

    task: ClassVar[str] = "regression"
    options: ClassVar[tuple[str, ...]] = ("standardise", "loss")

    def __init__(self, name: str, weight: float = 1.0, standardise: bool = True, loss: str | None = None):
        super().__init__(name, weight)
        if not isinstance(standardise, bool):
            raise ConfigError(f"head {self.name!r}: standardise must be true or false, not {standardise!r}")
        if loss not in (None, *self.losses):
            raise ConfigError(f"head {self.name!r}: loss of a {self.kind} head must be one of "
                              f"{', '.join(self.losses)}, not {loss!r}")
        self.standardise = standardise
        self.loss_name = loss or self.losses[0]
        self.mean_, self.std_ = 0.0, 1.0

    def _options(self) -> dict[str, Any]:
        return {"standardise": self.standardise, "loss": self.loss_name}

    def _fitted_state(self) -> dict[str, Any]:
        return {"mean_": self.mean_, "std_": self.std_}

    def _load_fitted(self, d: dict[str, Any]) -> None:
        self.mean_, self.std_ = float(d["mean_"]), float(d["std_"])

    def _values(self, y: Any, what: str) -> np.ndarray:
        y = _numpy(y)
        if y.dtype.kind not in "biuf":
            raise BadValueError(f"head {self.name!r}: a {self.kind} head needs a numeric {what} target, got {y.dtype}")
        y = y.astype(np.float64).reshape(len(y))
        bad = np.isinf(y)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BadValueError(f"head {self.name!r}: the {what} target has an infinite value at row {row}")
        return y

    def fit_target(self, y: Any) -> Head:
        y = self._values(y, "training")
        present = y[~np.isnan(y)]
        if len(present) == 0:
            raise BadValueError(f"head {self.name!r}: no training object has a target value")
        if self.standardise:
            mean, std = float(present.mean()), float(present.std())
            self.mean_, self.std_ = mean, (std if std > 0 else 1.0)
        self.fitted = True
        return self

    def encode(self, y: Any) -> torch.Tensor:
        """float32 standardised values, NaN where the target is missing."""
        self._check_fitted()
        if not self.standardise:  # the values as they are (today's single-target path: bit for bit)
            t = torch.as_tensor(y) if isinstance(y, torch.Tensor) else torch.from_numpy(self._values(y, "target"))
            return t.float().reshape(-1)
        y = self._values(y, "target")
        return torch.from_numpy(((y - self.mean_) / self.std_).astype(np.float32))

    def valid(self, y: torch.Tensor) -> torch.Tensor:
        return ~torch.isnan(y.reshape(-1))

    def _mean(self, out: np.ndarray) -> np.ndarray:
        out = np.asarray(out)
        col = out[:, 0] if out.ndim == 2 else out.reshape(-1)
        return col.astype(np.float64) * self.std_ + self.mean_


@register_head("gaussian")
class GaussianHead(RegressionHead):
    """(mean, raw variance) per object, variance ``softplus(raw) + 1e-6``, Gaussian NLL."""

    losses: ClassVar[tuple[str, ...]] = ("gaussian_nll",)

    @property
    def n_outputs(self) -> int:
        return 2

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return L.gaussian_nll_loss(out, y, self._mask(y))

    def decode(self, out: np.ndarray) -> Gaussian:
        self._check_fitted()
        out = np.asarray(out)
        var = L.gaussian_variance(torch.as_tensor(out[:, 1])).numpy().astype(np.float64) * self.std_**2
        return Gaussian(self._mean(out), var)


@register_head("point")
class PointHead(RegressionHead):
    """One value per object, ``loss: mse`` or ``l1``; no uncertainty (decoded variance NaN)."""

    losses: ClassVar[tuple[str, ...]] = ("mse", "l1")

    @property
    def n_outputs(self) -> int:
        return 1

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return L.point_loss(out, y.reshape(-1), self.loss_name, self._mask(y))

    def decode(self, out: np.ndarray) -> Gaussian:
        self._check_fitted()
        return Gaussian.point(self._mean(out))


# ---------------------------------------------------------------------- construction
_LOSS_KIND = {"cross_entropy": "categorical", "bce_logits": "binary", "gaussian_nll": "gaussian",
              "mse": "point", "l1": "point"}


def make_head(name: str, spec: dict[str, Any] | str | None = None) -> Head:
    """A head from a config spec: a kind name, or ``{kind, weight, class_weight, loss, ...}`` (the kind may
    be left out when ``loss`` names it); a bad kind, key or value is one :class:`ConfigError` line."""
    spec = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
    if not isinstance(spec, dict):
        raise ConfigError(f"head {name!r}: the spec must be a head kind or a mapping, not {spec!r}")
    kind = spec.pop("kind", None) or _LOSS_KIND.get(spec.get("loss"))  # type: ignore[arg-type]
    if kind is None:
        raise ConfigError(f"head {name!r}: no 'kind'; choose one of {', '.join(HEADS.names())}")
    if kind not in HEADS:
        raise ConfigError(f"head {name!r}: unknown head kind {kind!r}; registered: {', '.join(HEADS.names())}")
    cls = HEADS.get(kind)
    allowed = ("kind", "weight", *cls.options)
    unknown = [k for k in spec if k not in allowed]
    if unknown:
        raise ConfigError(f"head {name!r}: unknown key {unknown[0]!r} for a {kind} head; "
                          f"allowed keys: {', '.join(allowed)}")
    return cls(name, **spec)


def _is_class(y: np.ndarray) -> bool:
    return y.dtype.kind in "biuUSO"


def default_head(name: str, y: Any, loss: str = "auto", class_weight: str | None = None, *,
                 n_outputs: int | None = None, standardise: bool = True) -> Head:
    """The head of today's single-target training from the trainer's ``loss`` and ``class_weight``.

    Without ``n_outputs`` (choosing the model's width): class labels give ``binary`` for 2 classes with
    ``loss`` auto / bce_logits, else ``categorical``; a real target ``gaussian`` for ``gaussian_nll``, else
    ``point`` (mse). With ``n_outputs`` (a model already built, targets already class codes 0..K-1): the
    kind follows :func:`astromodal.training.losses.resolve_loss` exactly, with the classes fixed to
    ``0..K-1``. The head is returned unfitted (call ``fit_target`` on the training targets)."""
    y = _numpy(y)
    if n_outputs is None:
        if loss not in L.LOSSES:
            raise ConfigError(f"unknown loss {loss!r}; choose one of {', '.join(L.LOSSES)}")
        if _is_class(y):
            if loss in ("gaussian_nll", "mse"):
                raise ConfigError(f"loss {loss!r} is for a real-valued target; the target {name!r} has class labels")
            k = len(np.unique(y[~_class_missing(y)]))
            kind = "binary" if k == 2 and loss in ("auto", "bce_logits") else "categorical"
        else:
            if loss in ("bce_logits", "cross_entropy"):
                raise BadValueError(f"loss {loss!r} needs integer class codes as target, got a real-valued target")
            kind = "gaussian" if loss == "gaussian_nll" else "point"
        resolved = {"binary": "bce_logits", "categorical": "cross_entropy"}.get(kind, loss)
        classes = None
    else:
        resolved = L.resolve_loss(loss, n_outputs, y)
        kind = _LOSS_KIND[resolved]
        classes = {"binary": [0, 1], "categorical": list(range(n_outputs))}.get(kind)
    if class_weight not in (None, "balanced"):
        raise ConfigError(f"class_weight must be None or 'balanced', not {class_weight!r}")
    if class_weight == "balanced" and kind in ("gaussian", "point"):
        raise ConfigError(f"class_weight='balanced' needs a classification loss, not {resolved!r}")
    if kind in ("binary", "categorical"):
        return HEADS.get(kind)(name, class_weight=class_weight, classes=classes)
    return HEADS.get(kind)(name, standardise=standardise)
