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
        # without heads the dump is the one before heads existed (cell fingerprints unchanged)
        return _without_unset(handler(self), self, ("heads",))

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

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without an objective the dump is the one before objectives existed (cell fingerprints unchanged)
        return _without_unset(handler(self), self, ("objective",))


_RESAMPLE_KEYS = frozenset({"n_members", "member_weights", "combine_weights"})
_PROBE_KEYS = frozenset({"probe", "probe_options"})


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
    #: resample_ensemble: draw probabilities, "uniform" (plain bagging) or "balanced" (1 / class frequency)
    member_weights: Literal["uniform", "balanced"] = "uniform"
    #: resample_ensemble: weights of the members' class probabilities (one per member; default equal);
    #: never applied to Gaussian (mean, variance) outputs, which combine unweighted (MESCR Eq. 1)
    combine_weights: list[float] | None = None
    #: pretrain_probe: the registered model fitted on the frozen embeddings of the training split (e.g.
    #: kneighbors_regressor, ridge, mlp_regressor, logistic_regression, mlp_columns) and its options
    probe: str | None = None
    probe_options: dict[str, Any] = Field(default_factory=dict)

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
        if w is not None and (len(w) != self.n_members or min(w) < 0 or sum(w) <= 0):
            raise ValueError(f"combine_weights {w}: one non-negative weight per member ({self.n_members}), "
                             "not all zero")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # the resample settings only where they apply: configs of the other kinds keep their dump (and so the
        # fingerprints of their finished cells)
        data = handler(self)
        if self.kind != "resample_ensemble":
            for key in _RESAMPLE_KEYS:
                data.pop(key, None)
        if self.kind != "pretrain_probe":
            for key in _PROBE_KEYS:
                data.pop(key, None)
        return data

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed")
        return v


class ReportConfig(_Strict):
    confusion_matrices: bool = True
    embeddings: list[Literal["pca", "tsne"]] = Field(default_factory=lambda: ["pca", "tsne"])
    roc_curves: bool = True
    tables: Literal["astrospectra", "plain"] = "plain"  # astrospectra: Table 1 / Table 2 of study A


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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", v):
            raise ValueError("use letters, digits, '_', '-' and '.' only")
        return v

    @model_validator(mode="after")
    def _references(self) -> ExperimentConfig:
        for m in self.models:
            for r in m.representations or []:
                if r not in self.representations:
                    raise ValueError(f"model {m.name!r} names representation {r!r}; defined: {list(self.representations)}")
            for d in m.datasets or []:
                if d not in self.datasets:
                    raise ValueError(f"model {m.name!r} names dataset {d!r}; defined: {list(self.datasets)}")
            _check_standardise(m, self.representations)
        if self.save_models and self.protocol.kind == "cv":
            raise ValueError("save_models: the cv protocol scores every object out of fold and keeps no model; "
                             "use protocol.kind holdout (one model) or kfold_ensemble (a fold ensemble) to save models")
        return self


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
