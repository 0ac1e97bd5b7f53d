"""Validated experiment configs: every study is a YAML file under ``experiments/``.

A config names datasets (where the objects come from), representations (how a dataset becomes model
input), models, a protocol (hold-out split or k-fold with a fold ensemble), seeds and budgets.
``astromodal benchmark CONFIG`` runs it (:mod:`astromodal.evaluation.benchmark`).

Every section is a pydantic model with ``extra="forbid"``: an unknown key is an error that names the
key, where it is, and the allowed keys. Example::

    name: astrospectra_mnist_sim
    datasets:
      v1: {source: simulate, options: {n: 3000, seed: 1}, target: class}
    representations:
      line: {kind: line, spectra: lamost}
    models:
      - {name: random_forest}
      - {name: simple_cnn2, representations: [image]}
    protocol: {kind: holdout, test_fraction: 0.2}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from astromodal.errors import ConfigError, format_validation_error

#: the dataset sources are registered in astromodal.data.sources (SOURCES, one decorated function each):
#: simulate (the built-in survey simulator), hdf5, astrospectra_mnist, spectra_fits, table, gaia_xp_npz,
#: gaia_xp_sampled, idx, and any source registered with @source


REPRESENTATIONS = (
    "line",  # spectrum -> common grid -> 5-sample mean filter -> 721 values (LineAstroSpectra)
    "spectrum_image",  # the 721 vector padded and reshaped to 28 x 28 (AstroSpectra-MNIST image)
    "spectrum",  # a spectra block as it is (optionally L2-normalised), with the [max, min] context
    "columns",  # catalogue columns (features)
    "cutout",  # an images block of the dataset (e.g. the AstroSpectra-MNIST PNGs or survey cutouts)
    "image",  # alias of spectrum_image (the name before views)
    "images",  # alias of cutout (the name before views)
)
#: shorthand kind -> (input name, view kind) of its main input
_SHORTHAND = {"line": ("spectrum", "line"), "spectrum_image": ("image", "spectrum_image"), "image": ("image", "spectrum_image"),
              "spectrum": ("spectrum", "spectrum"), "columns": ("columns", "columns"), "cutout": ("image", "cutout"),
              "images": ("image", "cutout")}
#: the shorthand keys each view kind takes
_SHORTHAND_KEYS = {"line": ("spectra", "images", "preprocessing"), "spectrum_image": ("spectra", "preprocessing"),
                   "spectrum": ("spectra", "normalise"), "columns": ("columns", "normalise"),
                   "cutout": ("images", "bands", "size")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


#: head kinds a dataset's ``heads`` may name when the head registry cannot be read
_HEAD_KINDS = ("categorical", "binary", "gaussian", "point")


def _without_unset(data: dict[str, Any], model: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """A dump without the ``keys`` left unset (None): the dump before they existed (fingerprints unchanged)."""
    for key in keys:
        if getattr(model, key) is None:
            data.pop(key, None)
    return data


def _head_kinds() -> list[str]:
    try:
        from astromodal.training.heads import HEADS
    except ImportError:  # pragma: no cover - the head registry is part of the package
        return list(_HEAD_KINDS)
    return HEADS.names()


class HeadConfig(_Strict):
    """How one target is learned (``datasets.<name>.heads.<target>``); unset keys take the defaults of the
    target's kind (class codes: categorical, binary for two classes; a real target: point, Gaussian with
    ``trainer.loss: gaussian_nll``)."""

    kind: str | None = None  # a registered head kind: categorical, binary, gaussian, point
    weight: float = Field(default=1.0, ge=0.0)  # the head's weight in the total loss
    class_weight: Literal["balanced"] | None = None  # class heads: weight the loss by 1 / class frequency
    loss: str | None = None  # point heads: mse | l1
    standardise: bool | None = None  # regression heads: learn the standardised target (default true)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in _head_kinds():
            raise ValueError(f"unknown head kind {v!r}; known: {', '.join(_head_kinds())}")
        return v

    @model_validator(mode="after")
    def _keys_of_kind(self) -> HeadConfig:
        if self.kind in ("gaussian", "point") and self.class_weight is not None:
            raise ValueError(f"class_weight is for class heads, not a {self.kind} head")
        if self.kind in ("categorical", "binary") and self.standardise is not None:
            raise ValueError(f"standardise is for regression heads, not a {self.kind} head")
        return self

    def spec(self) -> dict[str, Any]:
        """The keys given (not None), as ``make_head`` takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None and k in self.model_fields_set}


class DatasetConfig(_Strict):
    """Where objects come from and which target(s) are learned."""

    source: str  # a registered dataset source (astromodal.data.sources.SOURCES)
    options: dict[str, Any] = Field(default_factory=dict)
    #: the target, or several (one head each; the first is the primary one: the split is stratified on it,
    #: ``keep_classes`` and ``max_objects`` apply to it, the top-level scores of a cell are its)
    target: str | list[str] = "class"
    #: per target: the head's kind, loss weight, class weight and loss (optional; defaults by target kind)
    heads: dict[str, HeadConfig] | None = None
    keep_classes: list[str] | None = None  # keep only these classes of the target (e.g. F, G, K)
    max_objects: int | None = Field(default=None, ge=1)  # a seeded stratified subsample, for quick runs
    required: bool = True  # False: skip this dataset with a note when its files are missing
    #: a class of the source's own test split that the training split lacks: "error" stops the run naming it,
    #: "count_wrong" keeps its objects, scored as misclassified (the model cannot predict a class it never saw)
    unseen_test_classes: Literal["error", "count_wrong"] = "error"
    #: quality cuts applied when the dataset loads (astromodal.data.crossmatch.QUALITY_CUTS), each optional:
    #: {parallax_over_error_min: 2, pmra_error_max: 0.2, pmdec_error_max: 0.2, ruwe_max: 1.4,
    #: drop_saturated: true}; the rows kept after each cut are counted in Dataset.meta["selection"]
    cuts: dict[str, Any] | None = None

    @field_validator("cuts")
    @classmethod
    def _cuts(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        from astromodal.data.crossmatch import check_cuts

        try:
            return None if v is None else check_cuts(v)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("cuts: ")) from None

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        from astromodal.data.sources import SOURCES

        if v not in SOURCES:
            raise ValueError(f"unknown dataset source {v!r}; registered: {', '.join(SOURCES.names())}")
        return v

    @field_validator("target")
    @classmethod
    def _targets(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list):
            if not v:
                raise ValueError("name at least one target")
            twice = sorted({t for t in v if v.count(t) > 1})
            if twice:
                raise ValueError(f"target(s) {twice} named twice")
            return v[0] if len(v) == 1 else v
        return v

    @model_validator(mode="after")
    def _head_targets(self) -> DatasetConfig:
        unknown = [t for t in self.heads or {} if t not in self.targets]
        if unknown:
            raise ValueError(f"heads {unknown} name no target of this dataset (its targets: {self.targets})")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without heads (cuts) the dump is the one before heads (cuts) existed (cell fingerprints unchanged)
        return _without_unset(handler(self), self, ("heads", "cuts"))

    @property
    def targets(self) -> list[str]:
        """Every target, the primary one first."""
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def primary(self) -> str:
        """The first target (stratification, ``keep_classes``, the cell's top-level scores)."""
        return self.targets[0]

    def head_specs(self) -> dict[str, dict[str, Any]] | None:
        """``{target: head spec}`` for ``make_estimator(heads=...)`` (only the keys set), in target order;
        None for one target without ``heads`` (the estimator's single-head behaviour)."""
        if len(self.targets) == 1 and not self.heads:
            return None
        return {t: (self.heads or {}).get(t, HeadConfig()).spec() for t in self.targets}


class RepresentationConfig(_Strict):
    """How a dataset becomes model inputs: a mapping ``inputs: {name: view}`` (:mod:`astromodal.data.views`),
    or the one-kind shorthand of the keys below (``{kind: line, spectra: lamost}``), which expands to
    fixed input names: line -> ``spectrum``; spectrum_image (alias image) -> ``image``; spectrum ->
    ``spectrum`` (+ ``context`` with ``context: true``); columns -> ``columns``; cutout (alias images) ->
    ``image``. :meth:`views` gives the ``{input name: view}`` mapping either way."""

    kind: Literal[REPRESENTATIONS] | None = None  # type: ignore[valid-type]
    spectra: str | None = None  # spectra block name (line / spectrum_image / spectrum)
    images: str | None = None  # images block name (cutout)
    columns: list[str] | None = None  # catalogue columns (columns)
    normalise: Literal["none", "l2", "minmax", "median", "standard"] | None = None
    context: bool = False  # add the raw [max, min] of the flux as a second input
    preprocessing: dict[str, Any] = Field(default_factory=dict)  # SpectrumPreprocessing settings
    bands: list[str] | None = None  # image bands to keep
    size: int | None = None  # image size (area-averaged)
    #: the mapping form: input name -> view options (``kind`` plus that kind's keys); validated when read
    inputs: dict[str, Any] | None = None

    @field_validator("inputs")
    @classmethod
    def _views(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return None
        if not v:
            raise ValueError("name at least one input")
        return {str(name): _parse_view(str(name), spec) for name, spec in v.items()}

    @model_validator(mode="after")
    def _one_form(self) -> RepresentationConfig:
        if (self.kind is None) == (self.inputs is None):
            raise ValueError("give either 'kind' (the one-kind shorthand) or 'inputs' (a mapping of input name to view)")
        if self.inputs is not None:
            extra = [k for k in ("spectra", "images", "columns", "normalise", "bands", "size", "preprocessing", "context")
                     if getattr(self, k) not in (None, {}, False)]
            if extra:
                raise ValueError(f"keys {extra} belong to the one-kind shorthand; with 'inputs' put them in a view")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # the shorthand dumps as before views (cell fingerprints and predictor.json unchanged); the mapping
        # form as its inputs only
        data = handler(self)
        return {"inputs": data["inputs"]} if self.inputs is not None else {k: v for k, v in data.items() if k != "inputs"}

    def views(self) -> dict[str, Any]:
        """``{input name: View}`` (the shorthand expanded; a bad shorthand option is one ConfigError line)."""
        if self.inputs is not None:
            return dict(self.inputs)
        name, kind = _SHORTHAND[self.kind]
        where = f"representation kind {self.kind!r}"
        out: dict[str, Any] = {}
        if kind == "spectrum" and self.context:
            out["context"] = _parse_view("context", {"kind": "context", "spectra": self.spectra}, where)
        spec = {k: getattr(self, k) for k in _SHORTHAND_KEYS[kind] if getattr(self, k) not in (None, {})}
        out[name] = _parse_view(name, {"kind": kind, **spec}, where)
        return out


def _parse_view(name: str, spec: Any, where: str | None = None) -> Any:
    """One view from its options; errors name the input, the key at fault and the allowed keys (ValueError
    inside a config, ConfigError with ``where``)."""
    from astromodal.data.views import view_class

    try:
        if not isinstance(spec, dict) or "kind" not in spec:
            raise ConfigError(f"input {name!r}: a view is a mapping with a 'kind'")
        view = view_class(spec["kind"])
        try:
            return view.model_validate(spec)
        except ValidationError as exc:
            raise ConfigError(f"input {name!r} ({spec['kind']} view): {format_validation_error(exc, view)}") from None
    except ConfigError as exc:
        if where is not None:
            raise ConfigError(f"{where}: {exc}") from None
        raise ValueError(str(exc)) from None


class ModelConfig(_Strict):
    name: str
    label: str | None = None  # name shown in tables (defaults to name)
    options: dict[str, Any] = Field(default_factory=dict)
    representations: list[str] | None = None  # default: every compatible representation
    datasets: list[str] | None = None  # default: every dataset
    trainer: dict[str, Any] = Field(default_factory=dict)  # per-model trainer overrides
    #: neural models: the inputs standardised with training-split statistics (per feature, per band for
    #: images), by input name (default: every input whose view kind is columns or context); classical
    #: models always are
    standardise: list[str] | None = None
    #: neural models trained by an objective of their own, without targets (``contrastive``, or
    #: ``{kind: contrastive, pair: [image, spectrum], temperature: 0.07}``): the ``pretrain_probe`` protocol
    #: fits them, freezes them and fits its probe on their embeddings
    objective: str | dict[str, Any] | None = None
    #: a partial protocol section merged over the config's ``protocol`` for this model's cells (e.g.
    #: ``{kind: resample_ensemble, n_members: 6}`` beside a holdout baseline), validated as a whole; the test
    #: split depends only on the dataset, the seed and ``test_fraction``, never on the kind
    protocol: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without an objective or a protocol the dump is the one before they existed (fingerprints unchanged)
        return _without_unset(handler(self), self, ("objective", "protocol"))


_RESAMPLE_KEYS = frozenset({"n_members", "member_weights", "combine_weights", "draw_size", "augment_duplicates",
                            "validation_by_source"})
#: resample settings added later: dumped only when set (the fingerprints of earlier resample cells unchanged)
_RESAMPLE_LATER = frozenset({"draw_size", "augment_duplicates", "validation_by_source"})
_PROBE_KEYS = frozenset({"probe", "probe_options"})
_CALIBRATION_KEYS = frozenset({"recalibrate", "calibration_fraction", "variance_scale"})


class ProtocolConfig(_Strict):
    #: holdout: train on a stratified split, test on the rest (or the source's own test split);
    #: cv: stratified k-fold cross-validation over all objects, metrics per fold (mean ± std) and pooled;
    #: kfold_ensemble: k-fold on the training split, a fresh model per fold, the fold ensemble tested;
    #: resample_ensemble: n_members fresh models, each on a weighted draw with replacement of the training
    #: split, their ensemble tested (MESCR); any protocol registered in astromodal.evaluation.protocols.
    kind: str = "holdout"
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    k: int = Field(default=10, ge=2)
    seeds: list[int] = Field(default_factory=lambda: [0])
    #: binary tasks under kfold_ensemble: "argmax" decides by the larger probability (p >= 0.5);
    #: "balanced_accuracy" / "f1" choose the threshold on p(class 1) that maximises that score on the
    #: out-of-fold predictions of the training split (the test split is never used to choose it)
    threshold: Literal["argmax", "balanced_accuracy", "f1"] = "argmax"
    #: resample_ensemble: number of members (MESCR: 6)
    n_members: int = Field(default=6, ge=1)
    #: resample_ensemble: draw probabilities, "uniform" (plain bagging), "balanced" (1 / class frequency) or
    #: "mescr" (member "base" 1/f, then one member per class with 1/f^2 for that class; n_members = 1 + K)
    member_weights: Literal["uniform", "balanced", "mescr"] = "uniform"
    #: resample_ensemble: weights of the members' class probabilities (one per member; default equal), or
    #: under mescr a mapping by member name {base: 0.1, A: 0.2, ...}; normalised; never applied to Gaussian
    #: (mean, variance) outputs, which combine unweighted (MESCR Eq. 1)
    combine_weights: list[float] | dict[str, float] | None = None
    #: resample_ensemble: rows drawn (with replacement) per member; default the training split's size
    #: (MESCR: 9,000)
    draw_size: int | None = Field(default=None, ge=1)
    #: resample_ensemble: the 2nd, 3rd, ... copy of a row in a member's draw is augmented at least once per
    #: epoch (needs the trainer's augment; without it no effect, as the cell record says)
    augment_duplicates: bool = True
    #: resample_ensemble: a member's validation part drawn over whole source rows (copies of a row never
    #: straddle training and validation); default true under mescr, false otherwise
    validation_by_source: bool | None = None
    #: pretrain_probe: the registered model fitted on the frozen embeddings of the training split (e.g.
    #: kneighbors_regressor, ridge, mlp_regressor, logistic_regression, mlp_columns) and its options
    probe: str | None = None
    probe_options: dict[str, Any] = Field(default_factory=dict)
    #: every tested protocol (not cv): hold out calibration_fraction of the training split (stratified on the
    #: first class head, seeded by the cell seed) BEFORE fitting, fit a temperature (class heads) and a variance
    #: scale (Gaussian heads) on the model's predictions for it, and score the test split before and after
    #: (heads[h].calibration; the headline metrics stay the raw model's). astromodal.evaluation.calibration
    recalibrate: bool = False
    calibration_fraction: float = Field(default=0.15, gt=0.0, lt=1.0)
    #: the Gaussian heads' variance scale: "nll" (c = mean z^2, the NLL minimiser) or "coverage" (c such that
    #: 68 % of the calibration rows fall inside mu +- sigma: robust to heavy-tailed z-scores)
    variance_scale: Literal["nll", "coverage"] = "nll"

    @model_validator(mode="after")
    def _calibration_settings(self) -> ProtocolConfig:
        extra = sorted((_CALIBRATION_KEYS - {"recalibrate"}) & self.model_fields_set)
        if extra and not self.recalibrate:
            raise ValueError(f"{', '.join(extra)}: setting(s) of recalibrate: true")
        if self.recalibrate and self.kind == "cv":
            raise ValueError("recalibrate: the cv protocol has no test split to recalibrate for; use holdout, "
                             "kfold_ensemble, resample_ensemble or pretrain_probe")
        return self

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from astromodal.evaluation.protocols import protocol_names

        if v not in protocol_names():
            raise ValueError(f"unknown protocol {v!r}; known: {', '.join(protocol_names())}")
        return v

    @model_validator(mode="after")
    def _resample_settings(self) -> ProtocolConfig:
        extra = sorted(_RESAMPLE_KEYS & self.model_fields_set)
        if self.kind != "resample_ensemble" and extra:
            raise ValueError(f"{', '.join(extra)}: setting(s) of kind resample_ensemble, not {self.kind!r}")
        extra = sorted(_PROBE_KEYS & self.model_fields_set)
        if self.kind != "pretrain_probe" and extra:
            raise ValueError(f"{', '.join(extra)}: setting(s) of kind pretrain_probe, not {self.kind!r}")
        if self.kind == "pretrain_probe" and not self.probe:
            raise ValueError("kind pretrain_probe needs 'probe': the registered model fitted on the embeddings "
                             "(e.g. kneighbors_regressor, ridge, logistic_regression)")
        w = self.combine_weights
        if isinstance(w, dict):
            if self.member_weights != "mescr":
                raise ValueError(f"combine_weights by member name {sorted(w)}: only member_weights mescr names its "
                                 "members (base and one per class); give a list")
            if min(w.values(), default=-1) < 0 or sum(w.values()) <= 0:
                raise ValueError(f"combine_weights {w}: non-negative weights, not all zero")
        elif w is not None and (len(w) != self.n_members or min(w) < 0 or sum(w) <= 0):
            raise ValueError(f"combine_weights {w}: one non-negative weight per member ({self.n_members}), "
                             "not all zero")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # the resample settings only where they apply: configs of the other kinds keep their dump (and so the
        # fingerprints of their finished cells)
        data = handler(self)
        for key in _RESAMPLE_KEYS:
            if self.kind != "resample_ensemble" or (key in _RESAMPLE_LATER and key not in self.model_fields_set):
                data.pop(key, None)
        if self.kind != "pretrain_probe":
            for key in _PROBE_KEYS:
                data.pop(key, None)
        if not self.recalibrate:  # off: the dump (and cell fingerprints) of configs from before it existed
            for key in _CALIBRATION_KEYS:
                data.pop(key, None)
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed")
        return v


#: the comparison operators of a ``subset`` filter
SUBSET_OPS = ("==", "!=", ">", ">=", "<", "<=")


class SubsetConfig(_Strict):
    """A filter on one column of the test objects (``{column: n_neighbours, op: ">", value: 0}``): a row is
    kept when ``column op value`` holds; a NaN (missing) value never does. The column is saved with each
    cell's test predictions (else read from the dataset by object id)."""

    column: str
    op: Literal[SUBSET_OPS] = "=="  # type: ignore[valid-type]
    value: bool | int | float | str

    def text(self) -> str:
        """``n_neighbours > 0``."""
        return f"{self.column} {self.op} {_value_text(self.value)}"

    def mask(self, values: Any) -> Any:
        """The rows of ``values`` (one per test object) the filter keeps (a boolean array)."""
        import operator

        import numpy as np

        fn = {"==": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt,
              "<=": operator.le}[self.op]
        v = np.asarray(values)
        if isinstance(self.value, str) or v.dtype.kind in "USO":
            if self.op not in ("==", "!="):
                raise ConfigError(f"subset {self.text()!r}: column {self.column!r} holds text; compare it with == "
                                  "or != only")
            return np.asarray(fn(v.astype(str), str(self.value)), dtype=bool)
        x = v.astype(np.float64)
        with np.errstate(invalid="ignore"):
            return np.isfinite(x) & np.asarray(fn(x, float(self.value)), dtype=bool)


class CellRef(_Strict):
    """The cells of one model entry (by label) on one representation: ``{model: tree, representation: spec}``."""

    model: str
    representation: str | None = None

    def text(self) -> str:
        return self.model if self.representation is None else f"{self.model} ({self.representation})"


#: the metrics a comparison may rank by: higher is better for r2 and the class scores, lower for rmse / mae
COMPARISON_METRICS = ("r2", "rmse", "mae", "accuracy", "balanced_accuracy")


class ComparisonConfig(_Strict):
    """One question the report answers with intervals (``report.comparisons[]``): the named cells ranked by
    ``metric`` on the test split (paired bootstrap 95 % intervals), and with ``against`` the best of
    ``cells`` against the best of ``against``, their difference with a paired bootstrap interval and a
    plain verdict. An entry of ``cells`` / ``against`` is a model label (every representation it ran on)
    or ``{model, representation}``."""

    name: str
    title: str = ""
    cells: list[str | CellRef] = Field(min_length=1)
    against: list[str | CellRef] | None = None
    #: a filter on a column of the test objects: the tables then show all test objects and the subset
    subset: SubsetConfig | None = None
    #: r2 (regression default), rmse, mae, accuracy (classification default) or balanced_accuracy
    metric: Literal[COMPARISON_METRICS] | None = None  # type: ignore[valid-type]
    target: str | None = None  # the head compared (default: the dataset's primary target)
    dataset: str | None = None  # default: every dataset with such cells (one comparison each)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _SWEEP_NAME.fullmatch(v):
            raise ValueError(f"comparison {v!r}: name: use letters, digits, '_', '-' and '.' only")
        return v

    @field_validator("against")
    @classmethod
    def _against(cls, v: list[Any] | None) -> list[Any] | None:
        if v is not None and not v:
            raise ValueError("against: name at least one cell, or leave it out")
        return v

    def refs(self, which: str = "cells") -> list[CellRef]:
        """The entries of ``cells`` or ``against`` as :class:`CellRef` s."""
        return [CellRef(model=e) if isinstance(e, str) else e for e in getattr(self, which) or []]


class ExploratoryConfig(_Strict):
    """Exploratory figures of one target (``report.exploratory``): an image grid of ``per_bin`` objects per
    target bin, the median spectrum per bin with the emission lines marked, the target's histogram (per
    class) and box plots (per class, per bin of the column ``by``)."""

    target: str  # a regression target of the dataset, e.g. sfr
    images: str | None = None  # an images block of the dataset, or an image input of a representation
    spectra: str | None = None  # a spectra block of the dataset
    bins: int = Field(default=4, ge=2, le=10)  # target bins (quantile edges of the finite values)
    per_bin: int = Field(default=3, ge=1, le=10)  # objects per bin in the image grid
    lines: bool = True  # mark the emission lines on the median spectra
    classes: str | None = None  # a class target for the histogram / box plots (default: ``class`` if any)
    by: str | None = None  # a column whose bins group a second box plot (default: n_neighbours if any)
    log: bool | None = None  # log10 of the target in the histogram / box plots (default: positive over 2 dex)
    dataset: str | None = None  # default: every dataset with the target


class ReportConfig(_Strict):
    confusion_matrices: bool = True
    embeddings: list[Literal["pca", "tsne"]] = Field(default_factory=lambda: ["pca", "tsne"])
    roc_curves: bool = True
    tables: Literal["astrospectra", "plain"] = "plain"  # astrospectra: Table 1 / Table 2 of study A
    #: the test objects' column binned on the x axis of the sigma_pred / sigma_net figure (MESCR Figure 4b:
    #: the r-band S/N, ``snr_r``); read from the dataset, saved with each cell's test predictions
    snr_column: str | None = None
    #: input names shown as a figure of example objects per class (e.g. ``[gri, urz]``): RGB inputs as RGB,
    #: other images as a Lupton composite of their g, r, i bands (first representation that has them)
    image_grid: list[str] | None = None
    image_grid_per_class: int = Field(default=3, ge=1, le=10)
    #: the per-class Table 1 form (F1, recall, precision, count) per cell: true, false, or None (default)
    #: for runs of at most 12 such cells (a large grid keeps its per-class F1 table only)
    per_class_tables: bool | None = None
    #: questions answered with paired-bootstrap intervals (:class:`ComparisonConfig`)
    comparisons: list[ComparisonConfig] | None = None
    #: exploratory figures of a target (:class:`ExploratoryConfig`)
    exploratory: ExploratoryConfig | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without them the dump is the one before comparisons and exploratory figures existed
        return _without_unset(handler(self), self, ("comparisons", "exploratory"))

    @field_validator("comparisons")
    @classmethod
    def _comparison_names(cls, v: list[ComparisonConfig] | None) -> list[ComparisonConfig] | None:
        names = [c.name for c in v or []]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"comparison name(s) {twice} used twice")
        return v

    def saved_columns(self) -> list[str]:
        """The test objects' columns saved with each cell's predictions: ``snr_column`` and every
        comparison's ``subset`` column."""
        names = [self.snr_column] + [c.subset.column for c in self.comparisons or [] if c.subset]
        return list(dict.fromkeys(n for n in names if n))


_SWEEP_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class SweepConfig(_Strict):
    """One named sweep (``sweeps:``): a base model entry or representation expanded into labelled variants
    ``<name>=<value>``, each run as cells of its own (only those cells are added: a model variant runs on
    its base's representations, a representation variant with the models that run on the base, or those
    named in ``models``), reported as one table (and a line figure for numeric values).

    Model sweeps: ``model`` (the base entry's label or name) with ``option`` + ``values`` (the model option
    each value sets) or ``variants`` (``{label: {options: {...}, trainer: {...}}}``).
    Representation sweeps: ``representation`` with ``input_option`` + ``values`` (the view key each value
    sets on ``inputs``, default every input whose view has the key), ``set`` (one key: ``combination`` ->
    values like ``gru+iuz`` whose parts become the ``bands`` of the RGB inputs in order, or
    ``"<input>.<key>"``) or ``variants`` (``{label: {<input>: {key: value}}}``)."""

    name: str
    title: str = ""
    model: str | None = None
    option: str | None = None
    representation: str | None = None
    models: list[str] | None = None
    input_option: str | None = None
    inputs: list[str] | None = None
    values: list[Any] | None = None
    set: dict[str, list[Any]] | None = None
    variants: dict[str, dict[str, Any]] | None = None
    #: a two-axis representation sweep: exactly two ``"<input>.<key>": [values]`` axes, expanded to their
    #: cartesian product (variant ``<name>=<v1>,<v2>``); the report draws heat maps of the primary test
    #: metric (with its 95 % interval) and of the training time
    grid: dict[str, list[Any]] | None = None
    #: optional display names of a grid's values, per axis key one per value (e.g. ``["64 px", ...]``)
    axis_labels: dict[str, list[str]] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without a grid the dump is the one before grids existed (config.json unchanged)
        return _without_unset(handler(self), self, ("grid", "axis_labels"))

    @model_validator(mode="after")
    def _one_form(self) -> SweepConfig:
        where = f"sweep {self.name!r}"
        if not _SWEEP_NAME.fullmatch(self.name):
            raise ValueError(f"{where}: name: use letters, digits, '_', '-' and '.' only")
        if (self.model is None) == (self.representation is None):
            raise ValueError(f"{where}: give either 'model' (a model entry's label or name) or 'representation'")
        forms = {"values": self.values is not None, "set": self.set is not None, "variants": self.variants is not None,
                 "grid": self.grid is not None}
        if sum(forms.values()) != 1:
            raise ValueError(f"{where}: give exactly one of 'values' (with 'option' / 'input_option'), 'set', "
                             f"'variants' or 'grid' (given: {[k for k, v in forms.items() if v] or 'none'})")
        self._check_grid(where)
        if self.model is not None:
            wrong = [k for k in ("representation", "models", "input_option", "inputs", "set", "grid")
                     if getattr(self, k)]
            if wrong:
                raise ValueError(f"{where}: {', '.join(wrong)}: setting(s) of a representation sweep, not of a "
                                 "model sweep")
            if (self.values is not None) != (self.option is not None):
                raise ValueError(f"{where}: a model sweep with 'values' names the model 'option' they set "
                                 "(or give 'variants')")
        else:
            if self.option is not None:
                raise ValueError(f"{where}: option: a setting of a model sweep; a representation sweep sets a "
                                 "view key with 'input_option'")
            if (self.values is not None) != (self.input_option is not None):
                raise ValueError(f"{where}: a representation sweep with 'values' names the view key they set "
                                 "('input_option'), or give 'set' or 'variants'")
        if self.set is not None and len(self.set) != 1:
            raise ValueError(f"{where}: set: one key (e.g. combination), got {list(self.set)}")
        points = self.points()
        if not points:
            raise ValueError(f"{where}: give at least one value")
        texts = [t for t, _ in points]
        bad = [t for t in texts if not re.fullmatch(r"[^/\\\s]+", t)]
        if bad:  # a variant's label is part of its cells' file names
            raise ValueError(f"{where}: value(s) {bad}: a variant label may not be empty or hold '/', '\\' or spaces")
        twice = sorted({t for t in texts if texts.count(t) > 1})
        if twice:
            raise ValueError(f"{where}: value(s) {twice} given twice")
        return self

    def _check_grid(self, where: str) -> None:
        """A grid: a representation sweep of exactly two ``"<input>.<key>"`` axes, each a non-empty list of
        distinct values; ``axis_labels`` (grids only) one display name per value of a grid axis."""
        if self.axis_labels is not None and self.grid is None:
            raise ValueError(f"{where}: axis_labels: a setting of a 'grid' sweep")
        if self.grid is None:
            return
        if self.model is not None:
            raise ValueError(f"{where}: grid: a setting of a representation sweep, not of a model sweep")
        wrong = [k for k in ("input_option", "inputs") if getattr(self, k)]
        if wrong:
            raise ValueError(f"{where}: {', '.join(wrong)}: not with 'grid' (its keys name the inputs)")
        if len(self.grid) != 2:
            raise ValueError(f"{where}: grid: exactly two axes '<input>.<key>', got {len(self.grid)} ({list(self.grid)})")
        for key, values in self.grid.items():
            name, _, view_key = key.partition(".")
            if not name or not view_key:
                raise ValueError(f"{where}: grid: axis {key!r} is not of the form '<input>.<key>' (e.g. image.images)")
            if not values:
                raise ValueError(f"{where}: grid: axis {key!r} has no values")
            texts = [_value_text(v) for v in values]
            twice = sorted({t for t in texts if texts.count(t) > 1})
            if twice:
                raise ValueError(f"{where}: grid: axis {key!r}: value(s) {twice} given twice")
            if any("," in t for t in texts):
                raise ValueError(f"{where}: grid: axis {key!r}: a value may not hold ',' (it joins the two values "
                                 "of a variant label)")
        for key, names in (self.axis_labels or {}).items():
            if key not in self.grid:
                raise ValueError(f"{where}: axis_labels: {key!r} is no grid axis (axes: {list(self.grid)})")
            if len(names) != len(self.grid[key]):
                raise ValueError(f"{where}: axis_labels: {key!r} has {len(names)} name(s) for "
                                 f"{len(self.grid[key])} value(s)")

    @property
    def axis(self) -> str:
        """What the sweep varies: the option / view key, the ``set`` key, ``variant``, or for a grid its two
        axis keys joined by `` x ``."""
        if self.grid is not None:
            return " x ".join(self.grid)
        if self.set is not None:
            return next(iter(self.set))
        return self.option or self.input_option or "variant"

    def grid_axes(self) -> list[tuple[str, list[str], list[str]]]:
        """A grid's two axes: ``(key, value texts, display names)`` (the names default to the texts)."""
        out = []
        for key, values in (self.grid or {}).items():
            texts = [_value_text(v) for v in values]
            out.append((key, texts, list((self.axis_labels or {}).get(key) or texts)))
        return out

    def points(self) -> list[tuple[str, Any]]:
        """``(value text, value)`` per variant, in the order given (``variants``: the label and its patch; a
        grid: ``"<v1>,<v2>"`` and the pair, the first axis varying slowest)."""
        if self.variants is not None:
            return [(str(k), v) for k, v in self.variants.items()]
        if self.grid is not None:
            (_, a), (_, b) = self.grid.items()
            return [(f"{_value_text(x)},{_value_text(y)}", (x, y)) for x in a for y in b]
        values = self.values if self.values is not None else next(iter((self.set or {}).values()), [])
        return [(_value_text(v), v) for v in values]

    def label(self, text: str) -> str:
        """A variant's label: ``<name>=<value>`` (the model label or representation name of its cells)."""
        return f"{self.name}={text}"

    def numeric(self) -> bool:
        """True when every value is a number (the report draws a line figure against it)."""
        return self.variants is None and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for _, v in self.points())


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "none" if v is None else str(v)


def _model_variant(s: SweepConfig, base: ModelConfig, text: str, value: Any) -> ModelConfig:
    """The base model entry with the sweep's value set, labelled ``<name>=<value>``."""
    data = base.model_dump()
    data["label"] = s.label(text)
    if s.variants is not None:
        if not isinstance(value, dict) or set(value) - {"options", "trainer"}:
            raise ValueError(f"sweep {s.name!r} variant {text!r}: a model variant is a mapping of 'options' and/or "
                             f"'trainer' settings, got {value!r}")
        for key in ("options", "trainer"):
            data[key] = {**data[key], **(value.get(key) or {})}
    else:
        data["options"] = {**data["options"], s.option: value}
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"sweep {s.name!r} ({s.label(text)}): {format_validation_error(exc, ModelConfig)}") from None


def _representation_variant(s: SweepConfig, base: RepresentationConfig, text: str, value: Any) -> RepresentationConfig:
    """The base representation with the sweep's value set on its inputs' views."""
    from astromodal.data.views import view_class

    where = f"sweep {s.name!r} ({s.label(text)})"
    data = base.model_dump()
    if base.inputs is not None:
        views = data["inputs"]
    else:  # the shorthand: its one main input, keys at the top level
        name = _SHORTHAND[base.kind][0]
        views = {name: {**data, "kind": _SHORTHAND[base.kind][1]}}
    unknown = [n for n in s.inputs or [] if n not in views]
    if unknown:
        raise ValueError(f"{where}: inputs {unknown} are not inputs of representation {s.representation!r} "
                         f"(its inputs: {list(views)})")
    patches: dict[str, dict[str, Any]] = {}
    if s.grid is not None:  # two "<input>.<key>" axes: one value of each
        for key, v in zip(s.grid, value, strict=True):
            name, view_key = key.split(".", 1)
            if name not in views:
                raise ValueError(f"{where}: grid: {name!r} is not an input of representation {s.representation!r} "
                                 f"(its inputs: {list(views)})")
            if view_key not in view_class(views[name]["kind"]).model_fields:
                raise ValueError(f"{where}: grid: input {name!r} ({views[name]['kind']} view) has no key {view_key!r}")
            patches.setdefault(name, {})[view_key] = v
    elif s.variants is not None:
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError(f"{where}: a representation variant maps input names to view settings, got {value!r}")
        patches = value
    elif s.axis == "combination":
        from astromodal.transforms.images import parse_combination

        try:
            parts = parse_combination(str(value))
        except ConfigError as exc:
            raise ValueError(f"{where}: {exc}") from None
        targets = s.inputs or [n for n, v in views.items() if v.get("kind") == "rgb"]
        if len(targets) != len(parts):
            raise ValueError(f"{where}: combination {value!r} has {len(parts)} part(s) but representation "
                             f"{s.representation!r} has {len(targets)} RGB input(s) {targets} (name them with 'inputs')")
        patches = {n: {"bands": list(p) if isinstance(views[n].get("bands"), list) else p}
                   for n, p in zip(targets, parts, strict=True)}
    else:
        key = s.input_option or s.axis
        if s.set is not None and "." in key:  # "<input>.<key>"
            name, key = key.split(".", 1)
            if name not in views:
                raise ValueError(f"{where}: set: {name!r} is not an input of representation {s.representation!r} "
                                 f"(its inputs: {list(views)})")
            targets = [name]
        else:
            targets = s.inputs or [n for n, v in views.items() if key in view_class(v["kind"]).model_fields]
        if not targets:
            raise ValueError(f"{where}: no input of representation {s.representation!r} has the view key {key!r}")
        patches = {n: {key: value} for n in targets}
    for name, patch in patches.items():
        if name not in views:
            raise ValueError(f"{where}: {name!r} is not an input of representation {s.representation!r} "
                             f"(its inputs: {list(views)})")
        views[name] = {**views[name], **patch}
    if base.inputs is None:
        (only,) = views.values()
        data = {**only, "kind": base.kind}
    try:
        return RepresentationConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{where}: {format_validation_error(exc, RepresentationConfig)}") from None


class ExperimentConfig(_Strict):
    name: str
    description: str = ""
    study: str | None = None
    output: str | None = None  # default: runs/<name>
    datasets: dict[str, DatasetConfig]
    representations: dict[str, RepresentationConfig]
    models: list[ModelConfig]
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    trainer: dict[str, Any] = Field(default_factory=dict)  # defaults for every neural model
    report: ReportConfig = Field(default_factory=ReportConfig)
    save_models: bool = False  # keep each cell's trained model in OUT/models/<cell>/ for `astromodal predict`
    #: named sweeps, each expanding a base model entry or representation into variants ``<name>=<value>``
    #: (:class:`SweepConfig`); the variants join ``models`` / ``representations`` when the config is read
    sweeps: list[SweepConfig] | None = None
    #: variant label -> (sweep name, value text) of the model entries / representations the sweeps made
    _sweep_models: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)
    _sweep_representations: dict[str, tuple[str, str]] = PrivateAttr(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("use letters, digits, '_', '-' and '.' only")
        return v

    @field_validator("sweeps")
    @classmethod
    def _sweep_names(cls, v: list[SweepConfig] | None) -> list[SweepConfig] | None:
        names = [s.name for s in v or []]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"sweep name(s) {twice} used twice")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # as written: without the sweeps' variants (they are made again when the dump is read) and, without
        # sweeps, the dump before sweeps existed
        data = _without_unset(handler(self), self, ("sweeps",))
        if self._sweep_models:
            data["models"] = [d for d, m in zip(data["models"], self.models, strict=True)
                              if (m.label or m.name) not in self._sweep_models]
        for name in self._sweep_representations:
            data["representations"].pop(name, None)
        return data

    def protocol_for(self, model: ModelConfig) -> ProtocolConfig:
        """The protocol of ``model``'s cells: the config's, with the entry's ``protocol`` merged over it (the
        config's settings of another kind are dropped when the entry changes the kind; a bad merge: ConfigError)."""
        if model.protocol is None:
            return self.protocol
        kind = model.protocol.get("kind", self.protocol.kind)
        # the settings that belong to one kind only: dropped from the config's protocol when the entry changes
        # the kind (e.g. a holdout baseline beside a top-level resample ensemble with draw_size)
        of_kind = {"resample_ensemble": _RESAMPLE_KEYS, "pretrain_probe": _PROBE_KEYS}
        drop = set().union(*(keys for k, keys in of_kind.items() if k != kind))
        given = self.protocol.model_dump(exclude_unset=True)
        base = {k: v for k, v in given.items() if kind == self.protocol.kind or k not in drop}
        try:
            return ProtocolConfig.model_validate({**base, **model.protocol})
        except ValidationError as exc:
            raise ConfigError(f"model {model.label or model.name!r}: protocol: "
                              f"{format_validation_error(exc, ProtocolConfig)}") from None

    def sweep_of(self, model: str | None = None, representation: str | None = None) -> tuple[str, str] | None:
        """``(sweep name, value text)`` of a sweep's model variant (by label) or representation variant."""
        if model is not None and model in self._sweep_models:
            return self._sweep_models[model]
        if representation is not None:
            return self._sweep_representations.get(representation)
        return None

    @property
    def sweep_representations(self) -> list[str]:
        """The representations the sweeps made (run only with the models of their sweep)."""
        return list(self._sweep_representations)

    @property
    def sweep_model_labels(self) -> list[str]:
        """The labels of the model entries the sweeps made."""
        return list(self._sweep_models)

    def _expand_sweeps(self) -> None:
        """Add every sweep's variants to ``models`` / ``representations`` (errors name the sweep and key)."""
        taken = {m.label or m.name for m in self.models} | set(self.representations)
        for s in self.sweeps or []:
            where = f"sweep {s.name!r}"
            if s.model is not None:
                bases = [m for m in self.models if (m.label or m.name) == s.model and
                         (m.label or m.name) not in self._sweep_models]
                bases = bases or [m for m in self.models if m.name == s.model and m.label is None]
                if len(bases) != 1:
                    labels = [m.label or m.name for m in self.models if (m.label or m.name) not in self._sweep_models]
                    raise ValueError(f"{where}: model {s.model!r} " + ("matches several entries; name one by its "
                                     "label" if bases else "is no model entry") + f" (entries: {labels})")
            else:
                if s.representation not in self.representations or s.representation in self._sweep_representations:
                    raise ValueError(f"{where}: representation {s.representation!r} is not defined (defined: "
                                     f"{[r for r in self.representations if r not in self._sweep_representations]})")
                known = {m.label or m.name for m in self.models}
                unknown = [m for m in s.models or [] if m not in known]
                if unknown:
                    raise ValueError(f"{where}: models {unknown} name no model entry (entries: {sorted(known)})")
            for text, value in s.points():
                label = s.label(text)
                if label in taken:
                    raise ValueError(f"{where}: variant {label!r} clashes with a model label or representation name")
                taken.add(label)
                if s.model is not None:
                    self.models.append(_model_variant(s, bases[0], text, value))
                    self._sweep_models[label] = (s.name, text)
                else:
                    base = self.representations[s.representation]
                    self.representations[label] = _representation_variant(s, base, text, value)
                    self._sweep_representations[label] = (s.name, text)

    def _check_report(self) -> None:
        _check_report_refs(self)

    def _merge_protocols(self) -> None:
        """Each model entry's effective protocol validated as a whole (errors name the model)."""
        for m in self.models:
            try:
                self.protocol_for(m)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _references(self) -> ExperimentConfig:
        self._expand_sweeps()
        self._merge_protocols()
        for m in self.models:
            for r in m.representations or []:
                if r not in self.representations:
                    raise ValueError(f"model {m.name!r} names representation {r!r}; defined: {list(self.representations)}")
            for d in m.datasets or []:
                if d not in self.datasets:
                    raise ValueError(f"model {m.name!r} names dataset {d!r}; defined: {list(self.datasets)}")
            _check_standardise(m, self.representations)
        self._check_report()
        if self.save_models and any(self.protocol_for(m).kind == "cv" for m in self.models):
            raise ValueError("save_models: the cv protocol scores every object out of fold and keeps no model; "
                             "use protocol.kind holdout (one model) or kfold_ensemble (a fold ensemble) to save models")
        return self


def _check_report_refs(cfg: ExperimentConfig) -> None:
    """Every comparison names model labels (the sweeps' variants included), representations, datasets and
    targets the config has; ``exploratory`` a dataset and target it has (errors name the comparison)."""
    labels = [m.label or m.name for m in cfg.models]
    for c in cfg.report.comparisons or []:
        where = f"report.comparisons {c.name!r}"
        for which in ("cells", "against"):
            for ref in c.refs(which):
                if ref.model not in labels:
                    raise ValueError(f"{where}: {which}: {ref.model!r} is no model label (labels: {labels})")
                if ref.representation is not None and ref.representation not in cfg.representations:
                    raise ValueError(f"{where}: {which}: representation {ref.representation!r} of {ref.model!r} is "
                                     f"not defined (defined: {list(cfg.representations)})")
        if c.dataset is not None and c.dataset not in cfg.datasets:
            raise ValueError(f"{where}: dataset {c.dataset!r} is not defined (defined: {list(cfg.datasets)})")
        chosen = [cfg.datasets[c.dataset]] if c.dataset else list(cfg.datasets.values())
        if c.target is not None and not any(c.target in d.targets for d in chosen):
            raise ValueError(f"{where}: target {c.target!r} is no target of the dataset(s) (targets: "
                             f"{sorted({t for d in chosen for t in d.targets})})")
    e = cfg.report.exploratory
    if e is not None and e.dataset is not None and e.dataset not in cfg.datasets:
        raise ValueError(f"report.exploratory: dataset {e.dataset!r} is not defined (defined: {list(cfg.datasets)})")


def _check_standardise(m: ModelConfig, representations: dict[str, RepresentationConfig]) -> None:
    """Every input a model's ``standardise`` names is an input of one of the representations it may run on."""
    if not m.standardise:
        return
    inputs: set[str] = set()
    for r in m.representations or list(representations):
        try:
            inputs |= set(representations[r].views())
        except ConfigError:  # a bad shorthand option: reported by the runner's checks, naming it
            return
    missing = [k for k in m.standardise if k not in inputs]
    if missing:
        raise ValueError(f"model {m.label or m.name!r}: standardise names input(s) {missing} that none of its "
                         f"representations has (their inputs: {sorted(inputs)})")


def standardised_inputs(m: ModelConfig, representation: RepresentationConfig) -> list[str]:
    """The inputs of ``representation`` a neural model standardises: its ``standardise`` list (those the
    representation has), by default every input whose view kind is ``columns`` or ``context``."""
    views = representation.views()
    if m.standardise is not None:
        return [k for k in m.standardise if k in views]
    return [k for k, v in views.items() if v.kind in ("columns", "context")]


def _format_validation_error(exc: ValidationError, source: str) -> str:
    return format_validation_error(exc, ExperimentConfig, f"{source}: invalid experiment config")


def parse_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config mapping; errors name the key at fault and the allowed keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment config must be a YAML mapping, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config (``overrides`` are merged in, dotted keys allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such experiment config")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return parse_config(data, str(path))


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {p!r} is not a mapping")
    node[parts[-1]] = value
