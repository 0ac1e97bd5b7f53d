"""Representations: how a :class:`Dataset` becomes model input arrays.

A representation (:class:`~astromodal.experiments.RepresentationConfig`) is a mapping from input name
to a view (:mod:`astromodal.data.views`); :func:`build_inputs` builds one array per name through
:meth:`Dataset.inputs`. Every view is per object (mean filter, per-spectrum normalisation, reshaping),
so nothing is fitted and nothing can leak between train and test; statistics that need fitting
(standardising catalogue columns, context) are fitted on the training split inside the estimator.

The input names decide which models fit: neural models read the names they declare (``inputs``);
classical models see all arrays flattened side by side (:func:`flatten_inputs`).
"""

from __future__ import annotations

import numpy as np

from astromodal.data.dataset import Dataset
from astromodal.errors import ConfigError
from astromodal.experiments import RepresentationConfig


def build_inputs(ds: Dataset, rep: RepresentationConfig) -> dict[str, np.ndarray]:
    """Model inputs for every object of ``ds`` under representation ``rep`` (``{input name: array}``)."""
    return ds.inputs(rep.views())


def expand_columns(ds: Dataset, patterns: list[str]) -> list[str]:
    """Column names for a list of names and shell-style patterns (``xp_bp_*``), in the dataset's order
    within each pattern; a pattern that matches nothing is an error listing the columns."""
    import fnmatch

    names = list(ds.columns)
    out: list[str] = []
    for pat in patterns:
        if any(c in pat for c in "*?["):
            hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
            if not hits:
                raise ConfigError(f"column pattern {pat!r} matches none of the columns {names[:20]}"
                                  + (" ..." if len(names) > 20 else ""))
            out += [h for h in hits if h not in out]
        elif pat not in out:
            out.append(pat)
    return out


def input_shapes(inputs: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape[1:]) for k, v in inputs.items()}


def flatten_inputs(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """All inputs side by side as one (N, features) matrix (for classical models and embeddings): the
    estimator's flattener (:func:`astromodal.training.estimator.flatten_features`), one order everywhere."""
    from astromodal.training.estimator import flatten_features

    return flatten_features(inputs)
