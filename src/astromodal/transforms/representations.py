"""Representations: how a :class:`Dataset` becomes model input arrays.

A representation maps a dataset to a dict of arrays keyed by model input names (``spectrum``,
``image``, ``context``, ``columns``). Every step here is per object (mean filter, per-spectrum
normalisation, reshaping), so nothing is fitted and nothing can leak between train and test;
statistics that need fitting (standardising catalogue columns, context) are fitted on the training
split inside the estimator.

The output key decides which models fit: neural models read the keys in their ``inputs``; classical
models see all arrays flattened side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from astromodal.data.dataset import Dataset
from astromodal.errors import ConfigError
from astromodal.experiments import RepresentationConfig

#: the model modality each representation feeds
MODALITY = {"line": "spectrum", "image": "image", "spectrum": "spectrum", "columns": "columns", "images": "image"}


def _spectra_name(ds: Dataset, rep: RepresentationConfig) -> str:
    if rep.spectra:
        return rep.spectra
    if len(ds.spectra) == 1:
        return next(iter(ds.spectra))
    raise ConfigError(f"representation {rep.kind!r}: say which spectra block to use ('spectra:'); the dataset has {list(ds.spectra)}")


def _images_name(ds: Dataset, rep: RepresentationConfig) -> str:
    if rep.images:
        return rep.images
    if len(ds.images) == 1:
        return next(iter(ds.images))
    raise ConfigError(f"representation 'images': say which images block to use ('images:'); the dataset has {list(ds.images)}")


def build_inputs(ds: Dataset, rep: RepresentationConfig) -> dict[str, np.ndarray]:
    """Model inputs for every object of ``ds`` under representation ``rep``."""
    from astromodal.transforms import spectra as sp

    if rep.kind == "line" and rep.images:  # AstroSpectra-MNIST images back to their 721-point vectors
        pixels = ds.images[_images_name(ds, rep)].pixels.read()
        return {"spectrum": sp.from_image(pixels.reshape(len(pixels), -1)).astype(np.float32)}
    if rep.kind in ("line", "image"):
        settings = sp.SpectrumPreprocessing(**rep.preprocessing)
        name = _spectra_name(ds, rep)
        if rep.kind == "line":
            return {"spectrum": sp.line_representation(ds, name, settings).astype(np.float32)}
        return {"image": sp.image_representation(ds, name, settings).astype(np.float32)}
    if rep.kind == "spectrum":
        name = _spectra_name(ds, rep)
        flux = ds.arrays(spectra=name)["spectrum"].astype(np.float64)
        out: dict[str, np.ndarray] = {}
        if rep.context:
            out["context"] = sp.context_features(flux).astype(np.float32)
        norm = rep.normalise or "none"
        if norm == "l2":
            ids = ds.ids.read()
            flux = sp.l2_normalise(flux, ids=ids) if "ids" in _params(sp.l2_normalise) else sp.l2_normalise(flux)
        elif norm != "none":
            flux = sp.normalise(flux, norm)
        out["spectrum"] = flux.astype(np.float32)
        return out
    if rep.kind == "columns":
        if not rep.columns:
            raise ConfigError("representation 'columns' needs a list of columns ('columns:')")
        values = ds.arrays(columns=expand_columns(ds, rep.columns))["columns"].astype(np.float64)
        norm = rep.normalise or "none"
        if norm == "l2":  # per object, e.g. Gaia XP coefficients
            values = sp.l2_normalise(values)
        elif norm != "none":
            raise ConfigError(f"representation 'columns': normalise {norm!r} is not per-object; use l2 or none "
                              "(columns are standardised with training statistics inside every estimator)")
        return {"columns": values.astype(np.float32)}
    if rep.kind == "images":
        name = _images_name(ds, rep)
        im = ds.images[name]
        if rep.bands:
            im = im.select_bands(rep.bands)
        if rep.size and rep.size != im.size:
            im = im.downsample(rep.size)
        pixels = im.pixels.read().astype(np.float32)
        return {"image": pixels}
    raise ConfigError(f"unknown representation kind {rep.kind!r}")


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


def _params(fn: Any) -> tuple[str, ...]:
    import inspect

    return tuple(inspect.signature(fn).parameters)


def input_shapes(inputs: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape[1:]) for k, v in inputs.items()}


def flatten_inputs(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """All inputs side by side as one (N, features) matrix (for classical models and embeddings)."""
    keys = [k for k in ("spectrum", "image", "columns", "context") if k in inputs]
    return np.concatenate([inputs[k].reshape(len(inputs[k]), int(np.prod(inputs[k].shape[1:]))) for k in keys], axis=1)
