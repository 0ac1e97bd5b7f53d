"""Scores of a classifier or a regressor on a test set, spreads across seeds/folds, Markdown tables.

Classification: class labels are integer codes ``0 .. K-1`` (the order of ``class_names``). Regression:
residuals are ``prediction - truth`` in the target's unit (for example dex for log radius or log SFR), so a
positive ``bias`` means the model overestimates. ``sigma`` is the standard deviation of the residuals and
``nmad`` the normalised median absolute deviation, ``1.4826 * median(|res - median(res)|)``, which equals
sigma for Gaussian residuals but ignores catastrophic outliers (the usual photometric-redshift convention).

A regressor that predicts its own uncertainty (a Gaussian head: variance ``var`` per object) is also
scored on it: ``nll`` is the mean Gaussian negative log-likelihood ``0.5 log(2 pi var) + (y - mu)^2 / (2 var)``
(constant included, in nats; lower is better), ``z_mean`` / ``z_std`` the mean and (population, ddof 0)
standard deviation of the z-scores ``(y - mu) / sigma`` (0 and 1 for honest uncertainties; a z_std above
1 means the sigmas are too small), ``coverage_68`` / ``coverage_95`` the fraction of test
objects whose truth lies in the central 68 % / 95 % interval ``mu +- z sigma`` (z = 0.9945 / 1.9600):
0.68 / 0.95 for honest uncertainties, less when they are too small; ``median_sigma`` / ``mean_sigma`` the
median / mean predicted sigma; :func:`pit_values` / :func:`pit_histogram` the probability integral
transform ``Phi((y - mu) / sigma)`` of each truth (uniform for honest uncertainties).

Every report compares a model with the trivial baseline fitted on the same training objects
(:func:`trivial_baseline`): the training split's majority class, or its mean target. A classifier beats
it when its balanced accuracy is higher (the majority class scores the chance level 1/K there, so a
class-weighted model on imbalanced data is not blamed for a lower accuracy), a regressor when its RMSE
is lower.

Every function returns plain Python floats, ints, lists and dicts, so the result can be written to JSON.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from astromodal.errors import BadValueError
from astromodal.training.predictions import decide  # noqa: F401  (re-exported: evaluation code decides here)

#: Scale that turns the median absolute deviation of a Gaussian into its standard deviation.
NMAD_SCALE = 1.4826
#: Half-widths, in standard deviations, of the central 68 % and 95 % intervals of a Gaussian.
Z68 = 0.994457883209753
Z95 = 1.959963984540054


def _codes(y: Any, name: str, class_names: Sequence[str] | None) -> np.ndarray:
    """Integer class codes; string labels are mapped through ``class_names``."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        arr = arr.reshape(len(arr), -1)
        if arr.shape[1] != 1:
            raise BadValueError(f"{name} must be one label per object, got shape {np.shape(y)}")
        arr = arr[:, 0]
    if arr.dtype.kind in "USO":
        if class_names is None:
            raise BadValueError(f"{name} holds text labels: give class_names to map them to codes")
        lookup = {str(c): i for i, c in enumerate(class_names)}
        unknown = sorted({str(v) for v in arr} - set(lookup))
        if unknown:
            raise BadValueError(f"{name} has labels {unknown} not in class_names {list(class_names)}")
        return np.array([lookup[str(v)] for v in arr], dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise BadValueError(f"{name} must hold integer class codes, got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise BadValueError(f"{name} must hold integer class codes, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall/F1/support, ROC AUC, confusion matrix.

    ``y_true``/``y_pred`` are class codes ``0 .. K-1``; ``proba`` (optional) is ``(N, K)`` class
    probabilities. K is ``len(class_names)`` when given, else the number of columns of ``proba``, else
    ``max(code) + 1``. The confusion matrix has rows = true class, columns = predicted class, over all K
    classes. ``macro_f1`` averages F1 over the classes that occur in the truth or the predictions (as
    scikit-learn does); ``balanced_accuracy`` is the mean recall over classes present in the truth.
    ``roc_auc``: binary, from ``proba[:, 1]``; multiclass, the one-vs-rest macro average; ``None`` when
    ``proba`` is missing or a class is absent from ``y_true`` (the AUC is then undefined).
    """
    t = _codes(y_true, "y_true", class_names)
    p = _codes(y_pred, "y_pred", class_names)
    if len(t) != len(p):
        raise BadValueError(f"y_true has {len(t)} objects but y_pred has {len(p)}")
    if len(t) == 0:
        raise BadValueError("cannot score an empty test set (y_true has no objects)")
    prob = None
    if proba is not None:
        prob = np.asarray(proba, dtype=np.float64)
        if prob.ndim != 2 or prob.shape[0] != len(t):
            raise BadValueError(f"proba must have shape ({len(t)}, n_classes), got {prob.shape}")
        if not np.all(np.isfinite(prob)):
            raise BadValueError("proba contains NaN or infinite values")
    if class_names is not None:
        k = len(class_names)
    elif prob is not None:
        k = prob.shape[1]
    else:
        k = int(max(t.max(), p.max())) + 1
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        bad = (arr < 0) | (arr >= k)
        if bad.any():
            raise BadValueError(
                f"{name} has class code {int(arr[bad][0])} at row {int(np.flatnonzero(bad)[0])}, "
                f"outside 0..{k - 1} ({k} classes)"
            )
    if prob is not None and prob.shape[1] != k:
        raise BadValueError(f"proba has {prob.shape[1]} columns but there are {k} classes {names}")

    labels = list(range(k))
    prec, rec, f1, support = skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    per_class = {
        names[i]: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i in range(k)
    }
    present = np.union1d(t, p)
    out: dict[str, Any] = {
        "accuracy": float(skm.accuracy_score(t, p)),
        "balanced_accuracy": float(_balanced_accuracy(t, p)),
        "macro_f1": float(skm.f1_score(t, p, labels=present, average="macro", zero_division=0)),
        "per_class": per_class,
        "roc_auc": _roc_auc(t, prob, k),
        "confusion_matrix": skm.confusion_matrix(t, p, labels=labels).astype(int).tolist(),
        "n": int(len(t)),
    }
    return out


def _balanced_accuracy(t: np.ndarray, p: np.ndarray) -> float:
    """Mean recall over the classes present in the truth (scikit-learn's; its warning about classes
    that are only predicted is silenced: they simply lower the recall of the true classes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(skm.balanced_accuracy_score(t, p))


def _roc_auc(t: np.ndarray, prob: np.ndarray | None, k: int) -> float | None:
    if prob is None or k < 2:
        return None
    counts = np.bincount(t, minlength=k)
    if np.any(counts == 0):
        return None
    if k == 2:
        return float(skm.roc_auc_score(t, prob[:, 1]))
    # one-vs-rest: each class against all others, unweighted mean (scikit-learn's "ovr" "macro",
    # without its requirement that the rows sum to exactly one)
    aucs = [skm.roc_auc_score(t == c, prob[:, c]) for c in range(k)]
    return float(np.mean(aucs))


THRESHOLD_METRICS = ("balanced_accuracy", "f1")


def best_threshold(y_true: Any, p_positive: Any, metric: str = "balanced_accuracy") -> float:
    """The decision threshold on the positive-class probability that maximises ``metric`` on (y, p).

    ``y_true`` holds 0/1 (1 = positive class); ``metric`` is "balanced_accuracy" ((TPR + TNR) / 2) or "f1"
    (of the positive class). Every rule "positive where p >= u" for a distinct score u is scored; the
    threshold returned lies halfway between the best u and the next lower score (0 below the lowest),
    so that it transfers to a model whose probabilities are smoother than those it was chosen on (a
    fold ensemble averaging the models that made the out-of-fold scores). Ties go to the threshold
    nearest 0.5. Choose it on data the test split never touched, such as out-of-fold predictions.
    """
    t = np.asarray(y_true).astype(int).reshape(-1)
    p = np.asarray(p_positive, dtype=np.float64).reshape(-1)
    if len(t) != len(p):
        raise BadValueError(f"{len(t)} labels but {len(p)} probabilities")
    if metric not in THRESHOLD_METRICS:
        raise BadValueError(f"unknown threshold metric {metric!r}; known: {list(THRESHOLD_METRICS)}")
    if not np.isin(t, (0, 1)).all() or len(np.unique(t)) < 2:
        raise BadValueError("best_threshold needs labels 0 and 1, both present")
    if not np.isfinite(p).all():
        raise BadValueError("best_threshold: probabilities must be finite")
    order = np.argsort(-p, kind="stable")
    ps, ts = p[order], t[order]
    tp, fp = np.cumsum(ts), np.cumsum(1 - ts)
    last = np.append(np.flatnonzero(np.diff(ps) != 0), len(ps) - 1)  # last row of each distinct score
    n_pos, n_neg = tp[-1], fp[-1]
    TP, FP = tp[last], fp[last]
    if metric == "balanced_accuracy":
        score = 0.5 * (TP / n_pos + 1.0 - FP / n_neg)
    else:
        score = 2.0 * TP / (2.0 * TP + FP + (n_pos - TP))
    lower = np.append(ps[last[1:]], 0.0)  # the next lower distinct score
    mid = 0.5 * (ps[last] + lower)
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return float(mid[best[np.argmin(np.abs(mid[best] - 0.5))]])


def regression_metrics(y_true: Any, y_pred: Any, var: Any = None) -> dict[str, Any]:
    """RMSE, MAE, R^2, bias, sigma and NMAD of the residuals ``y_pred - y_true`` (target's unit).

    ``bias`` = mean residual; ``sigma`` = population standard deviation of the residuals (so
    ``rmse**2 == bias**2 + sigma**2``); ``nmad`` = 1.4826 * median(|res - median(res)|); ``r2`` is
    ``None`` when the truth is constant (undefined). With ``var`` (the predicted variance per object,
    target unit squared) also ``nll``, ``coverage_68``, ``coverage_95``, ``median_sigma`` and ``mean_sigma``
    (see the module text); a ``var`` that is None or NaN everywhere (a model without uncertainty) adds nothing.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if len(t) != len(p):
        raise BadValueError(f"y_true has {len(t)} values but y_pred has {len(p)}")
    if len(t) == 0:
        raise BadValueError("cannot score an empty test set (y_true has no values)")
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise BadValueError(f"{name} has a non-finite value at row {int(np.flatnonzero(bad)[0])}")
    res = p - t
    r2 = None if np.ptp(t) == 0 else float(skm.r2_score(t, p))
    out = {
        "rmse": float(math.sqrt(skm.mean_squared_error(t, p))),
        "mae": float(skm.mean_absolute_error(t, p)),
        "r2": r2,
        "bias": float(np.mean(res)),
        "sigma": float(np.std(res)),
        "nmad": float(NMAD_SCALE * np.median(np.abs(res - np.median(res)))),
        "n": int(len(t)),
    }
    if var is not None:
        out.update(uncertainty_metrics(t, p, var))
    return out


def uncertainty_metrics(y_true: Any, mean: Any, var: Any) -> dict[str, float]:
    """Gaussian NLL, 68 % / 95 % interval coverage, median and mean sigma and the mean and spread of the z-scores
    of predicted ``(mean, var)`` (module text); {} when ``var`` is NaN everywhere (no uncertainty predicted)."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    v = np.asarray(var, dtype=np.float64).reshape(-1)
    if len(v) != len(t) or len(mu) != len(t):
        raise BadValueError(f"y_true has {len(t)} values but the prediction has {len(mu)} means and {len(v)} variances")
    if len(v) == 0 or np.isnan(v).all():
        return {}
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(f"predicted variance must be finite and positive, got {v[row]} at row {row}")
    signed = (t - mu) / np.sqrt(v)
    z = np.abs(signed)
    return {
        "nll": float(np.mean(0.5 * np.log(2.0 * np.pi * v) + 0.5 * z**2)),
        "coverage_68": float(np.mean(z <= Z68)),
        "coverage_95": float(np.mean(z <= Z95)),
        "median_sigma": float(np.median(np.sqrt(v))),
        "mean_sigma": float(np.mean(np.sqrt(v))),
        "z_mean": float(np.mean(signed)),
        "z_std": float(np.std(signed)),
    }


#: bins of the PIT histogram (equal widths on [0, 1])
PIT_BINS = 10


def pit_values(y_true: Any, mean: Any, var: Any) -> np.ndarray:
    """Probability integral transform ``u_i = Phi((y_i - mu_i) / sigma_i)`` of each truth under its predicted
    Gaussian: uniform on [0, 1] for honest uncertainties, U-shaped when the sigmas are too small, peaked in
    the middle when they are too large, skewed for a biased mean. The variance must be finite and positive."""
    from scipy.special import ndtr

    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    v = np.asarray(var, dtype=np.float64).reshape(-1)
    if not len(t) == len(mu) == len(v):
        raise BadValueError(f"y_true has {len(t)} values but the prediction has {len(mu)} means and {len(v)} variances")
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadValueError(f"predicted variance must be finite and positive, got {v[row]} at row {row}")
    return np.asarray(ndtr((t - mu) / np.sqrt(v)), dtype=np.float64)


def pit_histogram(pit: Any, bins: int = PIT_BINS) -> dict[str, Any]:
    """The PIT values in ``bins`` equal bins on [0, 1]: ``{"edges": [...], "fraction": [...], "n": N}``
    (fractions of the objects per bin, summing to one; 1 / bins each for honest uncertainties). A value of
    exactly 1 falls in the last bin."""
    u = np.asarray(pit, dtype=np.float64).reshape(-1)
    if len(u) == 0:
        raise BadValueError("no PIT values to histogram")
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    counts, _ = np.histogram(np.clip(u, 0.0, 1.0), bins=edges)
    return {"edges": [float(e) for e in edges], "fraction": [float(c) / len(u) for c in counts], "n": int(len(u))}


#: equal-width confidence bins on [0, 1] of the expected calibration error and the reliability diagram
ECE_BINS = 15
#: probabilities are clipped to at least this before a logarithm (a model that gives a true class p = 0)
PROBA_FLOOR = 1e-12


def _proba_and_codes(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """``proba`` (N, K) as floats and ``y_true`` as column indices 0 .. K-1, both checked."""
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(y_true).reshape(-1)
    if p.ndim != 2 or p.shape[0] != len(t):
        raise BadValueError(f"proba must have shape ({len(t)}, n_classes), got {p.shape}")
    if len(t) == 0:
        raise BadValueError("no objects to score the class probabilities on")
    if not np.isfinite(p).all() or (p < 0).any():
        raise BadValueError("class probabilities must be finite and non-negative")
    t = _codes(t, "y_true", None)
    bad = (t < 0) | (t >= p.shape[1])
    if bad.any():
        raise BadValueError(f"y_true has class code {int(t[bad][0])} at row {int(np.flatnonzero(bad)[0])}, "
                            f"outside the {p.shape[1]} probability columns")
    return p, t


def reliability(y_true: Any, proba: Any, bins: int = ECE_BINS) -> dict[str, Any]:
    """Top-label reliability diagram and expected calibration error (Guo et al. 2017).

    Each object's confidence is its largest probability, its prediction the class of that column (the argmax,
    not a tuned binary threshold), correct when that is ``y_true`` (class codes = column indices). The
    confidences fall in ``bins`` equal bins on [0, 1], right-closed (``(b/B, (b+1)/B]``; a confidence of 0
    goes to the first). Per bin: ``confidence`` (mean confidence), ``accuracy`` (fraction correct) and
    ``count``; an empty bin has None for both. ``ece = sum_b n_b / N |accuracy_b - confidence_b|``, ``mce``
    the largest such gap over non-empty bins. Returns ``{"ece", "mce", "bins", "edges", "confidence",
    "accuracy", "count", "n"}``."""
    p, t = _proba_and_codes(y_true, proba)
    if int(bins) < 1:
        raise BadValueError(f"bins must be at least 1, got {bins}")
    nb = int(bins)
    conf = p.max(axis=1)
    correct = (np.argmax(p, axis=1) == t).astype(np.float64)
    edges = np.linspace(0.0, 1.0, nb + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, nb - 1)
    count = np.bincount(which, minlength=nb)
    conf_sum = np.bincount(which, weights=conf, minlength=nb)
    acc_sum = np.bincount(which, weights=correct, minlength=nb)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    mean_acc = np.where(filled, acc_sum / np.maximum(count, 1), np.nan)
    gap = np.abs(mean_acc - mean_conf)
    return {
        "ece": float(np.sum(count[filled] * gap[filled]) / len(t)),
        "mce": float(gap[filled].max()),
        "bins": nb,
        "edges": [float(e) for e in edges],
        "confidence": [float(c) if f else None for c, f in zip(mean_conf, filled, strict=True)],
        "accuracy": [float(a) if f else None for a, f in zip(mean_acc, filled, strict=True)],
        "count": [int(c) for c in count],
        "n": int(len(t)),
    }


def expected_calibration_error(y_true: Any, proba: Any, bins: int = ECE_BINS) -> float:
    """The top-label expected calibration error over ``bins`` equal confidence bins (:func:`reliability`)."""
    return reliability(y_true, proba, bins)["ece"]


def class_nll(y_true: Any, proba: Any) -> float:
    """Mean negative log-probability of the true class (nats; the probabilities clipped at
    :data:`PROBA_FLOOR`): the log loss, which temperature scaling minimises."""
    p, t = _proba_and_codes(y_true, proba)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(t)), t], PROBA_FLOOR, 1.0))))


def probability_calibration_metrics(y_true: Any, proba: Any, bins: int = ECE_BINS) -> dict[str, Any]:
    """How honest class probabilities are: ``accuracy`` (argmax), ``nll`` (:func:`class_nll`), ``brier``
    (mean over objects of ``sum_k (p_k - [y = k])^2``), ``mean_confidence`` (mean largest probability),
    ``ece`` and ``mce`` and the ``reliability`` diagram (:func:`reliability`, ``bins`` equal bins)."""
    p, t = _proba_and_codes(y_true, proba)
    rel = reliability(t, p, bins)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(t)), t] = 1.0
    return {
        "accuracy": float(np.mean(np.argmax(p, axis=1) == t)),
        "nll": class_nll(t, p),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "mean_confidence": float(np.mean(p.max(axis=1))),
        "ece": rel["ece"],
        "mce": rel["mce"],
        "reliability": {k: rel[k] for k in ("bins", "edges", "confidence", "accuracy", "count", "n")},
    }


def gaussian_calibration_metrics(y_true: Any, mean: Any, var: Any) -> dict[str, Any]:
    """How honest predicted Gaussian uncertainties are: ``nll``, ``coverage_68`` / ``coverage_95``,
    ``median_sigma`` / ``mean_sigma``, ``z_mean`` / ``z_std`` (:func:`uncertainty_metrics`), ``z_rms``
    (``sqrt(mean(z^2))``, 1 after a variance scale fitted on the same objects) and the ``pit`` histogram
    (:func:`pit_histogram`). The variance must be finite and positive for every object."""
    out: dict[str, Any] = dict(uncertainty_metrics(y_true, mean, var))
    if not out:
        raise BadValueError("no predicted variance to score (NaN everywhere)")
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    z = (t - np.asarray(mean, dtype=np.float64).reshape(-1)) / np.sqrt(np.asarray(var, dtype=np.float64).reshape(-1))
    out["z_rms"] = float(np.sqrt(np.mean(z**2)))
    out["pit"] = pit_histogram(pit_values(t, mean, var))
    return out


BASELINES = {"classification": "majority_class", "regression": "training_mean"}


def baseline_prediction(y_train: Any, n: int, task: str) -> np.ndarray:
    """The trivial prediction for ``n`` test objects: the most frequent training label (ties: the first in
    sorted order) or the mean training target."""
    y = np.asarray(y_train).reshape(-1)
    if len(y) == 0:
        raise BadValueError("the trivial baseline needs at least one training object")
    if task == "classification":
        values, counts = np.unique(y, return_counts=True)
        return np.full(n, values[np.argmax(counts)], dtype=y.dtype)
    return np.full(n, float(np.mean(y.astype(np.float64))))


def trivial_baseline(y_train: Any, y_test: Any, task: str, class_names: Sequence[str] | None = None,
                     y_base: Any = None) -> dict[str, Any]:
    """The baseline's scores on the test objects: ``{"kind", "value", "metrics"}``. ``y_base`` (optional)
    is a baseline prediction made elsewhere (e.g. pooled over cross-validation folds, one baseline fitted
    per fold); by default :func:`baseline_prediction` of ``y_train``."""
    t = np.asarray(y_test).reshape(-1)
    base = baseline_prediction(y_train, len(t), task) if y_base is None else np.asarray(y_base).reshape(-1)
    if task == "classification":
        m = classification_metrics(t, base, None, class_names=class_names)
        metrics = {k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1")}
        codes = np.unique(base).tolist()  # one class; under cross-validation one per fold
        names = [str(class_names[int(c)]) if class_names is not None and base.dtype.kind in "iub" else str(c)
                 for c in codes]
        value: Any = names[0] if len(names) == 1 else names
    else:
        m = regression_metrics(t, base)
        metrics = {k: m[k] for k in ("rmse", "mae", "r2")}
        value = float(base[0]) if len(np.unique(base)) == 1 else None
    return {"kind": BASELINES[task], "value": value, "metrics": metrics}


def beats_baseline(task: str, metrics: dict[str, Any], baseline: dict[str, Any]) -> bool:
    """True when the model scores strictly better than the trivial baseline: higher balanced accuracy
    (classification) or lower RMSE (regression)."""
    b = baseline["metrics"]
    if task == "classification":
        return bool(metrics["balanced_accuracy"] > b["balanced_accuracy"] + 1e-12)
    return bool(metrics["rmse"] < b["rmse"] - 1e-12 * max(1.0, abs(b["rmse"])))


def bootstrap_confusion(confusion: Any, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of accuracy, balanced accuracy and macro F1 from a confusion matrix.

    Resampling the N test objects with replacement is the same as drawing the K x K confusion counts
    from a multinomial with N trials and the observed cell frequencies, so the intervals need only the
    matrix (rows = true class), not the per-object predictions; all ``n_boot`` resamples are drawn at
    once. Balanced accuracy averages recall over the classes present in each resample's truth; macro F1
    averages ``2 TP / (2 TP + FP + FN)`` over the classes present in its truth or predictions (as
    :func:`classification_metrics` does). Returns ``{metric: [low, high]}`` at the central ``level``.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise BadValueError(f"a confusion matrix must be square, got shape {cm.shape}")
    if (cm < 0).any() or not np.isfinite(cm).all():
        raise BadValueError("a confusion matrix holds non-negative finite counts")
    n = int(round(cm.sum()))
    if n == 0:
        raise BadValueError("cannot bootstrap an empty confusion matrix")
    if not 0.0 < level < 1.0:
        raise BadValueError(f"level must lie between 0 and 1, got {level}")
    k = cm.shape[0]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, (cm / cm.sum()).ravel(), size=n_boot).reshape(n_boot, k, k).astype(np.float64)
    tp = np.diagonal(draws, axis1=1, axis2=2)
    true_n = draws.sum(axis=2)
    pred_n = draws.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(true_n > 0, tp / true_n, np.nan)
        denom = true_n + pred_n
        f1 = np.where(denom > 0, 2.0 * tp / denom, np.nan)
    scores = {
        "accuracy": tp.sum(axis=1) / n,
        "balanced_accuracy": np.nanmean(recall, axis=1),
        "macro_f1": np.nanmean(f1, axis=1),
    }
    tail = 100.0 * (1.0 - level) / 2.0
    return {name: [float(v) for v in np.percentile(values, [tail, 100.0 - tail])] for name, values in scores.items()}


def summarise_runs(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (ddof=1; 0 for one run), min, max and count of a score over seeds/folds."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        raise BadValueError("no values to summarise (every run is missing)")
    if not np.all(np.isfinite(arr)):
        raise BadValueError("cannot summarise runs: a score is NaN or infinite")
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def format_cell(value: Any, floatfmt: str = ".3f", markdown: bool = True) -> str:
    """One table cell as text: floats with ``floatfmt``, ``None``/NaN empty (``|`` escaped for Markdown)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else format(float(value), floatfmt)
    if isinstance(value, np.integer):
        value = int(value)
    text = str(value).replace("\n", " ")
    return text.replace("|", "\\|") if markdown else text


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (dicts); ``columns`` default to every key in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    columns = list(columns)
    if not columns:
        return ""
    lines = [
        "| " + " | ".join(format_cell(c) for c in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(row.get(c), floatfmt) for c in columns) + " |")
    return "\n".join(lines) + "\n"
