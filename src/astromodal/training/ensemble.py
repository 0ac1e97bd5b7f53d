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
``predict_mean_var`` gives ``(mu, s2)``, like every regression estimator. :func:`combine_gaussians` takes
a ``mask`` (M, N) of the members that count for each object (the out-of-bag combination uses it).

Members with several heads (``class`` and ``radius``): :meth:`EnsembleEstimator.predict_heads` combines
per head, a class head by the weighted mean of its probabilities, a regression head by Eq. 1 unweighted
(plus ``sigma_net``); unequal weights need at least one class head. :func:`fit_resample_ensemble` and
:func:`~astromodal.training.crossval.kfold_ensemble` take ``y`` as a dict ``{target: array}``.

MESCR's six copies (``member_weights="mescr"``, :func:`mescr_weights`): with ``f_c`` the relative
frequency of class ``c`` in the training split (count / N), member 0 (``base``, D_base) draws object i
with weight ``1/f(c_i)`` and member k (D_<class k>, k = 1..K, classes in the class head's order) with
``1/f(c_i)^2`` for the objects of class k and ``1/f(c_i)`` for the others; each member's weights are
normalised to probabilities ``P(x_i) = w_i / sum_j w_j`` (seed section 3.2.1). ``f`` is the relative
frequency (< 1), so squaring raises the target class's weight, as the paper says ("further increased due
to the squaring effect"); squaring a raw count would lower it. Rows without a class label form a group
of their own with weight ``1/f`` in every member and no member of their own. Each member draws
``draw_size`` rows with replacement (MESCR: 9,000; default the training split's size); the 2nd, 3rd, ...
copies of a row in a draw are its duplicates (:func:`duplicate_flags`), augmented at least once per epoch
when the members' trainer has an ``augment`` pipeline. ``combine_weights`` may then be a mapping by member
name, ``{base: 0.1, A: 0.2, F: 0.1, G: 0.2, K: 0.15, M: 0.25}`` (the study's), normalised.

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


def ensemble_weights(weights: Any, n_members: int, tasks: dict[str, str] | None = None,
                     names: list[str] | None = None) -> np.ndarray:
    """Member weights normalised to sum to one (equal when None); a :class:`ConfigError` for a wrong length,
    negative / non-finite / all-zero weights, or unequal weights when no head is a class head (``tasks``
    ``{head: task}``): the weights are for class probabilities, the Gaussian combination is unweighted.
    ``weights`` may be a mapping ``{member name: weight}`` over exactly the member ``names``."""
    if isinstance(weights, dict):
        weights = weights_by_name(weights, names)
    if weights is None:
        w = np.full(n_members, 1.0 / n_members)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if len(w) != n_members:
            raise ConfigError(f"{len(w)} ensemble weights for {n_members} members")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError(f"ensemble weights must be non-negative and not all zero, got {w.tolist()}")
        w = w / w.sum()
    if tasks:
        check_unweighted(w, tasks)
    return w


def weights_by_name(weights: dict[str, Any], names: list[str] | None) -> list[float]:
    """A mapping ``{member name: weight}`` as a list in member order; one :class:`ConfigError` line for a
    name that is no member (a class the data lacks) or a member without a weight."""
    if not names:
        raise ConfigError(f"combine_weights given by member name {sorted(map(str, weights))}: only the members of "
                          "member_weights 'mescr' have names (base and one per class); give a list")
    given = {str(k): v for k, v in weights.items()}
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ConfigError(f"combine_weights names {unknown}, which the members lack (the training data's classes give "
                          f"the members {names})")
    missing = [k for k in names if k not in given]
    if missing:
        raise ConfigError(f"combine_weights has no weight for the member(s) {missing} (members: {names})")
    return [float(given[k]) for k in names]


def check_unweighted(w: np.ndarray, tasks: dict[str, str]) -> None:
    """Unequal member weights need a class head: they weigh class probabilities, never Gaussians."""
    if "classification" not in tasks.values() and not np.allclose(w, w[0]):
        raise ConfigError(f"ensemble weights {w.round(4).tolist()} apply to class probabilities only: the "
                          "Gaussian combination of regression members is unweighted (MESCR Eq. 1)")


def _head_names(est: Any) -> list[str]:
    names = getattr(est, "head_names", None)
    return list(names) if names else ["target"]


def _head_tasks(est: Any) -> dict[str, str]:
    tasks = getattr(est, "head_tasks", None)
    return dict(tasks) if tasks else {_head_names(est)[0]: est.task}


def _head_classes(est: Any) -> dict[str, Any]:
    classes = getattr(est, "head_classes", None)
    if classes:
        return dict(classes)
    return {_head_names(est)[0]: getattr(est, "classes_", None)}


def member_heads(est: Any, X: Any, names: list[str] | None = None) -> dict[str, Any]:
    """A member's ``predict_heads(X)``, or for an estimator without it the single-head adapter
    (:func:`~astromodal.training.predictions.legacy_predict_heads`) under the first of ``names``."""
    from astromodal.training.predictions import legacy_predict_heads

    if hasattr(est, "predict_heads"):
        return est.predict_heads(X)
    return legacy_predict_heads(est, X, (names or _head_names(est))[0])


def member_mean_var(est: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
    """A regression estimator's (mean, variance) as float64 (N,) arrays: ``predict_mean_var``, or ``predict``
    with a NaN variance for a model that predicts no uncertainty (a variance of None is NaN too)."""
    if hasattr(est, "predict_mean_var"):
        mean, var = est.predict_mean_var(X)
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        return mean, np.full(len(mean), np.nan) if var is None else np.asarray(var, dtype=np.float64).reshape(-1)
    a = np.asarray(est.predict(X), dtype=np.float64)
    mean = a.reshape(len(a), -1)[:, 0]
    return mean, np.full(len(mean), np.nan)


def combine_categoricals(preds: list[Any], weights: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Weighted mean (N, K) of member class probabilities (:class:`Categorical`), aligned on ``classes``
    (a class a member never saw: probability 0 from it)."""
    total = None
    for w, p in zip(weights, preds, strict=True):
        full = np.zeros((len(p.proba), len(classes)))
        full[:, np.searchsorted(classes, np.asarray(p.classes))] = p.proba
        total = w * full if total is None else total + w * full
    return total


class EnsembleEstimator:
    """A weighted average of fitted estimators with the estimator front (fit is not available)."""

    kind = "ensemble"

    def __init__(self, members: list[Any], weights: list[float] | np.ndarray | dict[str, float] | None = None,
                 threshold: float | None = None, member_names: list[str] | None = None):
        if not members:
            raise ConfigError("an ensemble needs at least one member")
        self.members = list(members)
        if member_names is not None and len(member_names) != len(self.members):
            raise ConfigError(f"{len(member_names)} member names for {len(self.members)} members")
        #: the members' names (MESCR: base, then the class names), or None
        self.member_names: list[str] | None = None if member_names is None else [str(n) for n in member_names]
        self.weights = ensemble_weights(weights, len(members), names=self.member_names)
        tasks = {m.task for m in members}
        if len(tasks) != 1:
            raise ConfigError(f"ensemble members mix tasks {sorted(tasks)}")
        self.task = tasks.pop()
        names = [_head_names(m) for m in self.members]
        if any(n != names[0] for n in names):
            raise ConfigError(f"ensemble members predict different heads: {names}")
        self.head_names: list[str] = names[0]
        self.head_tasks: dict[str, str] = _head_tasks(self.members[0])
        check_unweighted(self.weights, self.head_tasks)
        self.classes_: np.ndarray | None = None
        if self.task == "classification":
            self.classes_ = np.unique(np.concatenate([np.asarray(m.classes_) for m in members]))
        #: per class head, the union of the members' classes (the column order of its probabilities)
        self.head_classes: dict[str, np.ndarray | None] = {}
        for name in self.head_names:
            if self.head_tasks.get(name) == "classification":
                self.head_classes[name] = np.unique(np.concatenate([np.asarray(_head_classes(m)[name])
                                                                    for m in members]))
            else:
                self.head_classes[name] = None
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

    def input_names(self) -> tuple[str, ...] | None:
        """The named inputs any member reads, in first-seen order (None when a member does not say)."""
        names: list[str] = []
        for m in self.members:
            got = getattr(m, "input_names", None)
            got = got() if callable(got) else None
            if not got:
                return None
            names += [n for n in got if n not in names]
        return tuple(names)

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
        mus, s2s = zip(*(member_mean_var(m, X) for m in self.members), strict=True)
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

    # ---- every head
    def predict_heads(self, X: Any) -> dict[str, Any]:
        """``{head: Categorical | Gaussian}``: per class head the weighted mean of the member probabilities
        (aligned on the union of their classes; the primary head carries the decision ``threshold``), per
        regression head MESCR Eq. 1 over the member Gaussians, unweighted, with ``sigma_net``."""
        from astromodal.training.predictions import Categorical, Gaussian

        per_member = [member_heads(m, X, self.head_names) for m in self.members]
        out: dict[str, Any] = {}
        for i, name in enumerate(self.head_names):
            preds = [p[name] for p in per_member]
            if self.head_tasks.get(name) == "classification":
                classes = self.head_classes[name]
                out[name] = Categorical(combine_categoricals(preds, self.weights, classes), classes,
                                        self.threshold if i == 0 else None)
            else:
                mu, s2, net = combine_gaussians(np.stack([p.mean for p in preds]), np.stack([p.var for p in preds]))
                out[name] = Gaussian(mu, s2, net)
        return out

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
            "head_names": self.head_names,
            **({"member_names": self.member_names} if self.member_names else {}),
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
        return cls(members, meta.get("weights"), threshold=meta.get("threshold"), member_names=meta.get("member_names"))


def combine_gaussians(mu: np.ndarray, s2: np.ndarray,
                      mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mixture mean, mixture variance (MESCR Eq. 1) and spread of the means (sigma_net) for member arrays
    ``mu``, ``s2`` (M, N), each member counted once (no weights, see the module text).

    ``mask`` (M, N) bool: entry (i, n) takes part only where True (e.g. the members for which row n is out
    of bag); each column is combined over its own members (count ``c_n``), entries outside the mask are
    never read, and a column with no member is NaN in all three results."""
    mu = np.asarray(mu, dtype=np.float64)
    s2 = np.asarray(s2, dtype=np.float64)
    if mu.shape != s2.shape:
        raise BadValueError(f"member means {mu.shape} and variances {s2.shape} differ in shape")
    if mask is not None:
        return _combine_masked(mu, s2, np.asarray(mask))
    m = mu.shape[0]
    w = np.full((m,) + (1,) * (mu.ndim - 1), 1.0 / m)
    mean = np.sum(w * mu, axis=0)
    spread2 = np.maximum(np.sum(w * (mu - mean) ** 2, axis=0), 0.0)
    # sum_i w_i (s2_i + mu_i^2) - mu^2, written as mean variance + spread (no cancellation of large mu^2);
    # a NaN member variance (unknown) makes the total NaN
    var = np.sum(w * s2, axis=0) + spread2
    return mean, np.maximum(var, 0.0), np.sqrt(spread2)


def _combine_masked(mu: np.ndarray, s2: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if mask.shape != mu.shape or mask.dtype != bool:
        raise BadValueError(f"the member mask must be a boolean array of shape {mu.shape}, got {mask.dtype} "
                            f"{mask.shape}")
    n_in = mask.sum(axis=0)
    count = np.maximum(n_in, 1)
    with np.errstate(invalid="ignore"):
        mean = np.where(mask, mu, 0.0).sum(axis=0) / count
        spread2 = np.where(mask, (mu - mean) ** 2, 0.0).sum(axis=0) / count
    var = np.where(mask, s2, 0.0).sum(axis=0) / count + spread2  # Eq. 1 over each column's members
    none = n_in == 0
    mean[none], var[none], spread2[none] = np.nan, np.nan, np.nan
    return mean, np.maximum(var, 0.0), np.sqrt(spread2)


# ---------------------------------------------------------------------- resample (bagging) ensembles
@dataclass
class HeadOOB:
    """The out-of-bag (OOB) predictions of one head of a resample ensemble over the training rows.

    ``covered``: rows out of bag for at least one member (of weight > 0 for a class head); ``prediction``:
    the combined OOB class label (-1 / None where not covered) or mean (NaN); ``proba`` (N, K) in
    ``classes`` order (class head), or ``var`` and ``sigma_net`` (Eq. 1 over the row's OOB members,
    unweighted); ``members[m]``: member m's predictions on its own OOB rows (``proba`` and
    ``prediction``, or ``mean`` and ``var``); ``y``: the head's training targets (NaN / -1: none).
    """

    name: str
    task: str
    covered: np.ndarray
    prediction: np.ndarray
    members: list[dict[str, np.ndarray]]
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None
    var: np.ndarray | None = None
    sigma_net: np.ndarray | None = None
    y: np.ndarray | None = None
    #: False for a single target given as an array (every label counts, as before heads existed)
    masked: bool = True

    @property
    def mean(self) -> np.ndarray:
        """The combined OOB mean of a regression head (the :attr:`prediction`)."""
        return self.prediction

    @property
    def scored(self) -> np.ndarray:
        """Covered rows that have a target (the rows :attr:`score` is computed on)."""
        if self.y is None or not self.masked:
            return self.covered
        from astromodal.training.estimator import valid_rows

        return self.covered & valid_rows(self.y, self.task)

    @property
    def score(self) -> float | None:
        """Accuracy (class head) or RMSE (regression head) of the combined OOB prediction over the scored
        rows; None when there is none."""
        if self.y is None:
            return None
        rows = self.scored
        if not rows.any():
            return None
        y, pred = self.y[rows], self.prediction[rows]
        if self.task == "classification":
            return float(np.mean(pred == y))
        return float(np.sqrt(np.mean((pred - y) ** 2)))


@dataclass
class ResampleResult:
    """Members trained on weighted draws with replacement, their out-of-bag (OOB) predictions, and
    their ensemble (combined with ``combine_weights`` for class probabilities, unweighted for Gaussians).

    ``oob[m]`` are the training rows member ``m`` never drew (sorted); ``oob_members[m]`` its predictions
    on exactly those rows (``proba`` (n_oob, K) in ``ensemble.classes_`` order and ``prediction``; or
    ``mean`` and ``var``). The combined OOB prediction of a row uses only the members for which it is out
    of bag (``oob_covered`` is False for a row every member drew: it has no OOB prediction, NaN, or -1 /
    None for class labels). These ``oob_*`` fields are the primary (first) head's; ``heads`` holds a
    :class:`HeadOOB` for every head (``oob_scores`` their scores), ``y`` the primary head's targets.
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
    heads: dict[str, HeadOOB] = field(default_factory=dict)
    #: member names (MESCR: "base" then the class names; else "member-00", ...)
    member_names: list[str] = field(default_factory=list)
    #: per member, True for the 2nd, 3rd, ... copy of a row in its draw (draw order)
    duplicates: list[np.ndarray] = field(default_factory=list)
    #: whether drawn duplicates were force-augmented, and why not (no trainer ``augment``, or switched off)
    augment_duplicates: dict[str, Any] = field(default_factory=dict)

    @property
    def oob_score(self) -> float | None:
        """Accuracy (classification) or RMSE (regression) of the combined OOB prediction over the covered
        rows (that have a target); None when no row is out of bag for any member."""
        if self.heads:
            return next(iter(self.heads.values())).score
        if self.y is None or not self.oob_covered.any():
            return None
        y, pred = self.y[self.oob_covered], self.oob_prediction[self.oob_covered]
        if self.ensemble.task == "classification":
            return float(np.mean(pred == y))
        return float(np.sqrt(np.mean((pred - y) ** 2)))

    @property
    def oob_scores(self) -> dict[str, float | None]:
        """``{head: OOB score}`` (accuracy or RMSE, see :attr:`HeadOOB.score`)."""
        return {name: h.score for name, h in self.heads.items()}


def _class_codes(y: np.ndarray) -> np.ndarray:
    """Group codes of class labels; missing labels (-1 / NaN / None / "") form a group of their own."""
    from astromodal.training.heads import _class_missing

    y = np.asarray(y).reshape(-1)
    missing = _class_missing(y)
    codes = np.full(len(y), -1, dtype=np.int64)
    if (~missing).any():
        _, codes[~missing] = np.unique(y[~missing], return_inverse=True)
    codes[missing] = codes.max() + 1 if len(codes) else 0
    return codes


def draw_probabilities(member_weights: Any, y: Any, n_members: int,
                       tasks: dict[str, str] | None = None) -> np.ndarray:
    """Per-member sampling probabilities (n_members, N), each row summing to one.

    ``None`` or ``"uniform"``: every object alike; ``"balanced"``: 1 / (count of the object's class), so
    each class is drawn equally often on average (classification only; with several targets ``y`` a dict,
    the classes of the first class head, ``tasks`` ``{head: task}`` or else the label types telling which,
    its missing labels counted as one more class); ``"mescr"``: D_base and one class-targeted copy per
    class (:func:`mescr_weights`, ``n_members`` must be 1 + the number of classes); an array (N,) for all
    members or (n_members, N), one row per member (non-negative, finite, not all zero).
    """
    if isinstance(member_weights, str) and member_weights == "mescr":
        labels = first_class_labels(y, tasks, "mescr")
        w, classes = mescr_weights(labels)
        if int(n_members) != len(w):
            raise ConfigError(f"member_weights 'mescr' trains 1 + {len(classes)} members (D_base and one per class "
                              f"of the training split, {[str(c) for c in classes]}), but n_members is {n_members}: "
                              f"set n_members: {len(w)}")
        return w / w.sum(axis=1, keepdims=True)
    if isinstance(y, dict):
        n = len(next(iter(y.values())))
        labels = None
        if isinstance(member_weights, str) and member_weights == "balanced":
            for name, v in y.items():
                task = (tasks or {}).get(name) or ("classification" if np.asarray(v).dtype.kind in "biuUSO"
                                                   else "regression")
                if task == "classification":
                    labels = _class_codes(v)
                    break
            if labels is None:
                raise ConfigError(f"member_weights 'balanced' weights by inverse class frequency: it needs a class "
                                  f"target, and the heads {list(y)} have none")
        y = labels if labels is not None else np.zeros(n, dtype=np.int64)
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
        raise ConfigError(f"member_weights {member_weights!r}: use 'uniform', 'balanced', 'mescr' or an array of weights")
    else:
        w = np.asarray(member_weights, dtype=np.float64)
        if w.shape == (n,):
            w = np.broadcast_to(w, (n_members, n)).astype(np.float64)
        if w.shape != (n_members, n):
            raise ConfigError(f"member_weights of shape {w.shape}: expected ({n},) or ({n_members}, {n})")
    if not np.isfinite(w).all() or (w < 0).any() or (w.sum(axis=1) <= 0).any():
        raise ConfigError("member_weights must be finite, non-negative and not all zero for any member")
    return w / w.sum(axis=1, keepdims=True)


def first_class_labels(y: Any, tasks: dict[str, str] | None = None, what: str = "mescr") -> np.ndarray:
    """The labels of the first class head of ``y`` (an array, or a dict ``{head: array}`` with ``tasks`` or the
    label types telling which head is a class head); a :class:`ConfigError` when there is none."""
    if isinstance(y, dict):
        for name, v in y.items():
            task = (tasks or {}).get(name) or ("classification" if np.asarray(v).dtype.kind in "biuUSO"
                                               else "regression")
            if task == "classification":
                return np.asarray(v).reshape(-1)
        raise ConfigError(f"member_weights {what!r} weights by class frequency: it needs a class target, and the "
                          f"heads {list(y)} have none")
    y = np.asarray(y).reshape(-1)
    if y.dtype.kind == "f" and (tasks is None or "classification" not in tasks.values()):
        raise ConfigError(f"member_weights {what!r} weights by class frequency: it needs a class target")
    return y


def mescr_weights(labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """MESCR's unnormalised sampling weights (1 + K, N) and the K classes (sorted, the class head's order).

    Row 0 (D_base): ``1/f(c_i)`` with ``f`` the class's relative frequency (count / N); row k: the same but
    ``1/f^2`` for the objects of class k (seed section 3.2.1, "the weight of samples within that class is
    squared"). A missing label (-1, NaN, None, "") is a group of its own: ``1/f`` of that group everywhere.
    Example, labels [A, A, A, F, G]: f = 3/5, 1/5, 1/5; base weights (5/3, 5/3, 5/3, 5, 5), D_A
    ((5/3)^2 x 3, 5, 5), D_F (5/3 x 3, 25, 5), D_G (5/3 x 3, 5, 25)."""
    from astromodal.training.heads import _class_missing

    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if n == 0:
        raise ConfigError("member_weights 'mescr' needs training objects")
    missing = _class_missing(labels)
    classes, inverse, counts = np.unique(labels[~missing], return_inverse=True, return_counts=True)
    if len(classes) == 0:
        raise ConfigError("member_weights 'mescr' needs class labels, and every label is missing")
    base = np.empty(n)
    base[~missing] = n / counts[inverse]  # 1 / f, f = count / N
    if missing.any():
        base[missing] = n / missing.sum()
    w = np.tile(base, (1 + len(classes), 1))
    code = np.full(n, -1)
    code[~missing] = inverse
    for k in range(len(classes)):
        own = code == k
        w[1 + k, own] = base[own] ** 2
    return w, classes


def mescr_member_names(classes: np.ndarray, class_names: Any = None) -> list[str]:
    """``["base", <class 1>, ...]``: a class's name from ``class_names[code]`` for integer class codes (a
    benchmark's target), else the label's own text."""
    names = ["base"] + [_class_name(c, class_names) for c in np.asarray(classes).tolist()]
    if len(set(names)) != len(names):
        raise ConfigError(f"member names {names} repeat: class names must be distinct and not 'base'")
    return names


def _class_name(c: Any, class_names: Any = None) -> str:
    if class_names is not None and isinstance(c, (int, np.integer)) and 0 <= int(c) < len(class_names):
        return str(class_names[int(c)])
    return str(c)


def duplicate_flags(idx: np.ndarray) -> np.ndarray:
    """True for each entry of a draw ``idx`` that repeats an earlier one (the 2nd, 3rd, ... copy of a row,
    in draw order); the first copy of every row is False."""
    idx = np.asarray(idx).reshape(-1)
    flags = np.ones(len(idx), dtype=bool)
    _, first = np.unique(idx, return_index=True)
    flags[first] = False
    return flags


def planned_tasks(est: Any, y: Any) -> dict[str, str]:
    """``{head: task}`` an unfitted estimator will have after ``fit(X, y)``: the heads of a dict ``y`` (in
    the estimator's head order when it has one) with the task of their spec kind, else of the labels'
    type; a plain ``y``: the estimator's task."""
    if not isinstance(y, dict):
        return {_head_names(est)[0]: est.task}
    from astromodal.training.estimator import spec_task

    specs = dict(getattr(est, "head_specs", None) or {})
    names = list(specs) + [k for k in y if k not in specs] if specs else list(y)
    regression = getattr(est, "task", None) == "regression"
    return {n: spec_task(specs.get(n), y[n] if n in y else np.zeros(0), regression and n == names[0]) for n in names}


def subset_targets(y: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a target array, or of every head's array of a dict ``{head: array}``."""
    if isinstance(y, dict):
        return {k: np.asarray(v)[idx] for k, v in y.items()}
    return np.asarray(y)[idx]


def n_targets(y: Any) -> int:
    """The number of objects of a target array or dict ``{head: array}`` (all heads alike)."""
    if not isinstance(y, dict):
        return len(y)
    lengths = {k: len(v) for k, v in y.items()}
    if not lengths:
        raise BadValueError("no targets given (empty dict)")
    if len(set(lengths.values())) != 1:
        raise BadValueError(f"targets have different numbers of rows: {lengths}")
    return next(iter(lengths.values()))


def fit_resample_ensemble(make: Callable[[], Any], X: Any, y: Any, n_members: int,
                          member_weights: Any = None, combine_weights: Any = None, seed: int = 0, *,
                          draw_size: int | None = None, augment_duplicates: bool = True,
                          class_names: Any = None, validation_by_source: bool | None = None) -> ResampleResult:
    """Train ``n_members`` fresh estimators, member ``m`` on ``draw_size`` (default ``len(y)``) draws WITH
    replacement with the probabilities of its weights (:func:`draw_probabilities`), and combine them into an
    :class:`EnsembleEstimator` (``combine_weights``: class-probability weights, default equal; a list, or
    under ``member_weights="mescr"`` a mapping by member name, see the module text).

    ``y`` is an array (one target) or a dict ``{target: array}`` (several heads: every member is fitted on
    the drawn rows of every head, and masks the rows without a target itself; ``"balanced"`` / ``"mescr"``
    draws use the first class head). The combination weights (and the names in a mapping) are checked
    before any member trains. ``class_names[code]`` names the classes of integer class codes (the member
    names ``base``, ``A``, ...; default the label's text).

    Draws are seeded per member from ``numpy.random.SeedSequence(seed).spawn(n_members)``, so a run
    repeats exactly; a neural member's trainer seed becomes ``seed + m`` and a ``checkpoint_dir`` gets a
    ``member-NN`` sub-folder. Each member is fitted on its draw alone (a neural trainer holds out its own
    ``val_fraction`` of the draw for early stopping, as MESCR splits each copy 8:2: set 0.2); the rows it
    never drew are its out-of-bag rows, predicted after fitting and never seen by it.

    Neural members (a ``trainer`` with ``augment`` names) get ``force_augment``: the duplicates of their
    draw (:func:`duplicate_flags`) are augmented at least once per epoch (``augment_duplicates``; without
    an ``augment`` pipeline it has no effect, as ``augment_duplicates`` of the result says).
    ``validation_by_source`` (default: True under ``"mescr"``, else False, the earlier behaviour): the
    member's validation part is drawn over whole source rows, so the copies of a row never straddle its
    training and validation parts (MESCR split its 9,000 drawn rows 8:2 as rows, so copies could straddle).
    """
    from astromodal.training.crossval import _adapt, _rows

    if int(n_members) < 1:
        raise ConfigError(f"n_members must be at least 1, got {n_members}")
    y = y if isinstance(y, dict) else np.asarray(y)
    n = n_targets(y)
    size = n if draw_size is None else int(draw_size)
    if size < 1:
        raise ConfigError(f"draw_size must be at least 1, got {draw_size}")
    first = make()
    tasks = planned_tasks(first, y)
    mescr = isinstance(member_weights, str) and member_weights == "mescr"
    probs = draw_probabilities(member_weights, y, int(n_members), tasks)  # mescr: checks n_members = 1 + K
    labels = classes = None
    if mescr or "classification" in tasks.values():
        try:
            labels = first_class_labels(y, tasks)
        except ConfigError:
            labels = None
    if mescr:
        classes = mescr_weights(labels)[1]
        names = mescr_member_names(classes, class_names)
    else:
        names = [f"member-{m:02d}" for m in range(int(n_members))]
    ensemble_weights(combine_weights, int(n_members), tasks, names if mescr else None)  # fail before training
    group = (mescr if validation_by_source is None else bool(validation_by_source))
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(int(n_members))]
    members: list[Any] = []
    draws: list[np.ndarray] = []
    oobs: list[np.ndarray] = []
    dups: list[np.ndarray] = []
    info: list[dict[str, Any]] = []
    augmenting = None
    for m, (p, rng) in enumerate(zip(probs, rngs, strict=True)):
        est = first if m == 0 else make()
        if any(est is other for other in members):
            raise ConfigError("fit_resample_ensemble: make() returned an estimator object already used for another "
                              "member; it must build a fresh one each call")
        _adapt(est, m, prefix="member")
        idx = rng.choice(n, size=size, replace=True, p=p)
        dup = duplicate_flags(idx)
        kw: dict[str, Any] = {}
        trainer = getattr(est, "trainer", None)
        if trainer is not None and hasattr(trainer, "augment"):  # a neural member: per-row settings
            augmenting = bool(trainer.augment) and bool(augment_duplicates)
            if augmenting:
                kw["force_augment"] = dup
            if group:
                kw["groups"] = idx
        t0 = time.perf_counter()
        est.fit(_rows(X, idx), subset_targets(y, idx), **kw)
        oob = np.setdiff1d(np.arange(n), idx)
        members.append(est)
        draws.append(idx)
        oobs.append(oob)
        dups.append(dup)
        rec: dict[str, Any] = {"member": m, "name": names[m], "n_drawn": int(size), "n_unique": int(n - len(oob)),
                               "n_oob": int(len(oob)), "n_duplicates": int(dup.sum())}
        if labels is not None:
            rec["class_counts"] = _class_counts(labels[idx], class_names)
        result = getattr(est, "result", None)
        if result is not None and hasattr(result, "n_val"):
            rec["n_train"], rec["n_val"] = int(result.n_train), int(result.n_val)
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        info.append(rec)
    if augmenting is None:
        note = {"setting": bool(augment_duplicates), "applied": False,
                "reason": "the members are not neural networks (no trainer augmentation)"}
    elif not augmenting:
        note = {"setting": bool(augment_duplicates), "applied": False,
                "reason": "switched off" if not augment_duplicates else "the trainer has no 'augment' pipeline"}
    else:
        note = {"setting": True, "applied": True}
    ensemble = EnsembleEstimator(members, combine_weights, member_names=names if mescr else None)
    heads = _oob_predictions(ensemble, X, y, oobs)
    h = next(iter(heads.values()))
    return ResampleResult(members, ensemble, draws, oobs, h.members, h.covered, h.prediction, oob_proba=h.proba,
                          oob_var=h.var, oob_sigma_net=h.sigma_net, member_info=info, y=h.y, heads=heads,
                          member_names=names, duplicates=dups, augment_duplicates=note)


def _class_counts(labels: np.ndarray, class_names: Any = None) -> dict[str, int]:
    """``{class name: count}`` of drawn labels (sorted by class; missing labels under "missing")."""
    from astromodal.training.heads import _class_missing

    missing = _class_missing(labels)
    values, counts = np.unique(labels[~missing], return_counts=True)
    out = {_class_name(v, class_names): int(c) for v, c in zip(values.tolist(), counts, strict=True)}
    if missing.any():
        out["missing"] = int(missing.sum())
    return out


def _oob_predictions(ensemble: EnsembleEstimator, X: Any, y: Any, oobs: list[np.ndarray]) -> dict[str, HeadOOB]:
    """Each member's predictions on its own OOB rows, and their combination per row and head (the
    ensemble's rules restricted to the members for which the row is out of bag)."""
    from astromodal.training.crossval import _rows

    names = ensemble.head_names
    ys = {k: np.asarray(v) for k, v in y.items()} if isinstance(y, dict) else {names[0]: np.asarray(y)}
    missing = [k for k in names if k not in ys]
    if missing:
        raise BadValueError(f"the ensemble predicts heads {names} but the targets lack {missing}")
    n = n_targets(ys)
    mask = np.zeros((len(oobs), n), dtype=bool)
    for m, oob in enumerate(oobs):
        mask[m, oob] = True
    preds = [member_heads(est, _rows(X, oob), names) if len(oob) else None
             for est, oob in zip(ensemble.members, oobs, strict=True)]
    out: dict[str, HeadOOB] = {}
    for name in names:
        own = [None if p is None else p[name] for p in preds]
        if ensemble.head_tasks.get(name) == "classification":
            out[name] = _oob_categorical(name, ensemble, own, oobs, mask, ys[name])
        else:
            out[name] = _oob_gaussian(name, own, oobs, mask, ys[name])
        out[name].masked = isinstance(y, dict)
    return out


def _oob_categorical(name: str, ensemble: EnsembleEstimator, preds: list[Any], oobs: list[np.ndarray],
                     mask: np.ndarray, y: np.ndarray) -> HeadOOB:
    n = mask.shape[1]
    classes = ensemble.head_classes[name]
    total = np.zeros((n, len(classes)))
    wsum = np.zeros(n)
    per_member: list[dict[str, np.ndarray]] = []
    for m, (w, pred, oob) in enumerate(zip(ensemble.weights, preds, oobs, strict=True)):
        if pred is None:
            per_member.append({"proba": np.zeros((0, len(classes))), "prediction": y[:0]})
            continue
        full = np.zeros((len(oob), len(classes)))
        full[:, np.searchsorted(classes, np.asarray(pred.classes))] = pred.proba
        per_member.append({"proba": full, "prediction": classes[np.argmax(full, axis=1)]})
        total[oob] += w * full
        wsum[oob] += w * mask[m, oob]
    # a row out of bag only for members of weight 0 has no vote: it is not covered (never 0/0 = NaN)
    covered = mask.any(axis=0) & (wsum > 0)
    proba = np.full((n, len(classes)), np.nan)
    proba[covered] = total[covered] / wsum[covered, None]
    label = np.full(n, -1, dtype=np.int64) if classes.dtype.kind in "biu" else np.full(n, None, dtype=object)
    label[covered] = classes[np.argmax(proba[covered], axis=1)]
    return HeadOOB(name, "classification", covered, label, per_member, proba=proba, classes=classes, y=y)


def _oob_gaussian(name: str, preds: list[Any], oobs: list[np.ndarray], mask: np.ndarray, y: np.ndarray) -> HeadOOB:
    mus = np.zeros(mask.shape)
    s2s = np.zeros(mask.shape)
    per_member: list[dict[str, np.ndarray]] = []
    for m, (pred, oob) in enumerate(zip(preds, oobs, strict=True)):
        if pred is None:
            per_member.append({"mean": np.zeros(0), "var": np.zeros(0)})
            continue
        mu_i, s2_i = pred.mean.reshape(len(oob)), pred.var.reshape(len(oob))
        per_member.append({"mean": mu_i, "var": s2_i})
        mus[m, oob], s2s[m, oob] = mu_i, s2_i
    mean, var, net = combine_gaussians(mus, s2s, mask=mask)  # Eq. 1 over each row's OOB members
    return HeadOOB(name, "regression", mask.any(axis=0), mean, per_member, var=var, sigma_net=net, y=y)
