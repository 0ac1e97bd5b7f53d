"""Post-hoc recalibration of class probabilities and Gaussian uncertainties, fitted on held-out training rows.

A model's probabilities and sigmas are often over- or under-confident. Two one-parameter fixes, each fitted
on a calibration split that the model never saw and then applied unchanged to the test split:

- :class:`TemperatureScaling` (class heads; Guo et al. 2017): the logits are divided by one temperature
  ``T``, ``p' = softmax(log p / T)``, with ``T`` minimising the mean negative log-probability of the true
  class on the calibration rows (``scipy.optimize.minimize_scalar`` on ``log T``, bounded to
  ``T`` in [:data:`T_MIN`, :data:`T_MAX`]). Estimators give probabilities, not logits, so the logits are
  ``log p`` (clipped at :data:`~astromodal.evaluation.metrics.PROBA_FLOOR`); softmax is unchanged by a
  per-row constant, so this is exact for a softmax model. ``T > 1`` softens over-confident probabilities.
  The predicted class never changes: the argmax is kept, and a tuned binary threshold ``t`` on p(class 1)
  becomes ``expit(logit(t) / T)``, the same decision on the rescaled probabilities.
- :class:`VarianceScaling` (Gaussian heads): every predicted variance is multiplied by one factor,
  ``s2' = c s2``. The mean Gaussian NLL ``mean(0.5 log(2 pi c s2) + r^2 / (2 c s2))`` has derivative
  ``(1 - mean(z^2) / c) / (2 c)`` in ``c`` (``z = r / s``), so its minimum is the closed form
  ``c = mean(z^2)`` over the calibration rows (objective ``nll``, the default): ``c > 1`` widens sigmas
  that were too small. With heavy-tailed z-scores (a few huge residuals) ``mean(z^2)`` is dominated by the
  tail and the 68 % interval then over-covers; objective ``coverage`` (``protocol.variance_scale``) fits
  ``c = (q68(|z|) / 0.9945)^2`` instead, so that 68 % of the calibration rows fall inside ``mu +- sigma'``.
  The means (and so RMSE, MAE) are unchanged; an ensemble's ``sigma_net`` is reported as it was.

The recalibrators are registered by prediction kind in :data:`RECALIBRATORS` (``categorical`` ->
temperature, ``gaussian`` -> variance scale), each with ``fit`` / ``apply`` on arrays, ``fit_on`` /
``transform`` / ``score`` on predictions, and a JSON state (``to_json`` / ``from_json``).

In a benchmark (``protocol.recalibrate: true``, every tested protocol) :func:`hold_out_calibration`
takes ``protocol.calibration_fraction`` of the training split (stratified on the first class head,
missing labels a group of their own; seeded by the cell seed) away BEFORE the estimator is fitted, the
estimator is fitted on the rest, and :func:`calibrate_heads` fits each head's recalibrator on the
estimator's predictions for the held-out rows and scores the test split before and after. The test split
is the same as without recalibration. The cell's headline metrics (``metrics`` and every head's
``metrics``) stay the RAW model's (what a saved model predicts); the recalibrated scores are in
``heads[h]["calibration"]["after"]``. :func:`calibration_section` writes the report's tables and figures.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from astromodal.errors import BadValueError
from astromodal.evaluation.metrics import (
    PROBA_FLOOR,
    class_nll,
    gaussian_calibration_metrics,
    probability_calibration_metrics,
)
from astromodal.registry import Registry

#: bounds of the fitted temperature
T_MIN, T_MAX = 1e-2, 1e2

#: prediction kind ("categorical", "gaussian") -> its recalibrator class
RECALIBRATORS: Registry[type[Recalibrator]] = Registry("recalibrator")


def _logits(proba: Any) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise BadValueError(f"temperature scaling needs (N, K >= 2) probabilities, got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise BadValueError("class probabilities must be finite and non-negative")
    return np.log(np.clip(p, PROBA_FLOOR, None))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def class_columns(classes: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(has, cols)``: for each class code in ``y`` whether the model has a probability column for it
    (``classes``: the codes of the columns, in order) and the index of that column (0 where it has none)."""
    classes = np.asarray(classes).reshape(-1)
    y = np.asarray(y).reshape(-1)
    lookup = {int(c): i for i, c in enumerate(classes)}
    cols = np.array([lookup.get(int(v), -1) for v in y], dtype=np.int64)
    return cols >= 0, np.maximum(cols, 0)


class Recalibrator:
    """One-parameter post-hoc recalibration of one prediction kind (registered in :data:`RECALIBRATORS`)."""

    method: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    @property
    def parameter(self) -> float:
        raise NotImplementedError

    def fit_on(self, pred: Any, y: Any) -> Recalibrator:
        """Fit on a prediction and the truth of the same rows (rows where the target applies)."""
        raise NotImplementedError

    def transform(self, pred: Any) -> Any:
        """The recalibrated prediction."""
        raise NotImplementedError

    @staticmethod
    def rows(pred: Any, y: Any) -> np.ndarray:
        """The rows that can be scored / fitted (target applies; a probability column / a variance)."""
        raise NotImplementedError

    @staticmethod
    def score(pred: Any, y: Any) -> dict[str, Any]:
        """Calibration metrics of a prediction on its scorable rows."""
        raise NotImplementedError

    @staticmethod
    def loss(pred: Any, y: Any) -> float:
        """The NLL the parameter minimises, on the scorable rows."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "parameter": self.parameter}

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Recalibrator:
        """A recalibrator from its ``to_json`` state (``method`` picks the class)."""
        for name in RECALIBRATORS.names():
            sub = RECALIBRATORS.get(name)
            if sub.method == state.get("method"):
                extra = {k: v for k, v in state.items() if k not in ("method", "parameter")}
                return sub(float(state["parameter"]), **extra)
        raise BadValueError(f"unknown recalibration method {state.get('method')!r}")


@RECALIBRATORS.register("categorical")
class TemperatureScaling(Recalibrator):
    """``p' = softmax(log p / T)`` with one temperature ``T`` fitted by minimising the class NLL."""

    method = "temperature"
    kind = "categorical"

    def __init__(self, temperature: float = 1.0):
        if not (math.isfinite(temperature) and temperature > 0):
            raise BadValueError(f"a temperature must be finite and positive, got {temperature}")
        self.temperature = float(temperature)

    @property
    def parameter(self) -> float:
        return self.temperature

    def fit(self, proba: Any, y: Any) -> TemperatureScaling:
        """Fit ``T`` on probabilities ``(N, K)`` and true column indices ``y`` (0 .. K-1)."""
        from scipy.optimize import minimize_scalar
        from scipy.special import logsumexp

        z = _logits(proba)
        t = np.asarray(y, dtype=np.int64).reshape(-1)
        if len(t) != len(z) or len(t) == 0:
            raise BadValueError(f"temperature scaling: {len(z)} probability rows but {len(t)} labels")
        if (t < 0).any() or (t >= z.shape[1]).any():
            raise BadValueError(f"temperature scaling: labels must be column indices 0..{z.shape[1] - 1}")
        true = z[np.arange(len(t)), t]

        def nll(log_t: float) -> float:
            s = z / math.exp(log_t)
            return float(np.mean(logsumexp(s, axis=1) - true / math.exp(log_t)))

        best = minimize_scalar(nll, bounds=(math.log(T_MIN), math.log(T_MAX)), method="bounded",
                               options={"xatol": 1e-7})
        self.temperature = float(math.exp(best.x))
        return self

    def apply(self, proba: Any) -> np.ndarray:
        """Rescaled probabilities ``softmax(log p / T)`` (rows sum to one)."""
        return _softmax(_logits(proba) / self.temperature)

    def threshold(self, t: float | None) -> float | None:
        """The binary threshold on the rescaled p(class 1) that gives the decisions of ``t`` on the raw one."""
        from scipy.special import expit, logit

        return None if t is None else float(expit(logit(float(t)) / self.temperature))

    @staticmethod
    def rows(pred: Any, y: Any) -> np.ndarray:
        from astromodal.evaluation.protocols import valid_rows

        y = np.asarray(y)
        ok = valid_rows(y, "classification")
        has, _ = class_columns(pred.classes, np.where(ok, y, -1).astype(np.int64))
        return ok & has

    @staticmethod
    def _cols(pred: Any, y: Any, ok: np.ndarray) -> np.ndarray:
        return class_columns(pred.classes, np.asarray(y)[ok].astype(np.int64))[1]

    def fit_on(self, pred: Any, y: Any) -> TemperatureScaling:
        ok = self.rows(pred, y)
        if not ok.any():
            raise BadValueError("temperature scaling: no calibration object with a known class")
        return self.fit(pred.proba[ok], self._cols(pred, y, ok))

    def transform(self, pred: Any) -> Any:
        from astromodal.training.predictions import Categorical

        return Categorical(self.apply(pred.proba), pred.classes, self.threshold(pred.threshold))

    @staticmethod
    def score(pred: Any, y: Any) -> dict[str, Any]:
        ok = TemperatureScaling.rows(pred, y)
        return probability_calibration_metrics(TemperatureScaling._cols(pred, y, ok), pred.proba[ok])

    @staticmethod
    def loss(pred: Any, y: Any) -> float:
        ok = TemperatureScaling.rows(pred, y)
        return class_nll(TemperatureScaling._cols(pred, y, ok), pred.proba[ok])


@RECALIBRATORS.register("gaussian")
class VarianceScaling(Recalibrator):
    """``s2' = c s2``; ``objective`` ``nll``: the closed-form NLL minimiser ``c = mean(((y - mu) / s)^2)``;
    ``coverage``: ``c = (q68(|z|) / 0.9945)^2`` with q68 the 68th percentile of ``|z|`` on the fitted rows,
    so that 68 % of them fall inside ``mu +- 0.9945 sigma'`` (robust to a few huge residuals, which
    inflate ``mean(z^2)`` when the z-scores are heavy-tailed)."""

    method = "variance_scale"
    kind = "gaussian"
    OBJECTIVES: ClassVar[tuple[str, ...]] = ("nll", "coverage")

    def __init__(self, scale: float = 1.0, objective: str = "nll"):
        if not (math.isfinite(scale) and scale > 0):
            raise BadValueError(f"a variance scale must be finite and positive, got {scale}")
        if objective not in self.OBJECTIVES:
            raise BadValueError(f"unknown variance scale objective {objective!r}; known: {list(self.OBJECTIVES)}")
        self.scale = float(scale)
        self.objective = objective

    @property
    def parameter(self) -> float:
        return self.scale

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "objective": self.objective}

    def fit(self, y: Any, mean: Any, var: Any) -> VarianceScaling:
        """Fit ``c`` on truths, predicted means and variances (finite, variances positive)."""
        from astromodal.evaluation.metrics import Z68

        t = np.asarray(y, dtype=np.float64).reshape(-1)
        mu = np.asarray(mean, dtype=np.float64).reshape(-1)
        v = np.asarray(var, dtype=np.float64).reshape(-1)
        if not len(t) == len(mu) == len(v) or len(t) == 0:
            raise BadValueError(f"variance scaling: {len(t)} truths, {len(mu)} means, {len(v)} variances")
        if not (np.isfinite(t).all() and np.isfinite(mu).all() and np.isfinite(v).all() and (v > 0).all()):
            raise BadValueError("variance scaling needs finite truths and means and finite positive variances")
        z2 = (t - mu) ** 2 / v
        c = float(np.mean(z2)) if self.objective == "nll" else float((np.quantile(np.sqrt(z2), 0.68) / Z68) ** 2)
        if not c > 0:
            raise BadValueError("variance scaling: every residual is zero, no scale can be fitted")
        self.scale = c
        return self

    def apply(self, var: Any) -> np.ndarray:
        return self.scale * np.asarray(var, dtype=np.float64)

    @staticmethod
    def rows(pred: Any, y: Any) -> np.ndarray:
        from astromodal.evaluation.protocols import valid_rows

        return valid_rows(np.asarray(y), "regression") & np.isfinite(pred.var) & (pred.var > 0)

    def fit_on(self, pred: Any, y: Any) -> VarianceScaling:
        ok = self.rows(pred, y)
        if not ok.any():
            raise BadValueError("variance scaling: no calibration object with a target and a predicted variance")
        return self.fit(np.asarray(y, dtype=np.float64)[ok], pred.mean[ok], pred.var[ok])

    def transform(self, pred: Any) -> Any:
        from astromodal.training.predictions import Gaussian

        return Gaussian(pred.mean, self.apply(pred.var), pred.sigma_net)

    @staticmethod
    def score(pred: Any, y: Any) -> dict[str, Any]:
        ok = VarianceScaling.rows(pred, y)
        return gaussian_calibration_metrics(np.asarray(y, dtype=np.float64)[ok], pred.mean[ok], pred.var[ok])

    @staticmethod
    def loss(pred: Any, y: Any) -> float:
        return float(VarianceScaling.score(pred, y)["nll"])


def recalibrator_for(kind: str, variance_scale: str = "nll") -> Recalibrator | None:
    """A fresh recalibrator of a prediction kind, None for a kind without one (an embedding);
    ``variance_scale`` is the objective of a Gaussian head's scale (:class:`VarianceScaling`)."""
    if kind not in RECALIBRATORS:
        return None
    return VarianceScaling(objective=variance_scale) if kind == "gaussian" else RECALIBRATORS.get(kind)()


# ---------------------------------------------------------------------- the protocol side
@dataclasses.dataclass
class HeldOut:
    """The training split cut in two: ``fit_ctx`` (a CellContext over the fit rows: what the estimator
    sees) and the calibration rows' inputs ``X`` and per-head truth ``heads``."""

    fit_ctx: Any
    X: Any
    heads: dict[str, np.ndarray]
    fit_rows: np.ndarray
    rows: np.ndarray
    fraction: float
    stratified_on: str | None
    seed: int


def calibration_split(n: int, fraction: float, labels: np.ndarray | None, seed: int,
                      where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(fit_rows, calibration_rows)`` of ``n`` training objects: a seeded, shuffled split with
    ``ceil(fraction * n)`` calibration rows, stratified on ``labels`` (group codes) when given; both
    sorted and disjoint. Too few objects (of a class) for the split: one line naming ``where``."""
    from astromodal.data.splits import train_test_indices

    if not 0.0 < fraction < 1.0:
        raise BadValueError(f"calibration_fraction must lie between 0 and 1, got {fraction}")
    head = f"recalibrate{f' ({where})' if where else ''}: "
    n_cal = int(math.ceil(fraction * n))
    if n_cal < 1 or n - n_cal < 1:
        raise BadValueError(f"{head}calibration_fraction {fraction} of {n} training objects leaves an empty part")
    if labels is not None:
        counts = np.bincount(np.asarray(labels, dtype=np.int64))
        present = counts[counts > 0]
        if (present < 2).any():
            raise BadValueError(f"{head}a class has a single training object; a stratified calibration split "
                                "needs at least 2 of each")
        if min(n_cal, n - n_cal) < len(present):
            raise BadValueError(f"{head}calibration_fraction {fraction} of {n} training objects gives {n_cal} "
                                f"calibration and {n - n_cal} fit objects; each needs one of each of the "
                                f"{len(present)} classes")
    fit_rows, cal_rows = train_test_indices(n, fraction, labels, seed)
    return fit_rows, cal_rows


def hold_out_calibration(ctx: Any) -> HeldOut:
    """Take ``protocol.calibration_fraction`` of the training split away before fitting: stratified on the
    first class head (missing labels a group of their own), seeded by the cell seed. Inputs (an array or
    ``{name: array}``) and targets (an array or ``{head: array}``, NaN rows kept as they are) are cut alike."""
    from astromodal.evaluation.protocols import subset_y
    from astromodal.training.crossval import _rows
    from astromodal.training.ensemble import _class_codes

    fraction = float(ctx.settings.calibration_fraction)
    heads = dict(ctx.heads_train) if ctx.heads_train else {ctx.targets[0]: np.asarray(ctx.y_primary)}
    n = len(next(iter(heads.values())))
    strata = next((t for t in heads if ctx.task_of(t) == "classification"), None)
    labels = None if strata is None else _class_codes(heads[strata])
    fit_rows, rows = calibration_split(n, fraction, labels, int(ctx.cell.seed), where=str(ctx.cell.id))
    fit_ctx = dataclasses.replace(
        ctx, X_train=_rows(ctx.X_train, fit_rows), y_train=subset_y(ctx.y_train, fit_rows),
        heads_train=None if ctx.heads_train is None else subset_y(heads, fit_rows))
    return HeldOut(fit_ctx, _rows(ctx.X_train, rows), subset_y(heads, rows), fit_rows, rows, fraction, strata,
                   int(ctx.cell.seed))


#: the calibration rows' scores kept in a head's ``calibration["fit"]`` (before / after)
_FIT_SUMMARY = ("nll", "ece", "coverage_68", "coverage_95", "z_std")


def calibrate_heads(ctx: Any, estimator: Any, held: HeldOut, predictions: dict[str, Any],
                    use_proba: bool = True) -> None:
    """Fit every head's recalibrator on the estimator's predictions for the calibration rows and store, per
    head, ``record["heads"][h].calibration = {"method", "parameter", ("objective",) "n_calibration", "n", "fit":
    {"nll_before", "nll_after", ...: the calibration rows' scores}, "before", "after"}`` (the test split's
    calibration metrics, raw and recalibrated), and the split in
    ``record["calibration"]``. A head that cannot be recalibrated (class votes without probabilities, no
    predicted variance, no calibration row with its target) is named in ``record["calibration"]["skipped"]``."""
    from astromodal.evaluation.protocols import predict_heads

    record = ctx.record
    cal_preds = predict_heads(estimator, held.X, ctx.targets)
    skipped: dict[str, str] = {}
    objective = str(getattr(ctx.settings, "variance_scale", "nll"))
    for i, (name, pred) in enumerate(predictions.items()):
        rec = recalibrator_for(pred.kind, objective)
        y_test, y_cal = np.asarray(ctx.heads_test[name]), np.asarray(held.heads[name])
        if rec is None:
            continue
        if pred.kind == "categorical" and not (use_proba or i > 0):
            skipped[name] = "class votes without probabilities"
            continue
        if pred.kind == "gaussian" and not (np.isfinite(pred.var).all() and np.isfinite(cal_preds[name].var).all()):
            skipped[name] = "no predicted variance"
            continue
        cal_ok, test_ok = rec.rows(cal_preds[name], y_cal), rec.rows(pred, y_test)
        if not cal_ok.any() or not test_ok.any():
            skipped[name] = f"no {'calibration' if not cal_ok.any() else 'test'} object with this target"
            continue
        rec.fit_on(cal_preds[name], y_cal)
        after = rec.transform(pred)
        fit_before, fit_after = rec.score(cal_preds[name], y_cal), rec.score(rec.transform(cal_preds[name]), y_cal)
        entry = {
            **rec.to_json(),
            "n_calibration": int(cal_ok.sum()), "n": int(test_ok.sum()),
            # on the calibration rows themselves (what the parameter was fitted to)
            "fit": {f"{k}_{when}": m[k] for k in _FIT_SUMMARY if k in fit_before
                    for when, m in (("before", fit_before), ("after", fit_after))},
            "before": rec.score(pred, y_test), "after": rec.score(after, y_test),
        }
        record["heads"][name].calibration = entry
    record["calibration"] = {
        "fraction": held.fraction, "n_fit": int(len(held.fit_rows)), "n_calibration": int(len(held.rows)),
        "stratified_on": held.stratified_on, "seed": held.seed, "headline": "raw",
        **({"skipped": skipped} if skipped else {}),
    }


# ---------------------------------------------------------------------- figures
def plot_reliability(before: dict[str, Any], after: dict[str, Any] | None, path: str | os.PathLike[str],
                     title: str = "") -> Path:
    """Reliability diagram: accuracy against mean confidence per confidence bin, raw (and recalibrated),
    with the diagonal of honest probabilities; below, the objects per bin."""
    from astromodal.evaluation.plots import _figure, _save

    fig = _figure(4.8, 5.0)
    gs = fig.add_gridspec(4, 1)
    ax = fig.add_subplot(gs[:3, 0])
    hist = fig.add_subplot(gs[3, 0], sharex=ax)
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="honest")
    edges = np.asarray(before["reliability"]["edges"])
    centres, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    for metrics, label, colour, shift in ((before, "raw", "#dd8452", -0.25), (after, "recalibrated", "#4c72b0", 0.25)):
        if metrics is None:
            continue
        rel = metrics["reliability"]
        conf = np.array([np.nan if c is None else c for c in rel["confidence"]], dtype=np.float64)
        acc = np.array([np.nan if a is None else a for a in rel["accuracy"]], dtype=np.float64)
        ok = np.isfinite(conf)
        ax.plot(conf[ok], acc[ok], "o-", color=colour, ms=4, label=f"{label} (ECE {metrics['ece']:.3f})")
        hist.bar(centres + shift * width, rel["count"], width=0.5 * width, color=colour)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.tick_params(labelbottom=False)
    ax.set_title(title or "Reliability diagram", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    hist.set_xlabel(f"confidence (largest probability; {len(centres)} equal bins)")
    hist.set_ylabel("objects")
    return _save(fig, path)


def plot_pit_before_after(before: dict[str, Any], after: dict[str, Any] | None, path: str | os.PathLike[str],
                          title: str = "") -> Path:
    """PIT histograms of the raw and the recalibrated sigmas side by side, against the uniform line."""
    from astromodal.evaluation.plots import _figure, _save

    panels = [(before, "raw")] + ([(after, "recalibrated")] if after is not None else [])
    fig = _figure(3.6 * len(panels), 3.2)
    axes = [fig.add_subplot(1, len(panels), i + 1) for i in range(len(panels))]
    top = max(max(m["pit"]["fraction"]) for m, _ in panels)
    for ax, (m, label) in zip(axes, panels, strict=True):
        edges, frac = np.asarray(m["pit"]["edges"]), np.asarray(m["pit"]["fraction"])
        ax.bar(edges[:-1], frac, width=np.diff(edges), align="edge", color="#4c72b0", edgecolor="white")
        ax.axhline(1.0 / len(frac), color="k", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.1 * top)
        ax.set_xlabel("PIT = Phi((y - mu) / sigma)")
        ax.set_title(f"{label}: 68 % cov. {m['coverage_68']:.3f}, z std {m['z_std']:.2f}", fontsize=8)
    axes[0].set_ylabel("fraction of objects")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


# ---------------------------------------------------------------------- the report section
def _where(r: dict[str, Any]) -> dict[str, Any]:
    return {"model": r.get("model"), "representation": r.get("representation"), "dataset": r.get("dataset"),
            "seed": r.get("seed")}


def _figure_stem(r: dict[str, Any], head: str) -> str:
    return f"{r.get('dataset')}_{r.get('representation')}_{r.get('model')}_{head}".replace(os.sep, "-")


def calibration_rows(records: list[dict[str, Any]], head: str, task: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The before / after table of one head over the cells that have it: classes ECE, NLL, Brier and the
    temperature; Gaussians 68 / 95 % coverage, NLL, z std and the variance scale. A cell without
    recalibration shows its raw scores only."""
    rows = []
    for r in records:
        h = (r.get("heads") or {}).get(head)
        if h is None or h.get("task") != task:
            continue
        cal, m = h.get("calibration"), h.get("metrics") or {}
        b, a = (cal or {}).get("before", {}), (cal or {}).get("after", {})
        row = _where(r)
        if task == "classification":
            if cal is None and "ece" not in m:
                continue
            row.update({"accuracy": m.get("accuracy"), "T": (cal or {}).get("parameter"),
                        "ece raw": b.get("ece", m.get("ece")), "ece recal.": a.get("ece"),
                        "nll raw": b.get("nll"), "nll recal.": a.get("nll"),
                        "brier raw": b.get("brier"), "brier recal.": a.get("brier")})
        else:
            if cal is None and "nll" not in m:
                continue
            c = (cal or {}).get("parameter")
            row.update({"c (var. scale)": c, "fit": (cal or {}).get("objective"),
                        "sigma x": None if c is None else math.sqrt(c),
                        "cov68 raw": b.get("coverage_68", m.get("coverage_68")), "cov68 recal.": a.get("coverage_68"),
                        "cov95 raw": b.get("coverage_95", m.get("coverage_95")), "cov95 recal.": a.get("coverage_95"),
                        "nll raw": b.get("nll", m.get("nll")), "nll recal.": a.get("nll"),
                        "z std raw": b.get("z_std", m.get("z_std")), "z std recal.": a.get("z_std")})
        rows.append(row)
    cols = list(dict.fromkeys(k for row in rows for k in row))
    return rows, cols


def calibration_section(rep: Any, records: list[dict[str, Any]], out: str | os.PathLike[str]) -> None:
    """The report's calibration section: per head a before / after table (:func:`calibration_rows`), then for
    the cells of the first seed a reliability diagram per class head and raw / recalibrated PIT histograms
    per Gaussian head, written under ``out/figures/`` and added to ``rep``. Nothing when no head has
    probabilities or variances to judge."""
    out = Path(out)
    records = [r.to_record() if hasattr(r, "to_record") else dict(r) for r in records]
    heads: dict[str, str] = {}
    for r in records:
        for name, h in (r.get("heads") or {}).items():
            heads.setdefault(name, h.get("task", ""))
    tables = [(name, *calibration_rows(records, name, task)) for name, task in heads.items()]
    tables = [t for t in tables if t[1]]
    if not tables:
        return
    rep.heading("Calibration", 2)
    split = next((r["calibration"] for r in records if r.get("calibration")), None)
    if split is not None:
        rep.paragraph(
            f"Post-hoc recalibration (`protocol.recalibrate`): {split['fraction']:g} of each training split "
            f"(stratified on {split['stratified_on'] or 'nothing: no class head'}, seeded by the cell seed; "
            f"{split['n_calibration']} of {split['n_calibration'] + split['n_fit']} objects in the first cell) "
            "was held out before fitting; the model never saw it. On the model's predictions for it, a "
            "temperature T (class probabilities: softmax(log p / T), T minimising the class NLL) and a variance "
            "scale c (Gaussian heads: sigma^2 -> c sigma^2; fit 'nll': c = mean z^2, the NLL minimiser; "
            "'coverage': c = (68th percentile of |z| / 0.9945)^2, so that 68 % of the calibration rows are "
            "covered) were fitted and then applied unchanged to the test split. 'raw' is the model as trained, "
            "'recal.' after the "
            "rescaling; predicted classes and means are unchanged, so accuracy and RMSE are the same. The "
            "headline metrics of every other table are the raw model's.")
    else:
        rep.paragraph("Calibration of the raw models (no post-hoc recalibration; set `protocol.recalibrate: "
                      "true` to fit a temperature / variance scale on held-out training rows).")
    rep.paragraph("ECE: top-label expected calibration error over equal-width confidence bins (15 by default). "
                  "cov68 / cov95: fraction of test objects inside mu +- 0.994 / 1.960 sigma (honest: 0.68 / "
                  "0.95). z std: standard deviation of (y - mu) / sigma (honest: 1; above 1: sigmas too small).")
    for name, rows, cols in tables:
        rep.heading(f"Calibration: head {name}", 3)
        rep.table(rows, cols)
    seeds = sorted({r.get("seed") for r in records if r.get("seed") is not None})
    first = [r for r in records if not seeds or r.get("seed") == seeds[0]]
    figures = out / "figures"
    for r in first:
        what = f"{r.get('model')} | {r.get('representation')}-{r.get('dataset')}"
        for name, h in (r.get("heads") or {}).items():
            cal = h.get("calibration")
            if h.get("task") == "classification":
                before = (cal or {}).get("before")
                if before is None and (h.get("curves") or {}).get("reliability"):
                    before = {"ece": h["metrics"].get("ece", float("nan")), "reliability": h["curves"]["reliability"]}
                if before is None:
                    continue
                path = plot_reliability(before, (cal or {}).get("after"),
                                        figures / f"reliability_{_figure_stem(r, name)}.png", f"{what} | {name}")
                rep.image(path.relative_to(out), f"Reliability diagram ({name}): {what}"
                          + (f", raw and after temperature T = {cal['parameter']:.3f}" if cal else ", raw"))
            elif cal is not None:
                path = plot_pit_before_after(cal["before"], cal["after"],
                                             figures / f"pit_calibration_{_figure_stem(r, name)}.png",
                                             f"{what} | {name}")
                rep.image(path.relative_to(out), f"PIT ({name}): {what}, raw and after variance scale "
                          f"c = {cal['parameter']:.3f}")
