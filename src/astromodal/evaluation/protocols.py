"""Evaluation protocols of a benchmark cell: registered strategies, one decorated class each.

A protocol decides how one cell (dataset x representation x model x seed) is trained and scored:

- ``holdout``: one model fitted on the training split, scored on the untouched test split;
- ``cv``: stratified k-fold cross-validation over all objects, a fresh model per fold, out-of-fold
  predictions pooled and scored (no test split: :attr:`Protocol.uses_test_split` is False);
- ``kfold_ensemble``: k fresh models on stratified folds of the training split (study C), their
  average tested (an optional binary decision threshold chosen on the out-of-fold predictions);
- ``resample_ensemble``: ``n_members`` fresh models, each on a weighted draw with replacement of the
  training split (MESCR's weighted-sampling ensemble, :func:`~astromodal.training.ensemble.fit_resample_ensemble`),
  their ensemble tested; the record adds the out-of-bag score and, for regression with a variance,
  ``sigma_net`` (the spread of the member means) on the test objects.

Adding one is one class::

    @register_protocol("my_protocol")
    class MyProtocol(TestedProtocol):
        def fit(self, ctx):                     # ctx: CellContext (data, settings, a fresh-estimator factory)
            return ctx.make().fit(ctx.X_train, ctx.y_train)

A :class:`TestedProtocol` only fits (returning a fitted estimator, adding any keys of its own to
``ctx.record``); the shared :func:`finish_on_test` scores it on the test split exactly as every tested
protocol is scored. A protocol that scores otherwise (like ``cv``) overrides :meth:`Protocol.run`.
The config's ``protocol.kind`` accepts every registered name.

Scoring is per head: :func:`predict_heads` gives ``{target: Categorical | Gaussian}`` (the estimator's
``predict_heads``, else the single-head adapter), and :func:`score_heads` scores each with the
:class:`HeadScorer` of its kind (:data:`SCORERS`: ``categorical``, ``gaussian``) on the rows where its
target applies (not NaN, class code not -1), with its own trivial baseline. The protocol returns the
record dict with ``heads``; the runner reads it into a typed
:class:`~astromodal.evaluation.results.CellResult`.

The protocols live in :data:`PROTOCOLS`, an :class:`astromodal.registry.Registry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from astromodal.data.splits import kfold_indices
from astromodal.registry import Registry

#: protocol name (the config's ``protocol.kind``) -> Protocol class
PROTOCOLS: Registry[type[Protocol]] = Registry("protocol")


def register_protocol(name: str) -> Callable[[type[Protocol]], type[Protocol]]:
    """Class decorator adding a protocol under ``name`` (the config's ``protocol.kind``)."""

    def decorator(cls: type[Protocol]) -> type[Protocol]:
        PROTOCOLS.register(name)(cls)  # a name taken by another class is an error
        cls.name = name
        return cls

    return decorator


def protocol_names() -> list[str]:
    """The registered protocol names (sorted)."""
    return PROTOCOLS.names()


def get_protocol(name: str) -> Protocol:
    """A new instance of the protocol registered as ``name`` (an unknown name: one line listing them)."""
    return PROTOCOLS.get(name)()


@dataclass
class HeadTruth:
    """One head's truth: on the scored objects (``y``; NaN or class code -1 where the target does not apply)
    and on the training objects (``y_train``, for the head's trivial baseline)."""

    name: str
    task: str  # "classification" or "regression"
    y: np.ndarray
    y_train: np.ndarray
    class_names: list[str] | None = None  # the scored split's classes (a test class unseen in training last)
    train_class_names: list[str] | None = None
    unit: str = ""
    y_base: np.ndarray | None = None  # a baseline prediction made elsewhere (cv: one per fold, pooled)


def valid_rows(y: np.ndarray, task: str) -> np.ndarray:
    """True where a target applies: a class code >= 0, a finite regression value."""
    y = np.asarray(y)
    if task == "classification":
        return y.astype(np.int64) >= 0 if y.dtype.kind in "iub" else np.isfinite(y) & (y >= 0)
    return np.isfinite(y.astype(np.float64))


def subset_y(y: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a target array or of a ``{target: array}`` dict."""
    return {k: np.asarray(v)[idx] for k, v in y.items()} if isinstance(y, dict) else np.asarray(y)[idx]


@dataclass
class CellContext:
    """What a protocol needs for one cell: its data (inputs already built), settings and an estimator factory.

    ``y_train`` / ``y_test`` are what the estimator is fitted with: an array for one target (the legacy
    single-head form) or ``{target: array}`` for several heads; ``heads_train`` / ``heads_test`` are always
    ``{target: array}`` (first = primary)."""

    runner: Any  # the BenchmarkRunner (for its settings and estimator factory; a protocol never runs cells)
    cell: Any
    data: Any  # PreparedData
    task: str  # the primary head's task: "classification" or "regression"
    target: Any  # the training split's primary Target (class names, unit)
    spec: Any  # the model's registry entry
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    record: dict[str, Any]
    start: float
    heads_train: dict[str, np.ndarray] | None = None
    heads_test: dict[str, np.ndarray] | None = None

    @property
    def settings(self) -> Any:
        """The config's protocol section (ProtocolConfig)."""
        return self.runner.config.protocol

    @property
    def targets(self) -> list[str]:
        return list(self.heads_train) if self.heads_train else [self.data.target]

    @property
    def y_primary(self) -> np.ndarray:
        """The primary target on the training split (stratification, decision thresholds)."""
        return self.y_train[self.targets[0]] if isinstance(self.y_train, dict) else self.y_train

    def make(self) -> Any:
        """A fresh, unfitted estimator for this cell."""
        return self.runner._make_estimator(self.cell, self.task)

    def task_of(self, name: str) -> str:
        return "classification" if self.data.train.target(name).kind == "class" else "regression"

    def truths(self, y: dict[str, np.ndarray], y_train: dict[str, np.ndarray],
               y_base: dict[str, np.ndarray] | None = None) -> dict[str, HeadTruth]:
        """Per head, the truth ``y`` on the scored objects and ``y_train`` on the training ones."""
        data, out = self.data, {}
        for name in y:
            t, task = data.train.target(name), self.task_of(name)
            names = None
            if task == "classification":  # the training classes, then a test class never trained on
                scored = data.test if data.test is not None else data.train
                names = list(scored.target(name).class_names)
            out[name] = HeadTruth(name, task, np.asarray(y[name]), np.asarray(y_train[name]), names,
                                  list(t.class_names) if task == "classification" else None, t.unit,
                                  None if y_base is None else y_base[name])
        return out


class Protocol:
    """A way to train and score one cell; subclasses are registered with :func:`register_protocol`."""

    name: ClassVar[str] = ""
    #: False when the protocol scores every object out of fold (the dataset is not split into train/test)
    uses_test_split: ClassVar[bool] = True

    def run(self, ctx: CellContext) -> dict[str, Any]:
        raise NotImplementedError


class TestedProtocol(Protocol):
    """Fit on the training split (:meth:`fit`), then score on the untouched test split (:func:`finish_on_test`)."""

    def fit(self, ctx: CellContext) -> Any:
        raise NotImplementedError

    def run(self, ctx: CellContext) -> dict[str, Any]:
        held = None
        if getattr(ctx.settings, "recalibrate", False):  # calibration rows held out BEFORE fitting
            from astromodal.evaluation.calibration import hold_out_calibration

            held = hold_out_calibration(ctx)
            ctx = held.fit_ctx  # the training split less the calibration rows (the test split untouched)
        estimator = self.fit(ctx)
        record = finish_on_test(ctx, estimator, held)
        self.after_test(ctx, estimator, record)
        return record

    def after_test(self, ctx: CellContext, estimator: Any, record: dict[str, Any]) -> None:
        """Add protocol-specific keys computed on the test split (nothing by default)."""


# ---------------------------------------------------------------------- predictions and scores per head
def predict_heads(estimator: Any, X: Any, targets: list[str]) -> dict[str, Any]:
    """``{target: Categorical | Gaussian}`` of a fitted estimator, in target order: its ``predict_heads``,
    else the single-head adapter (:func:`~astromodal.training.predictions.legacy_predict_heads`)."""
    from astromodal.errors import BadValueError
    from astromodal.training.predictions import legacy_predict_heads

    fn = getattr(estimator, "predict_heads", None)
    heads = dict(fn(X)) if fn is not None else legacy_predict_heads(estimator, X, targets[0])
    if len(targets) == 1 and len(heads) == 1 and targets[0] not in heads:  # one unnamed head
        heads = {targets[0]: next(iter(heads.values()))}
    missing = [t for t in targets if t not in heads]
    if missing:
        raise BadValueError(f"the model predicts heads {list(heads)}, not the target(s) {missing}")
    return {t: heads[t] for t in targets}


def _n_rows(X: Any) -> int:
    return len(next(iter(X.values()))) if isinstance(X, dict) else len(X)


def gives_proba(estimator: Any, X: Any) -> bool:
    """False for a classifier whose (first head's) classes come without probabilities (a linear SVM, an
    ensemble of them): its one-hot votes are not scored as probabilities (no ROC AUC, no ROC curve)."""
    from astromodal.training.crossval import _rows

    if getattr(estimator, "task", "classification") != "classification" or not _n_rows(X):
        return True
    try:
        estimator.predict_proba(_rows(X, np.arange(1)))
    except (AttributeError, NotImplementedError):
        return False
    return True


#: prediction kind ("categorical", "gaussian") -> its HeadScorer
SCORERS: Registry[type[HeadScorer]] = Registry("head scorer")


class HeadScorer:
    """Scores one head's predictions against its truth, the same way in every protocol; one class per
    prediction kind, registered in :data:`SCORERS` under that kind."""

    def score(self, pred: Any, truth: HeadTruth, where: str, use_proba: bool = True) -> Any:
        raise NotImplementedError

    def headline(self, pred: Any, y: np.ndarray) -> float:
        """The score of a fold (accuracy / RMSE on the rows where the target applies)."""
        raise NotImplementedError

    def pool(self, parts: list[tuple[np.ndarray, Any]], n: int, truth_train: Any) -> Any:
        """One prediction for ``n`` objects from per-fold ``(rows, prediction)`` parts."""
        raise NotImplementedError


@SCORERS.register("categorical")
class CategoricalScorer(HeadScorer):
    """Accuracy, balanced accuracy, per-class precision / recall / F1, confusion matrix, ROC AUC (with
    probabilities) and 95 % bootstrap intervals; the ROC curve of a binary head."""

    def score(self, pred: Any, truth: HeadTruth, where: str, use_proba: bool = True) -> Any:
        from astromodal.evaluation.metrics import bootstrap_confusion, classification_metrics
        from astromodal.evaluation.results import HeadResult

        ok = valid_rows(truth.y, "classification")
        y, names = truth.y[ok].astype(np.int64), list(truth.class_names or [])
        # without a probability for a test class never trained on (count_wrong) there is no ROC
        proba = pred.proba[ok] if use_proba and len(names) == len(truth.train_class_names or []) else None
        metrics = classification_metrics(y, np.asarray(pred.labels)[ok], proba, class_names=names)
        metrics["ci95"] = bootstrap_confusion(metrics["confusion_matrix"], seed=0)
        curves = {"roc": {"proba": proba[:, 1].tolist(), "y_true": y.tolist()}} if proba is not None \
            and proba.shape[1] == 2 else {}
        if proba is not None and len(y):  # how honest the probabilities are: ECE and the reliability diagram
            from astromodal.evaluation.calibration import class_columns
            from astromodal.evaluation.metrics import reliability

            has, cols = class_columns(pred.classes, y)
            rel = reliability(cols[has], proba[has]) if has.any() else None
            if rel is not None:
                metrics["ece"] = rel.pop("ece")
                curves["reliability"] = rel
        res = HeadResult(kind="categorical", task="classification", metrics=metrics, class_names=names,
                         n=int(ok.sum()), curves=curves)
        return _with_baseline(res, truth, ok, where)

    def headline(self, pred: Any, y: np.ndarray) -> float:
        ok = valid_rows(y, "classification")
        return float(np.mean(np.asarray(pred.labels)[ok] == y[ok]))

    def pool(self, parts: list[tuple[np.ndarray, Any]], n: int, truth_train: Any) -> Any:
        from astromodal.training.predictions import Categorical

        classes = np.arange(len(truth_train.class_names))  # class codes of the training split
        labels = np.zeros(n, dtype=np.int64)
        for rows, p in parts:
            labels[rows] = p.labels
        return Categorical((labels[:, None] == classes[None, :]).astype(np.float64), classes)


@SCORERS.register("gaussian")
class GaussianScorer(HeadScorer):
    """RMSE, MAE, R^2, bias, sigma, NMAD; with a predicted variance NLL, 68 / 95 % coverage, median and
    mean sigma and the PIT histogram; an ensemble's sigma_net."""

    def score(self, pred: Any, truth: HeadTruth, where: str, use_proba: bool = True) -> Any:
        from astromodal.evaluation.metrics import pit_histogram, pit_values, regression_metrics
        from astromodal.evaluation.results import HeadResult

        ok = valid_rows(truth.y, "regression")
        y, mean, var = truth.y[ok].astype(np.float64), pred.mean[ok], pred.var[ok]
        metrics = regression_metrics(y, mean, var)  # + NLL and coverage for a Gaussian head
        res = HeadResult(kind="gaussian", task="regression", metrics=metrics, unit=truth.unit, n=int(ok.sum()))
        if "nll" in metrics:
            res.curves = {"pit": pit_histogram(pit_values(y, mean, var))}
            if pred.sigma_net is not None:
                net = pred.sigma_net[ok]
                res.sigma_net = {"mean": float(np.mean(net)), "median": float(np.median(net))}
        return _with_baseline(res, truth, ok, where)

    def headline(self, pred: Any, y: np.ndarray) -> float:
        ok = valid_rows(y, "regression")
        return float(np.sqrt(np.mean((pred.mean[ok] - y[ok]) ** 2)))

    def pool(self, parts: list[tuple[np.ndarray, Any]], n: int, truth_train: Any) -> Any:
        from astromodal.training.predictions import Gaussian

        mean, var = np.zeros(n), np.full(n, np.nan)
        for rows, p in parts:
            mean[rows], var[rows] = p.mean, p.var
        return Gaussian(mean, var)


def scorer(pred: Any) -> HeadScorer:
    """The scorer of a prediction's kind (an embedding is not scored here)."""
    return SCORERS.get(pred.kind)()


def _with_baseline(res: Any, truth: HeadTruth, ok: np.ndarray, where: str) -> Any:
    """The head's trivial baseline (training majority class / training mean of the rows where the target
    applies) on the same scored objects, and whether the head beats it (a warning when it does not)."""
    from astromodal.evaluation.metrics import beats_baseline, trivial_baseline

    train = truth.y_train[valid_rows(truth.y_train, truth.task)]
    base = None if truth.y_base is None else truth.y_base[ok]
    y = truth.y[ok].astype(np.int64) if truth.task == "classification" else truth.y[ok]
    res.baseline = trivial_baseline(train, y, truth.task, truth.class_names, y_base=base)
    res.beats_baseline = beats_baseline(truth.task, res.metrics, res.baseline)
    if not res.beats_baseline:
        from astromodal.evaluation.benchmark import baseline_text
        from astromodal.progress import console

        line = baseline_text({"cell": where, "task": truth.task, "metrics": res.metrics, "baseline": res.baseline,
                              "beats_baseline": False})
        console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    return res


def score_heads(ctx: CellContext, predictions: dict[str, Any], truths: dict[str, HeadTruth],
                use_proba: bool = True) -> dict[str, Any]:
    """Every head scored by the scorer of its kind (``use_proba``: the primary head's probabilities are
    real ones); ``{target: HeadResult}`` in target order."""
    out = {}
    for i, (name, pred) in enumerate(predictions.items()):
        where = ctx.cell.id if len(predictions) == 1 else f"{ctx.cell.id} head {name!r}"
        out[name] = scorer(pred).score(pred, truths[name], where, use_proba=use_proba or i > 0)
    return out


# ---------------------------------------------------------------------- the protocols
@register_protocol("holdout")
class Holdout(TestedProtocol):
    def fit(self, ctx: CellContext) -> Any:
        return ctx.make().fit(ctx.X_train, ctx.y_train)


@register_protocol("cv")
class CrossValidation(Protocol):
    """Stratified k-fold cross-validation: a fresh model per fold; out-of-fold predictions pooled."""

    uses_test_split = False

    def run(self, ctx: CellContext) -> dict[str, Any]:
        from astromodal.evaluation.benchmark import _n_parameters
        from astromodal.evaluation.metrics import baseline_prediction, summarise_runs
        from astromodal.training.crossval import _rows

        X, heads, record = ctx.X_train, ctx.heads_train, ctx.record
        n = len(ctx.y_primary)
        labels = ctx.y_primary if ctx.task == "classification" else None
        parts: dict[str, list[Any]] = {t: [] for t in heads}
        base = {t: np.zeros(n, dtype=np.float64 if ctx.task_of(t) == "regression" else np.int64) for t in heads}
        fold_scores: dict[str, list[float]] = {t: [] for t in heads}
        for train_idx, val_idx in kfold_indices(n, ctx.settings.k, labels, ctx.cell.seed):
            est = ctx.make().fit(_rows(X, train_idx), subset_y(ctx.y_train, train_idx))
            for t, pred in predict_heads(est, _rows(X, val_idx), ctx.targets).items():
                parts[t].append((val_idx, pred))
                fold_scores[t].append(scorer(pred).headline(pred, heads[t][val_idx]))
                y_tr = heads[t][train_idx]
                base[t][val_idx] = baseline_prediction(y_tr[valid_rows(y_tr, ctx.task_of(t))], len(val_idx),
                                                       ctx.task_of(t))
        record["fit_seconds"] = round(time.perf_counter() - ctx.start, 3)
        record["n_test"] = int(n)
        primary = ctx.targets[0]
        record["fold_scores"] = fold_scores[primary]
        record["fold_summary"] = summarise_runs(fold_scores[primary])
        record["n_parameters"] = _n_parameters(est)  # one fold's model (every fold builds the same network)
        record["n_members"] = 1
        truths = ctx.truths(heads, heads, base)
        pooled = {t: scorer(p[0][1]).pool(p, n, ctx.data.train.target(t)) for t, p in parts.items()}
        # the pooled out-of-fold labels are scored (no pooled probabilities: folds differ in calibration)
        record["heads"] = score_heads(ctx, pooled, truths, use_proba=False)
        for t, res in record["heads"].items():
            res.fold_scores = fold_scores[t]
        return record


def _set_threshold(ctx: CellContext, estimator: Any, y: np.ndarray, proba: np.ndarray | None) -> None:
    """A binary decision threshold by ``protocol.threshold``, chosen on out-of-sample training predictions
    (out-of-fold or out-of-bag; never the test split)."""
    rule = ctx.settings.threshold
    if rule != "argmax" and ctx.task == "classification" and len(ctx.target.class_names) == 2 and proba is not None:
        from astromodal.evaluation.metrics import best_threshold

        estimator.set_threshold(best_threshold(y == estimator.classes_[1], proba[:, 1], rule))
        ctx.record["threshold"] = {"rule": rule, "value": estimator.threshold}


def _primary(value: Any, name: str) -> Any:
    """A per-head result (``{head: value}``) reduced to the primary head's; a plain value as it is."""
    return value.get(name) if isinstance(value, dict) else value


@register_protocol("kfold_ensemble")
class KFoldEnsemble(TestedProtocol):
    def fit(self, ctx: CellContext) -> Any:
        from astromodal.training.crossval import kfold_ensemble

        cv = kfold_ensemble(ctx.make, ctx.X_train, ctx.y_train, k=ctx.settings.k, seed=ctx.cell.seed,
                            stratified=ctx.task == "classification")
        ctx.record["folds"] = cv.folds
        _set_threshold(ctx, cv.ensemble, ctx.y_primary, _primary(cv.oof_proba, ctx.targets[0]))
        return cv.ensemble


@register_protocol("resample_ensemble")
class ResampleEnsemble(TestedProtocol):
    """MESCR-style weighted resampling: ``n_members`` members on draws with replacement (``member_weights``
    mescr: D_base and one class-targeted copy per class, ``draw_size`` rows each, drawn duplicates
    force-augmented). The record holds the member names, the draw size, each member's drawn class counts
    (``members``) and whether duplicates were augmented (``augment_duplicates``)."""

    def fit(self, ctx: CellContext) -> Any:
        from astromodal.training.ensemble import fit_resample_ensemble

        s, primary = ctx.settings, ctx.targets[0]
        class_head = next((t for t in ctx.targets if ctx.task_of(t) == "classification"), None)
        class_names = None if class_head is None else list(ctx.data.train.target(class_head).class_names)
        res = fit_resample_ensemble(ctx.make, ctx.X_train, ctx.y_train, n_members=s.n_members,
                                    member_weights=s.member_weights, combine_weights=s.combine_weights,
                                    seed=ctx.cell.seed, draw_size=getattr(s, "draw_size", None),
                                    augment_duplicates=getattr(s, "augment_duplicates", True),
                                    class_names=class_names,
                                    validation_by_source=getattr(s, "validation_by_source", None))
        ctx.record["members"] = res.member_info
        ctx.record["member_names"] = res.member_names
        ctx.record["member_weights"] = s.member_weights
        ctx.record["draw_size"] = int(res.member_info[0]["n_drawn"]) if res.member_info else None
        ctx.record["augment_duplicates"] = res.augment_duplicates
        ctx.record["combine_weights"] = res.ensemble.weights.tolist()
        covered, score = _primary(res.oob_covered, primary), _primary(res.oob_score, primary)
        ctx.record["oob"] = {"metric": "accuracy" if ctx.task == "classification" else "rmse",
                             "score": score, "n_covered": int(np.asarray(covered).sum())}
        if len(res.heads) > 1:  # several heads: the out-of-bag score of each (accuracy / RMSE)
            ctx.record["oob"]["heads"] = {name: {"metric": "accuracy" if h.task == "classification" else "rmse",
                                                 "score": h.score, "n_covered": int(np.asarray(h.scored).sum())}
                                          for name, h in res.heads.items()}
        proba = _primary(res.oob_proba, primary)
        if proba is not None and np.asarray(covered).any():
            _set_threshold(ctx, res.ensemble, ctx.y_primary[covered], proba[covered])
        return res.ensemble


@register_protocol("pretrain_probe")
class PretrainProbe(TestedProtocol):
    """Study D's contrastive route: the model is trained by its own objective (``objective: contrastive``)
    on the training split's inputs alone (no target is read), frozen, and ``protocol.probe`` is fitted on
    its embeddings of the training split; the pair is tested like any model. With two embeddings (image
    and spectrum) the record adds their cross-modal retrieval on the test split (top-1 / top-5)."""

    def fit(self, ctx: CellContext) -> Any:
        from astromodal.training.probe import PROBE_INPUT, ProbeEstimator, embedding_matrix

        encoder = ctx.make().fit(ctx.X_train)
        probe = ctx.runner._make_probe(ctx.cell, ctx.task)
        probe.fit({PROBE_INPUT: embedding_matrix(encoder, ctx.X_train)}, ctx.y_train)
        ctx.record["probe"] = {"model": ctx.settings.probe, "options": dict(ctx.settings.probe_options)}
        return ProbeEstimator(encoder, probe)

    def after_test(self, ctx: CellContext, estimator: Any, record: dict[str, Any]) -> None:
        from astromodal.training.probe import retrieval_scores

        if _n_rows(ctx.X_test):
            embeddings = estimator.transform(ctx.X_test)
            record["retrieval"] = retrieval_scores(embeddings)
            if isinstance(embeddings, dict):  # saved with the test predictions for the report's joint-space map
                record["_test_embeddings"] = {str(k): np.asarray(v.vectors, dtype=np.float32)
                                              for k, v in embeddings.items()}


def finish_on_test(ctx: CellContext, estimator: Any, held: Any = None) -> dict[str, Any]:
    """Score a fitted estimator on the test split: timing, size, the saved model, history and every head
    (metrics and trivial baseline; the same for every tested protocol). With ``held`` (the calibration rows
    of ``protocol.recalibrate``, :class:`~astromodal.evaluation.calibration.HeldOut`) each head is also
    recalibrated on them and scored before and after (``heads[h].calibration``; its metrics stay raw)."""
    from astromodal.evaluation.benchmark import _n_parameters

    record = ctx.record
    record["fit_seconds"] = round(time.perf_counter() - ctx.start, 3)
    # the size of one model (as the study tables quote it), and how many were averaged
    record["n_parameters"] = _n_parameters(estimator)
    record["n_members"] = len(getattr(estimator, "members", [estimator]))
    history = getattr(estimator, "history", None)
    if history:
        record["history"] = history
    _member_head_losses(record, estimator)
    predictions = predict_heads(estimator, ctx.X_test, ctx.targets)
    record["_test_predictions"] = predictions  # saved by the runner (cells/<cell>.predictions.npz), then popped
    truths = ctx.truths(ctx.heads_test, ctx.heads_train)
    use_proba = gives_proba(estimator, ctx.X_test)
    record["heads"] = score_heads(ctx, predictions, truths, use_proba=use_proba)
    if held is not None:
        from astromodal.evaluation.calibration import calibrate_heads

        calibrate_heads(ctx, estimator, held, predictions, use_proba=use_proba)
    if ctx.runner.config.save_models:  # after recalibrating: the saved model carries what was fitted
        _save_model(ctx, estimator)
    return record


def _member_head_losses(record: dict[str, Any], estimator: Any) -> None:
    """Each ensemble member's per-head losses at its last epoch (``train_loss_<head>``, ``val_loss_<head>``)
    added to its entry of ``folds`` / ``members``, where the report's loss-per-head table reads them."""
    members = getattr(estimator, "members", None) or []
    entries = record.get("folds") or record.get("members") or []
    if len(entries) != len(members):
        return
    for entry, m in zip(entries, members, strict=True):
        last = (getattr(m, "history", None) or [{}])[-1]
        entry.update({k: v for k, v in last.items() if k.startswith(("train_loss_", "val_loss_"))})


def _fitted_recalibration(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{head: recalibrator state}`` of every head recalibrated in this cell (``protocol.recalibrate``)."""
    out = {}
    for name, head in (record.get("heads") or {}).items():
        entry = getattr(head, "calibration", None)
        if entry:
            out[name] = {k: entry[k] for k in ("method", "parameter", "objective") if k in entry}
    return out


def _save_model(ctx: CellContext, estimator: Any) -> None:
    """The cell's model (or ensemble) in ``OUT/models/<cell>/`` with what ``astromodal predict`` needs."""
    from astromodal.inference.catalogue import save_predictor
    from astromodal.transforms.representations import input_shapes

    runner, cell, data = ctx.runner, ctx.cell, ctx.data
    model_dir = runner.out / "models" / cell.id
    heads = {}  # every head's target (primary first): predictor.json records them all, `predict` writes them all
    for name in ctx.targets:
        t, task = data.train.target(name), ctx.task_of(name)
        heads[name] = {"task": task, "class_names": list(t.class_names) if task == "classification" else [],
                       "unit": t.unit}
    save_predictor(model_dir, estimator, runner.config.representations[cell.representation], data.target,
                   ctx.task, list(ctx.target.class_names), ctx.spec.family,
                   input_shapes(data.inputs_train[cell.representation]),
                   preparation=data.train.meta.get("preparation"), heads=heads,
                   recalibration=_fitted_recalibration(ctx.record))
    ctx.record["model_dir"] = str(model_dir.relative_to(runner.out))
