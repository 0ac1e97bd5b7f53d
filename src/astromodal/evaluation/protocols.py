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
The cell record stays a dict (the keys the report reads); the config's ``protocol.kind`` accepts every
registered name.

The protocols live in :data:`PROTOCOLS`, an :class:`astromodal.registry.Registry`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

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
class CellContext:
    """What a protocol needs for one cell: its data (inputs already built), settings and an estimator factory."""

    runner: Any  # the BenchmarkRunner (for its settings and estimator factory; a protocol never runs cells)
    cell: Any
    data: Any  # PreparedData
    task: str  # "classification" or "regression"
    target: Any  # the training split's Target (class names, unit)
    spec: Any  # the model's registry entry
    X_train: Any
    y_train: np.ndarray
    X_test: Any
    y_test: np.ndarray
    record: dict[str, Any]
    start: float

    @property
    def settings(self) -> Any:
        """The config's protocol section (ProtocolConfig)."""
        return self.runner.config.protocol

    def make(self) -> Any:
        """A fresh, unfitted estimator for this cell."""
        return self.runner._make_estimator(self.cell, self.task)


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
        estimator = self.fit(ctx)
        record = finish_on_test(ctx, estimator)
        self.after_test(ctx, estimator, record)
        return record

    def after_test(self, ctx: CellContext, estimator: Any, record: dict[str, Any]) -> None:
        """Add protocol-specific keys computed on the test split (nothing by default)."""


@register_protocol("holdout")
class Holdout(TestedProtocol):
    def fit(self, ctx: CellContext) -> Any:
        return ctx.make().fit(ctx.X_train, ctx.y_train)


@register_protocol("cv")
class CrossValidation(Protocol):
    """Stratified k-fold cross-validation: a fresh model per fold; out-of-fold predictions pooled."""

    uses_test_split = False

    def run(self, ctx: CellContext) -> dict[str, Any]:
        from astromodal.data.splits import kfold_indices
        from astromodal.evaluation.benchmark import _mean_var, _n_parameters
        from astromodal.evaluation.metrics import (
            baseline_prediction,
            classification_metrics,
            regression_metrics,
            summarise_runs,
        )
        from astromodal.training.crossval import _rows

        X, y, task, record = ctx.X_train, ctx.y_train, ctx.task, ctx.record
        labels = y if task == "classification" else None
        pooled = np.zeros(len(y), dtype=np.float64 if task == "regression" else np.int64)
        pooled_var = np.full(len(y), np.nan)
        base = np.zeros_like(pooled)  # the trivial baseline of each fold's training part, on its held-out part
        fold_scores = []
        for train_idx, val_idx in kfold_indices(len(y), ctx.settings.k, labels, ctx.cell.seed):
            est = ctx.make().fit(_rows(X, train_idx), y[train_idx])
            if task == "regression":
                pred, pooled_var[val_idx] = _mean_var(est, _rows(X, val_idx), len(val_idx))
            else:
                pred = np.asarray(est.predict(_rows(X, val_idx))).reshape(len(val_idx), -1)[:, 0]
            pooled[val_idx] = pred
            base[val_idx] = baseline_prediction(y[train_idx], len(val_idx), task)
            if task == "classification":
                fold_scores.append(float(np.mean(pred == y[val_idx])))
            else:
                fold_scores.append(float(np.sqrt(np.mean((pred - y[val_idx]) ** 2))))
        record["fit_seconds"] = round(time.perf_counter() - ctx.start, 3)
        record["n_test"] = int(len(y))
        record["fold_scores"] = fold_scores
        record["fold_summary"] = summarise_runs(fold_scores)
        record["n_parameters"] = _n_parameters(est)  # one fold's model (every fold builds the same network)
        record["n_members"] = 1
        if task == "classification":
            record["metrics"] = classification_metrics(y, pooled, None, class_names=list(ctx.target.class_names))
            record["class_names"] = list(ctx.target.class_names)
        else:
            record["metrics"] = regression_metrics(y, pooled, pooled_var)
            record["unit"] = ctx.target.unit
        ctx.runner._add_baseline(record, y, y, y_base=base)
        return record


def _set_threshold(ctx: CellContext, estimator: Any, y: np.ndarray, proba: np.ndarray | None) -> None:
    """A binary decision threshold by ``protocol.threshold``, chosen on out-of-sample training predictions
    (out-of-fold or out-of-bag; never the test split)."""
    rule = ctx.settings.threshold
    if rule != "argmax" and ctx.task == "classification" and len(ctx.target.class_names) == 2 and proba is not None:
        from astromodal.evaluation.metrics import best_threshold

        estimator.set_threshold(best_threshold(y == estimator.classes_[1], proba[:, 1], rule))
        ctx.record["threshold"] = {"rule": rule, "value": estimator.threshold}


@register_protocol("kfold_ensemble")
class KFoldEnsemble(TestedProtocol):
    def fit(self, ctx: CellContext) -> Any:
        from astromodal.training.crossval import kfold_ensemble

        cv = kfold_ensemble(ctx.make, ctx.X_train, ctx.y_train, k=ctx.settings.k, seed=ctx.cell.seed,
                            stratified=ctx.task == "classification")
        ctx.record["folds"] = cv.folds
        _set_threshold(ctx, cv.ensemble, ctx.y_train, cv.oof_proba)
        return cv.ensemble


@register_protocol("resample_ensemble")
class ResampleEnsemble(TestedProtocol):
    """MESCR-style weighted resampling: ``n_members`` members on draws with replacement."""

    def fit(self, ctx: CellContext) -> Any:
        from astromodal.training.ensemble import fit_resample_ensemble

        s = ctx.settings
        res = fit_resample_ensemble(ctx.make, ctx.X_train, ctx.y_train, n_members=s.n_members,
                                    member_weights=s.member_weights, combine_weights=s.combine_weights,
                                    seed=ctx.cell.seed)
        ctx.record["members"] = res.member_info
        ctx.record["member_weights"] = s.member_weights
        ctx.record["combine_weights"] = res.ensemble.weights.tolist()
        ctx.record["oob"] = {"metric": "accuracy" if ctx.task == "classification" else "rmse",
                             "score": res.oob_score, "n_covered": int(res.oob_covered.sum())}
        if res.oob_proba is not None and res.oob_covered.any():
            cov = res.oob_covered
            _set_threshold(ctx, res.ensemble, ctx.y_train[cov], res.oob_proba[cov])
        return res.ensemble

    def after_test(self, ctx: CellContext, estimator: Any, record: dict[str, Any]) -> None:
        if ctx.task == "regression" and estimator.gives_variance and len(ctx.y_test):
            _, _, sigma_net = estimator.predict_dist(ctx.X_test)
            record["sigma_net"] = {"mean": float(np.mean(sigma_net)), "median": float(np.median(sigma_net))}


def finish_on_test(ctx: CellContext, estimator: Any) -> dict[str, Any]:
    """Score a fitted estimator on the test split: timing, size, the saved model, history, metrics and the
    trivial baseline (the same for every tested protocol)."""
    from astromodal.evaluation.benchmark import _mean_var, _n_parameters, _safe_proba
    from astromodal.evaluation.metrics import classification_metrics, regression_metrics

    record, data, t, cell = ctx.record, ctx.data, ctx.target, ctx.cell
    record["fit_seconds"] = round(time.perf_counter() - ctx.start, 3)
    # the size of one model (as the study tables quote it), and how many were averaged
    record["n_parameters"] = _n_parameters(estimator)
    record["n_members"] = len(getattr(estimator, "members", [estimator]))
    runner = ctx.runner
    if runner.config.save_models:
        from astromodal.inference.catalogue import save_predictor
        from astromodal.transforms.representations import input_shapes

        model_dir = runner.out / "models" / cell.id
        save_predictor(model_dir, estimator, runner.config.representations[cell.representation], data.target,
                       ctx.task, list(t.class_names), ctx.spec.family,
                       input_shapes(data.inputs_train[cell.representation]),
                       preparation=data.train.meta.get("preparation"))
        record["model_dir"] = str(model_dir.relative_to(runner.out))
    history = getattr(estimator, "history", None)
    if history:
        record["history"] = history
    X_te, y_te = ctx.X_test, ctx.y_test
    if ctx.task == "classification":
        proba = _safe_proba(estimator, X_te)
        if proba is not None:
            from astromodal.evaluation.metrics import decide

            pred = np.asarray(estimator.classes_)[decide(proba, getattr(estimator, "threshold", None))]
        else:
            pred = np.asarray(estimator.predict(X_te))
        # the training classes, then any test class never trained on (unseen_test_classes: count_wrong): those
        # objects are scored as misclassified, and without a probability for their class there is no ROC
        names = list(data.test.target(data.target).class_names) if data.test is not None else list(t.class_names)
        scored = proba if len(names) == len(t.class_names) else None
        record["metrics"] = classification_metrics(y_te, pred, scored, class_names=names)
        record["class_names"] = names
        if scored is not None and proba.shape[1] == 2:
            record["_proba"] = proba[:, 1].tolist()
            record["_y_true"] = y_te.tolist()
    else:
        pred, var = _mean_var(estimator, X_te, len(y_te))
        record["metrics"] = regression_metrics(y_te, pred, var)  # + NLL and coverage for a Gaussian head
        record["unit"] = t.unit
    runner._add_baseline(record, ctx.y_train, y_te)
    return record
