"""k-fold training of a fresh model per fold, and the ensemble of the fold models (study C protocol).

For each of the ``k`` (stratified, seeded) folds a NEW estimator is made by ``make()``, trained on the
other ``k - 1`` folds with this fold as validation set (early stopping and best weights), and scored
on it. The public code of study C reused one model object across folds (each fold continued from
the previous one's weights); here a repeated object is an error. The fold models are averaged as an
:class:`~astromodal.training.ensemble.EnsembleEstimator`, to be tested on an untouched test split.

Two settings of neural estimators are adapted per fold: the trainer seed becomes ``seed + fold`` (so
that the fold models also start from different initial weights), and a ``checkpoint_dir`` gets a
``fold-NN`` sub-folder (so that an interrupted k-fold run resumes fold by fold). The resample
(bagging) sibling is :func:`astromodal.training.ensemble.fit_resample_ensemble` (``member-NN``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astromodal.data.splits import kfold_indices
from astromodal.errors import ConfigError
from astromodal.training.ensemble import EnsembleEstimator


@dataclass
class CVResult:
    """Fold models, per-fold metrics (train/validation loss, validation accuracy) and their ensemble."""

    members: list[Any]
    folds: list[dict[str, Any]]
    ensemble: EnsembleEstimator
    oof_prediction: np.ndarray | None = None  # out-of-fold prediction of every training object
    #: out-of-fold class probabilities (N, K), columns in ``ensemble.classes_`` order (classification)
    oof_proba: np.ndarray | None = None
    histories: list[list[dict[str, Any]] | None] = field(default_factory=list)
    #: several heads: every head's out-of-fold prediction, ``{head: Categorical | Gaussian}``
    oof_heads: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation over folds of each numeric fold metric."""
        out = {}
        for key in ("train_loss", "val_loss", "val_accuracy", "val_rmse"):
            vals = [f[key] for f in self.folds if f.get(key) is not None]
            if vals:
                out[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals))}
        return out


def _rows(X: Any, idx: np.ndarray) -> Any:
    return {k: np.asarray(v)[idx] for k, v in X.items()} if isinstance(X, dict) else np.asarray(X)[idx]


def _adapt(est: Any, fold: int, prefix: str = "fold") -> None:
    """Per-fold (or per-member) trainer seed and checkpoint sub-folder ``<prefix>-NN`` for estimators with a
    TrainerConfig."""
    cfg = getattr(est, "trainer", None)
    if cfg is None or not hasattr(cfg, "model_copy"):
        return
    update: dict[str, Any] = {"seed": cfg.seed + fold}
    if cfg.checkpoint_dir:
        update["checkpoint_dir"] = str(Path(cfg.checkpoint_dir) / f"{prefix}-{fold:02d}")
    est.trainer = cfg.model_copy(update=update)


def kfold_ensemble(make: Callable[[], Any], X: Any, y: Any, k: int = 10, seed: int = 0,
                   stratified: bool = True) -> CVResult:
    """Train ``k`` fresh estimators on stratified folds of (X, y); return fold metrics and their ensemble.

    ``y`` is an array (one target) or a dict ``{target: array}`` (several heads: each fold model gets every
    head's rows of its folds and masks the rows without a target itself; folds are stratified on the
    first class head, missing labels a group of their own). The fold metrics and ``oof_prediction`` /
    ``oof_proba`` are the primary (first) head's, scored on the rows that have its target; ``oof_heads``
    holds every head's out-of-fold prediction (:class:`Categorical` / :class:`Gaussian`)."""
    from astromodal.training.ensemble import (
        _class_codes,
        member_heads,
        n_targets,
        planned_tasks,
        subset_targets,
    )
    from astromodal.training.estimator import valid_rows

    several = isinstance(y, dict)
    y = {k_: np.asarray(v) for k_, v in y.items()} if several else np.asarray(y)
    n = n_targets(y)
    first_est = make()
    tasks = planned_tasks(first_est, y)
    names = list(tasks)
    y_main = y[names[0]] if several else y
    labels = None
    if several:
        strata = next((y[t] for t in names if tasks[t] == "classification" and t in y), None)
        labels = None if strata is None or not stratified else _class_codes(strata)
    elif stratified and y.dtype.kind in "biuUSO":
        labels = np.unique(y, return_inverse=True)[1]
    valid = valid_rows(y_main, tasks[names[0]]) if several else np.ones(n, dtype=bool)
    members: list[Any] = []
    folds: list[dict[str, Any]] = []
    oof: np.ndarray | None = None
    oof_proba: np.ndarray | None = None
    classes = np.unique(y_main[valid])
    oof_parts: dict[str, list[tuple[np.ndarray, Any]]] = {}
    for fold, (tr, va) in enumerate(kfold_indices(n, k, labels, seed)):
        est = first_est if fold == 0 else make()
        if any(est is m for m in members):
            raise ConfigError("kfold_ensemble: make() returned an estimator object already used for another fold; "
                              "it must build a fresh one each call")
        _adapt(est, fold)
        t0 = time.perf_counter()
        X_va, y_va = _rows(X, va), y_main[va]
        est.fit(_rows(X, tr), subset_targets(y, tr), X_va, subset_targets(y, va))
        rec: dict[str, Any] = {"fold": fold, "n_train": int(len(tr)), "n_val": int(len(va)),
                               "train_loss": None, "val_loss": None, "best_epoch": None}
        history = getattr(est, "history", None)
        result = getattr(est, "result", None)
        if history:
            best_epoch = getattr(result, "best_epoch", None) or history[-1]["epoch"]
            best = next((h for h in history if h["epoch"] == best_epoch), history[-1])
            rec.update(train_loss=best["train_loss"], val_loss=best.get("val_loss"), best_epoch=best_epoch,
                       epochs=len(history))
        ok = valid[va]
        if est.task == "classification":
            proba = _proba(est, X_va)
            pred = est.classes_[np.argmax(proba, axis=1)] if proba is not None else np.asarray(est.predict(X_va))
            rec["val_accuracy"] = float(np.mean(pred[ok] == y_va[ok])) if ok.any() else None
            if oof is None:
                oof = np.empty(n, dtype=y_main.dtype)
            oof[va] = pred
            if proba is not None:
                if oof_proba is None:
                    oof_proba = np.full((n, len(classes)), np.nan)
                oof_proba[np.ix_(va, np.searchsorted(classes, np.asarray(est.classes_)))] = proba
        else:
            pred = np.asarray(est.predict(X_va), dtype=np.float64).reshape(len(va), -1)[:, 0]
            rec["val_rmse"] = float(np.sqrt(np.mean((pred[ok] - y_va[ok]) ** 2))) if ok.any() else None
            if oof is None:
                oof = np.empty(n, dtype=np.float64)
            oof[va] = pred
        if several:
            for name, p in member_heads(est, X_va, names).items():
                oof_parts.setdefault(name, []).append((va, p))
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        members.append(est)
        folds.append(rec)
    if oof_proba is not None:
        oof_proba = np.nan_to_num(oof_proba, nan=0.0)  # a class a fold model never saw: probability 0
    return CVResult(members, folds, EnsembleEstimator(members), oof_prediction=oof, oof_proba=oof_proba,
                    histories=[getattr(m, "history", None) for m in members], oof_heads=_oof_heads(oof_parts, n))


def _oof_heads(parts: dict[str, list[tuple[np.ndarray, Any]]], n: int) -> dict[str, Any]:
    """Every head's out-of-fold prediction assembled from the folds' validation predictions."""
    from astromodal.training.predictions import Categorical, Gaussian

    out: dict[str, Any] = {}
    for name, items in parts.items():
        if isinstance(items[0][1], Categorical):
            classes = np.unique(np.concatenate([np.asarray(p.classes) for _, p in items]))
            proba = np.zeros((n, len(classes)))  # a class a fold model never saw: probability 0
            for va, p in items:
                proba[np.ix_(va, np.searchsorted(classes, np.asarray(p.classes)))] = p.proba
            out[name] = Categorical(proba, classes)
        else:
            mean, var = np.full(n, np.nan), np.full(n, np.nan)
            for va, p in items:
                mean[va], var[va] = p.mean, p.var
            out[name] = Gaussian(mean, var)
    return out


def _proba(est: Any, X: Any) -> np.ndarray | None:
    try:
        return np.asarray(est.predict_proba(X))
    except (AttributeError, NotImplementedError):
        return None
