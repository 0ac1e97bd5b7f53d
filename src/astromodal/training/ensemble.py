"""Ensembles of fitted estimators (k-fold models, or MESCR's six weighted sub-models), and the resample
(bagging) builder :func:`fit_resample_ensemble`; the k-fold builder is
:func:`astromodal.training.crossval.kfold_ensemble`.

Classification: the class probabilities of the members are averaged with weights ``w_i`` (normalised
to sum to one); members that saw different classes are aligned on the union of their classes.

Regression with Gaussian members (mean ``mu_i`` and variance ``s2_i`` per object), as in MESCR Eq. 1,
always UNWEIGHTED over the M members (the study's radius is the plain mean of its six sub-models; its
weights are for the class probabilities only, so a regression ensemble refuses unequal weights)::

    mu        = (1/M) sum_i mu_i
    s2        = (1/M) sum_i (s2_i + mu_i^2) - mu^2            (MESCR Eq. 1)
    sigma_net = sqrt((1/M) sum_i (mu_i - mu)^2)               (the standard deviation of the mu_i, ddof 0)

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
        if self.task == "regression" and not np.allclose(w, w[0]):
            raise ConfigError(f"ensemble weights {w.round(4).tolist()} apply to class probabilities only: the "
                              "Gaussian combination of regression members is unweighted (MESCR Eq. 1)")
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
        return combine_gaussians(np.stack(mus), np.stack(s2s))  # unweighted: class weights never reach it

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


def combine_gaussians(mu: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixture mean, mixture variance (MESCR Eq. 1) and spread of the means (sigma_net) for member arrays
    ``mu``, ``s2`` (M, N), each member counted once (no weights, see the module text)."""
    mu = np.asarray(mu, dtype=np.float64)
    s2 = np.asarray(s2, dtype=np.float64)
    if mu.shape != s2.shape:
        raise BadValueError(f"member means {mu.shape} and variances {s2.shape} differ in shape")
    m = mu.shape[0]
    w = np.full((m,) + (1,) * (mu.ndim - 1), 1.0 / m)
    mean = np.sum(w * mu, axis=0)
    spread2 = np.maximum(np.sum(w * (mu - mean) ** 2, axis=0), 0.0)
    # sum_i w_i (s2_i + mu_i^2) - mu^2, written as mean variance + spread (no cancellation of large mu^2);
    # a NaN member variance (unknown) makes the total NaN
    var = np.sum(w * s2, axis=0) + spread2
    return mean, np.maximum(var, 0.0), np.sqrt(spread2)


# ---------------------------------------------------------------------- resample (bagging) ensembles
@dataclass
class ResampleResult:
    """Members trained on weighted draws with replacement, their out-of-bag (OOB) predictions, and
    their ensemble (combined with ``combine_weights`` for class probabilities, unweighted for Gaussians).

    ``oob[m]`` are the training rows member ``m`` never drew (sorted); ``oob_members[m]`` its predictions
    on exactly those rows (``proba`` (n_oob, K) in ``ensemble.classes_`` order and ``prediction``; or
    ``mean`` and ``var``). The combined OOB prediction of a row uses only the members for which it is out
    of bag (``oob_covered`` is False for a row every member drew: it has no OOB prediction, NaN, or -1 /
    None for class labels).
    """

    members: list[Any]
    ensemble: EnsembleEstimator
    draws: list[np.ndarray]
    oob: list[np.ndarray]
    oob_members: list[dict[str, np.ndarray]]
    oob_covered: np.ndarray
    oob_prediction: np.ndarray
    oob_proba: np.ndarray | None = None  # (N, K) classification, rows not covered are NaN
    oob_var: np.ndarray | None = None  # regression: Eq. 1 over the OOB members of each row
    oob_sigma_net: np.ndarray | None = None
    member_info: list[dict[str, Any]] = field(default_factory=list)
    y: np.ndarray | None = None

    @property
    def oob_score(self) -> float | None:
        """Accuracy (classification) or RMSE (regression) of the combined OOB prediction over the covered
        rows; None when no row is out of bag for any member."""
        if self.y is None or not self.oob_covered.any():
            return None
        y, pred = self.y[self.oob_covered], self.oob_prediction[self.oob_covered]
        if self.ensemble.task == "classification":
            return float(np.mean(pred == y))
        return float(np.sqrt(np.mean((pred - y) ** 2)))


def draw_probabilities(member_weights: Any, y: np.ndarray, n_members: int) -> np.ndarray:
    """Per-member sampling probabilities (n_members, N), each row summing to one.

    ``None`` or ``"uniform"``: every object alike; ``"balanced"``: 1 / (count of the object's class), so
    each class is drawn equally often on average (classification only); an array (N,) for all members or
    (n_members, N), one row per member (non-negative, finite, not all zero; e.g. MESCR's class-targeted
    ``1/f^2`` copies).
    """
    y = np.asarray(y)
    n = len(y)
    if member_weights is None or (isinstance(member_weights, str) and member_weights == "uniform"):
        w = np.ones((n_members, n))
    elif isinstance(member_weights, str) and member_weights == "balanced":
        if y.dtype.kind == "f":
            raise ConfigError("member_weights 'balanced' weights by inverse class frequency: it needs a class target")
        _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
        w = np.broadcast_to(1.0 / counts[inverse], (n_members, n)).astype(np.float64)
    elif isinstance(member_weights, str):
        raise ConfigError(f"member_weights {member_weights!r}: use 'uniform', 'balanced' or an array of weights")
    else:
        w = np.asarray(member_weights, dtype=np.float64)
        if w.shape == (n,):
            w = np.broadcast_to(w, (n_members, n)).astype(np.float64)
        if w.shape != (n_members, n):
            raise ConfigError(f"member_weights of shape {w.shape}: expected ({n},) or ({n_members}, {n})")
    if not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=1) <= 0).any():
        raise ConfigError("member_weights must be finite, non-negative and not all zero for any member")
    return w / w.sum(axis=1, keepdims=True)


def fit_resample_ensemble(make: Callable[[], Any], X: Any, y: np.ndarray, n_members: int,
                          member_weights: Any = None, combine_weights: Any = None, seed: int = 0) -> ResampleResult:
    """Train ``n_members`` fresh estimators, member ``m`` on ``len(y)`` draws WITH replacement with the
    probabilities of its weights (:func:`draw_probabilities`), and combine them into an
    :class:`EnsembleEstimator` (``combine_weights``: class-probability weights, default equal).

    Draws are seeded per member from ``numpy.random.SeedSequence(seed).spawn(n_members)``, so a run
    repeats exactly; a neural member's trainer seed becomes ``seed + m`` and a ``checkpoint_dir`` gets a
    ``member-NN`` sub-folder. Each member is fitted on its draw alone (a neural trainer holds out its own
    ``val_fraction`` of the draw for early stopping, as MESCR splits each copy 8:2); the rows it never
    drew are its out-of-bag rows, predicted after fitting and never seen by it.
    """
    from astromodal.training.crossval import _adapt, _rows

    if int(n_members) < 1:
        raise ConfigError(f"n_members must be at least 1, got {n_members}")
    y = np.asarray(y)
    n = len(y)
    probs = draw_probabilities(member_weights, y, int(n_members))
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(int(n_members))]
    members: list[Any] = []
    draws: list[np.ndarray] = []
    oobs: list[np.ndarray] = []
    info: list[dict[str, Any]] = []
    for m, (p, rng) in enumerate(zip(probs, rngs, strict=True)):
        est = make()
        if any(est is other for other in members):
            raise ConfigError("fit_resample_ensemble: make() returned an estimator object already used for another "
                              "member; it must build a fresh one each call")
        _adapt(est, m, prefix="member")
        idx = rng.choice(n, size=n, replace=True, p=p)
        t0 = time.perf_counter()
        est.fit(_rows(X, idx), y[idx])
        oob = np.setdiff1d(np.arange(n), idx)
        members.append(est)
        draws.append(idx)
        oobs.append(oob)
        info.append({"member": m, "n_drawn": int(n), "n_unique": int(n - len(oob)), "n_oob": int(len(oob)),
                     "seconds": round(time.perf_counter() - t0, 3)})
    ensemble = EnsembleEstimator(members, combine_weights)
    result = _oob_predictions(ensemble, X, y, oobs)
    return ResampleResult(members, ensemble, draws, oobs, member_info=info, y=y, **result)


def _oob_predictions(ensemble: EnsembleEstimator, X: Any, y: np.ndarray, oobs: list[np.ndarray]) -> dict[str, Any]:
    """Each member's predictions on its own OOB rows, and their combination per row (the ensemble's rules
    restricted to the members for which the row is out of bag)."""
    from astromodal.training.crossval import _rows

    n, n_members = len(y), len(oobs)
    mask = np.zeros((n_members, n), dtype=bool)
    for m, oob in enumerate(oobs):
        mask[m, oob] = True
    covered = mask.any(axis=0)
    per_member: list[dict[str, np.ndarray]] = []
    if ensemble.task == "classification":
        classes = ensemble.classes_
        total = np.zeros((n, len(classes)))
        wsum = np.zeros(n)
        for m, (w, est, oob) in enumerate(zip(ensemble.weights, ensemble.members, oobs, strict=True)):
            if len(oob) == 0:
                per_member.append({"proba": np.zeros((0, len(classes))), "prediction": y[:0]})
                continue
            Xo = _rows(X, oob)
            try:
                p = np.asarray(est.predict_proba(Xo), dtype=np.float64)
                full = np.zeros((len(oob), len(classes)))
                full[:, np.searchsorted(classes, np.asarray(est.classes_))] = p
            except (AttributeError, NotImplementedError):  # no probabilities: the member's vote
                full = (np.asarray(est.predict(Xo))[:, None] == classes[None, :]).astype(np.float64)
            per_member.append({"proba": full, "prediction": classes[np.argmax(full, axis=1)]})
            total[oob] += w * full
            wsum[oob] += w * mask[m, oob]
        # a row out of bag only for members of weight 0 has no vote: it is not covered (never 0/0 = NaN)
        covered = covered & (wsum > 0)
        proba = np.full((n, len(classes)), np.nan)
        proba[covered] = total[covered] / wsum[covered, None]
        pred = np.full(n, -1, dtype=np.int64) if classes.dtype.kind in "biu" else np.full(n, None, dtype=object)
        pred[covered] = classes[np.argmax(proba[covered], axis=1)]
        return {"oob_members": per_member, "oob_covered": covered, "oob_prediction": pred, "oob_proba": proba}
    mus = np.zeros((n_members, n))
    s2s = np.zeros((n_members, n))
    for m, (est, oob) in enumerate(zip(ensemble.members, oobs, strict=True)):
        if len(oob) == 0:
            per_member.append({"mean": np.zeros(0), "var": np.zeros(0)})
            continue
        Xo = _rows(X, oob)
        if hasattr(est, "predict_mean_var"):
            mu_i, s2_i = est.predict_mean_var(Xo)
        else:
            mu_i, s2_i = np.asarray(est.predict(Xo), dtype=np.float64).reshape(len(oob), -1)[:, 0], None
        mu_i = np.asarray(mu_i, dtype=np.float64).reshape(len(oob))
        s2_i = np.full(len(oob), np.nan) if s2_i is None else np.asarray(s2_i, dtype=np.float64).reshape(len(oob))
        per_member.append({"mean": mu_i, "var": s2_i})
        mus[m, oob], s2s[m, oob] = mu_i, s2_i
    count = np.maximum(mask.sum(axis=0), 1)
    mean = np.where(mask, mus, 0.0).sum(axis=0) / count
    spread2 = np.where(mask, (mus - mean) ** 2, 0.0).sum(axis=0) / count
    var = np.where(mask, s2s, 0.0).sum(axis=0) / count + spread2  # Eq. 1 over this row's OOB members
    nan = ~covered
    mean[nan], var[nan], spread2[nan] = np.nan, np.nan, np.nan
    return {"oob_members": per_member, "oob_covered": covered, "oob_prediction": mean, "oob_var": var,
            "oob_sigma_net": np.sqrt(spread2)}
