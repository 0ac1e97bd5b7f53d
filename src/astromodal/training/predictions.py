"""What an estimator predicts for one head: typed, per object, in the target's own unit.

Every estimator (classical, neural, ensemble) answers ``predict_heads(X) -> {head name: prediction}``
with one of these per head (the head name is the target's name, e.g. ``class`` and ``radius``):

* :class:`Categorical` ``(proba, classes)``: class probabilities ``(N, K)`` in the order of ``classes``
  (the class codes seen in training); a binary head gives two columns ``[1 - p, p]``;
* :class:`Gaussian` ``(mean, var)``: a regression prediction and its variance ``(N,)``; ``var`` is NaN
  for every object when the model predicts no uncertainty (a point head, a scikit-learn regressor): an
  unknown uncertainty is never reported as zero; an ensemble adds ``sigma_net`` (the spread of the
  member means, MESCR);
* :class:`Embedding` ``(vectors)``: an ``(N, D)`` representation (a contrastive encoder's output).

The single-head conveniences of an estimator (``predict``, ``predict_proba``, ``predict_mean_var``)
read the first head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from astromodal.errors import BadValueError


def decide(proba: Any, threshold: float | None = None) -> np.ndarray:
    """Class indices from probabilities (N, K): the most probable class, or for two classes with a
    ``threshold``, class 1 where its probability is at least the threshold."""
    proba = np.asarray(proba)
    if threshold is not None and proba.ndim == 2 and proba.shape[1] == 2:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.argmax(proba, axis=1)


@dataclass
class Categorical:
    """Class probabilities ``proba`` (N, K) over ``classes`` (K,) and an optional binary ``threshold``."""

    proba: np.ndarray
    classes: np.ndarray
    threshold: float | None = None

    kind = "categorical"

    def __post_init__(self) -> None:
        self.proba = np.asarray(self.proba, dtype=np.float64)
        self.classes = np.asarray(self.classes)
        if self.proba.ndim != 2 or self.proba.shape[1] != len(self.classes):
            raise BadValueError(f"class probabilities of shape {self.proba.shape} for {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.proba)

    @property
    def labels(self) -> np.ndarray:
        """The predicted class per object: the most probable one, or for a binary head with a
        ``threshold`` class 1 where ``p(class 1) >= threshold``."""
        if len(self.proba) == 0:
            return self.classes[:0]
        return self.classes[decide(self.proba, self.threshold)]


@dataclass
class Gaussian:
    """A regression mean and variance per object (NaN variance: no uncertainty predicted)."""

    mean: np.ndarray
    var: np.ndarray
    sigma_net: np.ndarray | None = None  # ensembles: the standard deviation of the member means

    kind = "gaussian"

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.var = np.asarray(self.var, dtype=np.float64).reshape(-1)
        if self.var.shape != self.mean.shape:
            raise BadValueError(f"{len(self.mean)} means but {len(self.var)} variances")
        if self.sigma_net is not None:
            self.sigma_net = np.asarray(self.sigma_net, dtype=np.float64).reshape(-1)

    def __len__(self) -> int:
        return len(self.mean)

    @property
    def has_variance(self) -> bool:
        """True when a variance was predicted (not NaN) for every object."""
        return bool(len(self.var)) and bool(np.isfinite(self.var).all())

    @property
    def sigma(self) -> np.ndarray:
        return np.sqrt(self.var)

    @classmethod
    def point(cls, mean: Any) -> Gaussian:
        """A prediction without uncertainty (variance NaN)."""
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        return cls(mean, np.full_like(mean, np.nan))


@dataclass
class Embedding:
    """An (N, D) representation of each object."""

    vectors: np.ndarray

    kind = "embedding"

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise BadValueError(f"an embedding is (N, D), got shape {self.vectors.shape}")

    def __len__(self) -> int:
        return len(self.vectors)


Prediction = Categorical | Gaussian | Embedding


def legacy_predict_heads(estimator: Any, X: Any, name: str) -> dict[str, Prediction]:
    """``{name: prediction}`` for an estimator with one implicit head (``predict_proba`` /
    ``predict_mean_var`` / ``predict``): what ``predict_heads`` gives for a single-target model."""
    task = getattr(estimator, "task", "classification")
    if task == "classification":
        classes = np.asarray(estimator.classes_)
        try:
            proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        except (AttributeError, NotImplementedError):  # no probabilities (a linear SVM): one-hot labels
            labels = np.asarray(estimator.predict(X))
            proba = (labels[:, None] == classes[None, :]).astype(np.float64)
        return {name: Categorical(proba, classes, getattr(estimator, "threshold", None))}
    if hasattr(estimator, "predict_dist"):
        mean, var, spread = estimator.predict_dist(X)
        return {name: Gaussian(mean, var, spread)}
    if hasattr(estimator, "predict_mean_var"):
        mean, var = estimator.predict_mean_var(X)
        return {name: Gaussian(mean, np.full(len(np.asarray(mean).reshape(-1)), np.nan) if var is None else var)}
    return {name: Gaussian.point(np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1))}
