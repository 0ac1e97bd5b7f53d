"""Training of neural models and the estimator front shared with scikit-learn.

* :mod:`~astromodal.training.trainer`: ``TrainerConfig``, ``Trainer`` (the one training loop), ``TrainResult``;
* :mod:`~astromodal.training.losses`: balanced BCE / cross-entropy, Gaussian NLL, ``make_loss``;
* :mod:`~astromodal.training.estimator`: ``SklearnEstimator``, ``TorchEstimator``, ``make_estimator``,
  ``load_estimator`` (one head or several: ``predict_heads``, ``head_names``; embeddings: ``transform``);
* :mod:`~astromodal.training.crossval`: ``kfold_ensemble`` (a fresh model per fold);
* :mod:`~astromodal.training.ensemble`: ``EnsembleEstimator`` (weighted probabilities, MESCR Eq. 1, per
  head) and ``fit_resample_ensemble`` (members on weighted draws with replacement, out-of-bag predictions
  per head, ``HeadOOB``); ``member_mean_var`` / ``member_heads``, one reading of a member's predictions.

Names are imported lazily, so ``import astromodal.training`` does not load torch by itself.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainerConfig": "trainer",
    "Trainer": "trainer",
    "TrainResult": "trainer",
    "make_loss": "losses",
    "gaussian_nll": "losses",
    "Estimator": "estimator",
    "SklearnEstimator": "estimator",
    "TorchEstimator": "estimator",
    "make_estimator": "estimator",
    "load_estimator": "estimator",
    "kfold_ensemble": "crossval",
    "CVResult": "crossval",
    "EnsembleEstimator": "ensemble",
    "combine_gaussians": "ensemble",
    "fit_resample_ensemble": "ensemble",
    "ResampleResult": "ensemble",
    "HeadOOB": "ensemble",
    "member_mean_var": "ensemble",
    "member_heads": "ensemble",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"astromodal.training.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'astromodal.training' has no attribute {name!r}")
