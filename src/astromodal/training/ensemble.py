"""Ensembles of fitted estimators (k-fold models, or MESCR's six weighted sub-models).

Classification: the class probabilities of the members are averaged with weights ``w_i`` (normalised
to sum to one); members that saw different classes are aligned on the union of their classes.

Regression with Gaussian members (mean ``mu_i`` and variance ``s2_i`` per object), as in MESCR Eq. 1::

    mu        = sum_i w_i mu_i                                (equal weights: the mean of the mu_i)
    s2        = sum_i w_i (s2_i + mu_i^2) - mu^2              (equal weights: (1/M) sum (s2_i + mu_i^2) - mu^2)
    sigma_net = sqrt(sum_i w_i (mu_i - mu)^2)                 (equal weights: the standard deviation of the mu_i)

``s2`` is the variance of the mixture of the member Gaussians: their mean variance plus the spread of
their means; ``sigma_net`` is the model-to-model spread alone. All are in the target's unit (each
member undoes its own target standardisation). A member without a variance head (a scikit-learn
regressor, an MSE-trained network) has an unknown ``s2_i`` (NaN): ``s2`` is then NaN (never the spread
alone passed off as the whole uncertainty), while ``mu`` and ``sigma_net`` stay defined.
``predict_mean_var`` gives ``(mu, s2)``, like every regression estimator.

A binary classification ensemble may carry a decision ``threshold`` on the positive-class probability
(chosen on out-of-fold predictions, see :func:`astromodal.evaluation.metrics.best_threshold`); ``predict``
then gives class 1 where ``p >= threshold`` instead of the most probable class. It is saved with the
ensemble.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from astromodal.errors import BadValueError, ConfigError, DataFormatError


class EnsembleEstimator:
    """A weighted average of fitted estimators with the estimator front (fit is not available)."""

    kind = "ensemble"

    def __init__(self, members: list[Any], weights: list[float] | np.ndarray | None = None,
                 threshold: float | None = None):
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.members = list(members)
        if weights is None:
            w = np.full(len(members), 1.0 / len(members))
        else:
            w = np.asarray(weights, dtype=np.float64).reshape(-1)
            if len(w) != len(members):
                raise ConfigError(f"{len(w)} ensemble weights for {len(members)} members")
            if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
                raise ConfigError(f"ensemble weights must be non-negative and not all zero, got {w.tolist()}")
            w = w / w.sum()
        self.weights = w
        tasks = {m.task for m in members}
        if len(tasks) != 1:
            raise ConfigError(f"ensemble members mix tasks {sorted(tasks)}")
        self.task = tasks.pop()
        self.classes_: np.ndarray | None = None
        if self.task == "classification":
            self.classes_ = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        self.history = None
        self.threshold: float | None = None
        if threshold is not None:
            self.set_threshold(threshold)

    def set_threshold(self, threshold: float | None) -> None:
        """Decide binary labels by ``p(class 1) >= threshold`` (None: the most probable class)."""
        if threshold is not None:
            if self.task != "classification" or self.classes_ is None or len(self.classes_) != 2:
                raise ConfigError("a decision threshold needs a binary classification ensemble")
            if not 0.0 <= float(threshold) <= 1.0:
                raise ConfigError(f"decision threshold must lie in [0, 1], got {threshold}")
            threshold = float(threshold)
        self.threshold = threshold

    def _member_counts(self) -> list[int] | None:
        counts = [getattr(m, "n_parameters", None) for m in self.members]
        counts = [c() if callable(c) else c for c in counts]
        return None if any(c is None for c in counts) else [int(c) for c in counts]

    @property
    def n_parameters(self) -> int | None:
        """Trainable parameters of the whole ensemble (the sum over its members)."""
        counts = self._member_counts()
        return None if counts is None else sum(counts)

    @property
    def member_parameters(self) -> int | None:
        """Trainable parameters of one member (the model's own size, as a paper quotes it); the largest
        member's when they differ."""
        counts = self._member_counts()
        return None if counts is None else max(counts)

    def fit(self, *args: Any, **kwargs: Any) -> EnsembleEstimator:
        raise NotImplementedError("an ensemble is made of fitted members; use kfold_ensemble to train one")

    # ---- classification
    def predict_proba(self, X: Any) -> np.ndarray:
        """Weighted mean of the member class probabilities (N, K), columns in ``classes_`` order."""
        if self.task != "classification":
            raise NotImplementedError("predict_proba is for classification")
        total = None
        for w, m in zip(self.weights, self.members, strict=True):
            p = np.asarray(m.predict_proba(X), dtype=np.float64)
            cols = np.searchsorted(self.classes_, np.asarray(m.classes_))
            full = np.zeros((len(p), len(self.classes_)))
            full[:, cols] = p
            total = w * full if total is None else total + w * full
        return total

    def votes(self, X: Any) -> np.ndarray:
        """Weighted share of the members voting for each class (N, K), from their ``predict`` labels;
        for members that give no probabilities. Ties go to the first class in ``classes_`` order."""
        if self.task != "classification":
            raise NotImplementedError("votes are for classification")
        total = None
        for w, m in zip(self.weights, self.members, strict=True):
            pred = np.asarray(m.predict(X))
            one_hot = (pred[:, None] == self.classes_[None, :]).astype(np.float64)
            total = w * one_hot if total is None else total + w * one_hot
        return total

    # ---- regression
    def predict_dist(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mu, s2, sigma_net) per object for regression members (MESCR Eq. 1, see the module text)."""
        if self.task != "regression":
            raise NotImplementedError("predict_dist is for regression")
        mus, s2s = [], []
        for m in self.members:
            if hasattr(m, "predict_mean_var"):
                mu_i, s2_i = m.predict_mean_var(X)
            else:  # a member that predicts no uncertainty
                mu_i = np.asarray(m.predict(X), dtype=np.float64).reshape(-1)
                s2_i = np.full_like(mu_i, np.nan)
            if s2_i is None:
                s2_i = np.full_like(np.asarray(mu_i, dtype=np.float64), np.nan)
            mus.append(np.asarray(mu_i, dtype=np.float64).reshape(-1))
            s2s.append(np.asarray(s2_i, dtype=np.float64).reshape(-1))
        return combine_gaussians(np.stack(mus), np.stack(s2s), self.weights)

    @property
    def gives_variance(self) -> bool:
        """True when every member predicts a variance (so the mixture variance is defined)."""
        return self.task == "regression" and all(bool(getattr(m, "gives_variance", False)) for m in self.members)

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mixture mean and total variance (mean member variance + variance of the member means), in the
        target's unit; the variance is NaN when a member predicts none."""
        mu, s2, _ = self.predict_dist(X)
        return mu, s2

    def predict(self, X: Any) -> np.ndarray:
        """Class labels of the highest mean probability (or by the decision threshold), or the ensemble
        mean ``mu`` for regression."""
        if self.task == "classification":
            from astromodal.evaluation.metrics import decide

            try:
                return self.classes_[decide(self.predict_proba(X), self.threshold)]
            except NotImplementedError:  # members without probabilities (e.g. a linear SVM): weighted vote
                return self.classes_[np.argmax(self.votes(X), axis=1)]
        return self.predict_dist(X)[0]

    # ---- persistence
    def save(self, folder: str | Path) -> Path:
        """``ensemble.json`` + one sub-folder per member (``member-00``, ...)."""
        from astromodal.atomic import write_json
        from astromodal.training.estimator import _jsonable

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"member-{i:02d}" for i in range(len(self.members))]
        for name, m in zip(names, self.members, strict=True):
            m.save(folder / name)
        write_json(folder / "ensemble.json", {
            "kind": self.kind,
            "task": self.task,
            "classes": None if self.classes_ is None else _jsonable(self.classes_),
            "weights": self.weights.tolist(),
            "threshold": self.threshold,
            "members": names,
        })
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> EnsembleEstimator:
        """Read a saved ensemble folder (``trust`` is passed on to members that are pickles)."""
        from astromodal.training.estimator import load_estimator, read_json

        folder = Path(folder)
        meta = read_json(folder / "ensemble.json")
        if meta.get("kind") != cls.kind or not meta.get("members"):
            raise DataFormatError(f"{folder / 'ensemble.json'}: not an astromodal ensemble")
        members = [load_estimator(folder / name, trust=trust) for name in meta["members"]]
        return cls(members, meta.get("weights"), threshold=meta.get("threshold"))


def combine_gaussians(mu: np.ndarray, s2: np.ndarray,
                      weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixture mean, mixture variance and spread of the means for member arrays ``mu``, ``s2`` (M, N)."""
    mu = np.asarray(mu, dtype=np.float64)
    s2 = np.asarray(s2, dtype=np.float64)
    if mu.shape != s2.shape:
        raise BadValueError(f"member means {mu.shape} and variances {s2.shape} differ in shape")
    m = mu.shape[0]
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    w = w.reshape((m,) + (1,) * (mu.ndim - 1))
    mean = np.sum(w * mu, axis=0)
    spread2 = np.maximum(np.sum(w * (mu - mean) ** 2, axis=0), 0.0)
    # sum_i w_i (s2_i + mu_i^2) - mu^2, written as mean variance + spread (no cancellation of large mu^2);
    # a NaN member variance (unknown) makes the total NaN
    var = np.sum(w * s2, axis=0) + spread2
    return mean, np.maximum(var, 0.0), np.sqrt(spread2)
