"""Seeded splits that never leak: stratified train/test, stratified k-fold.

All functions return integer row indices so that they work with any array or with
:meth:`astromodal.data.dataset.Dataset.subset`. The same seed gives the same indices.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from astromodal.errors import BadValueError


def train_test_indices(
    n: int, test_fraction: float = 0.2, labels: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/test row indices, stratified on ``labels`` when given."""
    if not 0.0 < test_fraction < 1.0:
        raise BadValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rows = np.arange(n)
    if labels is not None:
        counts = np.bincount(np.asarray(labels))
        if (counts[counts > 0] < 2).any():
            raise BadValueError("every class needs at least 2 objects for a stratified split")
        n_classes, n_test = int((counts > 0).sum()), int(np.ceil(test_fraction * n))
        if min(n_test, n - n_test) < n_classes:
            raise BadValueError(f"a stratified split of {n} objects with test fraction {test_fraction} puts "
                                f"{n_test} in the test set and {n - n_test} in the training set; each needs at "
                                f"least one object of each of the {n_classes} classes")
    train, test = train_test_split(rows, test_size=test_fraction, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def kfold_indices(
    n: int, k: int = 10, labels: np.ndarray | None = None, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled k-fold (stratified on ``labels`` when given): yields (train, validation) indices."""
    if k < 2:
        raise BadValueError(f"k-fold needs k >= 2, got {k}")
    rows = np.arange(n)
    if labels is not None:
        labels = np.asarray(labels)
        smallest = np.bincount(labels)[np.unique(labels)].min()
        if smallest < k:
            raise BadValueError(f"stratified {k}-fold needs at least {k} objects per class; the smallest class has {smallest}")
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        yield from splitter.split(rows, labels)
    else:
        yield from KFold(n_splits=k, shuffle=True, random_state=seed).split(rows)
